// Low-precision kernels (src/kernels/cpu/lowp.h) against float32 sgemm. Built as
// build/bench/lowp_bench.
//
//   build/bench/lowp_bench --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
//   SOMA_MAX_CPU_ISA=avx512_core build/bench/lowp_bench ...   (the AVX-512BW int8 fallback)
//
// The thread count is the last argument (soma::set_num_threads). GFLOP counts 2 M N K per
// product for every type (int8 "operations" included), so the columns compare directly.
//   int8_linear       gemm_u8s8_f32 on quantised activations (the weights packed once)
//   int8_linear_dyn   + min_max and quantize_u8 of the float activations, as a dynamic
//                     quantised Linear does on each call
//   f32_linear        kernels::gemm<float>, X W^T (nn::Linear's forward)
//   int8_mlp/f32_mlp  784-256-128-10 inference (bias + ReLU between layers), batch = arg 0
//   bf16_gemm         lowp::gemm_bf16 (conversion and packing of both operands included)
//   f32_gemm          kernels::gemm<float>, same shape and transposes
#include <benchmark/benchmark.h>
#include <soma/soma.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/lowp.h"
#include "kernels/cpu_isa.h"
#include "kernels/kernels.h"
#include "kernels/kernels_lowp.h"

namespace {

namespace lp = soma::kernels::lowp;

void set_gflops(benchmark::State& state, double flop) {
  state.counters["GFLOP"] = benchmark::Counter(
      flop / 1e9, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
}

std::vector<float> randn(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// Symmetric per-row int8 weights, as a quantised Linear packs them.
struct QuantLinear {
  int64_t in, out;
  lp::PackedS8 packed;
  std::vector<float> w_scale, bias;
  std::vector<float> w;  // the float weights [out, in]
  QuantLinear(int64_t in_, int64_t out_, unsigned seed) : in(in_), out(out_) {
    w = randn(in * out, seed);
    bias = randn(out, seed + 1);
    std::vector<int8_t> q(static_cast<size_t>(in * out));
    w_scale.resize(static_cast<size_t>(out));
    for (int64_t j = 0; j < out; ++j) {
      float mx = 0;
      for (int64_t p = 0; p < in; ++p) mx = std::max(mx, std::abs(w[j * in + p]));
      w_scale[j] = mx / 127.0f;
      for (int64_t p = 0; p < in; ++p)
        q[j * in + p] = static_cast<int8_t>(std::lrint(w[j * in + p] / w_scale[j]));
    }
    packed = lp::pack_s8(q.data(), out, in);
  }
  // y = x W^T + b through the int8 kernels (dynamic per-tensor activation quantisation).
  void forward(const float* x, int64_t m, std::vector<uint8_t>& xq, float* y) const {
    float mn = 0, mx = 0;
    bool nan = false;
    lp::min_max(x, m * in, &mn, &mx, &nan);
    mn = std::min(mn, 0.0f);
    mx = std::max(mx, 0.0f);
    const float scale = mx > mn ? (mx - mn) / 255.0f : 1.0f;
    const int32_t zp = static_cast<int32_t>(std::clamp(std::lrint(-mn / scale), 0L, 255L));
    xq.resize(static_cast<size_t>(m * in));
    lp::quantize_u8(x, m * in, scale, zp, xq.data());
    lp::gemm_u8s8_f32(m, xq.data(), in, packed, zp, scale, w_scale.data(), bias.data(), y, out);
  }
  void forward_f32(const float* x, int64_t m, float* y) const {
    soma::kernels::gemm<float>(false, true, m, out, in, 1.0f, x, in, w.data(), in, 0.0f, y, out);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < out; ++j) y[i * out + j] += bias[j];
  }
};

void relu(std::vector<float>& v) {
  for (float& x : v) x = std::max(x, 0.0f);
}

void label(benchmark::State& state) {
  state.SetLabel(soma::kernels::cpu_isa_name() + " " +
                 soma::kernels::Kernel<soma::kernels::LowpGemmU8S8F32>::selected_backend());
}

// ---- one Linear 784 -> 256 ---------------------------------------------------------------
void BM_int8_linear(benchmark::State& state) {
  const int64_t m = state.range(0), k = 784, n = 256;
  soma::set_num_threads(static_cast<int>(state.range(1)));
  const QuantLinear layer(k, n, 1);
  std::vector<uint8_t> xq(static_cast<size_t>(m * k));
  std::mt19937 rng(2);
  for (uint8_t& v : xq) v = static_cast<uint8_t>(rng());
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    lp::gemm_u8s8_f32(m, xq.data(), k, layer.packed, 128, 0.01f, layer.w_scale.data(),
                      layer.bias.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  set_gflops(state, 2.0 * m * n * k);
  label(state);
}

void BM_int8_linear_dyn(benchmark::State& state) {
  const int64_t m = state.range(0), k = 784, n = 256;
  soma::set_num_threads(static_cast<int>(state.range(1)));
  const QuantLinear layer(k, n, 1);
  const std::vector<float> x = randn(m * k, 3);
  std::vector<uint8_t> xq;
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    layer.forward(x.data(), m, xq, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_gflops(state, 2.0 * m * n * k);
  label(state);
}

void BM_f32_linear(benchmark::State& state) {
  const int64_t m = state.range(0), k = 784, n = 256;
  soma::set_num_threads(static_cast<int>(state.range(1)));
  const std::vector<float> x = randn(m * k, 3), w = randn(n * k, 4);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    soma::kernels::gemm<float>(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, y.data(),
                               n);
    benchmark::DoNotOptimize(y.data());
  }
  set_gflops(state, 2.0 * m * n * k);
}

// ---- the MLP 784-256-128-10 ----------------------------------------------------------------
void BM_int8_mlp(benchmark::State& state) {
  const int64_t m = state.range(0);
  soma::set_num_threads(static_cast<int>(state.range(1)));
  const QuantLinear l1(784, 256, 1), l2(256, 128, 2), l3(128, 10, 3);
  const std::vector<float> x = randn(m * 784, 5);
  std::vector<float> h1(static_cast<size_t>(m * 256)), h2(static_cast<size_t>(m * 128)),
      out(static_cast<size_t>(m * 10));
  std::vector<uint8_t> xq;
  for (auto _ : state) {
    l1.forward(x.data(), m, xq, h1.data());
    relu(h1);
    l2.forward(h1.data(), m, xq, h2.data());
    relu(h2);
    l3.forward(h2.data(), m, xq, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_gflops(state, 2.0 * m * (784 * 256 + 256 * 128 + 128 * 10));
  label(state);
}

void BM_f32_mlp(benchmark::State& state) {
  const int64_t m = state.range(0);
  soma::set_num_threads(static_cast<int>(state.range(1)));
  const QuantLinear l1(784, 256, 1), l2(256, 128, 2), l3(128, 10, 3);
  const std::vector<float> x = randn(m * 784, 5);
  std::vector<float> h1(static_cast<size_t>(m * 256)), h2(static_cast<size_t>(m * 128)),
      out(static_cast<size_t>(m * 10));
  for (auto _ : state) {
    l1.forward_f32(x.data(), m, h1.data());
    relu(h1);
    l2.forward_f32(h1.data(), m, h2.data());
    relu(h2);
    l3.forward_f32(h2.data(), m, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_gflops(state, 2.0 * m * (784 * 256 + 256 * 128 + 128 * 10));
}

// ---- bf16 vs float32 GEMM: M x N x K with the transposes in arg 3 (bit 0: A, bit 1: B) ------
void run_gemm(benchmark::State& state, bool bf16) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const bool ta = state.range(3) & 1, tb = state.range(3) & 2;
  soma::set_num_threads(static_cast<int>(state.range(4)));
  const std::vector<float> a = randn(m * k, 6), b = randn(k * n, 7);
  std::vector<float> c(static_cast<size_t>(m * n));
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  for (auto _ : state) {
    if (bf16)
      lp::gemm_bf16(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), n);
    else
      soma::kernels::gemm<float>(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                                 c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_gflops(state, 2.0 * m * n * k);
  if (bf16) state.SetLabel(soma::kernels::Kernel<soma::kernels::LowpGemmBf16>::selected_backend());
}
void BM_bf16_gemm(benchmark::State& state) {
  run_gemm(state, true);
}
void BM_f32_gemm(benchmark::State& state) {
  run_gemm(state, false);
}

void linear_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "threads"});
  for (int64_t t : {1, 2})
    for (int64_t m : {1024, 1}) b->Args({m, t});
}
void mlp_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "threads"});
  for (int64_t t : {1, 2})
    for (int64_t m : {1024, 1}) b->Args({m, t});
}
void gemm_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "k", "trans", "threads"});
  for (int64_t t : {1, 2}) {
    for (int64_t tr = 0; tr < 4; ++tr) b->Args({512, 256, 784, tr, t});
    // a training step's three products for Linear(784, 256) at batch 512
    b->Args({512, 784, 256, 0, t});  // dX = dY W
    b->Args({256, 784, 512, 1, t});  // dW = dY^T X
  }
}

BENCHMARK(BM_int8_linear)->Apply(linear_args)->UseRealTime();
BENCHMARK(BM_int8_linear_dyn)->Apply(linear_args)->UseRealTime();
BENCHMARK(BM_f32_linear)->Apply(linear_args)->UseRealTime();
BENCHMARK(BM_int8_mlp)->Apply(mlp_args)->UseRealTime();
BENCHMARK(BM_f32_mlp)->Apply(mlp_args)->UseRealTime();
BENCHMARK(BM_bf16_gemm)->Apply(gemm_args)->UseRealTime();
BENCHMARK(BM_f32_gemm)->Apply(gemm_args)->UseRealTime();

}  // namespace
