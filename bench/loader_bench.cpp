// DataLoader throughput (issue 16): Fashion-MNIST-sized synthetic data, one epoch per
// iteration, the loop body only touching each batch. Built as build/bench/loader_bench.
//
//   build/bench/loader_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Argument: num_workers (0, 1, 2). samples/s counts the 60000 samples of an epoch.
//   BM_LoaderNormalize  x uint8 [60000, 784] -> float32, global mean/std (what `soma train`
//                       does), batch 128, shuffled
//   BM_LoaderAugment    the same through Reshape({1, 28, 28}), RandomCrop(28, 4),
//                       RandomHorizontalFlip(), Normalize, Reshape({784})
// The compute pool keeps its default size (soma::get_num_threads()); with workers, the batches
// are built on the workers, each on one thread, and the loop thread only waits for them.
#include <benchmark/benchmark.h>
#include <soma/soma.h>

#include <cstdint>

namespace {

namespace T = soma::data::transforms;

constexpr int64_t kSamples = 60000, kPixels = 784, kBatch = 128;

const soma::data::TensorDataset& dataset() {
  static const soma::data::TensorDataset ds = [] {
    soma::Tensor x = soma::empty({kSamples, kPixels}, soma::kUInt8);
    uint8_t* p = x.data<uint8_t>();
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (int64_t i = 0; i < x.numel(); ++i) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      p[i] = static_cast<uint8_t>(s >> 56);
    }
    soma::Tensor y = soma::empty({kSamples}, soma::kInt64);
    for (int64_t i = 0; i < kSamples; ++i) y.data<int64_t>()[i] = i % 10;
    return soma::data::TensorDataset(x, y);
  }();
  return ds;
}

void run(benchmark::State& state, const T::Transform& transform) {
  soma::data::DataLoader loader(dataset(), {.batch_size = kBatch,
                                            .shuffle = true,
                                            .seed = 0,
                                            .num_workers = state.range(0),
                                            .transform = transform});
  for (auto _ : state) {
    for (const soma::data::Batch& b : loader) benchmark::DoNotOptimize(b.x.data<float>());
  }
  state.counters["samples"] = benchmark::Counter(static_cast<double>(kSamples),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pool_threads"] = soma::get_num_threads();
}

void BM_LoaderNormalize(benchmark::State& state) {
  run(state, soma::data::Normalization::fit(dataset().x()).transform());
}

void BM_LoaderAugment(benchmark::State& state) {
  run(state, T::Compose({T::Reshape({1, 28, 28}), T::RandomCrop(28, 4), T::RandomHorizontalFlip(),
                         soma::data::Normalization::fit(dataset().x()).transform(),
                         T::Reshape({kPixels})}));
}

BENCHMARK(BM_LoaderNormalize)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LoaderAugment)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
