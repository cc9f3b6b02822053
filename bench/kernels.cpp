// Kernel micro-benchmarks through the public API (issue 2). Built as build/bench/kernels.
//
//   build/bench/kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Every benchmark takes the thread count as its argument (soma::set_num_threads, which also
// caps OpenBLAS's share of the OpenMP pool). Counters (rates; the console prints "GFLOP=97.7/s"):
//   GFLOP  10^9 flop per second, 2*M*N*K flop per matmul
//   GB     10^9 bytes per second, counting the bytes each op must read + write (minimum traffic)
// bench/torch_kernels.py times the same shapes in PyTorch; docs/PERFORMANCE.md has the numbers.
#include <benchmark/benchmark.h>
#include <soma/soma.h>

#include <cstdint>

namespace {

constexpr double kFloatBytes = 4.0;

void set_gflops(benchmark::State& state, double flop_per_iter) {
  // kIsIterationInvariantRate: value * iterations / seconds, i.e. GFLOP per second.
  state.counters["GFLOP"] =
      benchmark::Counter(flop_per_iter / 1e9, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
}

void set_gbytes(benchmark::State& state, double bytes_per_iter) {
  state.counters["GB"] =
      benchmark::Counter(bytes_per_iter / 1e9, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
}

int threads_arg(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  soma::set_num_threads(n);
  return n;
}

// ---- sgemm ------------------------------------------------------------------------------
// a [M, K] @ b [K, N] -> [M, N]
void run_matmul(benchmark::State& state, int64_t m, int64_t k, int64_t n) {
  threads_arg(state);
  soma::manual_seed(0);
  const soma::Tensor a = soma::randn({m, k});
  const soma::Tensor b = soma::randn({k, n});
  for (auto _ : state) {
    soma::Tensor c = soma::matmul(a, b);
    benchmark::DoNotOptimize(c.data<float>());
  }
  set_gflops(state, 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
}

void BM_matmul_128x784x256(benchmark::State& state) {
  run_matmul(state, 128, 784, 256);
}
void BM_matmul_1024cubed(benchmark::State& state) {
  run_matmul(state, 1024, 1024, 1024);
}
// The "ceiling": a large square product that OpenBLAS runs near peak.
void BM_matmul_2048cubed(benchmark::State& state) {
  run_matmul(state, 2048, 2048, 2048);
}

// a [M, K] @ b.t() with b stored [N, K]: the transposed operand is a view that soma passes to
// cblas_sgemm as a transpose flag (the shape of x @ W^T / grad @ W^T in the backward pass).
void BM_matmul_bT_128x784x256(benchmark::State& state) {
  threads_arg(state);
  constexpr int64_t m = 128, k = 784, n = 256;
  soma::manual_seed(0);
  const soma::Tensor a = soma::randn({m, k});
  const soma::Tensor b = soma::randn({n, k});
  for (auto _ : state) {
    soma::Tensor c = soma::matmul(a, b.t());
    benchmark::DoNotOptimize(c.data<float>());
  }
  set_gflops(state, 2.0 * m * n * k);
}

BENCHMARK(BM_matmul_128x784x256)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_matmul_bT_128x784x256)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_matmul_1024cubed)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_matmul_2048cubed)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();

// ---- elementwise (1M float32) -------------------------------------------------------------
constexpr int64_t kElems = int64_t{1} << 20;

void BM_add_1M(benchmark::State& state) {
  threads_arg(state);
  const soma::Tensor a = soma::randn({kElems});
  const soma::Tensor b = soma::randn({kElems});
  for (auto _ : state) {
    soma::Tensor c = a + b;
    benchmark::DoNotOptimize(c.data<float>());
  }
  set_gbytes(state, 3.0 * kElems * kFloatBytes);  // read a, b; write c
}

void BM_relu_1M(benchmark::State& state) {
  threads_arg(state);
  const soma::Tensor x = soma::randn({kElems});
  for (auto _ : state) {
    soma::Tensor y = soma::relu(x);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_gbytes(state, 2.0 * kElems * kFloatBytes);  // read x; write y
}

BENCHMARK(BM_add_1M)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_relu_1M)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();

// ---- reductions ---------------------------------------------------------------------------
void BM_sum_rows_1024x1024(benchmark::State& state) {
  threads_arg(state);
  const soma::Tensor x = soma::randn({1024, 1024});
  for (auto _ : state) {
    soma::Tensor s = soma::sum(x, 1);
    benchmark::DoNotOptimize(s.data<float>());
  }
  set_gbytes(state, (1024.0 * 1024.0 + 1024.0) * kFloatBytes);
}

void BM_sum_all_1M(benchmark::State& state) {
  threads_arg(state);
  const soma::Tensor x = soma::randn({kElems});
  for (auto _ : state) {
    soma::Tensor s = soma::sum(x);
    benchmark::DoNotOptimize(s.data<float>());
  }
  set_gbytes(state, kElems * kFloatBytes);
}

BENCHMARK(BM_sum_rows_1024x1024)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_sum_all_1M)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();

// ---- a tiny autograd step: forward + backward of relu(x @ W + b).sum() ----------------------
// x [128, 784] (no grad), W [784, 256] and b [256] require grad. FLOP counted: forward x @ W
// (2MKN) + backward dW = x^T @ g (2MKN); the elementwise work is ignored, so GFLOP/s well below
// the matmul benchmark's is framework overhead (graph, allocations, relu/sum/bias kernels).
void BM_autograd_step_relu_linear(benchmark::State& state) {
  threads_arg(state);
  constexpr int64_t m = 128, k = 784, n = 256;
  soma::manual_seed(0);
  const soma::Tensor x = soma::randn({m, k});
  soma::Tensor w = soma::randn({k, n}).requires_grad_(true);
  soma::Tensor b = soma::zeros({n}).requires_grad_(true);
  for (auto _ : state) {
    w.zero_grad();
    b.zero_grad();
    soma::Tensor loss = soma::relu(soma::matmul(x, w) + b).sum();
    loss.backward();
    benchmark::DoNotOptimize(w.grad().data<float>());
  }
  set_gflops(state, 4.0 * m * n * k);
}

BENCHMARK(BM_autograd_step_relu_linear)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();

}  // namespace
