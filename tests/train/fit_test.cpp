// train::fit and train::evaluate end to end on small synthetic problems: learning a separable
// problem, logs and schedulers, stopping from callbacks, divergence errors (NaN input, huge
// learning rate, NaN gradient) that leave the weights as after the last good step, evaluate()
// against a direct computation, EarlyStopping on data whose validation loss rises,
// ProgressBar output, and exact resume from a checkpoint with shuffle and dropout on.
#include "soma/train/fit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "soma/data/dataloader.h"
#include "soma/data/dataset.h"
#include "soma/io/checkpoint.h"
#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;
namespace optim = soma::optim;
namespace data = soma::data;
namespace train = soma::train;
namespace fs = std::filesystem;
using soma::Tensor;

const train::LossFn kCrossEntropy = [](const Tensor& out, const Tensor& y) {
  return F::cross_entropy(out, y);
};

// Three Gaussian blobs in 2-D (centres (+-3, 0), (0, 3)), std 0.5: separable.
struct Blobs {
  Tensor x, y;
};
Blobs make_blobs(int64_t n, uint64_t seed) {
  soma::manual_seed(seed);
  Tensor x = soma::randn({n, 2}) * 0.5;
  std::vector<int64_t> labels(static_cast<size_t>(n));
  float* px = x.data<float>();
  const float centres[3][2] = {{-3, 0}, {3, 0}, {0, 3}};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    labels[static_cast<size_t>(i)] = c;
    px[2 * i] += centres[c][0];
    px[2 * i + 1] += centres[c][1];
  }
  return {x, soma::tensor(labels)};
}

nn::Sequential mlp(double dropout = 0.0) {
  nn::Sequential m(nn::Linear(2, 16), nn::ReLU());
  if (dropout > 0) m.push_back(nn::Dropout(dropout));
  m.push_back(nn::Linear(16, 3));
  return m;
}

// Bitwise copy of every tensor of a state dict.
std::vector<std::vector<float>> weights(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (auto& [name, t] : m.state_dict()) out.push_back(t.to_vector<float>());
  return out;
}
bool bitwise_equal(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}
bool all_finite(const nn::Module& m) {
  for (auto& w : weights(m))
    for (float v : w)
      if (!std::isfinite(v)) return false;
  return true;
}

struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("soma_fit_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

TEST(Fit, LearnsSeparableProblem) {
  Blobs tr = make_blobs(300, 1), va = make_blobs(90, 2);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::Adam opt(model.parameters(), {.lr = 0.05});
  data::DataLoader train_loader(data::TensorDataset(tr.x, tr.y),
                                {.batch_size = 32, .shuffle = true, .seed = 3});
  data::DataLoader val_loader(data::TensorDataset(va.x, va.y), {.batch_size = 64});
  train::History h = train::fit(model, opt, kCrossEntropy, train_loader,
                                {.epochs = 15, .validation = &val_loader});
  ASSERT_EQ(h.size(), 15u);
  EXPECT_EQ(h.epochs().front(), 0);
  EXPECT_EQ(h.epochs().back(), 14);
  EXPECT_GT(h["accuracy"].back(), 0.97);
  EXPECT_GT(h["val_accuracy"].back(), 0.97);
  EXPECT_LT(h["loss"].back(), h["loss"].front());
  EXPECT_LT(h["val_loss"].back(), 0.2);
  for (const char* key : {"lr", "seconds", "samples_per_second"}) EXPECT_TRUE(h.contains(key));
  EXPECT_EQ(h["lr"].front(), 0.05);
  EXPECT_TRUE(model.is_training());  // the mode it had on entry
  EXPECT_EQ(train_loader.epoch(), 15);

  train::EvalResult r = train::evaluate(model, val_loader, kCrossEntropy);
  EXPECT_EQ(r.samples, 90);
  EXPECT_DOUBLE_EQ(r.accuracy, h["val_accuracy"].back());
  EXPECT_DOUBLE_EQ(r.loss, h["val_loss"].back());
}

// FitOptions::validation_loss: val_loss is that loss (here the plain cross-entropy), not the
// label-smoothed training loss, which is larger on a confident model.
TEST(Fit, ValidationLossOptionIsWhatValLossReports) {
  Blobs tr = make_blobs(300, 1), va = make_blobs(90, 2);
  const train::LossFn smoothed = [](const Tensor& out, const Tensor& y) {
    return F::cross_entropy(out, y, {.label_smoothing = 0.2});
  };
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::Adam opt(model.parameters(), {.lr = 0.05});
  data::DataLoader train_loader(data::TensorDataset(tr.x, tr.y),
                                {.batch_size = 32, .shuffle = true, .seed = 3});
  data::DataLoader val_loader(data::TensorDataset(va.x, va.y), {.batch_size = 64});
  train::History h =
      train::fit(model, opt, smoothed, train_loader,
                 {.epochs = 5, .validation = &val_loader, .validation_loss = kCrossEntropy});
  const train::EvalResult plain = train::evaluate(model, val_loader, kCrossEntropy);
  const train::EvalResult smooth = train::evaluate(model, val_loader, smoothed);
  EXPECT_DOUBLE_EQ(h["val_loss"].back(), plain.loss);
  EXPECT_GT(smooth.loss, plain.loss + 0.05);
}

TEST(Fit, RegressionOutputHasNoAccuracyAndSchedulersStep) {
  soma::manual_seed(0);
  Tensor x = soma::randn({64, 3});
  Tensor y = soma::matmul(x, soma::tensor({1.f, -2.f, 0.5f}, {3, 1}));
  nn::Linear model(3, 1);
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  optim::StepLR sched(opt, {.step_size = 1, .gamma = 0.5});
  data::DataLoader loader(data::TensorDataset(x, y), {.batch_size = 16});
  train::History h =
      train::fit(model, opt, [](const Tensor& o, const Tensor& t) { return F::mse_loss(o, t); },
                 loader, {.epochs = 3, .scheduler = &sched});
  EXPECT_FALSE(h.contains("accuracy"));
  EXPECT_FALSE(h.contains("val_loss"));
  EXPECT_EQ(h["lr"], (std::vector<double>{0.1, 0.05, 0.025}));
  EXPECT_DOUBLE_EQ(opt.lr(), 0.0125);

  // ReduceLROnPlateau gets the training loss without validation; a loss that cannot go down
  // (lr 1e-6, threshold 50%) cuts the rate after `patience` epochs.
  optim::SGD opt2(model.parameters(), {.lr = 1e-6});
  optim::ReduceLROnPlateau plateau(opt2, {.factor = 0.5, .patience = 0, .threshold = 0.5});
  train::History h2 =
      train::fit(model, opt2, [](const Tensor& o, const Tensor& t) { return F::mse_loss(o, t); },
                 loader, {.epochs = 3, .plateau = &plateau});
  // Epoch 0 improves on +inf; epoch 1 does not (by 50%), so epoch 2 runs at half the rate.
  EXPECT_EQ(h2["lr"], (std::vector<double>{1e-6, 1e-6, 5e-7}));
}

TEST(Fit, CallbacksSeeStateAndCanStop) {
  Blobs tr = make_blobs(60, 1);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 16});
  std::string trace;
  auto cb = std::make_shared<train::LambdaCallback>(train::LambdaCallbackOptions{
      .on_train_begin =
          [&](train::TrainState& s) {
            EXPECT_EQ(s.batches_per_epoch, 4);
            EXPECT_EQ(s.samples_per_epoch, 60);
            EXPECT_EQ(s.epochs, 5);
            trace += "T";
          },
      .on_epoch_begin = [&](train::TrainState&, int64_t e) { trace += "E" + std::to_string(e); },
      .on_batch_end =
          [&](train::TrainState& s, int64_t b, double loss) {
            EXPECT_TRUE(std::isfinite(loss));
            EXPECT_EQ(s.samples_seen, std::min<int64_t>(16 * (b + 1), 60));
            EXPECT_FALSE(std::isnan(s.running_accuracy));
            trace += "b" + std::to_string(b);
            if (s.epoch == 1 && b == 1) s.stop_training = true;  // mid-epoch stop
          },
      .on_epoch_end =
          [&](train::TrainState& s, int64_t e, const train::Logs& logs) {
            EXPECT_EQ(s.logs, logs);
            trace += "e" + std::to_string(e);
          },
      .on_train_end = [&](train::TrainState&) { trace += "X"; }});
  train::History h =
      train::fit(model, opt, kCrossEntropy, loader, {.epochs = 5, .callbacks = {cb}});
  EXPECT_EQ(trace, "TE0b0b1b2b3e0E1b0b1e1X");
  EXPECT_EQ(h.size(), 2u);
}

// Trains `model` on blobs with sample 25 (batch 3 of every epoch, batch size 10) set to NaN
// after the first epoch; returns the error message and checks the weights are those after the
// last good step (epoch 2, batch 2).
std::string fit_with_nan_after_first_epoch(nn::Module& model) {
  Blobs tr = make_blobs(60, 1);
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 10});
  std::vector<std::vector<float>> last_good;
  auto cb = std::make_shared<train::LambdaCallback>(train::LambdaCallbackOptions{
      .on_batch_end = [&](train::TrainState& s, int64_t, double) { last_good = weights(s.model); },
      .on_epoch_end =
          [&](train::TrainState&, int64_t e, const train::Logs&) {
            if (e == 0) tr.x.data<float>()[2 * 25] = std::nanf("");
          }});
  std::string msg;
  try {
    train::fit(model, opt, kCrossEntropy, loader, {.epochs = 5, .callbacks = {cb}});
    ADD_FAILURE() << "expected soma::Error";
  } catch (const soma::Error& e) {
    msg = e.what();
  }
  EXPECT_TRUE(all_finite(model));
  EXPECT_TRUE(bitwise_equal(weights(model), last_good));
  return msg;
}

TEST(Fit, NanInputThrowsNamingEpochAndBatchWeightsUntouched) {
  soma::manual_seed(0);
  nn::Linear linear(2, 3);  // the NaN reaches the loss
  std::string msg = fit_with_nan_after_first_epoch(linear);
  EXPECT_NE(msg.find("fit: non-finite loss (nan) at epoch 2, batch 3"), std::string::npos) << msg;

  // Through an MLP the NaN is caught too (by the loss or, where an op drops NaN from the
  // forward value, by the gradient check), at the same place.
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  msg = fit_with_nan_after_first_epoch(model);
  EXPECT_NE(msg.find("fit: non-finite"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at epoch 2, batch 3"), std::string::npos) << msg;
}

TEST(Fit, HugeLearningRateThrowsWithFiniteWeights) {
  Blobs tr = make_blobs(60, 1);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::SGD opt(model.parameters(), {.lr = 1e30});
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 10});
  try {
    train::fit(model, opt, kCrossEntropy, loader, {.epochs = 5});
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fit: non-finite"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at epoch 1, batch "), std::string::npos) << msg;
  }
  EXPECT_TRUE(all_finite(model));
}

TEST(Fit, NanGradientThrowsNamingParameter) {
  Blobs tr = make_blobs(30, 1);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  const std::vector<std::vector<float>> before = weights(model);
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 10});
  // sqrt(o - o) is 0 (a finite loss) but its gradient is infinite.
  auto loss = [](const Tensor& o, const Tensor& y) {
    return F::cross_entropy(o, y) + (o - o.detach()).sqrt().sum();
  };
  try {
    train::fit(model, opt, loss, loader, {.epochs = 2});
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fit: non-finite gradient of \""), std::string::npos) << msg;
    EXPECT_NE(msg.find("at epoch 1, batch 1"), std::string::npos) << msg;
  }
  EXPECT_TRUE(bitwise_equal(weights(model), before));  // no step was taken
}

TEST(Fit, BadArguments) {
  Blobs tr = make_blobs(30, 1);
  nn::Sequential model = mlp();
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 10});
  EXPECT_THROW(train::fit(model, opt, kCrossEntropy, loader, {.epochs = 2, .initial_epoch = 3}),
               soma::Error);
  EXPECT_THROW(train::fit(model, opt, kCrossEntropy, loader, {.max_grad_norm = -1}), soma::Error);
  EXPECT_THROW(train::fit(model, opt, train::LossFn(), loader), soma::Error);
  // A loss that is not a scalar.
  EXPECT_THROW(train::fit(model, opt,
                          [](const Tensor& o, const Tensor& y) {
                            return F::cross_entropy(o, y, {.reduction = nn::Reduction::None});
                          },
                          loader, {.epochs = 1}),
               soma::Error);
}

TEST(Fit, GradientClippingBoundsTheStep) {
  // One batch of SGD with lr 1 and max_grad_norm 1e-3: no weight moves by more than 1e-3.
  Blobs tr = make_blobs(30, 1);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::SGD opt(model.parameters(), {.lr = 1.0});
  const auto before = weights(model);
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 30});
  train::fit(model, opt, kCrossEntropy, loader, {.epochs = 1, .max_grad_norm = 1e-3});
  const auto after = weights(model);
  double sq = 0;
  for (size_t i = 0; i < before.size(); ++i)
    for (size_t j = 0; j < before[i].size(); ++j)
      sq += std::pow(double(after[i][j]) - before[i][j], 2);
  EXPECT_LE(std::sqrt(sq), 1.001e-3);
  EXPECT_GT(std::sqrt(sq), 0.5e-3);
}

TEST(FitEvaluate, MatchesDirectComputation) {
  Blobs va = make_blobs(50, 4);
  soma::manual_seed(0);
  nn::Sequential model = mlp(/*dropout=*/0.5);  // eval mode must switch dropout off
  data::DataLoader loader(data::TensorDataset(va.x, va.y), {.batch_size = 7});  // last: 1
  train::EvalResult r = train::evaluate(model, loader, kCrossEntropy);
  EXPECT_TRUE(model.is_training());

  model.eval();
  soma::NoGradGuard g;
  Tensor out = model.forward(va.x);
  const double direct = F::cross_entropy(out, va.y).item<float>();
  EXPECT_EQ(r.samples, 50);
  EXPECT_NEAR(r.loss, direct, 1e-6 * std::abs(direct));
  EXPECT_DOUBLE_EQ(r.accuracy, train::accuracy(out, va.y));

  // Regression outputs: accuracy is NaN.
  nn::Linear reg(2, 1);
  data::DataLoader rl(data::TensorDataset(va.x, soma::zeros({50, 1})), {.batch_size = 16});
  train::EvalResult rr =
      train::evaluate(reg, rl, [](const Tensor& o, const Tensor& t) { return F::mse_loss(o, t); });
  EXPECT_TRUE(std::isnan(rr.accuracy));
  EXPECT_GT(rr.loss, 0);
}

TEST(EarlyStopping, StopsWhenValidationLossRisesAndRestoresBest) {
  // Validation labels are the training labels shifted by one class: the better the model
  // fits the training set, the higher its validation loss.
  Blobs tr = make_blobs(90, 1);
  std::vector<int64_t> shifted = tr.y.to_vector<int64_t>();
  for (auto& c : shifted) c = (c + 1) % 3;
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::Adam opt(model.parameters(), {.lr = 0.05});
  data::DataLoader train_loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 30});
  data::DataLoader val_loader(data::TensorDataset(tr.x, soma::tensor(shifted)), {.batch_size = 90});
  std::vector<std::vector<std::vector<float>>> per_epoch;
  auto snap = std::make_shared<train::LambdaCallback>(train::LambdaCallbackOptions{
      .on_epoch_end = [&](train::TrainState& s, int64_t, const train::Logs&) {
        per_epoch.push_back(weights(s.model));
      }});
  auto es = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions{.patience = 2});
  train::History h = train::fit(model, opt, kCrossEntropy, train_loader,
                                {.epochs = 20, .validation = &val_loader, .callbacks = {snap, es}});
  const std::vector<double>& vl = h["val_loss"];
  // The best epoch is the argmin of val_loss, and training stopped `patience` epochs later.
  int64_t best = 0;
  for (size_t i = 1; i < vl.size(); ++i)
    if (vl[i] < vl[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  EXPECT_EQ(es->best_epoch(), best);
  EXPECT_EQ(es->stopped_epoch(), best + 2);
  EXPECT_EQ(static_cast<int64_t>(h.size()), best + 3);
  EXPECT_LT(h.size(), 20u);
  EXPECT_TRUE(bitwise_equal(weights(model), per_epoch[static_cast<size_t>(best)]));
}

TEST(ProgressBar, NonTerminalPrintsOneLinePerEpoch) {
  Blobs tr = make_blobs(90, 1), va = make_blobs(30, 2);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::Adam opt(model.parameters(), {.lr = 0.05});
  data::DataLoader train_loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 16});
  data::DataLoader val_loader(data::TensorDataset(va.x, va.y), {.batch_size = 16});
  std::ostringstream out;
  auto bar = std::make_shared<train::ProgressBar>(train::ProgressBarOptions{.out = &out});
  train::fit(model, opt, kCrossEntropy, train_loader,
             {.epochs = 3, .validation = &val_loader, .callbacks = {bar}});
  const std::string text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  std::istringstream lines(text);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_EQ(line.rfind("Epoch " + std::to_string(n) + "/3 6/6  loss ", 0), 0u) << line;
    for (const char* field : {"  acc ", "  val_loss ", "  val_acc ", " samples/s"})
      EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
    EXPECT_EQ(line.find("ETA"), std::string::npos) << line;
  }
  EXPECT_EQ(n, 3);
}

TEST(ProgressBar, TerminalRedrawsInPlace) {
  Blobs tr = make_blobs(90, 1);
  soma::manual_seed(0);
  nn::Sequential model = mlp();
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  data::DataLoader loader(data::TensorDataset(tr.x, tr.y), {.batch_size = 16});
  std::ostringstream out;
  auto bar = std::make_shared<train::ProgressBar>(
      train::ProgressBarOptions{.out = &out, .redraw = true, .width = 10, .redraw_interval_s = 0});
  train::fit(model, opt, kCrossEntropy, loader, {.epochs = 2, .callbacks = {bar}});
  const std::string text = out.str();
  EXPECT_NE(text.find("\rEpoch 1/2 [>         ] 1/6  loss "), std::string::npos) << text;
  EXPECT_NE(text.find("\rEpoch 1/2 [==========] 6/6  loss "), std::string::npos) << text;
  EXPECT_NE(text.find("ETA "), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);

  std::ostringstream quiet;
  auto off = std::make_shared<train::ProgressBar>(
      train::ProgressBarOptions{.enabled = false, .out = &quiet});
  train::fit(model, opt, kCrossEntropy, loader, {.epochs = 1, .callbacks = {off}});
  EXPECT_TRUE(quiet.str().empty());
}

// Resume: two runs of the same model (dropout on) over a shuffled loader, with Adam and a
// StepLR schedule. One trains 4 epochs; the other trains 2, writes a full checkpoint through
// ModelCheckpoint, and a fresh set of objects (model initialised from another seed) loads it
// and trains epochs 2..3. The weights must be equal bit for bit.
struct ResumeRun {
  Blobs tr = make_blobs(100, 1), va = make_blobs(30, 2);
  nn::Sequential model;
  optim::Adam opt;
  optim::StepLR sched;
  data::DataLoader train_loader, val_loader;
  explicit ResumeRun(uint64_t init_seed)
      : model((soma::manual_seed(init_seed), mlp(/*dropout=*/0.3))),
        opt(model.parameters(), {.lr = 0.01}),
        sched(opt, {.step_size = 1, .gamma = 0.7}),
        train_loader(data::TensorDataset(tr.x, tr.y),
                     {.batch_size = 16, .shuffle = true, .seed = 11}),
        val_loader(data::TensorDataset(va.x, va.y), {.batch_size = 16}) {}
  train::History fit(int64_t initial_epoch, int64_t epochs,
                     std::vector<std::shared_ptr<train::Callback>> callbacks = {}) {
    return train::fit(model, opt, kCrossEntropy, train_loader,
                      {.epochs = epochs,
                       .validation = &val_loader,
                       .callbacks = std::move(callbacks),
                       .scheduler = &sched,
                       .initial_epoch = initial_epoch});
  }
};

TEST(Resume, CheckpointAndContinueIsBitwiseEqual) {
  TempDir dir;
  ResumeRun full(5);
  soma::manual_seed(123);
  train::History hf = full.fit(0, 4);

  std::vector<std::vector<float>> interrupted_weights;
  {
    ResumeRun first(5);
    soma::manual_seed(123);
    auto ckpt = std::make_shared<train::ModelCheckpoint>(train::ModelCheckpointOptions{
        .path = dir.file("ckpt.safetensors"), .full_checkpoint = true});
    first.fit(0, 2, {ckpt});
  }
  soma::io::Checkpoint c = soma::io::load_checkpoint(dir.file("ckpt.safetensors"));
  ASSERT_EQ(c.epoch, 2);

  ResumeRun second(999);  // other initial weights: all must come from the checkpoint
  for (int64_t e = 0; e < c.epoch; ++e) second.sched.step();  // the scheduler recipe (fit.h)
  second.model.load_state_dict(c.model);
  second.opt.load_state_dict(c.optimizer);
  soma::set_rng_state(c.rng_state);
  train::History hs = second.fit(c.epoch, 4);
  ASSERT_EQ(hs.size(), 2u);
  EXPECT_EQ(hs.epochs(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(hs["loss"][1], hf["loss"][3]);
  EXPECT_EQ(hs["lr"][1], hf["lr"][3]);
  EXPECT_TRUE(bitwise_equal(weights(second.model), weights(full.model)));

  // Control: without the RNG state the dropout masks differ, and so do the weights.
  ResumeRun third(999);
  for (int64_t e = 0; e < c.epoch; ++e) third.sched.step();
  third.model.load_state_dict(c.model);
  third.opt.load_state_dict(c.optimizer);
  soma::manual_seed(77);
  third.fit(c.epoch, 4);
  EXPECT_FALSE(bitwise_equal(weights(third.model), weights(full.model)));
}

}  // namespace
