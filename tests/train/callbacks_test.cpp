// train callbacks driven directly with synthetic logs: History, EarlyStopping (Keras's
// algorithm on a hand-made val_loss sequence, best-weight restore), ModelCheckpoint
// (save_best_only), CSVLogger (content, append) and ProgressBar's formatting helpers.
#include "soma/train/callbacks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "soma/io/checkpoint.h"
#include "soma/io/file.h"
#include "soma/io/safetensors.h"
#include "soma/nn/serialize.h"
#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace train = soma::train;
namespace fs = std::filesystem;
using soma::Tensor;
using train::Logs;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("soma_train_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// A model and an optimizer for TrainState; the weight is set to a marker value per epoch so a
// test can tell which epoch's weights are in place.
struct Rig {
  nn::Linear model{2, 1};
  soma::optim::SGD opt{model.parameters(), {.lr = 0.1}};
  train::TrainState state{.model = model, .optimizer = opt, .epochs = 10};
  void mark(float v) {
    soma::NoGradGuard g;
    model.weight.fill_(v);
  }
  float marker() const { return model.weight.to_vector<float>()[0]; }
};

// Runs `cb` over epochs with the given monitored values (key `key`), marking the weights with
// the epoch index before each on_epoch_end. Returns the number of epochs run.
int64_t drive(train::Callback& cb, Rig& rig, const std::string& key,
              const std::vector<double>& values) {
  cb.on_train_begin(rig.state);
  int64_t epochs = 0;
  for (size_t e = 0; e < values.size() && !rig.state.stop_training; ++e) {
    rig.state.epoch = static_cast<int64_t>(e);
    cb.on_epoch_begin(rig.state, rig.state.epoch);
    rig.mark(static_cast<float>(e));
    cb.on_epoch_end(rig.state, rig.state.epoch, Logs{{"loss", 1.0}, {key, values[e]}});
    ++epochs;
  }
  cb.on_train_end(rig.state);
  return epochs;
}

TEST(History, RecordsKeysInColumnOrder) {
  train::History h;
  h.record(0, {{"loss", 0.5}, {"val_loss", 0.25}, {"accuracy", 0.75}, {"zeta", 1}});
  h.record(1, {{"loss", 0.125}, {"val_loss", 0.5}, {"accuracy", 1}});
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.epochs(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(h["loss"], (std::vector<double>{0.5, 0.125}));
  EXPECT_EQ(h["val_loss"], (std::vector<double>{0.25, 0.5}));
  EXPECT_EQ(h.keys(), (std::vector<std::string>{"loss", "accuracy", "val_loss", "zeta"}));
  ASSERT_EQ(h["zeta"].size(), 2u);
  EXPECT_EQ(h["zeta"][0], 1);
  EXPECT_TRUE(std::isnan(h["zeta"][1]));  // not logged in epoch 1
  try {
    h["val_accuracy"];
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("val_accuracy"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("loss, accuracy, val_loss, zeta"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(h.to_csv(),
            "epoch,loss,accuracy,val_loss,zeta\n"
            "0,0.5,0.75,0.25,1\n"
            "1,0.125,1,0.5,\n");
  EXPECT_EQ(h.to_json(),
            "{\"epoch\": [0, 1], \"loss\": [0.5, 0.125], \"accuracy\": [0.75, 1], "
            "\"val_loss\": [0.25, 0.5], \"zeta\": [1, null]}");
  // A key that first appears later is NaN before.
  h.record(2, {{"loss", 0.1}, {"lr", 0.01}});
  EXPECT_TRUE(std::isnan(h["lr"][0]));
  EXPECT_EQ(h["lr"][2], 0.01);

  train::History back = train::History::from_csv(h.to_csv());
  EXPECT_EQ(back.to_csv(), h.to_csv());
  EXPECT_THROW(train::History::from_csv("loss\n1\n"), soma::Error);
  EXPECT_THROW(train::History::from_csv("epoch,loss\n0,abc\n"), soma::Error);
  EXPECT_THROW(train::History::from_csv("epoch,loss\n0,1,2\n"), soma::Error);
}

TEST(History, FormatHelpers) {
  EXPECT_EQ(train::detail::thousands(31204.4), "31,204");
  EXPECT_EQ(train::detail::thousands(999), "999");
  EXPECT_EQ(train::detail::thousands(1234567), "1,234,567");
  EXPECT_EQ(train::detail::shortest(0.1), "0.1");
  EXPECT_EQ(train::detail::shortest(kNaN), "nan");
  EXPECT_TRUE(train::detail::minimize(train::Mode::Auto, "val_loss"));
  EXPECT_FALSE(train::detail::minimize(train::Mode::Auto, "val_accuracy"));
  EXPECT_FALSE(train::detail::minimize(train::Mode::Max, "val_loss"));
}

TEST(EarlyStopping, StopsAfterPatienceAndRestoresBest) {
  Rig rig;
  train::EarlyStopping es({.patience = 2});
  // best at epoch 2 (0.6); epochs 3 and 4 do not improve -> wait reaches 2 at epoch 4.
  const int64_t ran = drive(es, rig, "val_loss", {1.0, 0.8, 0.6, 0.7, 0.65, 0.1, 0.05});
  EXPECT_EQ(ran, 5);
  EXPECT_TRUE(rig.state.stop_training);
  EXPECT_EQ(es.stopped_epoch(), 4);
  EXPECT_EQ(es.best_epoch(), 2);
  EXPECT_DOUBLE_EQ(es.best(), 0.6);
  EXPECT_EQ(rig.marker(), 2.0f);  // epoch 2's weights are back
}

TEST(EarlyStopping, MinDeltaModeAndNoRestore) {
  {
    // Improvements smaller than min_delta do not reset the wait.
    Rig rig;
    train::EarlyStopping es({.min_delta = 0.1, .patience = 2});
    EXPECT_EQ(drive(es, rig, "val_loss", {1.0, 0.95, 0.92, 0.5}), 3);
    EXPECT_EQ(es.stopped_epoch(), 2);
    EXPECT_EQ(es.best_epoch(), 0);
    EXPECT_EQ(rig.marker(), 0.0f);
  }
  {
    // "accuracy" is maximised under Mode::Auto; no restore leaves the last weights.
    Rig rig;
    train::EarlyStopping es(
        {.monitor = "val_accuracy", .patience = 1, .restore_best_weights = false});
    EXPECT_EQ(drive(es, rig, "val_accuracy", {0.5, 0.7, 0.6, 0.9}), 3);
    EXPECT_EQ(es.stopped_epoch(), 2);
    EXPECT_EQ(es.best_epoch(), 1);
    EXPECT_EQ(rig.marker(), 2.0f);
  }
  {
    // Explicit Mode::Max on a loss-named key; patience 0 stops at the first non-improvement.
    Rig rig;
    train::EarlyStopping es({.monitor = "score", .patience = 0, .mode = train::Mode::Max});
    EXPECT_EQ(drive(es, rig, "score", {1, 2, 2, 3}), 3);
    EXPECT_EQ(es.best_epoch(), 1);
    EXPECT_EQ(rig.marker(), 1.0f);
  }
  {
    // Never stops when the metric keeps improving; the best (last) weights stay.
    Rig rig;
    train::EarlyStopping es({.patience = 1});
    EXPECT_EQ(drive(es, rig, "val_loss", {3, 2, 1}), 3);
    EXPECT_EQ(es.stopped_epoch(), -1);
    EXPECT_FALSE(rig.state.stop_training);
    EXPECT_EQ(rig.marker(), 2.0f);
  }
  {
    // Training that ends without stopping still gets the best weights back (Keras 3).
    Rig rig;
    train::EarlyStopping es({.patience = 5});
    EXPECT_EQ(drive(es, rig, "val_loss", {3, 1, 2, 2.5}), 4);
    EXPECT_EQ(es.stopped_epoch(), -1);
    EXPECT_EQ(rig.marker(), 1.0f);
  }
}

TEST(EarlyStopping, MissingMonitorIsAnError) {
  Rig rig;
  train::EarlyStopping es;
  es.on_train_begin(rig.state);
  try {
    es.on_epoch_end(rig.state, 0, Logs{{"loss", 1.0}});
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("val_loss"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("validation"), std::string::npos) << e.what();
  }
  EXPECT_THROW(train::EarlyStopping({.patience = -1}), soma::Error);
}

TEST(CallbackModelCheckpoint, SaveBestOnlyWritesOnImprovement) {
  TempDir dir;
  Rig rig;
  train::ModelCheckpoint ckpt(
      {.path = dir.file("model-{epoch}.safetensors"), .save_best_only = true});
  drive(ckpt, rig, "val_loss", {0.5, 0.6, 0.4, 0.4, 0.3});
  EXPECT_EQ(ckpt.saves(), 3);
  EXPECT_EQ(ckpt.last_saved_epoch(), 4);
  EXPECT_DOUBLE_EQ(ckpt.best(), 0.3);
  // {epoch} is 1-based: files for epochs 0, 2, 4 are model-1, -3, -5.
  for (int e = 1; e <= 5; ++e)
    EXPECT_EQ(fs::exists(dir.file("model-" + std::to_string(e) + ".safetensors")), e % 2 == 1)
        << "epoch " << e;
  // What was written is that epoch's weights, readable by soma::load.
  nn::Linear back(2, 1);
  soma::load(back, dir.file("model-3.safetensors"));
  EXPECT_EQ(back.weight.to_vector<float>()[0], 2.0f);
  // No stray temporary files.
  int files = 0;
  for (auto& entry : fs::directory_iterator(dir.path)) (void)entry, ++files;
  EXPECT_EQ(files, 3);
}

TEST(CallbackModelCheckpoint, EveryEpochAndFullCheckpoint) {
  TempDir dir;
  {
    Rig rig;
    train::ModelCheckpoint ckpt({.path = dir.file("last.safetensors")});
    drive(ckpt, rig, "val_loss", {0.5, 0.6, 0.7});
    EXPECT_EQ(ckpt.saves(), 3);
    nn::Linear back(2, 1);
    soma::load(back, dir.file("last.safetensors"));
    EXPECT_EQ(back.weight.to_vector<float>()[0], 2.0f);
  }
  {
    Rig rig;
    train::ModelCheckpoint ckpt({.path = dir.file("ckpt.safetensors"), .full_checkpoint = true});
    drive(ckpt, rig, "val_loss", {0.5, 0.6});
    soma::io::Checkpoint c = soma::io::load_checkpoint(dir.file("ckpt.safetensors"));
    EXPECT_EQ(c.epoch, 2);  // epochs completed
    EXPECT_FALSE(c.rng_state.empty());
    ASSERT_TRUE(c.model.count("weight"));
    EXPECT_EQ(c.model.at("weight").to_vector<float>()[0], 1.0f);
    EXPECT_EQ(c.extra.at("logs.val_loss"), "0.6");
  }
  {
    Rig rig;
    train::ModelCheckpoint ckpt({.path = dir.file("x.safetensors"), .save_best_only = true});
    ckpt.on_train_begin(rig.state);
    EXPECT_THROW(ckpt.on_epoch_end(rig.state, 0, Logs{{"loss", 1.0}}), soma::Error);
  }
}

TEST(CallbackCSVLogger, RewritesWholeFileEachEpochAndAppends) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  Rig rig;
  train::CSVLogger log({.path = path});
  log.on_train_begin(rig.state);
  log.on_epoch_end(rig.state, 0, {{"loss", 0.5}, {"val_loss", 0.75}, {"lr", 0.1}});
  EXPECT_EQ(soma::io::read_file(path), "epoch,loss,val_loss,lr\n0,0.5,0.75,0.1\n");
  log.on_epoch_end(rig.state, 1, {{"loss", 0.25}, {"val_loss", 0.5}, {"lr", 0.1}});
  EXPECT_EQ(soma::io::read_file(path), "epoch,loss,val_loss,lr\n0,0.5,0.75,0.1\n1,0.25,0.5,0.1\n");
  log.on_train_end(rig.state);

  // A resumed run with append keeps the old rows; without append the file starts afresh.
  train::CSVLogger resumed({.path = path, .append = true});
  resumed.on_train_begin(rig.state);
  resumed.on_epoch_end(rig.state, 2, {{"loss", 0.125}, {"val_loss", 0.5}, {"lr", 0.01}});
  EXPECT_EQ(soma::io::read_file(path),
            "epoch,loss,val_loss,lr\n0,0.5,0.75,0.1\n1,0.25,0.5,0.1\n2,0.125,0.5,0.01\n");
  train::CSVLogger fresh({.path = path});
  fresh.on_train_begin(rig.state);
  fresh.on_epoch_end(rig.state, 0, {{"loss", 1}});
  EXPECT_EQ(soma::io::read_file(path), "epoch,loss\n0,1\n");
}

// append checks whether the file exists; a path that cannot be checked (a symlink loop, a
// name too long) let std::filesystem::filesystem_error escape before; now soma::Error.
TEST(CallbackCSVLogger, AppendToAPathThatCannotBeCheckedIsASomaError) {
  TempDir dir;
  std::filesystem::create_symlink("loop", dir.file("loop"));
  Rig rig;
  for (const std::string& path : {dir.file("loop"), dir.file(std::string(300, 'a'))}) {
    train::CSVLogger log({.path = path, .append = true});
    try {
      log.on_train_begin(rig.state);
      ADD_FAILURE() << "no error for " << path;
    } catch (const soma::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("CSVLogger: cannot check whether \"" + path + "\" exists"),
                std::string::npos)
          << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a soma::Error: " << e.what();
    }
  }
}

TEST(CallbackLambda, ForwardsEveryHook) {
  Rig rig;
  std::string trace;
  train::LambdaCallback cb({
      .on_train_begin = [&](train::TrainState&) { trace += "T"; },
      .on_epoch_begin = [&](train::TrainState&, int64_t e) { trace += "E" + std::to_string(e); },
      .on_batch_end = [&](train::TrainState&, int64_t b,
                          double) { trace += "b" + std::to_string(b); },
      .on_epoch_end = [&](train::TrainState&, int64_t e,
                          const Logs&) { trace += "e" + std::to_string(e); },
  });
  cb.on_train_begin(rig.state);
  cb.on_epoch_begin(rig.state, 0);
  cb.on_batch_end(rig.state, 0, 1.0);
  cb.on_epoch_end(rig.state, 0, {});
  cb.on_train_end(rig.state);  // no function: nothing happens
  EXPECT_EQ(trace, "TE0b0e0");
}

}  // namespace
