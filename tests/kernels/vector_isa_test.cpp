// soma's own hot loops at each vector level (src/kernels/cpu/vector_isa.h): the level follows
// cpuid and SOMA_MAX_CPU_ISA, and the 2x2 max pooling (hand-written AVX-512 at level 2, the
// compiler's loop below it) gives the reference's values and indices bit for bit, NaNs and
// ties included, over widths around the 16-output step. CMakeLists.txt runs this file and the
// suites over the other dispatched loops (optimizers, dropout, normalisation, pooling, the int8
// layers) again with SOMA_MAX_CPU_ISA=avx2 and =sse41, so each copy runs on this machine.
#include "kernels/cpu/vector_isa.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/optim.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu_isa.h"
#include "soma/core/error.h"
#include "soma/core/threading.h"

namespace {

namespace cpu = soma::kernels::cpu;

std::string isa_env() {
  const char* v = std::getenv("SOMA_MAX_CPU_ISA");
  std::string s = v ? v : "";
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The cap's rank among the accepted SOMA_MAX_CPU_ISA values (kernels/registry.cpp), -1 when
// unset or unknown.
int cap_rank(const std::string& cap) {
  static const char* const kNames[] = {
      "sse41", "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16", "all"};
  for (int i = 0; i < 6; ++i)
    if (cap == kNames[i]) return i;
  return -1;
}

bool known_cap(const std::string& cap) {
  return cap.empty() || cap_rank(cap) >= 0;
}

// The level from cpuid and the environment, worked out here without cpu_features().
TEST(VectorIsa, LevelFollowsTheCap) {
  const std::string cap = isa_env();
  if (!known_cap(cap)) GTEST_SKIP() << "SOMA_MAX_CPU_ISA=" << cap << " is unknown";
  const int rank = cap.empty() ? 5 : cap_rank(cap);
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const int expected = avx512 && rank >= 2 ? 2 : avx2 && rank >= 1 ? 1 : 0;
  EXPECT_EQ(cpu::vector_level(), expected) << "SOMA_MAX_CPU_ISA=" << cap;
  std::printf("vector level %d (SOMA_MAX_CPU_ISA=%s, cpu_isa %s, copies compiled per level: %s)\n",
              cpu::vector_level(), cap.c_str(), soma::kernels::cpu_isa_name().c_str(),
              SOMA_VECTOR_ISA_CLONES ? "yes" : "no, the build's own -march");
}

// Which copy with_vector_isa ran, seen from its code: this file is compiled with -O2
// -ffp-contract=fast in every build (CMakeLists.txt; the library's dispatched files have it
// off), so a*b - c
// becomes one fused multiply-subtract where the copy's ISA has FMA (levels 1 and 2) and two
// rounded operations where it does not (the baseline copy). With a = b = 1 + 2^-12 and c = the
// float product 1 + 2^-11, the fused result is the product's rounding error 2^-24, the
// unfused one 0.
TEST(VectorIsa, TheCopyThatRunsHasTheLevelsIsa) {
  if (!SOMA_VECTOR_ISA_CLONES) GTEST_SKIP() << "one copy: the build's own -march";
#ifdef __FMA__
  GTEST_SKIP() << "the build's baseline has FMA (-march with AVX2 but not AVX-512)";
#endif
  if (!known_cap(isa_env())) GTEST_SKIP() << "SOMA_MAX_CPU_ISA is unknown";
  volatile float va = 1.0f + 0x1p-12f, vc = 1.0f + 0x1p-11f;
  float r = -1;
  cpu::with_vector_isa([&]() SOMA_VECTOR_BODY {
    const float a = va, c = vc;
    r = a * a - c;
  });
  const float expected = cpu::vector_level() >= 1 ? 0x1p-24f : 0.0f;
  EXPECT_EQ(r, expected) << "vector level " << cpu::vector_level();
}

// The optimizers' threaded, vectorised updates at this process's level give their scalar
// references' bits (the files of dispatched loops are compiled with -ffp-contract=off, so no
// copy fuses a multiply-add the reference rounds twice): the same numbers at every level, which
// the ctests kernels.vector_isa_{avx2,sse41} check by running this again under the cap. Sizes
// with vector tails, and one large enough to split over two threads.
template <typename T>
struct OptimState {
  std::vector<T> p, g, s1, s2, s3;
  explicit OptimState(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal(0, 1);
    auto fill = [&](std::vector<T>& v, bool positive) {
      v.resize(static_cast<size_t>(n));
      for (T& x : v) x = static_cast<T>(positive ? std::abs(normal(rng)) : normal(rng));
    };
    fill(p, false), fill(g, false), fill(s2, true), fill(s3, true);
    // s1: SGD's momentum, Adam's first moment, RMSprop's mean gradient (centered: from zero,
    // so that v - mean^2 stays >= 0).
    s1.assign(static_cast<size_t>(n), T(0));
  }
  bool operator==(const OptimState& o) const {
    auto same = [](const std::vector<T>& a, const std::vector<T>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
    };
    return same(p, o.p) && same(g, o.g) && same(s1, o.s1) && same(s2, o.s2) && same(s3, o.s3);
  }
};

template <typename T>
void check_optimizers_match_references(int64_t n, uint32_t seed) {
  const std::string where = std::to_string(n) + (sizeof(T) == 4 ? " float32" : " float64");
  // Each rule twice: the threaded kernel and the reference, three steps each.
  auto check = [&](const char* rule, auto&& step) {
    OptimState<T> a(n, seed), b(n, seed);
    for (int i = 0; i < 3; ++i) step(a, false), step(b, true);
    EXPECT_TRUE(a == b) << rule << " " << where;
  };
  for (bool nesterov : {false, true})
    check("sgd", [&](OptimState<T>& s, bool ref) {
      cpu::SgdArgs<T> a{T(0.01), T(0.9), T(0.9), T(0.1), true, nesterov, false};
      (ref ? cpu::sgd_update_reference<T> : cpu::sgd_update<T>)(n, s.p.data(), s.g.data(),
                                                                s.s1.data(), a);
    });
  for (cpu::AdamMode mode : {cpu::AdamMode::Plain, cpu::AdamMode::L2, cpu::AdamMode::Decoupled})
    for (bool amsgrad : {false, true})
      check("adam", [&](OptimState<T>& s, bool ref) {
        cpu::AdamArgs<T> a{T(0.9),  T(0.999), T(0.1),  T(0.001),  T(0.999),
                           T(0.01), T(0.31),  T(1e-8), T(-0.003), mode};
        (ref ? cpu::adam_update_reference<T>
             : cpu::adam_update<T>)(n, s.p.data(), s.g.data(), s.s1.data(), s.s2.data(),
                                    amsgrad ? s.s3.data() : nullptr, a);
      });
  for (bool centered : {false, true})
    for (bool momentum : {false, true})
      check("rmsprop", [&](OptimState<T>& s, bool ref) {
        cpu::RmspropArgs<T> a{T(0.99), T(0.01), T(0.01), T(1e-8), T(0.9), T(0.01), T(-0.01), true};
        (ref ? cpu::rmsprop_update_reference<T>
             : cpu::rmsprop_update<T>)(n, s.p.data(), s.g.data(), s.s2.data(),
                                       momentum ? s.s3.data() : nullptr,
                                       centered ? s.s1.data() : nullptr, a);
      });
  check("adagrad", [&](OptimState<T>& s, bool ref) {
    cpu::AdagradArgs<T> a{T(0.01), T(1e-10), T(-0.01), true};
    (ref ? cpu::adagrad_update_reference<T> : cpu::adagrad_update<T>)(n, s.p.data(), s.g.data(),
                                                                      s.s2.data(), a);
  });
  check("adadelta", [&](OptimState<T>& s, bool ref) {
    cpu::AdadeltaArgs<T> a{T(0.9), T(0.1), T(0.01), T(1e-6), T(-1.0), true};
    (ref ? cpu::adadelta_update_reference<T>
         : cpu::adadelta_update<T>)(n, s.p.data(), s.g.data(), s.s2.data(), s.s3.data(), a);
  });
}

TEST(VectorIsa, OptimizersGiveTheReferencesBits) {
  struct Threads {
    int previous = soma::get_num_threads();
    Threads() { soma::set_num_threads(2); }
    ~Threads() { soma::set_num_threads(previous); }
  } threads;
  uint32_t seed = 7;
  for (int64_t n : {1, 7, 16, 31, 33, 1000, 70001}) {
    check_optimizers_match_references<float>(n, seed++);
    check_optimizers_match_references<double>(n, seed++);
  }
}

// Under an unknown SOMA_MAX_CPU_ISA (ctest kernels.lowp_isa_unknown) a dispatched loop that
// splits over threads raises soma::Error on the calling thread: the level is settled before
// the parallel region (an exception leaving an OpenMP region would terminate the process).
TEST(VectorIsa, UnknownCapIsAnErrorInParallelLoops) {
  const std::string cap = isa_env();
  if (known_cap(cap)) GTEST_SKIP() << "runs under an unknown SOMA_MAX_CPU_ISA";
  struct Threads {
    int previous = soma::get_num_threads();
    Threads() { soma::set_num_threads(2); }
    ~Threads() { soma::set_num_threads(previous); }
  } threads;
  auto expect_error = [&](const char* what, auto&& call) {
    try {
      call();
      ADD_FAILURE() << what << ": no error for SOMA_MAX_CPU_ISA=" << cap;
    } catch (const soma::Error& e) {
      // The message quotes the value as it was set (the test's cap is lowercased).
      const char* raw = std::getenv("SOMA_MAX_CPU_ISA");
      EXPECT_NE(std::string(e.what()).find("'" + std::string(raw ? raw : "") + "'"),
                std::string::npos)
          << e.what();
    }
  };
  cpu::PoolGeometry g{};
  g.planes = 64, g.height = g.width = 28, g.oh = g.ow = 14;
  g.kh = g.kw = g.sh = g.sw = 2, g.dh = g.dw = 1;
  std::vector<float> x(64 * 28 * 28, 1.0f), y(64 * 14 * 14);
  std::vector<int64_t> idx(y.size());
  for (int attempt = 0; attempt < 2; ++attempt)
    expect_error("max_pool_forward",
                 [&] { cpu::max_pool_forward<float>(x.data(), y.data(), idx.data(), g); });
  const int64_t n = 1 << 18;
  std::vector<float> p(n, 1.0f), grad(n, 0.5f);
  cpu::SgdArgs<float> a{0.0f, 0.0f, 0.0f, 0.1f, false, false, true};
  expect_error("sgd_update", [&] { cpu::sgd_update<float>(n, p.data(), grad.data(), nullptr, a); });
}

template <typename T>
void check_max_pool_2x2(int64_t planes, int64_t h, int64_t w, uint32_t seed) {
  cpu::PoolGeometry g{};
  g.planes = planes, g.height = h, g.width = w, g.oh = h / 2, g.ow = w / 2;
  g.kh = g.kw = g.sh = g.sw = 2, g.ph = g.pw = 0, g.dh = g.dw = 1;
  const int64_t in = planes * h * w, out = planes * g.oh * g.ow;
  // Small integers (many ties: the first maximum in window order must win) and NaNs (a NaN
  // wins over any number, and a later NaN over an earlier one, as torch's `v > m || isnan(v)`).
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-3, 3), nan(0, 29);
  std::vector<T> x(static_cast<size_t>(in));
  for (T& v : x) v = nan(rng) == 0 ? std::numeric_limits<T>::quiet_NaN() : T(value(rng));
  std::vector<T> y(static_cast<size_t>(out), T(-7)), y_ref(y);
  std::vector<int64_t> idx(static_cast<size_t>(out), -7), idx_ref(idx);
  cpu::max_pool_forward<T>(x.data(), y.data(), idx.data(), g);
  cpu::max_pool_forward_reference<T>(x.data(), y_ref.data(), idx_ref.data(), g);
  std::string where = std::to_string(planes);  // (GCC 12 warns on "[" + std::string: -Wrestrict)
  where += ", " + std::to_string(h) + ", " + std::to_string(w);
  where += sizeof(T) == 4 ? " float32" : " float64";
  ASSERT_EQ(std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(T)), 0) << where;
  ASSERT_EQ(idx, idx_ref) << where;

  // Backward: every input element written (gy where the index points at it, else 0), the
  // columns and rows past the last window included.
  std::vector<T> gy(static_cast<size_t>(out));
  std::uniform_real_distribution<double> real(-1, 1);
  for (T& v : gy) v = static_cast<T>(real(rng));
  std::vector<T> gx(static_cast<size_t>(in), T(99)), gx_ref(static_cast<size_t>(in), T(-99));
  cpu::max_pool_backward<T>(gy.data(), idx.data(), gx.data(), g);
  cpu::max_pool_backward_reference<T>(gy.data(), idx_ref.data(), gx_ref.data(), g);
  ASSERT_EQ(std::memcmp(gx.data(), gx_ref.data(), gx.size() * sizeof(T)), 0) << where;
}

TEST(VectorIsa, MaxPool2x2MatchesTheReference) {
  uint32_t seed = 1;
  // Widths 2..70: rows of 1..35 outputs (one, two and three 16-output steps, and every tail),
  // odd widths (a column past the last window); odd heights (a row past it).
  for (int64_t w = 2; w <= 70; ++w)
    for (int64_t h : {2, 5, 14}) {
      check_max_pool_2x2<float>(3, h, w, seed++);
      check_max_pool_2x2<double>(2, h, w, seed++);
    }
  check_max_pool_2x2<float>(64, 28, 28, seed++);  // the CNN preset's planes
  check_max_pool_2x2<float>(64, 14, 14, seed++);
}

}  // namespace
