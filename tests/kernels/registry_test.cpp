// The kernel registry (kernels/registry.h) and the thread setting (kernels/cpu/parallel.h):
// which implementation ops reach, preferring a backend, registering a new implementation, and
// results that do not depend on the number of threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/kernels.h"
#include "soma/soma.h"

namespace {

namespace k = soma::kernels;
namespace F = soma::nn::functional;

// Same dtype, shape and bits.
bool same(const soma::Tensor& a, const soma::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const soma::Tensor x = a.contiguous().to(soma::kFloat64), y = b.contiguous().to(soma::kFloat64);
  const std::vector<double> u = x.to_vector<double>(), v = y.to_vector<double>();
  for (size_t i = 0; i < u.size(); ++i)
    if (!(u[i] == v[i] || (u[i] != u[i] && v[i] != v[i]))) return false;
  return true;
}

bool close(const soma::Tensor& a, const soma::Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  const std::vector<double> u = a.contiguous().to(soma::kFloat64).to_vector<double>(),
                            v = b.contiguous().to(soma::kFloat64).to_vector<double>();
  for (size_t i = 0; i < u.size(); ++i)
    if (std::abs(u[i] - v[i]) > atol + rtol * std::abs(v[i])) return false;
  return true;
}

struct ThreadsGuard {
  int prev = soma::get_num_threads();
  ~ThreadsGuard() { soma::set_num_threads(prev); }
};

TEST(KernelRegistry, DefaultsAreTheFastBackends) {
  k::BackendGuard guard("");  // no preference (the reference ctest sets SOMA_KERNELS)
  // float32: oneDNN's sgemm where it is built and the CPU has AVX-512, else OpenBLAS.
  const bool onednn_gemm = k::Kernel<k::Gemm<float>>::get("onednn") != nullptr;
  EXPECT_EQ(k::Kernel<k::Gemm<float>>::selected_backend(), onednn_gemm ? "onednn" : "openblas");
  EXPECT_EQ(k::Kernel<k::Gemm<double>>::selected_backend(), "openblas");
  EXPECT_EQ(k::Kernel<k::SumDim<float>>::selected_backend(), "cpu");
  EXPECT_EQ(k::Kernel<k::RowLoop<3>>::selected_backend(), "cpu");
  EXPECT_EQ(k::Kernel<k::AdamUpdate<float>>::selected_backend(), "cpu");
  const std::vector<std::string> names = k::registered_backends();
  EXPECT_NE(std::find(names.begin(), names.end(), "reference"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "openblas"), names.end());
}

TEST(KernelRegistry, PreferringReferenceSwitchesEveryKernel) {
  k::BackendGuard guard("reference");
  EXPECT_EQ(k::Kernel<k::Gemm<float>>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::GemmBatched<double>>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::SumDim<int64_t>>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::SoftmaxBackward<float>>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::Dropout<double>>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::RowLoop<2>>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::Copy>::selected_backend(), "reference");
  EXPECT_EQ(k::Kernel<k::GatherRows>::selected_backend(), "reference");
}

TEST(KernelRegistry, UnknownBackendIsAnError) {
  const std::string before = k::preferred_backend();
  try {
    k::set_preferred_backend("cuda-someday");
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda-someday"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("reference"), std::string::npos) << e.what();
  }
  EXPECT_EQ(k::preferred_backend(), before);
}

// A second implementation is one function plus one registration line; ops reach it at once.
std::atomic<int> g_calls{0};
void counting_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t kk, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  ++g_calls;
  soma::kernels::cpu::gemm_reference<float>(ta, tb, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
bool never() {
  return false;
}

TEST(KernelRegistry, ANewImplementationIsOneRegistrationLine) {
  k::Kernel<k::Gemm<float>>::add("test-counting", -1, &counting_gemm);
  k::Kernel<k::Gemm<float>>::add("test-unavailable", 1000, &counting_gemm, &never);
  k::BackendGuard none("");
  const soma::Tensor a = soma::randn({5, 7}), b = soma::randn({7, 3});
  g_calls = 0;
  const soma::Tensor fast = soma::matmul(a, b);
  EXPECT_EQ(g_calls.load(), 0) << "a lower priority, or unavailable, implementation was chosen";
  {
    k::BackendGuard guard("test-counting");
    const soma::Tensor counted = soma::matmul(a, b);
    EXPECT_EQ(g_calls.load(), 1);
    EXPECT_TRUE(close(counted, fast, 1e-5, 1e-6));
  }
  {
    // An unavailable implementation (CPU feature missing) is never chosen, even when preferred:
    // the best available one runs.
    k::BackendGuard guard("test-unavailable");
    g_calls = 0;
    const soma::Tensor again = soma::matmul(a, b);
    EXPECT_EQ(g_calls.load(), 0);
    EXPECT_EQ(k::Kernel<k::Gemm<float>>::selected_backend(),
              k::Kernel<k::Gemm<float>>::get("onednn") != nullptr ? "onednn" : "openblas");
  }
}

// The float32 GEMM implementations against the long-double reference: every transpose pair,
// odd sizes and tails, padded leading dimensions, beta 0 over NaN (C not read) and beta 0.5,
// products small enough for one thread and large enough for gemm_split's team (rows and
// columns), at one and two threads.
TEST(KernelRegistry, FloatGemmImplementationsAgreeWithTheReference) {
  ThreadsGuard threads;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  struct Shape {
    int64_t m, n, k;
  };
  for (const char* backend : {"onednn", "openblas"}) {
    auto* gemm = k::Kernel<k::Gemm<float>>::get(backend);
    if (gemm == nullptr) continue;  // not built, or no AVX-512 here
    for (const int nt : {1, 2})
      for (const Shape sh : {Shape{2, 3, 1}, Shape{37, 129, 61}, Shape{33, 300, 257},
                             Shape{300, 33, 257}, Shape{256, 784, 32}, Shape{32, 256, 784},
                             // split with under 128 rows (columns) per thread (oneDNN's 32)
                             Shape{100, 96, 257}, Shape{96, 130, 257}})
        for (const bool ta : {false, true})
          for (const bool tb : {false, true})
            for (const float beta : {0.0f, 0.5f}) {
              soma::set_num_threads(nt);
              const int64_t lda = (ta ? sh.m : sh.k) + 3, ldb = (tb ? sh.k : sh.n) + 1,
                            ldc = sh.n + 2;
              std::vector<float> a((ta ? sh.k : sh.m) * lda), b((tb ? sh.n : sh.k) * ldb);
              for (float& v : a) v = nd(rng);
              for (float& v : b) v = nd(rng);
              std::vector<float> c(sh.m * ldc), want;
              for (float& v : c) v = beta == 0.0f ? NAN : nd(rng);
              want = c;
              gemm(ta, tb, sh.m, sh.n, sh.k, 1.5f, a.data(), lda, b.data(), ldb, beta, c.data(),
                   ldc);
              k::Kernel<k::Gemm<float>>::get("reference")(ta, tb, sh.m, sh.n, sh.k, 1.5f, a.data(),
                                                          lda, b.data(), ldb, beta, want.data(),
                                                          ldc);
              for (int64_t i = 0; i < sh.m; ++i)
                for (int64_t j = 0; j < sh.n; ++j)
                  ASSERT_NEAR(c[i * ldc + j], want[i * ldc + j],
                              1e-5f * static_cast<float>(sh.k) + 1e-5f)
                      << backend << " t=" << nt << " " << sh.m << "x" << sh.n << "x" << sh.k
                      << " ta=" << ta << " tb=" << tb << " beta=" << beta << " at " << i << ","
                      << j;
              // ldc's padding is never written
              for (int64_t i = 0; i < sh.m; ++i)
                for (int64_t j = sh.n; j < ldc; ++j)
                  if (beta == 0.0f)
                    ASSERT_TRUE(std::isnan(c[i * ldc + j]));
                  else
                    ASSERT_EQ(c[i * ldc + j], want[i * ldc + j]);
            }
  }
}

TEST(KernelRegistry, ReferenceAndFastAgree) {
  soma::manual_seed(3);
  const soma::Tensor x = soma::randn({64, 300}), w = soma::randn({300, 40});
  const soma::Tensor idx = soma::tensor(std::vector<int64_t>{3, 0, 63, 3}, {4});
  auto run = [&] {
    std::vector<soma::Tensor> r;
    r.push_back(soma::matmul(x, w));
    r.push_back(soma::sum(x, {1}));
    r.push_back(soma::softmax(x, 1));
    r.push_back((x * 2.0 + x.t().t()).relu());
    r.push_back(soma::index_select(x, 0, idx));
    r.push_back(F::dropout(x, 0.3, true));
    return r;
  };
  std::vector<soma::Tensor> fast;
  {
    k::BackendGuard none("");  // the fast kernels, also when SOMA_KERNELS=reference is set
    soma::manual_seed(9);
    fast = run();
  }
  std::vector<soma::Tensor> ref;
  {
    k::BackendGuard guard("reference");
    soma::manual_seed(9);
    ref = run();
  }
  ASSERT_EQ(fast.size(), ref.size());
  for (size_t i = 0; i < fast.size(); ++i)
    EXPECT_TRUE(close(fast[i], ref[i], 1e-5, 1e-5)) << "result " << i;
  // Exact where no rounding differs: gather, elementwise, dropout (same Philox draws).
  EXPECT_TRUE(same(fast[3], ref[3]));
  EXPECT_TRUE(same(fast[4], ref[4]));
  EXPECT_TRUE(same(fast[5], ref[5]));
}

// ---- threads -------------------------------------------------------------------------------
int team_of_large_op() {
  const soma::Tensor a = soma::ones({1 << 18});
  const soma::Tensor b = a + a;
  return soma::kernels::cpu::last_team_size();
}

TEST(Threads, AUserThreadUsesTheSetting) {
  ThreadsGuard guard;
  for (int n : {2, 1, 3}) {
    soma::set_num_threads(n);
    int seen = 0;
    std::thread([&] { seen = team_of_large_op(); }).join();
    EXPECT_EQ(seen, n) << "set_num_threads(" << n << ")";
    EXPECT_EQ(team_of_large_op(), n);
  }
}

TEST(Threads, ThreadLimitCapsOnlyItsThread) {
  ThreadsGuard guard;
  soma::set_num_threads(2);
  int capped = 0, after = 0;
  std::thread([&] {
    {
      soma::kernels::cpu::ThreadLimit limit(1);
      capped = team_of_large_op();
    }
    after = team_of_large_op();
  }).join();
  EXPECT_EQ(capped, 1);
  EXPECT_EQ(after, 2);
  EXPECT_EQ(team_of_large_op(), 2);
  EXPECT_THROW(soma::kernels::cpu::ThreadLimit(0), soma::Error);
}

TEST(Threads, SetNumThreadsRejectsBadCounts) {
  EXPECT_THROW(soma::set_num_threads(0), soma::Error);
  EXPECT_THROW(soma::set_num_threads(5000), soma::Error);
}

// Every op that promises thread-count independence, at sizes that take the threaded paths:
// bit-identical results (and gradients) on 1 and 2 threads.
TEST(Threads, BitIdenticalAcrossOneAndTwoThreads) {
  ThreadsGuard guard;
  auto run = [](int threads) {
    soma::set_num_threads(threads);
    soma::manual_seed(11);
    soma::Tensor x = soma::randn({512, 130}).requires_grad_(true);
    const soma::Tensor y = soma::randint(0, 130, {512});
    const soma::Tensor big = soma::randn({300000});
    std::vector<soma::Tensor> r;
    r.push_back(big.sum());
    r.push_back(big.mean());
    r.push_back(soma::sum(x, {0}));
    r.push_back(std::get<0>(soma::max(x, 1)));
    r.push_back(soma::softmax(x, 1));
    r.push_back(soma::log_softmax(x, 0));
    r.push_back(soma::exp(x) * x - x.t().contiguous().t());
    r.push_back(F::dropout(big, 0.4, true));
    r.push_back(soma::index_select(x, 0, soma::randint(0, 512, {700})));
    soma::Tensor loss = F::cross_entropy(x * 3.0, y);
    loss.backward();
    r.push_back(loss.detach());
    r.push_back(x.grad());
    soma::Tensor p = soma::randn({70000}).requires_grad_(true);
    soma::optim::Adam adam({p}, {.lr = 1e-2, .weight_decay = 0.1});
    soma::optim::SGD sgd({p}, {.lr = 1e-2, .momentum = 0.9, .nesterov = true});
    for (int step = 0; step < 3; ++step) {
      p.set_grad(soma::tanh(p.detach()) + 0.5);
      adam.step();
      sgd.step();
    }
    r.push_back(p.detach().clone());
    return r;
  };
  const auto one = run(1), two = run(2);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_TRUE(same(one[i], two[i])) << "result " << i << " differs between 1 and 2 threads";
}

}  // namespace

namespace {

// Every slot's "reference" against its fast implementation on the same buffers (the slots the
// op table reaches only through dist/ or fit, and the data transforms').
TEST(KernelRegistry, EverySlotsReferenceMatchesTheFastOne) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> x(5000), y(5000);
  for (float& v : x) v = nd(rng);
  // AllFinite: clean, with a NaN, with an infinity.
  for (int c = 0; c < 3; ++c) {
    std::vector<float> v = x;
    if (c == 1) v[4321] = std::nanf("");
    if (c == 2) v[17] = -std::numeric_limits<float>::infinity();
    bool fast = false, ref = false;
    k::Kernel<k::AllFinite<float>>::get("cpu")(v.data(), 5000, &fast);
    k::Kernel<k::AllFinite<float>>::get("reference")(v.data(), 5000, &ref);
    EXPECT_EQ(fast, c == 0);
    EXPECT_EQ(ref, c == 0);
  }
  // ScaledCopy and AddInto: exact.
  std::vector<float> a(5000), b(5000);
  k::Kernel<k::ScaledCopy<float>>::get("cpu")(a.data(), x.data(), 5000, 0.25f);
  k::Kernel<k::ScaledCopy<float>>::get("reference")(b.data(), x.data(), 5000, 0.25f);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[7], 0.25f * x[7]);
  k::Kernel<k::AddInto<float>>::get("cpu")(a.data(), x.data(), 5000);
  k::Kernel<k::AddInto<float>>::get("reference")(b.data(), x.data(), 5000);
  EXPECT_EQ(a, b);
  // SoftmaxBackward over [7, 50, 13]: close (the reference sums in long double).
  std::vector<float> s(7 * 50 * 13), g(s.size()), d1(s.size()), d2(s.size());
  for (size_t i = 0; i < s.size(); ++i) g[i] = nd(rng);
  for (bool log : {false, true}) {
    k::Kernel<k::SoftmaxForward<float>>::get("cpu")(x.data(), s.data(), 7, 50, 13, log);
    k::Kernel<k::SoftmaxBackward<float>>::get("cpu")(s.data(), g.data(), d1.data(), 7, 50, 13, log);
    k::Kernel<k::SoftmaxBackward<float>>::get("reference")(s.data(), g.data(), d2.data(), 7, 50, 13,
                                                           log);
    for (size_t i = 0; i < s.size(); ++i) ASSERT_NEAR(d1[i], d2[i], 1e-5) << i << " log " << log;
  }
  // ExtremumDim on int64 with ties (the first index wins in both).
  std::vector<int64_t> xi(6 * 40 * 5);
  for (size_t i = 0; i < xi.size(); ++i) xi[i] = static_cast<int64_t>(rng() % 7);
  for (bool is_max : {true, false}) {
    std::vector<int64_t> v1(30), v2(30), i1(30), i2(30);
    k::Kernel<k::ExtremumDim<int64_t>>::get("cpu")(xi.data(), v1.data(), i1.data(), 6, 40, 5,
                                                   is_max);
    k::Kernel<k::ExtremumDim<int64_t>>::get("reference")(xi.data(), v2.data(), i2.data(), 6, 40, 5,
                                                         is_max);
    EXPECT_EQ(v1, v2);
    EXPECT_EQ(i1, i2);
  }
  // GemmBatched with a broadcast B (stride 0): close.
  std::vector<float> c1(4 * 9 * 11), c2(c1.size());
  for (float& v : y) v = nd(rng);
  k::Kernel<k::GemmBatched<float>>::get("cpu")(false, true, 4, 9, 11, 30, x.data(), 9 * 30, 30,
                                               y.data(), 0, 30, c1.data());
  k::Kernel<k::GemmBatched<float>>::get("reference")(false, true, 4, 9, 11, 30, x.data(), 9 * 30,
                                                     30, y.data(), 0, 30, c2.data());
  for (size_t i = 0; i < c1.size(); ++i) ASSERT_NEAR(c1[i], c2[i], 1e-4) << i;
  // The data transforms' loops: exact.
  std::vector<uint8_t> img(3 * 2 * 28 * 28);
  for (uint8_t& v : img) v = static_cast<uint8_t>(rng());
  const double mean[2] = {0.3, 0.6}, stdv[2] = {0.2, 0.45};
  std::vector<float> n1(img.size()), n2(img.size());
  k::Kernel<k::Normalize<uint8_t>>::get("cpu")(img.data(), n1.data(), 3, 2, 784, 1.0 / 255, mean,
                                               stdv);
  k::Kernel<k::Normalize<uint8_t>>::get("reference")(img.data(), n2.data(), 3, 2, 784, 1.0 / 255,
                                                     mean, stdv);
  EXPECT_EQ(n1, n2);
  // Tabular uint8 [rows, features] with a statistic per feature, with enough rows for the
  // lookup tables (300 x 5 >= 5 x 256) and with too few (2 x 5), and a batch smaller than one
  // channel's table: all exact.
  const double tmean[5] = {0.1, 0.2, -1.0, 3.5, 0.0}, tstd[5] = {0.3, 1e-3, 2.0, 0.77, 1.0};
  for (const int64_t rows : {300, 2}) {
    std::vector<float> t1(static_cast<size_t>(rows * 5)), t2(t1.size());
    k::Kernel<k::Normalize<uint8_t>>::get("cpu")(img.data(), t1.data(), rows, 5, 1, 1.0 / 255,
                                                 tmean, tstd);
    k::Kernel<k::Normalize<uint8_t>>::get("reference")(img.data(), t2.data(), rows, 5, 1, 1.0 / 255,
                                                       tmean, tstd);
    EXPECT_EQ(t1, t2) << rows;
  }
  // Rows whose length is not a multiple of 16 (the AVX-512 lookup's tail), three channels, and
  // enough elements (41 x 3 x 299 > the parallel grain) that two threads split mid-row: exact.
  {
    std::vector<uint8_t> big(41 * 3 * 299);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i < 256 ? i : rng());
    const double cmean[3] = {0.3, 0.6, -0.2}, cstd[3] = {0.2, 0.45, 3.0};
    const ThreadsGuard guard;
    for (const int threads : {1, 2}) {
      soma::set_num_threads(threads);
      std::vector<float> b1(big.size()), b2(big.size());
      k::Kernel<k::Normalize<uint8_t>>::get("cpu")(big.data(), b1.data(), 41, 3, 299, 1.0 / 255,
                                                   cmean, cstd);
      k::Kernel<k::Normalize<uint8_t>>::get("reference")(big.data(), b2.data(), 41, 3, 299,
                                                         1.0 / 255, cmean, cstd);
      EXPECT_EQ(b1, b2) << threads;
    }
  }
  std::vector<float> s1(100), s2(100);
  k::Kernel<k::Normalize<uint8_t>>::get("cpu")(img.data(), s1.data(), 1, 2, 50, 1.0 / 255, mean,
                                               stdv);
  k::Kernel<k::Normalize<uint8_t>>::get("reference")(img.data(), s2.data(), 1, 2, 50, 1.0 / 255,
                                                     mean, stdv);
  EXPECT_EQ(s1, s2);
  const int64_t top[3] = {0, 4, 8}, left[3] = {8, 3, 0};
  std::vector<uint8_t> p1(img.size()), p2(img.size());
  k::Kernel<k::PadCrop>::get("cpu")(img.data(), p1.data(), 1, 3, 2, 28, 28, 28, 28, 4, top, left);
  k::Kernel<k::PadCrop>::get("reference")(img.data(), p2.data(), 1, 3, 2, 28, 28, 28, 28, 4, top,
                                          left);
  EXPECT_EQ(p1, p2);
  const uint8_t flip[3] = {1, 0, 1};
  k::Kernel<k::HFlip>::get("cpu")(img.data(), p1.data(), 1, 3, 2 * 28, 28, flip);
  k::Kernel<k::HFlip>::get("reference")(img.data(), p2.data(), 1, 3, 2 * 28, 28, flip);
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(p1[5], img[27 - 5]);
}

}  // namespace
