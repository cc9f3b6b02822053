// soma's thread setting as a fresh process sees it (the environment is read once, at the first
// use, so each case is its own process; see CMakeLists.txt's threads.* tests).
// Usage: threads_env_check <expected threads | error>
// Checks get_num_threads(), the team of a large elementwise op and of a large matmul on the
// main thread and on a std::thread the program starts, and that set_num_threads(1) then
// reaches that thread too. With "error": SOMA_NUM_THREADS is malformed, and every use must
// throw soma::Error naming the variable and the value, until set_num_threads overrides it.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "kernels/cpu/parallel.h"

// OpenBLAS's own count (its OpenMP build re-reads the calling thread's OpenMP setting on
// every call); the test links OpenBLAS for it.
extern "C" int openblas_get_num_threads(void);
#include "soma/soma.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// Team sizes of a large elementwise op and of a large matmul run on the calling thread.
void teams(int& elementwise, int& matmul) {
  const soma::Tensor a = soma::ones({1 << 18}), b = soma::ones({1 << 18});
  const soma::Tensor c = a * b;
  elementwise = soma::kernels::cpu::last_team_size();
  const soma::Tensor m = soma::ones({512, 512});
  const soma::Tensor p = soma::matmul(m, m);
  matmul = soma::kernels::cpu::last_team_size();
}

// A product too narrow for soma's split: OpenBLAS threads it itself, with soma's count.
void check_blas(int expected, const std::string& where) {
  const soma::Tensor a = soma::ones({200, 300}), b = soma::ones({300, 200});
  const soma::Tensor c = soma::matmul(a, b);
  const int n = openblas_get_num_threads();
  expect(n == expected, where + ": OpenBLAS threads " + std::to_string(n) + ", expected " +
                            std::to_string(expected));
}

void check_teams(int expected, const std::string& where) {
  int e = 0, m = 0;
  teams(e, m);
  expect(e == expected, where + ": elementwise team " + std::to_string(e) + ", expected " +
                            std::to_string(expected));
  expect(m == expected,
         where + ": matmul team " + std::to_string(m) + ", expected " + std::to_string(expected));
  check_blas(expected, where);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: threads_env_check <expected threads | error>\n");
    return 2;
  }
  const std::string expected = argv[1];
  if (expected == "error") {
    const char* env = std::getenv("SOMA_NUM_THREADS");
    for (int i = 0; i < 2; ++i) {
      try {
        soma::get_num_threads();
        expect(false, "get_num_threads did not throw");
      } catch (const soma::Error& e) {
        const std::string msg = e.what();
        expect(env && msg.find("SOMA_NUM_THREADS") != std::string::npos &&
                   msg.find(std::string("'") + env + "'") != std::string::npos,
               std::string("error names the variable and the value: ") + msg);
      }
    }
    soma::set_num_threads(1);
    expect(soma::get_num_threads() == 1, "set_num_threads overrides a malformed variable");
    return failures == 0 ? 0 : 1;
  }
  const int n = std::atoi(expected.c_str());
  expect(
      soma::get_num_threads() == n,
      "get_num_threads() = " + std::to_string(soma::get_num_threads()) + ", expected " + expected);
  check_teams(n, "main thread");
  std::thread([&] { check_teams(n, "a std::thread"); }).join();
  // A thread started before the change follows it as well.
  std::atomic<bool> changed{false};
  std::thread worker([&] {
    int e = 0, m = 0;
    teams(e, m);  // this thread's first ops, at the old setting
    while (!changed.load()) std::this_thread::yield();
    check_teams(1, "a std::thread started before set_num_threads(1)");
  });
  soma::set_num_threads(1);
  changed = true;
  worker.join();
  check_teams(1, "main thread after set_num_threads(1)");
  return failures == 0 ? 0 : 1;
}
