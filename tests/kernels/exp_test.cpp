// float32 exp in PyTorch's bits (src/kernels/cpu/exp.h) and the softmax / cross-entropy paths
// that use it. tests/reference/exp_float.py writes exp_float_reference.txt: inputs and
// torch.exp's outputs as bit patterns. The suite's name starts with VectorIsa, so CMakeLists.txt
// runs it again with SOMA_MAX_CPU_ISA=avx2 and =sse41: the scalar loop below AVX-512 must give
// the same bits as the 16-lane kernel.
#include "kernels/cpu/exp.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

namespace cpu = soma::kernels::cpu;
namespace F = soma::nn::functional;

struct ExpTable {
  std::vector<float> x, y;
  std::string error;
};

const ExpTable& exp_table() {
  static const ExpTable table = [] {
    ExpTable t;
    const std::string path =
        golden::reference_path("SOMA_EXP_REFERENCE", "exp_float_reference.txt");
    t.error = golden::for_each_line(path, [&](const std::string& kind, std::istringstream& s) {
      uint32_t x = 0, y = 0;
      if (kind != "exp" || !(s >> std::hex >> x >> y)) return false;
      t.x.push_back(std::bit_cast<float>(x));
      t.y.push_back(std::bit_cast<float>(y));
      return true;
    });
    if (!t.error.empty()) return t;
    if (t.x.size() < 1000) t.error = path + ": only " + std::to_string(t.x.size()) + " cases";
    return t;
  }();
  return table;
}

// Same bits, or both NaN (torch's NaN patterns differ between its scalar and vector paths).
bool same_bits(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b) ||
         (std::isnan(a) && std::isnan(b));
}

int count_mismatches(const std::vector<float>& got, const std::vector<float>& want) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) bad += !same_bits(got[i], want[i]);
  return bad;
}

TEST(VectorIsaExp, ScalarAndArrayFormsGiveTorchExpBits) {
  const ExpTable& t = exp_table();
  ASSERT_TRUE(t.error.empty()) << t.error;
  const size_t n = t.x.size();
  std::vector<float> got(n);
  for (size_t i = 0; i < n; ++i) {
    got[i] = cpu::exp_float(t.x[i]);
    EXPECT_TRUE(same_bits(got[i], t.y[i]))
        << "exp(" << t.x[i] << ") = " << got[i] << ", torch.exp gives " << t.y[i];
  }
  // The whole array (n is not a multiple of 16: a masked tail), then in place.
  std::fill(got.begin(), got.end(), 0.0f);
  cpu::exp_float(t.x.data(), got.data(), static_cast<int64_t>(n));
  EXPECT_EQ(count_mismatches(got, t.y), 0);
  got = t.x;
  cpu::exp_float(got.data(), got.data(), static_cast<int64_t>(n));
  EXPECT_EQ(count_mismatches(got, t.y), 0);
  // Every length 0..40 from every offset 0..16: the tail mask, and no write past the end.
  for (int64_t off = 0; off <= 16; ++off)
    for (int64_t len = 0; len <= 40; ++len) {
      std::vector<float> out(static_cast<size_t>(len) + 1, -7.0f);
      cpu::exp_float(t.x.data() + off, out.data(), len);
      for (int64_t i = 0; i < len; ++i)
        ASSERT_TRUE(same_bits(out[static_cast<size_t>(i)], t.y[static_cast<size_t>(off + i)]))
            << "offset " << off << " length " << len << " element " << i;
      ASSERT_EQ(out[static_cast<size_t>(len)], -7.0f) << "wrote past " << len << " elements";
    }
}

TEST(VectorIsaExp, TensorExpGivesTorchBitsContiguousAndStrided) {
  const ExpTable& t = exp_table();
  ASSERT_TRUE(t.error.empty()) << t.error;
  const auto n = static_cast<int64_t>(t.x.size());
  const soma::Tensor x = soma::tensor(t.x, {n});
  EXPECT_EQ(count_mismatches(soma::exp(x).to_vector<float>(), t.y), 0);
  // Every other element: a strided row (the scalar form inside the loop).
  const int64_t half = n / 2;
  const soma::Tensor strided = x.narrow(0, 0, 2 * half).view({half, 2}).t().narrow(0, 1, 1);
  ASSERT_FALSE(strided.is_contiguous());
  const std::vector<float> e = soma::exp(strided).to_vector<float>();
  std::vector<float> want;
  for (int64_t i = 0; i < half; ++i) want.push_back(t.y[static_cast<size_t>(2 * i + 1)]);
  EXPECT_EQ(count_mismatches(e, want), 0);
}

struct ThreadsGuard {
  int prev = soma::get_num_threads();
  ~ThreadsGuard() { soma::set_num_threads(prev); }
};

bool same(const soma::Tensor& a, const soma::Tensor& b) {
  const std::vector<float> va = a.contiguous().to_vector<float>(),
                           vb = b.contiguous().to_vector<float>();
  return va.size() == vb.size() && count_mismatches(va, vb) == 0;
}

// softmax.cpp runs contiguous float32 rows in blocks (all the rows' exps in one call) and other
// layouts row by row with the scalar exp: the same bits either way, on 1 and 2 threads, with a
// block count that is not a multiple of the 64-row block.
TEST(VectorIsaExp, SoftmaxBlockPathMatchesTheRowPath) {
  ThreadsGuard guard;
  soma::manual_seed(3);
  for (int threads : {1, 2}) {
    soma::set_num_threads(threads);
    for (const auto& shape : {soma::Shape{150, 13}, soma::Shape{700, 61}, soma::Shape{5, 1}}) {
      const soma::Tensor x = soma::randn(shape) * 4.0;
      const soma::Tensor xt = x.t().contiguous();  // [C, N]: dim 0 is the strided row path
      for (bool log : {false, true}) {
        const soma::Tensor a = x.detach().requires_grad_(true);
        const soma::Tensor b = xt.detach().requires_grad_(true);
        const soma::Tensor ya = log ? soma::log_softmax(a, 1) : soma::softmax(a, 1);
        const soma::Tensor yb = log ? soma::log_softmax(b, 0) : soma::softmax(b, 0);
        EXPECT_TRUE(same(ya, yb.t())) << "log " << log << " threads " << threads;
        const soma::Tensor g = soma::randn(shape);
        ya.backward(g);
        yb.backward(g.t().contiguous());
        EXPECT_TRUE(same(a.grad(), b.grad().t())) << "backward, log " << log;
      }
    }
  }
}

// cross_entropy's gradient is e^(log p) / N, minus 1 / N at the target: exactly what soma::exp
// of the forward's log-probabilities gives (the same exp, one multiply, one subtract).
TEST(VectorIsaExp, CrossEntropyGradientUsesTheSameExp) {
  soma::manual_seed(4);
  const int64_t N = 37, C = 11;
  const soma::Tensor x = (soma::randn({N, C}) * 3.0).requires_grad_(true);
  const soma::Tensor y = soma::randint(0, C, {N});
  F::cross_entropy(x, y).backward();
  const std::vector<float> e = soma::exp(soma::log_softmax(x.detach(), 1)).to_vector<float>();
  const auto s = static_cast<float>(1.0 / static_cast<double>(N));
  const std::vector<int64_t> labels = y.to_vector<int64_t>();
  std::vector<float> want(e.size());
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const size_t k = static_cast<size_t>(i * C + c);
      want[k] = e[k] * s;
      if (c == labels[static_cast<size_t>(i)]) want[k] -= s;
    }
  EXPECT_EQ(count_mismatches(x.grad().to_vector<float>(), want), 0);
}

}  // namespace
