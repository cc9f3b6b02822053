// soma's own hot loops at each vector level (src/kernels/cpu/vector_isa.h): the level follows
// cpuid and SOMA_MAX_CPU_ISA, and the 2x2 max pooling (hand-written AVX-512 at level 2, the
// compiler's loop below it) gives the reference's values and indices bit for bit, NaNs and
// ties included, over widths around the 16-output step. CMakeLists.txt runs this file and the
// suites over the other dispatched loops (optimizers, dropout, normalisation, pooling, the int8
// layers) again with SOMA_MAX_CPU_ISA=avx2 and =sse41, so each copy runs on this machine.
#include "kernels/cpu/vector_isa.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/pool.h"
#include "kernels/cpu_isa.h"

namespace {

namespace cpu = soma::kernels::cpu;

TEST(VectorIsa, LevelFollowsTheCap) {
  const std::string isa = soma::kernels::cpu_isa_name();
  const int expected = isa.rfind("avx512", 0) == 0 ? 2 : isa == "avx2" ? 1 : 0;
  EXPECT_EQ(cpu::vector_level(), expected) << "cpu_isa " << isa;
  std::printf("vector level %d (cpu_isa %s, copies compiled per level: %s)\n", cpu::vector_level(),
              isa.c_str(), SOMA_VECTOR_ISA_CLONES ? "yes" : "no, the build's own -march");
}

template <typename T>
void check_max_pool_2x2(int64_t planes, int64_t h, int64_t w, uint32_t seed) {
  cpu::PoolGeometry g{};
  g.planes = planes, g.height = h, g.width = w, g.oh = h / 2, g.ow = w / 2;
  g.kh = g.kw = g.sh = g.sw = 2, g.ph = g.pw = 0, g.dh = g.dw = 1;
  const int64_t in = planes * h * w, out = planes * g.oh * g.ow;
  // Small integers (many ties: the first maximum in window order must win) and NaNs (a NaN
  // wins, and the first NaN of a window).
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-3, 3), nan(0, 29);
  std::vector<T> x(static_cast<size_t>(in));
  for (T& v : x) v = nan(rng) == 0 ? std::numeric_limits<T>::quiet_NaN() : T(value(rng));
  std::vector<T> y(static_cast<size_t>(out), T(-7)), y_ref(y);
  std::vector<int64_t> idx(static_cast<size_t>(out), -7), idx_ref(idx);
  cpu::max_pool_forward<T>(x.data(), y.data(), idx.data(), g);
  cpu::max_pool_forward_reference<T>(x.data(), y_ref.data(), idx_ref.data(), g);
  const std::string where = "[" + std::to_string(planes) + ", " + std::to_string(h) + ", " +
                            std::to_string(w) + "] " + (sizeof(T) == 4 ? "float32" : "float64");
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
