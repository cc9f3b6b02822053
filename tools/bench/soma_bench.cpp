// soma side of bench/compare_pytorch (issue 6): one workload per invocation, one JSON line out.
//
//   soma_bench train   --hidden 256,128 --batch 128 [--reps 3] [--threads 2] [--smoke]
//   soma_bench sgemm   [--n 2048] [--reps 5]         soma::matmul n^3 (the sgemm ceiling)
//   soma_bench dist    --batch 128 [--reps 3]        train under mpirun (bench/dist_throughput)
//   soma_bench cnn_train --batch 128 | dwsep --batch 128 | convT --batch 128
//                                                    issue 18's CNN workloads (bench/torch_bench.py
//                                                    cnn_job has the same definitions)
//
// The inference workloads (batch-1 latency and batch throughput of the MLP and the CNN) are
// `soma bench --json` on model files (tools/soma/bench_command.cpp; bench/compare_pytorch runs
// it); what is left here is what a model file and a random batch cannot express: epochs through
// the DataLoader, single-layer steps, the sgemm ceiling and the distributed run.
//
// train: Fashion-MNIST train split (60000), global mean/std normalisation applied per batch by
// the DataLoader transform (as `soma train` does), shuffle (one loader worker only with a spare
// core, as `soma train`), Adam(1e-3), cross-entropy. One warm-up epoch, then `reps` timed epochs
// (data loading and shuffling included); each timed epoch is one repetition. --smoke: 2 batches per
// epoch, 1 rep. Values are per repetition; the driver takes medians. Public API only.
//
// dist: the same training through train::fit on this rank's shard (--batch is per rank), run
// plainly (one process) or as `mpirun -np N soma_bench dist`. Rank 0 prints, per timed epoch,
// the job's training samples/s and the fraction of the epoch spent in allreduce_gradients.
#include <soma/soma.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace nn = soma::nn;
namespace data = soma::data;
namespace F = soma::nn::functional;
using Clock = std::chrono::steady_clock;

namespace {

const char* kData = "/usr/share/datasets/fashion-mnist";

struct Args {
  std::string workload;
  std::vector<int64_t> hidden{256, 128};
  int64_t batch = 128;
  int reps = 3;
  int threads = 2;
  int64_t n = 2048;
  bool smoke = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
  return v;
}

std::shared_ptr<nn::Sequential> make_mlp(int64_t in, const std::vector<int64_t>& hidden,
                                         int64_t out) {
  auto model = std::make_shared<nn::Sequential>();
  for (int64_t w : hidden) {
    model->push_back(nn::Linear(in, w));  // PyTorch's default Linear init
    model->push_back(nn::ReLU());
    in = w;
  }
  model->push_back(nn::Linear(in, out));
  return model;
}

std::string json_list(const std::vector<double>& v) {
  std::ostringstream os;
  os.precision(9);
  os << '[';
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  return os.str() + ']';
}

void emit(const Args& a, const char* metric, const std::vector<double>& values, int64_t params) {
  std::printf(
      "{\"impl\": \"soma\", \"workload\": \"%s\", \"batch\": %lld, \"threads\": %d, "
      "\"metric\": \"%s\", \"params\": %lld, \"values\": %s}\n",
      a.workload.c_str(), static_cast<long long>(a.batch), soma::get_num_threads(), metric,
      static_cast<long long>(params), json_list(values).c_str());
  std::fflush(stdout);
}

void run_train(const Args& a) {
  data::MnistSplit m = data::load_mnist(kData, "train");
  soma::Tensor x = m.images.reshape({m.images.size(0), -1});
  soma::Tensor y = m.labels;
  if (a.smoke) {  // 2 batches per epoch
    const int64_t n = std::min<int64_t>(x.size(0), 2 * a.batch);
    x = x.narrow(0, 0, n);
    y = y.narrow(0, 0, n);
  }
  const data::Normalization norm = data::Normalization::fit(x);
  data::DataLoader loader(
      data::TensorDataset(x, y),
      {.batch_size = a.batch,
       .shuffle = true,
       .seed = 0,
       .drop_last = false,
       .num_workers =
           soma::get_num_threads() < static_cast<int>(std::thread::hardware_concurrency()) ? 1 : 0,
       .transform = norm.transform()});
  soma::manual_seed(0);
  auto model = make_mlp(x.size(1), a.hidden, 10);
  model->train();
  soma::optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto epoch = [&] {
    for (const data::Batch& b : loader) {
      soma::Tensor loss = F::cross_entropy((*model)(b.x), b.y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  };
  epoch();  // warm-up
  std::vector<double> rates;
  const int reps = a.smoke ? 1 : a.reps;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    epoch();
    rates.push_back(static_cast<double>(loader.num_samples()) / seconds_since(t0));
  }
  emit(a, "samples_per_s", rates, model->num_parameters());
}

void run_dist(const Args& a) {
  data::MnistSplit m = data::load_mnist(kData, "train");
  soma::Tensor x = m.images.reshape({m.images.size(0), -1});
  soma::Tensor y = m.labels;
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  if (a.smoke) {
    const int64_t n = std::min<int64_t>(x.size(0), 2 * a.batch * world);
    x = x.narrow(0, 0, n);
    y = y.narrow(0, 0, n);
  }
  const data::Normalization norm = data::Normalization::fit(x);
  const int cores =
      static_cast<int>(std::thread::hardware_concurrency()) / soma::dist::local_size();
  data::DataLoader loader(data::TensorDataset(x, y),
                          {.batch_size = a.batch,
                           .shuffle = true,
                           .seed = 0,
                           .num_workers = soma::get_num_threads() < cores ? 1 : 0,
                           .transform = norm.transform(),
                           .num_replicas = world,
                           .rank = rank});
  soma::manual_seed(0);
  auto model = make_mlp(x.size(1), a.hidden, 10);
  soma::optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto loss = [](const soma::Tensor& out, const soma::Tensor& t) {
    return F::cross_entropy(out, t);
  };
  const int reps = a.smoke ? 1 : a.reps;
  soma::train::fit(*model, opt, loss, loader, {.epochs = 1});  // warm-up
  std::vector<double> rates, fractions, ring_fractions;
  for (int r = 0; r < reps; ++r) {
    soma::dist::reset_comm_stats();
    const auto t0 = Clock::now();
    soma::train::History h =
        soma::train::fit(*model, opt, loss, loader, {.epochs = r + 2, .initial_epoch = r + 1});
    const double seconds = seconds_since(t0);
    rates.push_back(h["samples_per_second"].back());
    fractions.push_back(soma::dist::comm_stats().seconds / seconds);
    ring_fractions.push_back(soma::dist::comm_stats().ring_seconds / seconds);
  }
  if (rank != 0) return;
  Args b = a;
  b.workload = "dist" + std::to_string(world);
  emit(b, "samples_per_s", rates, model->num_parameters());
  emit(b, "allreduce_fraction", fractions, model->num_parameters());
  emit(b, "ring_fraction", ring_fractions, model->num_parameters());
}

void run_sgemm(const Args& a) {
  const int64_t n = a.smoke ? 256 : a.n;
  const soma::Tensor p = soma::randn({n, n}), q = soma::randn({n, n});
  (void)soma::matmul(p, q);  // warm-up
  std::vector<double> gflops;
  const int reps = a.smoke ? 1 : std::max(a.reps, 5);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    soma::Tensor c = soma::matmul(p, q);
    gflops.push_back(2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  Args b = a;
  b.batch = n;
  emit(b, "gflop_per_s", gflops, 0);
}

#ifdef SOMA_BENCH_CNN
// ---- issue 18: convolutional workloads (mirrors bench/torch_bench.py cnn_job) ---------------
std::shared_ptr<nn::Sequential> make_cnn() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)));
  m->push_back(nn::BatchNorm2d(32));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(2));
  m->push_back(nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)));
  m->push_back(nn::BatchNorm2d(64));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(2));
  m->push_back(nn::Flatten());
  m->push_back(nn::Linear(3136, 128));
  m->push_back(nn::ReLU());
  m->push_back(nn::Linear(128, 10));
  return m;
}

std::shared_ptr<nn::Sequential> make_dwsep() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(nn::Conv2d(nn::Conv2dOptions(32, 32, 3).padding(1).groups(32)));
  m->push_back(nn::BatchNorm2d(32));
  m->push_back(nn::ReLU());
  m->push_back(nn::Conv2d(nn::Conv2dOptions(32, 64, 1)));
  m->push_back(nn::BatchNorm2d(64));
  m->push_back(nn::ReLU());
  return m;
}

void run_cnn(const Args& a) {
  const std::string& w = a.workload;
  const int reps = a.smoke ? 1 : a.reps;
  const int64_t b = a.batch;
  soma::manual_seed(0);
  std::vector<double> values;
  if (w == "cnn_train") {
    // Adam steps with cross-entropy on Fashion-MNIST [B, 1, 28, 28], each batch gathered from
    // a shuffled order and normalised ((x / 255 - mean) / std), as the PyTorch side does.
    const int64_t steps = a.smoke ? 2 : 60;
    data::MnistSplit m = data::load_mnist(kData, "train");
    const int64_t n = std::min<int64_t>(m.images.size(0), (steps + 5) * b);
    const soma::Tensor x = m.images.narrow(0, 0, n).reshape({n, 1, 28, 28});
    const soma::Tensor y = m.labels.narrow(0, 0, n);
    const soma::Tensor xf = x.to(soma::kFloat32) * (1.0 / 255.0);
    const double mean = xf.mean().item<double>(),
                 stdev = (xf - mean).pow(2).mean().sqrt().item<double>();
    auto model = make_cnn();
    model->train();
    soma::optim::Adam opt(model->parameters(), {.lr = 1e-3});
    std::mt19937_64 rng(0);
    std::vector<int64_t> order(static_cast<size_t>(n));
    auto step = [&](int64_t i) {
      const soma::Tensor idx =
          soma::tensor(std::vector<int64_t>(order.begin() + i * b, order.begin() + (i + 1) * b));
      const soma::Tensor xb =
          (x.index_select(0, idx).to(soma::kFloat32) * (1.0 / 255.0) - mean) / stdev;
      soma::Tensor loss = F::cross_entropy((*model)(xb), y.index_select(0, idx));
      opt.zero_grad();
      loss.backward();
      opt.step();
    };
    auto shuffle = [&] {
      for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
      std::shuffle(order.begin(), order.end(), rng);
    };
    shuffle();
    for (int64_t i = 0; i < (a.smoke ? 2 : 5); ++i) step(i);  // warm-up
    for (int r = 0; r < reps; ++r) {
      shuffle();
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < steps; ++i) step(i);
      values.push_back(static_cast<double>(steps * b) / seconds_since(t0));
    }
    emit(a, "samples_per_s", values, model->num_parameters());
    return;
  }
  // dwsep, convT: one layer's training step (forward, backward to the input and parameters of
  // the mean of the output).
  std::shared_ptr<nn::Module> layer;
  soma::Tensor x;
  if (w == "dwsep") {
    layer = make_dwsep();
    x = soma::randn({b, 32, 14, 14});
  } else {
    layer = std::make_shared<nn::ConvTranspose2d>(
        nn::ConvTranspose2dOptions(64, 32, 4).stride(2).padding(1));
    x = soma::randn({b, 64, 7, 7});
  }
  layer->train();
  x.requires_grad_(true);
  const int iters = a.smoke ? 2 : 30;
  auto step = [&] {
    layer->zero_grad();
    x.zero_grad();
    (*layer)(x).mean().backward();
  };
  for (int i = 0; i < (a.smoke ? 1 : 3); ++i) step();
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) step();
    values.push_back(static_cast<double>(b) * iters / seconds_since(t0));
  }
  emit(a, "samples_per_s", values, layer->num_parameters());
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: soma_bench train|dist|sgemm|cnn_train|dwsep|convT [options]\n");
    return 2;
  }
  a.workload = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "soma_bench: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--hidden")
      a.hidden = parse_list(next());
    else if (k == "--batch")
      a.batch = std::stoll(next());
    else if (k == "--reps")
      a.reps = std::stoi(next());
    else if (k == "--threads")
      a.threads = std::stoi(next());
    else if (k == "--n")
      a.n = std::stoll(next());
    else if (k == "--smoke")
      a.smoke = true;
    else {
      std::fprintf(stderr, "soma_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::optional<soma::dist::Environment> mpi;
  try {
    if (soma::dist::launched_by_mpirun()) mpi.emplace(argc, argv);
    soma::set_num_threads(a.threads);
    if (a.workload == "train")
      run_train(a);
    else if (a.workload == "dist")
      run_dist(a);
    else if (a.workload == "sgemm")
      run_sgemm(a);
#ifdef SOMA_BENCH_CNN
    else if (a.workload == "cnn_train" || a.workload == "dwsep" || a.workload == "convT")
      run_cnn(a);
#endif
    else {
      std::fprintf(stderr, "soma_bench: unknown workload %s\n", a.workload.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soma_bench: %s\n", e.what());
    if (soma::dist::world_size() > 1) soma::dist::abort(1);
    return 1;
  }
  return 0;
}
