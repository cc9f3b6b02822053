// Checks of soma::dist run under mpirun (ctest dist.*, via tests/dist/run_mpi.sh). Each mode
// prints what it compared and exits 0 on success, 1 on a failed check.
//
//   dist_check equivalence LOCAL_BATCH SAMPLES   W ranks x local batch B, fit() with Adam, vs
//                                                one process x batch W*B (a plain loop on
//                                                rank 0): weights within 1e-5 relative
//                                                (max |diff| / max |w| per tensor), and
//                                                the replicas bit-identical
//   dist_check allreduce                         weighted means, tiny buckets, float64,
//                                                missing gradients, broadcasts
//   dist_check sharding SAMPLES LOCAL_BATCH      every epoch's shards disjoint and complete,
//                                                each global batch = the one-process batch
//   dist_check syncbn LOCAL_BATCH                W ranks x batch B through SyncBatchNorm2d
//                                                vs one process x batch W*B through
//                                                BatchNorm2d, 3 training steps then eval:
//                                                outputs, input grads, summed weight/bias
//                                                grads, running stats within 1e-5
//   dist_check syncbn_fit LOCAL_BATCH SAMPLES    fit() of an MLP with BatchNorm1d converted
//                                                by convert_sync_batchnorm vs one process with
//                                                BatchNorm1d: weights and buffers within 1e-5;
//                                                plain BatchNorm under fit: rank 0's buffers
//                                                on every rank (torch DDP's broadcast_buffers)
//   dist_check throw | uncaught | kill | nan     fault injection on the last rank mid-training
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace nn = soma::nn;
namespace F = soma::nn::functional;
using soma::Tensor;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::cerr << "rank " << soma::dist::rank() << ": FAILED: " << what << "\n";
  }
}

// Synthetic 4-class data: x [n, 20] standard normal, y = argmax of a fixed linear map.
struct Data {
  Tensor x, y;
};
Data make_data(int64_t n) {
  soma::manual_seed(1234);
  Tensor x = soma::randn({n, 20});
  Tensor w = soma::randn({20, 4});
  Tensor y = soma::matmul(x, w).argmax(1);
  return {x, y};
}

std::shared_ptr<nn::Sequential> make_model() {
  soma::manual_seed(7);
  return std::make_shared<nn::Sequential>(nn::Linear(20, 32), nn::ReLU(), nn::Linear(32, 16),
                                          nn::Tanh(), nn::Linear(16, 4));
}

Tensor loss_fn(const Tensor& out, const Tensor& y) {
  return F::cross_entropy(out, y);
}

// max_i |a_i - b_i| / max_i |b_i|: the tensor's largest difference relative to its scale (a
// per-element ratio would divide float rounding by weights that happen to be near zero).
double rel_error(const Tensor& a, const Tensor& b) {
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(va[i]) - vb[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(vb[i])));
  }
  return diff / scale;
}

// Every rank's copy of `tensors` equals rank 0's, bit for bit.
bool replicas_identical(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> mine;
  for (const Tensor& t : tensors) mine.push_back(t.clone());
  std::vector<Tensor> root;
  for (const Tensor& t : tensors) root.push_back(t.clone());
  soma::dist::broadcast_parameters(root);
  std::vector<double> differing = {0};
  for (size_t i = 0; i < mine.size(); ++i) {
    const std::vector<float> a = mine[i].to_vector<float>(), b = root[i].to_vector<float>();
    for (size_t k = 0; k < a.size(); ++k)
      if (std::memcmp(&a[k], &b[k], sizeof(float)) != 0) differing[0] += 1;
  }
  soma::dist::allreduce_sum(differing);
  return differing[0] == 0;
}

int equivalence(int64_t local_batch, int64_t samples) {
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  const Data d = make_data(samples);
  const soma::optim::AdamOptions adam{.lr = 1e-2};

  // W ranks: fit() on this rank's shards.
  auto model = make_model();
  soma::optim::Adam opt(model->parameters(), adam);
  soma::data::DataLoader loader(
      soma::data::TensorDataset(d.x, d.y),
      {.batch_size = local_batch, .shuffle = true, .seed = 3, .num_replicas = world, .rank = rank});
  soma::train::History h = soma::train::fit(*model, opt, loss_fn, loader, {.epochs = 1});
  const int64_t steps = loader.size();

  expect(replicas_identical(model->parameters()), "replicas differ after training");

  if (rank == 0) {
    // One process, batch W*B, the lecture's loop written out.
    auto ref = make_model();
    soma::optim::Adam ref_opt(ref->parameters(), adam);
    soma::data::DataLoader ref_loader(
        soma::data::TensorDataset(d.x, d.y),
        {.batch_size = local_batch * world, .shuffle = true, .seed = 3});
    int64_t ref_steps = 0;
    double ref_loss_sum = 0;
    for (const auto& [xb, yb] : ref_loader) {
      ref_opt.zero_grad();
      Tensor l = loss_fn(ref->forward(xb), yb);
      ref_loss_sum += l.item<float>() * static_cast<double>(xb.size(0));
      l.backward();
      ref_opt.step();
      ++ref_steps;
    }
    expect(steps == ref_steps,
           "steps " + std::to_string(steps) + " vs " + std::to_string(ref_steps));
    const auto a = model->named_parameters(), b = ref->named_parameters();
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double e = rel_error(a[i].second, b[i].second);
      worst = std::max(worst, e);
      std::printf("  %-10s max |difference| / max |weight| = %.3g\n", a[i].first.c_str(), e);
    }
    const double ref_loss = ref_loss_sum / static_cast<double>(samples);
    const double loss = h["loss"].back();
    std::printf(
        "equivalence: %d ranks x batch %lld vs 1 x batch %lld, %lld Adam steps on %lld "
        "samples: weights max relative difference %.3g (limit 1e-5); epoch loss %.9g "
        "vs %.9g\n",
        world, static_cast<long long>(local_batch), static_cast<long long>(local_batch * world),
        static_cast<long long>(steps), static_cast<long long>(samples), worst, loss, ref_loss);
    expect(worst <= 1e-5, "weights differ by more than 1e-5 relative");
    expect(std::fabs(loss - ref_loss) <= 1e-5 * std::fabs(ref_loss), "epoch losses differ");
  }
  return failures == 0 ? 0 : 1;
}

// ---- SyncBatchNorm --------------------------------------------------------------------------
// Sums a float tensor over ranks (a copy).
Tensor summed(const Tensor& t) {
  const std::vector<float> v = t.to_vector<float>();
  std::vector<double> d(v.begin(), v.end());
  soma::dist::allreduce_sum(d);
  std::vector<float> f(d.begin(), d.end());
  return soma::tensor(f, t.shape());
}

int syncbn(int64_t local_batch) {
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  const int64_t global = local_batch * world;
  soma::manual_seed(11);
  const Tensor x_all = soma::randn({global, 3, 4, 5}) * 2.0 + 0.5;
  const Tensor g_all = soma::randn({global, 3, 4, 5});
  const Tensor w0 = soma::rand({3}) + 0.5, b0 = soma::randn({3});
  auto init = [&](nn::BatchNormBase& m) {
    soma::NoGradGuard no_grad;
    m.weight.copy_(w0);
    m.bias.copy_(b0);
  };
  nn::SyncBatchNorm sync(nn::SyncBatchNormOptions(3).momentum(0.2));
  nn::BatchNorm2d ref(nn::BatchNorm2dOptions(3).momentum(0.2));
  init(sync);
  init(ref);
  double worst = 0;
  auto check = [&](const Tensor& a, const Tensor& b, const std::string& what) {
    const double e = rel_error(a, b);
    worst = std::max(worst, e);
    expect(e <= 1e-5, what + " differs: " + std::to_string(e));
  };
  for (int step = 0; step < 3; ++step) {
    const Tensor xs = x_all * (1.0 + step) + static_cast<double>(step);
    Tensor xl = xs.narrow(0, rank * local_batch, local_batch).clone().requires_grad_(true);
    Tensor xr = xs.clone().requires_grad_(true);
    sync.zero_grad();
    ref.zero_grad();
    Tensor yl = sync(xl), yr = ref(xr);
    (yl * g_all.narrow(0, rank * local_batch, local_batch)).sum().backward();
    (yr * g_all).sum().backward();
    const std::string at = " at step " + std::to_string(step);
    check(yl, yr.narrow(0, rank * local_batch, local_batch), "output" + at);
    check(xl.grad(), xr.grad().narrow(0, rank * local_batch, local_batch), "input grad" + at);
    check(summed(sync.weight.grad()), ref.weight.grad(), "weight grad" + at);
    check(summed(sync.bias.grad()), ref.bias.grad(), "bias grad" + at);
    check(sync.running_mean, ref.running_mean, "running_mean" + at);
    check(sync.running_var, ref.running_var, "running_var" + at);
  }
  expect(sync.num_batches_tracked.item<int64_t>() == 3, "num_batches_tracked");
  sync.eval();
  ref.eval();
  const Tensor xe = x_all.narrow(0, rank * local_batch, local_batch);
  check(sync(xe), ref(xe), "eval output");
  if (rank == 0)
    std::printf(
        "syncbn: %d ranks x batch %lld SyncBatchNorm vs 1 x batch %lld BatchNorm2d, 3 "
        "steps: max relative difference %.3g (limit 1e-5)\n",
        world, static_cast<long long>(local_batch), static_cast<long long>(global), worst);
  return failures == 0 ? 0 : 1;
}

std::shared_ptr<nn::Sequential> make_bn_model() {
  soma::manual_seed(7);
  // No bias before the BatchNorm: its gradient is zero up to rounding, which Adam would
  // amplify into arbitrary steps.
  return std::make_shared<nn::Sequential>(nn::Linear(20, 16, {.bias = false}), nn::BatchNorm1d(16),
                                          nn::ReLU(), nn::Linear(16, 4));
}

// The floating tensors of m's state dict (replicas_identical compares float32 values).
std::vector<Tensor> state_tensors(const nn::Module& m) {
  std::vector<Tensor> out;
  for (const auto& [k, t] : m.state_dict())
    if (t.dtype() != soma::kInt64) out.push_back(t);
  return out;
}

int syncbn_fit(int64_t local_batch, int64_t samples) {
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  const Data d = make_data(samples);
  const soma::optim::AdamOptions adam{.lr = 1e-2};
  auto loader_for = [&](int64_t batch, int replicas, int r) {
    return soma::data::DataLoader(
        soma::data::TensorDataset(d.x, d.y),
        {.batch_size = batch, .shuffle = true, .seed = 3, .num_replicas = replicas, .rank = r});
  };
  // SyncBatchNorm: W ranks equal one process.
  auto model = make_bn_model();
  nn::SyncBatchNorm::convert_sync_batchnorm(model);
  soma::optim::Adam opt(model->parameters(), adam);
  auto loader = loader_for(local_batch, world, rank);
  soma::train::fit(*model, opt, loss_fn, loader, {.epochs = 1});
  auto ref = make_bn_model();
  soma::optim::Adam ref_opt(ref->parameters(), adam);
  auto ref_loader = loader_for(local_batch * world, 1, 0);
  ref->train();
  for (const auto& [xb, yb] : ref_loader) {
    ref_opt.zero_grad();
    loss_fn(ref->forward(xb), yb).backward();
    ref_opt.step();
  }
  const auto a = model->state_dict(), b = ref->state_dict();
  double worst = 0;
  for (const auto& [k, t] : b) {
    if (t.dtype() == soma::kInt64) {
      expect(a.at(k).item<int64_t>() == t.item<int64_t>(), k + " differs");
      continue;
    }
    const double e = rel_error(a.at(k), t);
    worst = std::max(worst, e);
    expect(e <= 1e-5, k + " differs by " + std::to_string(e));
  }
  expect(replicas_identical(state_tensors(*model)), "SyncBatchNorm replicas differ");
  // Plain BatchNorm: the buffers are rank 0's on every rank after fit (broadcast each step).
  auto plain = make_bn_model();
  soma::optim::Adam plain_opt(plain->parameters(), adam);
  auto plain_loader = loader_for(local_batch, world, rank);
  soma::train::fit(*plain, plain_opt, loss_fn, plain_loader, {.epochs = 1});
  expect(replicas_identical(state_tensors(*plain)),
         "plain BatchNorm replicas' buffers or weights differ");
  if (rank == 0)
    std::printf(
        "syncbn_fit: %d ranks x batch %lld (SyncBatchNorm) vs 1 x batch %lld "
        "(BatchNorm1d): state max relative difference %.3g (limit 1e-5); plain "
        "BatchNorm replicas identical\n",
        world, static_cast<long long>(local_batch), static_cast<long long>(local_batch * world),
        worst);
  return failures == 0 ? 0 : 1;
}

int allreduce() {
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  // Parameters of mixed dtypes and sizes; tiny buckets force several messages.
  std::vector<Tensor> params = {soma::zeros({3, 5}), soma::zeros({7}),
                                soma::zeros({4, 2}, soma::kFloat64), soma::zeros({2}),
                                soma::zeros({6})};
  for (Tensor& p : params) p.requires_grad_(true);
  auto value = [](int r, size_t i, int64_t k) { return 0.25 * (r + 1) + 0.5 * i + 0.125 * k; };
  for (size_t i = 0; i < params.size(); ++i) {
    // Parameter 3 has a gradient on rank 0 only; parameter 4 on no rank.
    if (i == 4 || (i == 3 && rank != 0)) continue;
    Tensor g = soma::zeros(params[i].shape(), params[i].dtype());
    std::vector<double> v(static_cast<size_t>(g.numel()));
    for (int64_t k = 0; k < g.numel(); ++k) v[k] = value(rank, i, k);
    g.copy_(soma::tensor(v, params[i].shape()).to(params[i].dtype()));
    params[i].set_grad(g);
  }
  const double weight = rank + 1.0;
  const int64_t messages0 = soma::dist::comm_stats().messages;
  const double total = soma::dist::allreduce_gradients(params, weight, /*bucket_bytes=*/32);
  const int64_t messages = soma::dist::comm_stats().messages - messages0;
  double wsum = 0;
  for (int r = 0; r < world; ++r) wsum += r + 1.0;
  expect(total == wsum, "total weight " + std::to_string(total));
  double worst = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor g = params[i].grad();
    if (i == 4) {
      expect(!g.defined(), "a parameter without gradients on every rank got one");
      continue;
    }
    expect(g.defined(), "gradient " + std::to_string(i) + " missing");
    const std::vector<double> got = g.to(soma::kFloat64).to_vector<double>();
    for (int64_t k = 0; k < g.numel(); ++k) {
      double want = 0;
      for (int r = 0; r < world; ++r)
        if (i != 3 || r == 0) want += (r + 1.0) * value(r, i, k);
      want /= wsum;
      worst = std::max(worst, std::fabs(got[k] - want) / std::fabs(want));
    }
  }
  expect(worst < 1e-6, "weighted mean off by " + std::to_string(worst));
  expect(messages >= 4, "bucket_bytes 32 should split the gradients into several messages");
  // A NaN weight on one rank: every rank sees NaN.
  const double nan_total =
      soma::dist::allreduce_gradients(params, rank == world - 1 ? std::nan("") : 1.0);
  expect(std::isnan(nan_total), "a NaN weight did not reach every rank");
  // broadcast_parameters: rank 0's values everywhere.
  for (Tensor& p : params) {
    soma::NoGradGuard ng;
    p.fill_(static_cast<double>(rank + 10));
  }
  soma::dist::broadcast_parameters(params, 0, 16);
  for (const Tensor& p : params)
    for (double v : p.to(soma::kFloat64).to_vector<double>()) expect(v == 10, "broadcast value");
  std::string bytes = rank == 0 ? std::string("from rank 0\0with a zero", 23) : "x";
  soma::dist::broadcast_bytes(bytes);
  expect(bytes == std::string("from rank 0\0with a zero", 23), "broadcast_bytes");
  if (rank == 0)
    std::printf(
        "allreduce: %d ranks, weighted mean max relative error %.3g over %lld messages; "
        "NaN weight seen by all; broadcasts equal\n",
        world, worst, static_cast<long long>(messages));
  return failures == 0 ? 0 : 1;
}

int sharding(int64_t samples, int64_t local_batch) {
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  Tensor x = soma::arange(0, static_cast<double>(samples)).reshape({samples, 1});
  Tensor y = soma::arange(samples);
  for (bool drop_last : {false, true}) {
    soma::data::DataLoader loader(soma::data::TensorDataset(x, y), {.batch_size = local_batch,
                                                                    .shuffle = true,
                                                                    .seed = 11,
                                                                    .drop_last = drop_last,
                                                                    .num_replicas = world,
                                                                    .rank = rank});
    soma::data::DataLoader single(
        soma::data::TensorDataset(x, y),
        {.batch_size = local_batch * world, .shuffle = true, .seed = 11, .drop_last = drop_last});
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      loader.set_epoch(epoch);
      single.set_epoch(epoch);
      // counts[i]: how many times sample i was seen by any rank; batch_of[i]: in which batch.
      std::vector<double> counts(static_cast<size_t>(samples), 0.0), batch_of(counts);
      int64_t batches = 0, seen = 0;
      for (const auto& [xb, yb] : loader) {
        for (int64_t i : yb.to_vector<int64_t>()) {
          counts[static_cast<size_t>(i)] += 1;
          batch_of[static_cast<size_t>(i)] += static_cast<double>(batches);
        }
        seen += yb.numel();
        ++batches;
      }
      expect(seen == loader.num_samples(), "num_samples() is not what the rank saw");
      std::vector<double> batch_counts = {static_cast<double>(batches)};
      soma::dist::allreduce_sum(counts);
      soma::dist::allreduce_sum(batch_of);
      soma::dist::allreduce_sum(batch_counts);
      expect(batch_counts[0] == static_cast<double>(batches * world),
             "ranks ran different numbers of batches");
      // Every sample of the one-process epoch exactly once, in the same global batch.
      int64_t b = 0, covered = 0, bad = 0;
      for (const auto& [xb, yb] : single) {
        for (int64_t i : yb.to_vector<int64_t>()) {
          covered += counts[static_cast<size_t>(i)] == 1;
          bad += counts[static_cast<size_t>(i)] != 1 || batch_of[static_cast<size_t>(i)] != b;
        }
        ++b;
      }
      int64_t total = 0;
      for (double c : counts) total += static_cast<int64_t>(c);
      expect(bad == 0 && total == single.num_samples() && total == loader.global_num_samples(),
             "shards are not a disjoint cover of the epoch (epoch " + std::to_string(epoch) +
                 ", drop_last " + std::to_string(drop_last) + ")");
      if (rank == 0 && epoch == 0)
        std::printf(
            "sharding: %d ranks x batch %lld, %lld samples, drop_last %d: %lld batches "
            "per rank, %lld samples seen once each, %lld seen twice or in another "
            "batch\n",
            world, static_cast<long long>(local_batch), static_cast<long long>(samples), drop_last,
            static_cast<long long>(batches), static_cast<long long>(covered),
            static_cast<long long>(bad));
    }
  }
  return failures == 0 ? 0 : 1;
}

// Trains a few hundred steps; on the last rank, `mode` strikes at step 5 of epoch 2.
int fault(const std::string& mode) {
  const int world = soma::dist::world_size(), rank = soma::dist::rank();
  const Data d = make_data(4096);
  auto model = make_model();
  soma::optim::Adam opt(model->parameters(), {.lr = 1e-3});
  soma::data::DataLoader loader(
      soma::data::TensorDataset(d.x, d.y),
      {.batch_size = 16, .shuffle = true, .num_replicas = world, .rank = rank});
  struct Strike : soma::train::Callback {
    std::string mode;
    void on_batch_end(soma::train::TrainState& s, int64_t batch, double) override {
      if (soma::dist::rank() != soma::dist::world_size() - 1 || s.epoch != 1 || batch != 5) return;
      std::fprintf(stderr, "dist_check: rank %d: injecting '%s'\n", soma::dist::rank(),
                   mode.c_str());
      if (mode == "kill") raise(SIGKILL);
      if (mode == "nan") {
        soma::NoGradGuard ng;
        s.model.parameters()[0].fill_(std::nan(""));  // next forward: NaN loss on this rank
        return;
      }
      throw soma::Error("dist_check: injected error on rank " + std::to_string(soma::dist::rank()));
    }
  };
  auto strike = std::make_shared<Strike>();
  strike->mode = mode;
  soma::train::fit(*model, opt, loss_fn, loader, {.epochs = 1000, .callbacks = {strike}});
  std::fprintf(stderr, "dist_check: rank %d finished training, which it should not have\n", rank);
  return 1;
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, int64_t def) { return argc > i ? std::atoll(argv[i]) : def; };
  if (mode == "equivalence") return equivalence(arg(2, 64), arg(3, 64 * 2 * 20));
  if (mode == "allreduce") return allreduce();
  if (mode == "syncbn") return syncbn(arg(2, 8));
  if (mode == "syncbn_fit") return syncbn_fit(arg(2, 32), arg(3, 640));
  if (mode == "sharding") return sharding(arg(2, 1000), arg(3, 32));
  if (mode == "throw" || mode == "kill" || mode == "nan") return fault(mode);
  if (mode == "uncaught") {
    fault("throw");  // the exception leaves main(): the terminate handler ends the job
    return 1;
  }
  std::cerr << "usage: dist_check "
               "equivalence|allreduce|syncbn|syncbn_fit|sharding|throw|uncaught|kill|nan\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  soma::dist::Environment env(argc, argv);
  if (std::string(argc > 1 ? argv[1] : "") == "uncaught") return run(argc, argv);
  try {
    const int rc = run(argc, argv);
    std::vector<double> worst = {static_cast<double>(rc)};
    soma::dist::allreduce_sum(worst);  // the job fails when any rank failed a check
    return worst[0] == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "dist_check: rank " << soma::dist::rank() << ": error: " << e.what() << "\n";
    soma::dist::abort(1);
  }
}
