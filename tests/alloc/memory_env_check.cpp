// The cache limit from SOMA_CACHE_MAX_BYTES, in a process that allocates nothing before main
// (soma_tests allocates tensors in static initialisers). Usage: memory_env_check <expected>,
// where <expected> is the limit in bytes, or "error" when the value is malformed: then every
// allocation and memory_stats() must throw soma::Error naming the variable and the value.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "soma/soma.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: memory_env_check <expected bytes | error>\n");
    return 2;
  }
  const std::string expected = argv[1];
  const char* env = std::getenv("SOMA_CACHE_MAX_BYTES");
  if (expected == "error") {
    int errors = 0;
    for (int i = 0; i < 2; ++i) {  // every call, not only the first
      try {
        soma::Tensor t = soma::zeros({3});
      } catch (const soma::Error& e) {
        const std::string msg = e.what();
        if (msg.find("SOMA_CACHE_MAX_BYTES") != std::string::npos && env != nullptr &&
            msg.find(std::string("'") + env + "'") != std::string::npos)
          ++errors;
        std::printf("%s\n", e.what());
      }
    }
    try {
      soma::memory_stats();
    } catch (const soma::Error&) {
      ++errors;
    }
    std::printf("errors: %d of 3\n", errors);
    return errors == 3 ? 0 : 1;
  }
  const size_t limit = soma::memory_stats().cache_limit_bytes;
  std::printf("cache_limit_bytes %zu, expected %s\n", limit, expected.c_str());
  return std::to_string(limit) == expected ? 0 : 1;
}
