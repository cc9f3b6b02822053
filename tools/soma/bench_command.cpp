// soma bench: times a model (model.safetensors or .onnx) on random inputs of its input shape,
// as onnxruntime_perf_test and trtexec do: warm-up runs, then timed runs of one batch each;
// throughput and per-batch latency percentiles. --train times training steps instead
// (forward, cross-entropy against random labels, backward, Adam step).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "model_file.h"
#include "onnx_model.h"
#include "precision.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/cpu.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/core/threading.h"
#include "soma/optim/optimizers.h"

// OpenBLAS names the kernels it picked (Haswell, SkylakeX, ...; OPENBLAS_CORETYPE overrides);
// weak, so that a soma built on another BLAS links too.
extern "C" char* openblas_get_corename() __attribute__((weak));

namespace soma::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The model under test: the network, one sample's shape, and its class count (-1: unknown
// until the first forward, for an ONNX output of dynamic width).
struct BenchModel {
  std::shared_ptr<nn::Module> net;
  std::vector<int64_t> sample_shape;
  int64_t classes = -1;
  std::string description;
};

BenchModel load_bench_model(const std::string& path) {
  SOMA_CHECK(std::filesystem::is_regular_file(path), "bench: --model ", path,
             ": no such file (expected a model.safetensors written by soma train, or an .onnx "
             "model)");
  if (is_onnx_path(path)) {
    OnnxCliModel m = load_onnx_model(path);
    return {m.net, m.sample_shape, m.classes, "ONNX"};
  }
  ModelFile m = load_model(path);
  return {m.model, m.arch.input_shape, m.arch.classes, describe(m.arch)};
}

std::string blas_core() {
  return openblas_get_corename ? openblas_get_corename() : "";
}

// The q-th percentile (0 < q <= 1) of sorted values, nearest rank.
double percentile(const std::vector<double>& sorted, double q) {
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

void check_args(const BenchArgs& a) {
  SOMA_CHECK(a.batch_size >= 1, "bench: --batch-size ", a.batch_size, ": must be at least 1");
  SOMA_CHECK(!a.threads_given || a.threads >= 1, "bench: --threads ", a.threads,
             ": must be at least 1 (leave it out for every available core)");
  SOMA_CHECK(is_precision_name(a.precision), "bench: --precision ", a.precision,
             ": unknown precision (expected fp32, bf16 or int8)");
  SOMA_CHECK(a.warmup >= 0, "bench: --warmup ", a.warmup, ": must be 0 or more");
  SOMA_CHECK(a.iterations >= 1, "bench: --iterations ", a.iterations, ": must be at least 1");
  SOMA_CHECK(!a.seconds_given || (a.seconds > 0 && std::isfinite(a.seconds)), "bench: --seconds ",
             a.seconds, ": must be a positive number");
}

}  // namespace

void bench(const BenchArgs& a) {
  check_args(a);
  // The level the kernels dispatch on (SOMA_MAX_CPU_ISA applied); first, so that a bad cap is
  // the error before any output.
  const std::string isa = soma::cpu_isa();
  if (a.threads_given) set_num_threads(a.threads);
  BenchModel m = load_bench_model(a.model);
  manual_seed(0);
  Shape shape{a.batch_size};
  shape.insert(shape.end(), m.sample_shape.begin(), m.sample_shape.end());
  const Tensor x = randn(shape);
  if (m.classes < 1) {  // an ONNX output of dynamic width: ask the model
    NoGradGuard no_grad;
    m.net->eval();
    const Tensor out = (*m.net)(x);
    SOMA_CHECK(out.dim() == 2, "bench: ", a.model, ": output of shape ", out.shape(), " for ",
               a.batch_size, " samples (expected class scores [N, classes])");
    m.classes = out.size(1);
  }
  const Tensor y = randint(0, m.classes, {a.batch_size});

  PrecisionSetup p = apply_precision(a.precision, m.net, a.train);
  nn::Module& net = *p.model;
  std::unique_ptr<optim::Adam> opt;
  std::optional<NoGradGuard> no_grad;
  if (a.train) {
    net.train();
    opt = std::make_unique<optim::Adam>(net.parameters(), optim::AdamOptions{.lr = 1e-3});
  } else {
    net.eval();
    no_grad.emplace();
  }
  auto run_once = [&] {
    if (!a.train) {
      (void)net(x);
      return;
    }
    Tensor loss = training_loss(net(x), y);
    opt->zero_grad();
    loss.backward();
    opt->step();
  };

  for (int64_t i = 0; i < a.warmup; ++i) run_once();
  std::vector<double> ms;  // per batch
  const auto start = Clock::now();
  double elapsed = 0;
  while (a.seconds_given ? elapsed < a.seconds : static_cast<int64_t>(ms.size()) < a.iterations) {
    const auto t0 = Clock::now();
    run_once();
    const auto t1 = Clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    elapsed = std::chrono::duration<double>(t1 - start).count();
  }
  const double samples_per_second =
      static_cast<double>(a.batch_size) * static_cast<double>(ms.size()) / elapsed;
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  double mean = 0;
  for (double v : ms) mean += v;
  mean /= static_cast<double>(ms.size());
  const double p50 = percentile(sorted, 0.5), p90 = percentile(sorted, 0.9),
               p99 = percentile(sorted, 0.99);
  const char* mode = a.train ? "train" : "inference";

  if (a.json) {
    const nlohmann::json j = {{"model", a.model},
                              {"architecture", m.description},
                              {"mode", mode},
                              {"batch_size", a.batch_size},
                              {"precision", a.precision},
                              {"threads", get_num_threads()},
                              {"cpu_isa", isa},
                              {"blas_core", blas_core()},
                              {"warmup", a.warmup},
                              {"iterations", ms.size()},
                              {"seconds", elapsed},
                              {"samples_per_second", samples_per_second},
                              {"latency_ms",
                               {{"p50", p50},
                                {"p90", p90},
                                {"p99", p99},
                                {"mean", mean},
                                {"min", sorted.front()},
                                {"max", sorted.back()}}}};
    std::cout << j.dump() << std::endl;
    return;
  }
  const std::string blas = blas_core();
  std::cout << std::fixed << "model       " << a.model << " (" << m.description << ")\n"
            << "mode        " << mode << ", batch " << a.batch_size << ", " << a.precision << ", "
            << get_num_threads() << " threads, CPU " << isa
            << (blas.empty() ? "" : ", OpenBLAS " + blas) << "\n"
            << "iterations  " << ms.size() << " timed in " << std::setprecision(2) << elapsed
            << " s, after " << a.warmup << " warm-up\n"
            << "throughput  " << std::setprecision(1) << samples_per_second << " samples/s\n"
            << "latency     " << std::setprecision(3) << "p50 " << p50 << " ms  p90 " << p90
            << " ms  p99 " << p99 << " ms  mean " << mean << " ms  (per batch of " << a.batch_size
            << ")\n";
}

}  // namespace soma::cli
