// The state a run carries between epochs outside the model and the optimizer: every LR
// scheduler's, ReduceLROnPlateau's (best, bad epochs, cooldown) and EarlyStopping's (best value,
// best weights, wait). Saved after epoch k and loaded into fresh objects, each continues exactly
// as the uninterrupted object does; a control without the state shows that it matters.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "soma/data/dataloader.h"
#include "soma/data/dataset.h"
#include "soma/io/checkpoint.h"
#include "soma/soma.h"
#include "soma/train/fit.h"

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;
namespace optim = soma::optim;
namespace data = soma::data;
namespace train = soma::train;
using soma::Tensor;

using MakeScheduler = std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)>;

struct Case {
  const char* name;
  MakeScheduler make;
};

std::vector<Case> scheduler_cases() {
  return {
      {"StepLR",
       [](optim::Optimizer& o) {
         return std::make_unique<optim::StepLR>(o,
                                                optim::StepLROptions{.step_size = 3, .gamma = 0.5});
       }},
      {"MultiStepLR",
       [](optim::Optimizer& o) {
         return std::make_unique<optim::MultiStepLR>(
             o, optim::MultiStepLROptions{.milestones = {2, 6, 7}, .gamma = 0.3});
       }},
      {"ExponentialLR",
       [](optim::Optimizer& o) {
         return std::make_unique<optim::ExponentialLR>(o,
                                                       optim::ExponentialLROptions{.gamma = 0.8});
       }},
      {"CosineAnnealingLR",
       [](optim::Optimizer& o) {
         return std::make_unique<optim::CosineAnnealingLR>(
             o, optim::CosineAnnealingLROptions{.T_max = 5, .eta_min = 0.001});
       }},
      {"LinearLR",
       [](optim::Optimizer& o) {
         return std::make_unique<optim::LinearLR>(
             o, optim::LinearLROptions{.start_factor = 0.25, .total_iters = 6});
       }},
  };
}

TEST(SchedulerState, SaveAfterKStepsThenContinueEqualsUninterrupted) {
  for (const Case& c : scheduler_cases()) {
    for (int64_t k : {1, 4, 7}) {
      Tensor p = soma::zeros({2}).requires_grad_(true);
      optim::SGD full_opt({p}, {.lr = 0.1});
      auto full = c.make(full_opt);
      std::vector<double> want;
      for (int e = 0; e < 12; ++e) {
        want.push_back(full_opt.lr());
        full->step();
      }

      optim::SGD a_opt({p}, {.lr = 0.1});
      auto a = c.make(a_opt);
      for (int64_t e = 0; e < k; ++e) a->step();
      const optim::SchedulerState saved = a->state_dict();
      const optim::OptimizerState saved_opt = a_opt.state_dict();

      optim::SGD b_opt({p}, {.lr = 0.1});
      auto b = c.make(b_opt);
      b->load_state_dict(saved);
      b_opt.load_state_dict(saved_opt);
      EXPECT_EQ(b->last_epoch(), k) << c.name;
      for (int64_t e = k; e < 12; ++e) {
        EXPECT_EQ(b_opt.lr(), want[static_cast<size_t>(e)])
            << c.name << " k " << k << " epoch " << e;
        b->step();
      }
    }
  }
}

TEST(SchedulerState, ErrorsNameTheKey) {
  Tensor p = soma::zeros({2}).requires_grad_(true);
  optim::SGD opt({p}, {.lr = 0.1});
  optim::StepLR s(opt, {.step_size = 2});
  optim::SchedulerState st = s.state_dict();
  st.erase("step_count");
  try {
    s.load_state_dict(st);
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing key \"step_count\""), std::string::npos)
        << e.what();
  }
  st = s.state_dict();
  st["last_epoch"] = soma::full({}, 3.0, soma::kFloat64);
  EXPECT_THROW(s.load_state_dict(st), soma::Error);
  st = s.state_dict();
  st.erase("base_lrs.0");
  st.erase("last_lr.0");
  try {
    s.load_state_dict(st);
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("0 parameter groups, the optimizer 1"), std::string::npos)
        << e.what();
  }
  optim::ReduceLROnPlateau plateau(opt);
  optim::SchedulerState ps = plateau.state_dict();
  ps["best"] = soma::full({}, std::nan(""), soma::kFloat64);
  EXPECT_THROW(plateau.load_state_dict(ps), soma::Error);
}

// A metric sequence with improvements, plateaus and cuts (patience 2, cooldown 1).
const std::vector<double> kMetrics = {1.0,  0.9, 0.95, 0.93, 0.92, 0.91, 0.95, 0.97,
                                      0.99, 0.5, 0.6,  0.7,  0.8,  0.9,  1.0};

TEST(SchedulerState, PlateauSaveAndContinueEqualsUninterrupted) {
  const optim::ReduceLROnPlateauOptions o{.factor = 0.5, .patience = 2, .cooldown = 1};
  Tensor p = soma::zeros({2}).requires_grad_(true);
  optim::SGD full_opt({p}, {.lr = 1.0});
  optim::ReduceLROnPlateau full(full_opt, o);
  std::vector<double> want;
  for (double m : kMetrics) {
    full.step(m);
    want.push_back(full_opt.lr());
  }
  int checked_mid_streak = 0;
  for (size_t k = 1; k < kMetrics.size(); ++k) {
    optim::SGD a_opt({p}, {.lr = 1.0});
    optim::ReduceLROnPlateau a(a_opt, o);
    for (size_t e = 0; e < k; ++e) a.step(kMetrics[e]);
    if (a.num_bad_epochs() > 0 || a.cooldown_counter() > 0) ++checked_mid_streak;

    optim::SGD b_opt({p}, {.lr = 1.0});
    optim::ReduceLROnPlateau b(b_opt, o);
    b.load_state_dict(a.state_dict());
    b_opt.load_state_dict(a_opt.state_dict());
    optim::SGD c_opt({p}, {.lr = 1.0});  // control: the rate restored, the plateau state not
    optim::ReduceLROnPlateau c(c_opt, o);
    c_opt.load_state_dict(a_opt.state_dict());
    bool control_differs = false;
    for (size_t e = k; e < kMetrics.size(); ++e) {
      b.step(kMetrics[e]);
      c.step(kMetrics[e]);
      EXPECT_EQ(b_opt.lr(), want[e]) << "saved after " << k << ", epoch " << e;
      control_differs = control_differs || c_opt.lr() != want[e];
    }
    if (k == 7) {
      EXPECT_TRUE(control_differs) << "the state after 7 epochs should matter";
    }
  }
  EXPECT_GE(checked_mid_streak, 5);  // saved inside a bad streak or a cooldown
}

// Early stopping inside fit: validation labels are the training labels shifted by one class,
// so the validation loss rises once the model fits; the best epoch comes early and training
// stops `patience` epochs later.
struct Blobs {
  Tensor x, y, shifted;
};
Blobs blobs() {
  soma::manual_seed(1);
  Tensor x = soma::randn({90, 2}) * 0.5;
  std::vector<int64_t> labels(90), shifted(90);
  float* px = x.data<float>();
  const float centres[3][2] = {{-3, 0}, {3, 0}, {0, 3}};
  for (int64_t i = 0; i < 90; ++i) {
    const int64_t c = i % 3;
    labels[static_cast<size_t>(i)] = c;
    shifted[static_cast<size_t>(i)] = (c + 1) % 3;
    px[2 * i] += centres[c][0];
    px[2 * i + 1] += centres[c][1];
  }
  return {x, soma::tensor(labels), soma::tensor(shifted)};
}

std::vector<std::vector<float>> weights(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (auto& [name, t] : m.state_dict()) out.push_back(t.to_vector<float>());
  return out;
}

struct StopRun {
  Blobs b = blobs();
  nn::Sequential model;
  optim::Adam opt;
  data::DataLoader train_loader, val_loader;
  std::shared_ptr<train::EarlyStopping> es;
  StopRun()
      : model((soma::manual_seed(0),
               nn::Sequential(nn::Linear(2, 16), nn::ReLU(), nn::Dropout(0.2), nn::Linear(16, 3)))),
        opt(model.parameters(), {.lr = 0.05}),
        train_loader(data::TensorDataset(b.x, b.y), {.batch_size = 30, .shuffle = true, .seed = 4}),
        val_loader(data::TensorDataset(b.x, b.shifted), {.batch_size = 90}),
        es(std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions{.patience = 3})) {}
  train::History fit(int64_t from, int64_t to) {
    return train::fit(
        model, opt, [](const Tensor& o, const Tensor& y) { return F::cross_entropy(o, y); },
        train_loader,
        {.epochs = to, .validation = &val_loader, .callbacks = {es}, .initial_epoch = from});
  }
};

TEST(EarlyStoppingState, ResumedAfterTheBestEpochStopsAndRestoresAsUninterrupted) {
  soma::manual_seed(9);
  StopRun full;
  soma::manual_seed(9);
  full.fit(0, 30);
  const int64_t best = full.es->best_epoch(), stopped = full.es->stopped_epoch();
  ASSERT_GE(stopped, 0) << "the uninterrupted run must stop early for this test to mean much";
  ASSERT_LT(best + 1, stopped);
  const int64_t k = best + 1;  // interrupted after the best epoch, before the stop

  StopRun a;
  soma::manual_seed(9);
  a.fit(0, k);
  EXPECT_EQ(a.es->stopped_epoch(), -1);
  const nn::StateDict saved = a.es->state_dict();
  EXPECT_EQ(saved.at("wait").item<int64_t>(), a.es->wait());
  EXPECT_EQ(saved.at("best_epoch").item<int64_t>(), best);
  // fit restored the best weights at its end; the checkpoint holds the last epoch's, as
  // soma train's per-epoch checkpoint does: take them from a's epoch-end state instead.
  soma::io::Checkpoint ck;
  {
    StopRun again;
    soma::manual_seed(9);
    auto grab = std::make_shared<train::LambdaCallback>(train::LambdaCallbackOptions{
        .on_epoch_end = [&](train::TrainState& s, int64_t e, const train::Logs&) {
          if (e + 1 == k) {
            ck.model = s.model.state_dict();
            for (auto& [n, t] : ck.model) t = t.detach().clone();
            ck.optimizer = s.optimizer.state_dict();
            for (auto& [n, t] : ck.optimizer) t = t.detach().clone();
            ck.rng_state = soma::get_rng_state();
          }
        }});
    train::fit(again.model, again.opt,
               [](const Tensor& o, const Tensor& y) { return F::cross_entropy(o, y); },
               again.train_loader,
               {.epochs = k, .validation = &again.val_loader, .callbacks = {again.es, grab}});
  }

  auto resume = [&](bool with_state) {
    auto r = std::make_unique<StopRun>();
    r->model.load_state_dict(ck.model);
    r->opt.load_state_dict(ck.optimizer);
    if (with_state) r->es->load_state_dict(saved);
    soma::set_rng_state(ck.rng_state);
    r->fit(k, 30);
    return r;
  };
  auto resumed = resume(true);
  EXPECT_EQ(resumed->es->stopped_epoch(), stopped);
  EXPECT_EQ(resumed->es->best_epoch(), best);
  EXPECT_EQ(resumed->es->best(), full.es->best());
  const auto w = weights(resumed->model), want = weights(full.model);
  ASSERT_EQ(w.size(), want.size());
  for (size_t i = 0; i < w.size(); ++i)
    EXPECT_EQ(std::memcmp(w[i].data(), want[i].data(), w[i].size() * sizeof(float)), 0) << i;

  // Control: without early stopping's state the resumed run restores other weights.
  auto control = resume(false);
  bool differs = control->es->stopped_epoch() != stopped;
  const auto cw = weights(control->model);
  for (size_t i = 0; i < cw.size(); ++i)
    differs = differs || std::memcmp(cw[i].data(), want[i].data(), cw[i].size() * sizeof(float));
  EXPECT_TRUE(differs);
}

TEST(EarlyStoppingState, ErrorsNameTheKeyAndStateRoundTripsThroughACheckpoint) {
  train::EarlyStopping es(train::EarlyStoppingOptions{.patience = 2});
  nn::StateDict s = es.state_dict();
  s.erase("wait");
  try {
    es.load_state_dict(s);
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing key \"wait\""), std::string::npos) << e.what();
  }
  s = es.state_dict();
  s["best"] = soma::zeros({2}, soma::kFloat64);
  EXPECT_THROW(es.load_state_dict(s), soma::Error);

  // "state." tensors survive a checkpoint file.
  s = es.state_dict();
  s["best_weights.0.weight"] = soma::randn({3, 2});
  soma::io::Checkpoint ck;
  for (auto& [k, t] : s) ck.state["early_stopping." + k] = t;
  const std::string path = testing::TempDir() + "/resume_state_ckpt.safetensors";
  soma::io::save_checkpoint(path, ck);
  soma::io::Checkpoint back = soma::io::load_checkpoint(path);
  ASSERT_EQ(back.state.size(), ck.state.size());
  for (auto& [k, t] : ck.state) {
    ASSERT_TRUE(back.state.count(k)) << k;
    EXPECT_EQ(back.state.at(k).dtype(), t.dtype()) << k;
    EXPECT_EQ(back.state.at(k).shape(), t.shape()) << k;
  }
  EXPECT_EQ(back.state.at("early_stopping.best").item<double>(), es.best());
  std::remove(path.c_str());
}

}  // namespace
