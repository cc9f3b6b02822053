// The training loop (fit) and evaluation over a loader (evaluate).
#include "soma/train/fit.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "kernels/kernels.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/autocast.h"
#include "soma/core/clock.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/dist/dist.h"
#include "soma/nn/utils.h"

namespace soma::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using soma::detail::now_seconds;

// Puts the model back in the mode it had, however the scope is left.
class ModeGuard {
 public:
  explicit ModeGuard(nn::Module& m) : m_(m), training_(m.is_training()) {}
  ~ModeGuard() { m_.train(training_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  nn::Module& m_;
  bool training_;
};

// The value of a scalar loss tensor; anything but one element is an error.
double loss_value(const Tensor& l, const char* op) {
  SOMA_CHECK(l.defined(), op, ": the loss function returned an undefined tensor");
  SOMA_CHECK(l.numel() == 1, op, ": the loss function must return a scalar, got shape ", l.shape(),
             " (use a reduction such as Reduction::Mean)");
  switch (l.dtype()) {
    case kFloat32:
      return static_cast<double>(l.item<float>());
    case kFloat64:
      return l.item<double>();
    default:
      soma::detail::fail(op, ": the loss must be float32 or float64, got ", l.dtype());
  }
}

// Whether accuracy (argmax over dim 1 vs int64 class ids) applies to this output and target.
bool is_classification(const Tensor& out, const Tensor& y) {
  return out.dim() == 2 && out.size(1) > 1 && is_floating(out.dtype()) && y.defined() &&
         y.dtype() == kInt64 && y.dim() == 1 && y.size(0) == out.size(0);
}

bool all_finite(const Tensor& t) {
  // bfloat16/float16 convert exactly to float32 (inf and NaN included)
  Tensor c = is_reduced_floating(t.dtype()) ? t.to(kFloat32) : t.contiguous();
  bool finite = true;
  if (c.dtype() == kFloat32)
    kernels::call<kernels::AllFinite<float>>(c.data<float>(), c.numel(), &finite);
  else if (c.dtype() == kFloat64)
    kernels::call<kernels::AllFinite<double>>(c.data<double>(), c.numel(), &finite);
  return finite;
}

std::string where(int64_t epoch, int64_t batch) {
  return "at epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(batch + 1);
}

const char* nonfinite_name(double v) {
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

// Sums of one pass over a loader (or an epoch of training).
struct Totals {
  double loss_sum = 0;                           // sum of batch loss * batch samples
  int64_t correct = 0, samples = 0, scored = 0;  // scored: samples with an accuracy
  double loss() const { return samples ? loss_sum / static_cast<double>(samples) : kNaN; }
  double accuracy() const {
    return scored ? static_cast<double>(correct) / static_cast<double>(scored) : kNaN;
  }
  void add(double l, const Tensor& out, const Tensor& y) {
    const int64_t n = out.dim() > 0 ? out.size(0) : 1;
    loss_sum += l * static_cast<double>(n);
    samples += n;
    if (is_classification(out, y)) {
      correct += count_correct(out, y);
      scored += n;
    }
  }
  // The sums over every rank of a data-parallel job (a no-op for one process).
  void reduce() {
    std::vector<double> v = {loss_sum, static_cast<double>(correct), static_cast<double>(samples),
                             static_cast<double>(scored)};
    dist::allreduce_sum(v);
    loss_sum = v[0];
    correct = static_cast<int64_t>(v[1]);
    samples = static_cast<int64_t>(v[2]);
    scored = static_cast<int64_t>(v[3]);
  }
};

// Rows of a batch's input (0 for the empty share a rank may get of the last global batch).
int64_t batch_rows(const data::Batch& b) {
  return b.x.defined() && b.x.dim() > 0 ? b.x.size(0) : 1;
}

// Checks that a loader's shards match this job: one shard per rank, this rank's own.
void check_shards(const data::DataLoader& loader, const char* op, const char* which) {
  const auto& o = loader.options();
  const int world = dist::world_size(), rank = dist::rank();
  if (o.num_replicas == world && o.rank == rank) return;
  soma::detail::fail(op, ": the ", which, " loader is sharded as rank ", o.rank, " of ",
                     o.num_replicas, " but this process is rank ", rank, " of ", world,
                     " (set DataLoaderOptions{.num_replicas = soma::dist::world_size(), .rank = "
                     "soma::dist::rank()})");
}

// Data-parallel runs: every rank draws its own dropout masks, yet the generator state between
// epochs is the same on every rank (so rank 0's checkpoint resumes all of them exactly).
// begin() takes one draw from the shared stream and seeds a per-rank stream from it and the
// rank; end() puts the shared stream back where that draw left it.
class RankStreams {
 public:
  void begin() {
    if (dist::world_size() == 1) return;
    const uint64_t hi = soma::detail::random_u32(), lo = soma::detail::random_u32();
    shared_ = get_rng_state();
    // splitmix64 of (draw, rank): distinct, well-mixed seeds per rank and epoch.
    uint64_t z =
        ((hi << 32) | lo) + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(dist::rank() + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    manual_seed(z ^ (z >> 31));
  }
  void end() {
    if (!shared_.empty()) set_rng_state(shared_);
    shared_.clear();
  }

 private:
  std::string shared_;
};

}  // namespace

EvalResult evaluate(nn::Module& model, data::DataLoader& loader, const LossFn& loss) {
  SOMA_CHECK(static_cast<bool>(loss), "evaluate: the loss function is empty");
  SOMA_CHECK(loader.global_num_samples() > 0, "evaluate: the loader has no samples");
  const bool sharded = loader.options().num_replicas > 1;
  if (sharded) check_shards(loader, "evaluate", "evaluation");
  ModeGuard mode(model);
  model.eval();
  NoGradGuard no_grad;
  Totals t;
  for (const data::Batch& b : loader) {
    if (batch_rows(b) == 0) continue;
    Tensor out = model(b.x);
    t.add(loss_value(loss(out, b.y), "evaluate"), out, b.y);
  }
  if (sharded) t.reduce();  // every rank's shard: the whole loader's mean
  return {t.loss(), t.accuracy(), t.samples};
}

History fit(nn::Module& model, optim::Optimizer& optimizer, const LossFn& loss,
            data::DataLoader& train, const FitOptions& options) {
  SOMA_CHECK(static_cast<bool>(loss), "fit: the loss function is empty");
  SOMA_CHECK(options.initial_epoch >= 0 && options.initial_epoch <= options.epochs,
             "fit: need 0 <= initial_epoch <= epochs, got initial_epoch ", options.initial_epoch,
             " and epochs ", options.epochs);
  SOMA_CHECK(options.autocast == kFloat32 || options.autocast == kBFloat16,
             "fit: autocast must be float32 (off) or bfloat16, got ", options.autocast);
  SOMA_CHECK(options.max_grad_norm >= 0 && std::isfinite(options.max_grad_norm),
             "fit: max_grad_norm must be finite and >= 0 (0: no clipping), got ",
             options.max_grad_norm);
  SOMA_CHECK(train.size() > 0, "fit: the training loader has no batches (", train.num_samples(),
             " samples, batch_size ", train.options().batch_size, ")");
  for (const auto& cb : options.callbacks) SOMA_CHECK(cb != nullptr, "fit: a callback is null");
  const int world = dist::world_size();
  check_shards(train, "fit", "training");
  if (options.validation && options.validation->options().num_replicas > 1)
    check_shards(*options.validation, "fit", "validation");

  ModeGuard mode(model);
  const std::vector<std::pair<std::string, Tensor>> named = model.named_parameters();
  const std::vector<Tensor> params = optimizer.parameters();

  History history;
  std::vector<Callback*> callbacks = {&history};
  for (const auto& cb : options.callbacks) callbacks.push_back(cb.get());

  TrainState state{.model = model,
                   .optimizer = optimizer,
                   .epoch = options.initial_epoch,
                   .epochs = options.epochs,
                   .initial_epoch = options.initial_epoch,
                   .batches_per_epoch = train.size(),
                   .samples_per_epoch = train.global_num_samples(),
                   .has_validation = options.validation != nullptr};
  // Replicas start from rank 0's weights (whatever each rank's seed gave).
  if (world > 1) dist::broadcast_parameters(model.parameters());
  // As torch's DistributedDataParallel (broadcast_buffers=True): rank 0's buffers (BatchNorm's
  // running statistics) overwrite every rank's before each step.
  std::vector<Tensor> buffers;
  for (const auto& [name, t] : model.named_buffers())
    if (t.defined()) buffers.push_back(t);
  for (Callback* cb : callbacks) cb->on_train_begin(state);

  for (int64_t epoch = options.initial_epoch; epoch < options.epochs && !state.stop_training;
       ++epoch) {
    state.epoch = epoch;
    state.samples_seen = 0;
    state.running_loss = state.running_accuracy = kNaN;
    for (Callback* cb : callbacks) cb->on_epoch_begin(state, epoch);

    model.train();
    train.set_epoch(epoch);  // epoch e's order depends only on (seed, e): exact resume
    const double lr = optimizer.lr();
    const double t0 = now_seconds();
    const double comm0 = dist::comm_stats().seconds;
    RankStreams streams;
    streams.begin();
    Totals totals;
    int64_t batch = 0, global_seen = 0;
    for (const data::Batch& b : train) {
      optimizer.zero_grad();
      const int64_t rows = batch_rows(b);
      if (world > 1 && !buffers.empty()) dist::broadcast_buffers(buffers);
      Tensor out;
      double lv = 0;
      if (rows > 0) {
        std::optional<autocast> mixed;
        if (options.autocast == kBFloat16) mixed.emplace(kBFloat16);
        out = model(b.x);
        Tensor l = loss(out, b.y);
        lv = loss_value(l, "fit");
        const char* advice =
            "; the weights are those after the last good step (lower the learning rate, "
            "clip gradients with max_grad_norm, or check the inputs for NaN)";
        SOMA_CHECK(world > 1 || std::isfinite(lv), "fit: non-finite loss (", nonfinite_name(lv),
                   ") ", where(epoch, batch), advice);
        if (std::isfinite(lv)) l.backward();
      }
      if (world > 1) {
        // Weighted by batch rows: the gradient of the mean loss over the global batch. A NaN
        // weight tells every rank that this one's loss was not finite, so all stop together.
        const double w = std::isfinite(lv) ? static_cast<double>(rows) : std::nan("");
        const double total = dist::allreduce_gradients(params, w);
        SOMA_CHECK(!std::isnan(total), "fit: non-finite loss",
                   std::isfinite(lv) ? std::string(" on another rank")
                                     : " (" + std::string(nonfinite_name(lv)) + ") on rank " +
                                           std::to_string(dist::rank()),
                   " of ", world, " ", where(epoch, batch),
                   "; the weights are those after the last good step");
        global_seen += static_cast<int64_t>(total);
      }
      for (const auto& [name, p] : named) {
        const Tensor g = p.grad();
        SOMA_CHECK(!g.defined() || all_finite(g), "fit: non-finite gradient of \"", name, "\" ",
                   where(epoch, batch), " (loss ", lv,
                   "); the weights are those after the last good step");
      }
      if (options.max_grad_norm > 0) nn::utils::clip_grad_norm_(params, options.max_grad_norm);
      optimizer.step();

      if (rows > 0) totals.add(lv, out, b.y);
      // Running values: this rank's shard (rank 0's is what the progress bar shows); the count
      // of samples is the job's.
      state.samples_seen = world > 1 ? global_seen : totals.samples;
      state.running_loss = totals.loss();
      state.running_accuracy = totals.accuracy();
      for (Callback* cb : callbacks) cb->on_batch_end(state, batch, lv);
      ++batch;
      if (state.stop_training) break;
    }
    const double train_s = now_seconds() - t0;
    streams.end();
    totals.reduce();
    // Every rank evaluates and checkpoints with rank 0's buffers, as after a DDP forward.
    if (world > 1 && !buffers.empty()) dist::broadcast_buffers(buffers);

    Logs logs;
    logs["loss"] = totals.loss();
    if (totals.scored > 0) logs["accuracy"] = totals.accuracy();
    if (options.validation) {
      options.validation->set_epoch(epoch);
      const EvalResult r = evaluate(model, *options.validation,
                                    options.validation_loss ? options.validation_loss : loss);
      logs["val_loss"] = r.loss;
      if (!std::isnan(r.accuracy)) logs["val_accuracy"] = r.accuracy;
    }
    logs["lr"] = lr;
    logs["seconds"] = now_seconds() - t0;
    logs["samples_per_second"] = train_s > 0 ? static_cast<double>(totals.samples) / train_s : kNaN;
    if (world > 1) logs["allreduce_seconds"] = dist::comm_stats().seconds - comm0;

    // Schedulers step before the callbacks, so a checkpoint written in on_epoch_end holds the
    // learning rate of the next epoch.
    if (options.scheduler) options.scheduler->step();
    if (options.plateau)
      options.plateau->step(options.validation ? logs["val_loss"] : logs["loss"]);

    state.logs = logs;
    for (Callback* cb : callbacks) cb->on_epoch_end(state, epoch, logs);
  }
  for (Callback* cb : callbacks) cb->on_train_end(state);
  return history;
}

}  // namespace soma::train
