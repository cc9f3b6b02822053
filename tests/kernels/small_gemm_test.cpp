// The small-batch Linear kernel (kernels/cpu/small_gemm.h) and spin_team
// (kernels/cpu/parallel.h): the AVX-512 kernel gives the scalar reference's bits at every shape,
// row count, stride and thread count; the reference agrees with the long-double GEMM reference;
// spin_team runs every share once, rethrows, nests and survives fork.
#include "kernels/cpu/small_gemm.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/kernels.h"
#include "soma/core/error.h"
#include "soma/core/threading.h"

namespace soma::kernels::cpu {
namespace {

struct ThreadsGuard {
  explicit ThreadsGuard(int n) : previous(get_num_threads()) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(previous); }
  int previous;
};

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& e : v) e = u(rng);
  return v;
}

struct Case {
  int64_t m, n, k;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t m = 1; m <= kSmallGemmMaxRows; ++m)
    for (int64_t n : {1, 5, 10, 16, 17, 31, 32, 33, 48, 129, 256})
      for (int64_t k : {1, 2, 3, 15, 16, 17, 64, 127, 784}) out.push_back({m, n, k});
  return out;
}

TEST(SmallGemm, Avx512GivesTheReferenceBits) {
  if (!small_gemm_avx512_available()) GTEST_SKIP() << "no AVX-512F on this CPU (or capped)";
  for (int threads : {1, 2, 3}) {
    ThreadsGuard tg(threads);
    for (const Case& c : cases())
      for (bool with_bias : {true, false}) {
        const int64_t ldx = c.k + 3, ldy = c.n + 5;
        const auto w = random_values(static_cast<size_t>(c.n * c.k), 1);
        const auto x = random_values(static_cast<size_t>(c.m * ldx), 2);
        const auto b = random_values(static_cast<size_t>(c.n), 3);
        const PackedF32 p = pack_f32(w.data(), c.n, c.k);
        std::vector<float> y(static_cast<size_t>(c.m * ldy), 7.0f), r = y;
        const float* bias = with_bias ? b.data() : nullptr;
        ASSERT_TRUE(linear_small_f32_avx512(c.m, x.data(), ldx, p, bias, y.data(), ldy));
        ASSERT_TRUE(linear_small_f32_reference(c.m, x.data(), ldx, p, bias, r.data(), ldy));
        ASSERT_EQ(std::memcmp(y.data(), r.data(), y.size() * sizeof(float)), 0)
            << "m " << c.m << " n " << c.n << " k " << c.k << " bias " << with_bias << " threads "
            << threads;
        // The padding between rows of Y is left alone.
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t j = c.n; j < ldy; ++j) ASSERT_EQ(y[i * ldy + j], 7.0f);
      }
  }
}

TEST(SmallGemm, ReferenceAgreesWithTheGemmReference) {
  for (const Case& c : cases()) {
    const auto w = random_values(static_cast<size_t>(c.n * c.k), 4);
    const auto x = random_values(static_cast<size_t>(c.m * c.k), 5);
    const auto b = random_values(static_cast<size_t>(c.n), 6);
    const PackedF32 p = pack_f32(w.data(), c.n, c.k);
    std::vector<float> y(static_cast<size_t>(c.m * c.n)), r(y.size());
    ASSERT_TRUE(linear_small_f32_reference(c.m, x.data(), c.k, p, b.data(), y.data(), c.n));
    for (int64_t i = 0; i < c.m; ++i) std::copy(b.begin(), b.end(), r.begin() + i * c.n);
    gemm_reference<float>(false, true, c.m, c.n, c.k, 1.0f, x.data(), c.k, w.data(), c.k, 1.0f,
                          r.data(), c.n);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], r[i], 2e-6 * std::sqrt(static_cast<double>(c.k)) + 1e-6)
          << "m " << c.m << " n " << c.n << " k " << c.k << " element " << i;
  }
}

TEST(SmallGemm, SpecialValuesPropagate) {
  const int64_t n = 20, k = 9;
  auto w = random_values(n * k, 7);
  auto x = random_values(k, 8);
  w[5 * k + 2] = std::numeric_limits<float>::infinity();
  const PackedF32 p = pack_f32(w.data(), n, k);
  std::vector<decltype(&linear_small_f32_reference)> kernels = {&linear_small_f32_reference};
  if (small_gemm_avx512_available()) kernels.push_back(&linear_small_f32_avx512);
  for (auto* kernel : kernels) {
    std::vector<float> y(n);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    ASSERT_TRUE(kernel(1, x.data(), k, p, nullptr, y.data(), n));
    for (int64_t j = 0; j < n; ++j) EXPECT_TRUE(std::isnan(y[j])) << j;
    x[3] = 0.5f;
    ASSERT_TRUE(kernel(1, x.data(), k, p, nullptr, y.data(), n));
    EXPECT_TRUE(std::isinf(y[5]));
    EXPECT_TRUE(std::isfinite(y[4]));
  }
}

TEST(SmallGemm, DeclinesOtherRowCountsAndRejectsEmptyWeights) {
  const auto w = random_values(32, 9);
  const PackedF32 p = pack_f32(w.data(), 4, 8);
  std::vector<float> x(8 * 8), y(8 * 4);
  for (auto* f : {&linear_small_f32_avx512, &linear_small_f32_reference}) {
    EXPECT_FALSE(f(0, x.data(), 8, p, nullptr, y.data(), 4));
    EXPECT_FALSE(f(kSmallGemmMaxRows + 1, x.data(), 8, p, nullptr, y.data(), 4));
  }
  EXPECT_FALSE(linear_small_f32_decline(1, x.data(), 8, p, nullptr, y.data(), 4));
  EXPECT_THROW(pack_f32(w.data(), 0, 8), Error);
  EXPECT_THROW(pack_f32(w.data(), 4, -1), Error);
}

TEST(SmallGemm, RegistryPicksTheKernelForTheCpu) {
  const std::string backend = Kernel<LinearSmallF32>::selected_backend();
  if (small_gemm_avx512_available())
    EXPECT_EQ(backend, "avx512");
  else
    EXPECT_EQ(backend, "openblas");
  BackendGuard g("openblas");
  EXPECT_EQ(Kernel<LinearSmallF32>::get(), &linear_small_f32_decline);
}

// ---- spin_team ------------------------------------------------------------------------------

// The team: soma's thread setting, capped by the CPUs the process may use.
int team_for(int threads) {
  return std::min(threads, available_cpus());
}

TEST(SpinTeam, RunsEachShareOnceOnItsOwnThread) {
  for (int setting : {1, 2, 3, 5}) {
    ThreadsGuard tg(setting);
    const int threads = team_for(setting);
    for (int round = 0; round < 2000; ++round) {
      std::vector<std::atomic<int>> calls(static_cast<size_t>(threads));
      std::vector<std::thread::id> ids(static_cast<size_t>(threads));
      std::atomic<int64_t> team_seen{0};
      spin_team([&](int64_t t, int64_t nt) {
        team_seen = nt;
        ids[static_cast<size_t>(t)] = std::this_thread::get_id();
        calls[static_cast<size_t>(t)]++;
        EXPECT_EQ(num_threads(), 1);  // nothing nested starts another team
      });
      ASSERT_EQ(team_seen.load(), threads);
      ASSERT_EQ(last_team_size(), threads);
      for (int t = 0; t < threads; ++t) ASSERT_EQ(calls[static_cast<size_t>(t)].load(), 1);
      ASSERT_EQ(ids[0], std::this_thread::get_id());
      for (int t = 1; t < threads; ++t) ASSERT_NE(ids[static_cast<size_t>(t)], ids[0]);
    }
  }
}

TEST(SpinTeam, NestedCallRunsOnTheCallingThread) {
  ThreadsGuard tg(2);
  std::atomic<int> inner{0};
  spin_team([&](int64_t, int64_t) {
    spin_team([&](int64_t t, int64_t nt) {
      EXPECT_EQ(t, 0);
      EXPECT_EQ(nt, 1);
      inner++;
    });
  });
  EXPECT_EQ(inner.load(), 2);
}

TEST(SpinTeam, AnExceptionReachesTheCallerAfterEveryThreadFinished) {
  ThreadsGuard tg(3);
  const int threads = team_for(3);
  for (int thrower = 0; thrower < threads; ++thrower) {
    std::atomic<int> finished{0};
    EXPECT_THROW(spin_team([&](int64_t t, int64_t) {
                   if (t == thrower) throw std::runtime_error("share failed");
                   finished++;
                 }),
                 std::runtime_error);
    EXPECT_EQ(finished.load(), threads - 1) << thrower;
  }
  // The team still works.
  std::atomic<int> ran{0};
  spin_team([&](int64_t, int64_t) { ran++; });
  EXPECT_EQ(ran.load(), threads);
}

TEST(SpinTeam, ConcurrentCallersAllFinish) {
  ThreadsGuard tg(2);
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int i = 0; i < 3000; ++i) spin_team([&](int64_t t, int64_t) { total += t + 1; });
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  // Each call adds 1 (one thread) or 1 + 2 (two): at least 6000, at most 18000, and 6000 plus
  // twice the number of calls that got the team.
  EXPECT_GE(total.load(), 6000);
  EXPECT_LE(total.load(), 18000);
  EXPECT_EQ((total.load() - 6000) % 2, 0);
}

TEST(SpinTeam, HelpersSleepAndWakeUp) {
  ThreadsGuard tg(2);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin: helpers sleep
    std::atomic<int> ran{0};
    spin_team([&](int64_t, int64_t) { ran++; });
    EXPECT_EQ(ran.load(), team_for(2));
  }
}

TEST(SpinTeam, MaxThreadsCapsTheTeam) {
  ThreadsGuard tg(2);
  for (int64_t cap : {1, 2, 7}) {
    std::atomic<int> ran{0};
    spin_team(
        [&](int64_t, int64_t nt) {
          EXPECT_EQ(nt, std::min<int64_t>(cap, team_for(2)));
          ran++;
        },
        cap);
    EXPECT_EQ(ran.load(), std::min<int64_t>(cap, team_for(2)));
  }
}

TEST(SpinTeam, HelpersOutsideATeamStayOut) {
  if (available_cpus() < 3) GTEST_SKIP() << "needs 3 CPUs for a team of 3 and one of 2";
  ThreadsGuard tg(3);
  for (int round = 0; round < 500; ++round) {
    const int64_t cap = round % 2 == 0 ? 3 : 2;
    std::vector<std::atomic<int>> calls(3);
    spin_team(
        [&](int64_t t, int64_t nt) {
          EXPECT_EQ(nt, cap);
          calls[static_cast<size_t>(t)]++;
        },
        cap);
    for (int64_t t = 0; t < 3; ++t)
      ASSERT_EQ(calls[static_cast<size_t>(t)].load(), t < cap ? 1 : 0);
    if (round % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST(SpinTeam, AForkedChildStartsATeamOfItsOwn) {
  ThreadsGuard tg(2);
  std::atomic<int> ran{0};
  spin_team([&](int64_t, int64_t) { ran++; });  // the parent's team exists
  ASSERT_EQ(ran.load(), team_for(2));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(20);  // a hang fails the test (killed by SIGALRM) instead of stalling it
    std::atomic<int> child_ran{0};
    spin_team([&](int64_t, int64_t) { child_ran++; });
    _exit(child_ran.load() == team_for(2) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace soma::kernels::cpu
