#include "soma/core/threading.h"

#include <cblas.h>
#include <omp.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "soma/core/error.h"

namespace soma {
namespace {

void apply(int n) {
  omp_set_num_threads(n);
  // OpenBLAS's OpenMP build runs on the same pool; this only caps its share.
  openblas_set_num_threads(n);
}

// Reads SOMA_NUM_THREADS once when the library loads; default: every core.
[[maybe_unused]] const int kInitialThreads = [] {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  if (const char* env = std::getenv("SOMA_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) n = static_cast<int>(v);
  }
  apply(n);
  return n;
}();

}  // namespace

void set_num_threads(int n) {
  SOMA_CHECK(n >= 1, "set_num_threads: the number of threads must be >= 1, got ", n);
  apply(n);
}

int get_num_threads() {
  return omp_get_max_threads();
}

}  // namespace soma
