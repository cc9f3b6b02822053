// libtorch C++ side of bench/compare_pytorch: bench/torch_bench.py's MLP workloads (train,
// latency, infer) against libtorch's C++ API, with the same job arguments and the same JSON
// lines out ("impl": "libtorch").
//
//   OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=T libtorch_bench --threads T [--reps 3] [--smoke] \
//       '{"workload": "train", "hidden": [256, 128], "batch": 128}' '{"workload": "latency"}' \
//       '{"workload": "infer", "batch": 1024}'
//
// train: Fashion-MNIST train split in memory as uint8, torch::randperm every epoch, each batch
// gathered with index_select and normalised ((x / 255 - mean) / std, global mean/std), Adam
// (1e-3), cross-entropy, gradients set to none between steps; one warm-up epoch, then `reps`
// timed epochs (samples/s each). latency: eval-mode forward of one random image under
// NoGradGuard, 500 warm-up calls, then per repetition the median µs of 5000 timed calls.
// infer: batch 1024, 20 warm-up forwards, then per repetition 200 timed forwards (samples/s).
// latency_int8 / infer_int8: the same two jobs on torch's dynamic int8 MLP in C++ (what
// torch.ao.quantization.quantize_dynamic builds: per-channel int8 weights packed by
// quantized::linear_prepack, each layer LinearPackedParamsBase::apply_dynamic(_relu)), on the
// quantized engine {"engine": "onednn" | "qnnpack" | "fbgemm"} (refused when this build lacks it).
// --smoke: 2 batches per epoch, 20 calls, 2 forwards, 1 repetition.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
const std::string kData = "/usr/share/datasets/fashion-mnist";

struct Args {
  int threads = 1;
  int reps = 3;
  bool smoke = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// An IDX file (gzip) as a uint8 tensor of its shape.
torch::Tensor read_idx(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<unsigned char> raw;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) raw.insert(raw.end(), buf, buf + n);
  gzclose(f);
  if (raw.size() < 4 || raw[2] != 0x08) throw std::runtime_error(path + ": not uint8 IDX");
  const int ndim = raw[3];
  std::vector<int64_t> shape;
  size_t off = 4;
  for (int d = 0; d < ndim; ++d, off += 4)
    shape.push_back((int64_t{raw[off]} << 24) | (raw[off + 1] << 16) | (raw[off + 2] << 8) |
                    raw[off + 3]);
  return torch::from_blob(raw.data() + off, shape, torch::kUInt8).clone();
}

torch::nn::Sequential mlp(const std::vector<int64_t>& sizes) {
  torch::nn::Sequential m;
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    m->push_back(torch::nn::Linear(sizes[i], sizes[i + 1]));  // PyTorch's default init
    if (i + 2 < sizes.size()) m->push_back(torch::nn::ReLU());
  }
  return m;
}

int64_t nparams(const torch::nn::Sequential& m) {
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  return n;
}

void emit(const nlohmann::json& job, const char* metric, const std::vector<double>& values,
          int64_t params, const Args& a, int64_t batch) {
  const nlohmann::json rec = {{"impl", "libtorch"}, {"workload", job["workload"]},
                              {"batch", batch},     {"threads", a.threads},
                              {"metric", metric},   {"params", params},
                              {"values", values}};
  std::cout << rec.dump() << std::endl;
}

void train_job(const nlohmann::json& job, const Args& a) {
  torch::Tensor x = read_idx(kData + "/train-images-idx3-ubyte.gz");
  x = x.reshape({x.size(0), -1});
  torch::Tensor y = read_idx(kData + "/train-labels-idx1-ubyte.gz").to(torch::kLong);
  const int64_t b = job.at("batch").get<int64_t>();
  if (a.smoke) {
    x = x.narrow(0, 0, std::min<int64_t>(x.size(0), 2 * b));
    y = y.narrow(0, 0, x.size(0));
  }
  const torch::Tensor xf = x.to(torch::kFloat) * (1.0 / 255.0);
  const double mean = xf.mean().item<double>(), stdev = xf.std(false).item<double>();
  torch::manual_seed(0);
  std::vector<int64_t> sizes{x.size(1)};
  for (int64_t h : job.at("hidden").get<std::vector<int64_t>>()) sizes.push_back(h);
  sizes.push_back(10);
  torch::nn::Sequential model = mlp(sizes);
  model->train();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  const int64_t n = x.size(0);
  auto epoch = [&] {
    const torch::Tensor order = torch::randperm(n, torch::kLong);
    for (int64_t i = 0; i < n; i += b) {
      const torch::Tensor idx = order.slice(0, i, std::min(i + b, n));
      const torch::Tensor xb =
          x.index_select(0, idx).to(torch::kFloat).mul_(1.0 / 255.0).sub_(mean).div_(stdev);
      torch::Tensor loss =
          torch::nn::functional::cross_entropy(model->forward(xb), y.index_select(0, idx));
      for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();  // set_to_none
      loss.backward();
      opt.step();
    }
  };
  epoch();  // warm-up
  std::vector<double> rates;
  for (int r = 0; r < (a.smoke ? 1 : a.reps); ++r) {
    const auto t0 = Clock::now();
    epoch();
    rates.push_back(static_cast<double>(n) / seconds_since(t0));
  }
  emit(job, "samples_per_s", rates, nparams(model), a, b);
}

void latency_job(const nlohmann::json& job, const Args& a) {
  torch::manual_seed(0);
  torch::nn::Sequential model = mlp({784, 256, 128, 10});
  model->eval();
  const torch::Tensor x = torch::randn({1, 784});
  const int calls = a.smoke ? 20 : 5000;
  torch::NoGradGuard no_grad;
  for (int i = 0; i < std::min(calls, 500); ++i) (void)model->forward(x);
  std::vector<double> medians, t(static_cast<size_t>(calls));
  for (int r = 0; r < (a.smoke ? 1 : a.reps); ++r) {
    for (int i = 0; i < calls; ++i) {
      const auto t0 = Clock::now();
      torch::Tensor out = model->forward(x);
      t[static_cast<size_t>(i)] = seconds_since(t0) * 1e6;
    }
    std::nth_element(t.begin(), t.begin() + calls / 2, t.end());
    medians.push_back(t[static_cast<size_t>(calls / 2)]);
  }
  emit(job, "latency_us", medians, nparams(model), a, 1);
}

// The 784-256-128-10 MLP (PyTorch's default init, seed 0) as torch's dynamic int8 layers.
struct Int8Mlp {
  std::vector<c10::intrusive_ptr<LinearPackedParamsBase>> layers;
  torch::Tensor forward(const torch::Tensor& x) const {
    torch::Tensor h = x;
    for (size_t i = 0; i < layers.size(); ++i)
      h = i + 1 < layers.size() ? layers[i]->apply_dynamic_relu(h) : layers[i]->apply_dynamic(h);
    return h;
  }
};

Int8Mlp int8_mlp(const nlohmann::json& job) {
  const std::string engine = job.value("engine", "onednn");
  const std::vector<std::pair<std::string, at::QEngine>> names{{"onednn", at::QEngine::ONEDNN},
                                                               {"qnnpack", at::QEngine::QNNPACK},
                                                               {"fbgemm", at::QEngine::FBGEMM}};
  auto it =
      std::find_if(names.begin(), names.end(), [&](const auto& p) { return p.first == engine; });
  if (it == names.end()) throw std::runtime_error("unknown engine " + engine);
  const auto& supported = at::globalContext().supportedQEngines();
  if (std::find(supported.begin(), supported.end(), it->second) == supported.end())
    throw std::runtime_error("this libtorch build has no quantized engine " + engine);
  at::globalContext().setQEngine(it->second);
  torch::manual_seed(0);
  torch::nn::Sequential model = mlp({784, 256, 128, 10});
  auto prepack = c10::Dispatcher::singleton()
                     .findSchemaOrThrow("quantized::linear_prepack", "")
                     .typed<c10::intrusive_ptr<LinearPackedParamsBase>(
                         at::Tensor, c10::optional<at::Tensor>)>();
  Int8Mlp q;
  for (const auto& m : model->children()) {
    auto* lin = m->as<torch::nn::Linear>();
    if (!lin) continue;
    const torch::Tensor w = lin->weight.detach();
    // per-channel symmetric int8 (torch's per_channel_dynamic_qconfig weight observer)
    const torch::Tensor absmax = std::get<0>(w.abs().max(1)).clamp_min(1e-8);
    const torch::Tensor scales = (absmax / 127.5).to(torch::kDouble);
    const torch::Tensor zps = torch::zeros({w.size(0)}, torch::kLong);
    const torch::Tensor qw = at::quantize_per_channel(w, scales, zps, 0, at::kQInt8);
    q.layers.push_back(prepack.call(qw, lin->bias.detach()));
  }
  return q;
}

void latency_int8_job(const nlohmann::json& job, const Args& a) {
  const Int8Mlp model = int8_mlp(job);
  const torch::Tensor x = torch::randn({1, 784});
  const int calls = a.smoke ? 20 : 5000;
  torch::NoGradGuard no_grad;
  for (int i = 0; i < std::min(calls, 500); ++i) (void)model.forward(x);
  std::vector<double> medians, t(static_cast<size_t>(calls));
  for (int r = 0; r < (a.smoke ? 1 : a.reps); ++r) {
    for (int i = 0; i < calls; ++i) {
      const auto t0 = Clock::now();
      torch::Tensor out = model.forward(x);
      t[static_cast<size_t>(i)] = seconds_since(t0) * 1e6;
    }
    std::nth_element(t.begin(), t.begin() + calls / 2, t.end());
    medians.push_back(t[static_cast<size_t>(calls / 2)]);
  }
  emit(job, "latency_us", medians, 784 * 256 + 256 * 128 + 128 * 10 + 256 + 128 + 10, a, 1);
}

void infer_int8_job(const nlohmann::json& job, const Args& a) {
  const Int8Mlp model = int8_mlp(job);
  const int64_t b = job.at("batch").get<int64_t>();
  const torch::Tensor x = torch::randn({b, 784});
  const int iters = a.smoke ? 2 : 200;
  torch::NoGradGuard no_grad;
  for (int i = 0; i < (a.smoke ? 1 : 20); ++i) (void)model.forward(x);
  std::vector<double> rates;
  for (int r = 0; r < (a.smoke ? 1 : a.reps); ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) (void)model.forward(x);
    rates.push_back(static_cast<double>(b) * iters / seconds_since(t0));
  }
  emit(job, "samples_per_s", rates, 784 * 256 + 256 * 128 + 128 * 10 + 256 + 128 + 10, a, b);
}

void infer_job(const nlohmann::json& job, const Args& a) {
  torch::manual_seed(0);
  torch::nn::Sequential model = mlp({784, 256, 128, 10});
  model->eval();
  const int64_t b = job.at("batch").get<int64_t>();
  const torch::Tensor x = torch::randn({b, 784});
  const int iters = a.smoke ? 2 : 200;
  torch::NoGradGuard no_grad;
  for (int i = 0; i < (a.smoke ? 1 : 20); ++i) (void)model->forward(x);
  std::vector<double> rates;
  for (int r = 0; r < (a.smoke ? 1 : a.reps); ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) (void)model->forward(x);
    rates.push_back(static_cast<double>(b) * iters / seconds_since(t0));
  }
  emit(job, "samples_per_s", rates, nparams(model), a, b);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::vector<nlohmann::json> jobs;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(k + " needs a value");
        return argv[++i];
      };
      if (k == "--threads")
        a.threads = std::stoi(value());
      else if (k == "--reps")
        a.reps = std::stoi(value());
      else if (k == "--smoke")
        a.smoke = true;
      else if (!k.empty() && k[0] == '{')
        jobs.push_back(nlohmann::json::parse(k));
      else
        throw std::runtime_error("unknown argument " + k);
    }
    if (jobs.empty()) throw std::runtime_error("no job (e.g. '{\"workload\": \"latency\"}')");
    torch::set_num_threads(a.threads);
    for (const nlohmann::json& job : jobs) {
      const std::string w = job.at("workload").get<std::string>();
      if (w == "train")
        train_job(job, a);
      else if (w == "latency")
        latency_job(job, a);
      else if (w == "infer")
        infer_job(job, a);
      else if (w == "latency_int8")
        latency_int8_job(job, a);
      else if (w == "infer_int8")
        infer_int8_job(job, a);
      else
        throw std::runtime_error("unknown workload " + w +
                                 " (train, latency, infer, latency_int8, infer_int8)");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}
