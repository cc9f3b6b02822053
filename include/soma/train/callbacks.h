// train callbacks: hooks that train::fit calls around epochs and batches, and the standard ones
// (History, EarlyStopping, ModelCheckpoint, CSVLogger, ProgressBar), with Keras's semantics.
//
// fit calls, in order:
//   on_train_begin(state)
//   for each epoch e in [initial_epoch, epochs):          e is 0-based (shown as e + 1)
//     on_epoch_begin(state, e)
//     for each batch b: ...step...; on_batch_end(state, b, loss)   b is 0-based
//     (validation, scheduler steps)
//     on_epoch_end(state, e, logs)
//   on_train_end(state)
// Setting state.stop_training = true in any hook ends training: after the current batch (the
// epoch is still finished, validated and logged) or after the current epoch.
//
// Logs hold the epoch's metrics by name: "loss" and "accuracy" (training, sample-weighted means
// over the epoch), "val_loss" and "val_accuracy" (with FitOptions::validation), "lr" (the rate
// used during the epoch), "seconds" (the epoch's wall time including validation) and
// "samples_per_second" (training throughput). "accuracy" is present only when the model's
// output is [N, C] with C > 1 and the labels are int64 class ids.
//
// A user callback:
//   struct PrintEvery10 : soma::train::Callback {
//     void on_batch_end(soma::train::TrainState& s, int64_t batch, double loss) override {
//       if (batch % 10 == 0) std::cout << "epoch " << s.epoch + 1 << " batch " << batch
//                                      << " loss " << loss << '\n';
//     }
//     void on_epoch_end(soma::train::TrainState& s, int64_t, const soma::train::Logs& logs)
//         override {
//       if (logs.at("loss") < 0.01) s.stop_training = true;   // good enough
//     }
//   };
//   options.callbacks.push_back(std::make_shared<PrintEvery10>());
#pragma once

#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soma/nn/module.h"
#include "soma/optim/optimizer.h"

namespace soma::train {

/// An epoch's metrics by name (see the file comment for the keys).
using Logs = std::map<std::string, double>;

/// What a callback sees and may change while fit runs.
struct TrainState {
  nn::Module& model;
  optim::Optimizer& optimizer;
  int64_t epoch = 0;              // the current epoch, 0-based
  int64_t epochs = 0;             // fit runs epochs [initial_epoch, epochs)
  int64_t initial_epoch = 0;      // the first epoch of this fit call (> 0 when resuming)
  int64_t batches_per_epoch = 0;  // training batches per epoch
  int64_t samples_per_epoch = 0;  // training samples per epoch (after drop_last)
  bool has_validation = false;    // whether logs will hold val_loss / val_accuracy
  bool stop_training = false;     // set to end training (see the file comment)
  // Running values of the current epoch, updated before each on_batch_end:
  int64_t samples_seen = 0;  // training samples so far this epoch
  double running_loss = std::numeric_limits<double>::quiet_NaN();      // mean loss so far
  double running_accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN: not measured
  Logs logs{};  // the last finished epoch's logs (empty before the first on_epoch_end)
};

/// The base of every callback: each hook does nothing by default.
class Callback {
 public:
  virtual ~Callback();
  virtual void on_train_begin(TrainState& state) { (void)state; }
  virtual void on_epoch_begin(TrainState& state, int64_t epoch) { (void)state, (void)epoch; }
  virtual void on_batch_end(TrainState& state, int64_t batch, double loss) {
    (void)state, (void)batch, (void)loss;
  }
  virtual void on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) {
    (void)state, (void)epoch, (void)logs;
  }
  virtual void on_train_end(TrainState& state) { (void)state; }
};

/// A callback from lambdas, for one-off hooks:
///   LambdaCallback({.on_epoch_end = [](TrainState&, int64_t e, const Logs& l) { ... }})
struct LambdaCallbackOptions {
  std::function<void(TrainState&)> on_train_begin{};
  std::function<void(TrainState&, int64_t)> on_epoch_begin{};
  std::function<void(TrainState&, int64_t, double)> on_batch_end{};
  std::function<void(TrainState&, int64_t, const Logs&)> on_epoch_end{};
  std::function<void(TrainState&)> on_train_end{};
};
class LambdaCallback : public Callback {
 public:
  explicit LambdaCallback(LambdaCallbackOptions options) : fns_(std::move(options)) {}
  void on_train_begin(TrainState& s) override;
  void on_epoch_begin(TrainState& s, int64_t epoch) override;
  void on_batch_end(TrainState& s, int64_t batch, double loss) override;
  void on_epoch_end(TrainState& s, int64_t epoch, const Logs& logs) override;
  void on_train_end(TrainState& s) override;

 private:
  LambdaCallbackOptions fns_;
};

/// Every epoch's logs, one vector per key (fit returns one). A key missing in some epoch holds
/// NaN there. Calls accumulate: a History given to two fit calls (a resumed run) holds both.
///   History h = fit(...);  h["val_loss"].back();  h.epochs();  write(h.to_csv());
class History : public Callback {
 public:
  void on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) override;
  /// Appends one epoch (what on_epoch_end does).
  void record(int64_t epoch, const Logs& logs);

  /// The 0-based epoch of each record.
  const std::vector<int64_t>& epochs() const { return epochs_; }
  /// The values of `key`, one per record; an unknown key is an error that lists the known ones.
  const std::vector<double>& operator[](const std::string& key) const;
  bool contains(const std::string& key) const { return values_.count(key) != 0; }
  /// Keys in column order: loss, accuracy, val_loss, val_accuracy, lr, seconds,
  /// samples_per_second, then any others alphabetically.
  std::vector<std::string> keys() const;
  /// Number of epochs recorded.
  size_t size() const { return epochs_.size(); }
  bool empty() const { return epochs_.empty(); }

  /// "epoch,loss,accuracy,...\n0,0.51,0.83,...\n": shortest round-trip numbers, NaN as an
  /// empty field.
  std::string to_csv() const;
  /// {"epoch": [0, 1], "loss": [0.51, 0.42], ...}; NaN as null.
  std::string to_json() const;
  /// Parses to_csv()'s format (CSVLogger's append mode); malformed text is an error naming the
  /// line.
  static History from_csv(const std::string& text);

 private:
  std::vector<int64_t> epochs_;
  std::map<std::string, std::vector<double>> values_;
};

/// Whether a monitored metric improves by going down (a loss) or up (an accuracy). Auto: Max
/// when the name contains "acc", Min otherwise (like Keras).
enum class Mode { Min, Max, Auto };

struct EarlyStoppingOptions {
  using Mode = train::Mode;
  std::string monitor = "val_loss";  // the Logs key to watch
  double min_delta = 0.0;            // smaller changes do not count as improvement
  int64_t patience = 5;              // epochs without improvement before stopping
  Mode mode = Mode::Auto;            // see Mode
  bool restore_best_weights = true;  // load the best epoch's weights when training ends
  std::optional<double> baseline{};  // the wait only resets once the metric beats this
  int64_t start_from_epoch = 0;      // epochs before this one are not monitored (warm-up)
};
/// Stops training when `monitor` has not improved by more than min_delta for `patience`
/// epochs — the lecture's "stop when the validation loss increases". Keras's algorithm: each
/// epoch wait += 1; an improvement records best/best_epoch (and a copy of the weights) and
/// resets wait to 0; when wait >= patience (and epoch > 0) it sets stop_training. With
/// restore_best_weights the best epoch's state_dict is loaded back at the end of training
/// (also when training ran to the last epoch). A monitored key missing from the logs is an
/// error (e.g. "val_loss" without FitOptions::validation).
///   auto es = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.patience = 3});
class EarlyStopping : public Callback {
 public:
  using Mode = train::Mode;
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin(TrainState& state) override;
  void on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) override;
  void on_train_end(TrainState& state) override;

  /// The best value seen, and its 0-based epoch (-1 before any).
  double best() const { return best_; }
  int64_t best_epoch() const { return best_epoch_; }
  /// The 0-based epoch at which it stopped training, -1 if it did not.
  int64_t stopped_epoch() const { return stopped_epoch_; }
  /// Epochs since the last improvement.
  int64_t wait() const { return wait_; }
  const EarlyStoppingOptions& options() const { return options_; }
  /// Everything it carries between epochs, to resume a run exactly: "best" (0-d float64),
  /// "best_epoch", "wait", "stopped_epoch" (0-d int64) and "best_weights.<name>" (the best
  /// epoch's weights, with restore_best_weights).
  nn::StateDict state_dict() const;
  /// Restores state_dict(); the next fit's on_train_begin then keeps it instead of starting
  /// afresh. To re-open a run that stopped, set "wait" to 0 and "stopped_epoch" to -1 first.
  /// A missing key or a wrong dtype is an error naming the key.
  void load_state_dict(const nn::StateDict& state);

 private:
  bool improves(double value, double reference) const;
  EarlyStoppingOptions options_;
  bool minimize_ = true;
  double best_ = 0;
  int64_t best_epoch_ = -1, stopped_epoch_ = -1, wait_ = 0;
  nn::StateDict best_weights_;
  bool restored_ = false;  // load_state_dict since the last on_train_begin
};

struct ModelCheckpointOptions {
  using Mode = train::Mode;
  std::string path;                  // "{epoch}" in it is replaced by the 1-based epoch
  std::string monitor = "val_loss";  // compared with save_best_only
  bool save_best_only = false;       // write only when `monitor` improves
  Mode mode = Mode::Auto;            // see Mode
  bool full_checkpoint = false;      // write an io::Checkpoint (model, optimizer, RNG state,
                                     // epoch = epochs done) to resume from, not only weights
};
/// Saves the model at the end of each epoch (or only when `monitor` improves), with soma::save
/// (safetensors, weights only; soma::load reads it back) or io::save_checkpoint. Both write
/// through io::atomic_write, so a crash never leaves a torn file. The best value is kept
/// across fit calls, so a resumed run does not overwrite a better file with a worse one.
///   auto ckpt = std::make_shared<ModelCheckpoint>(
///       ModelCheckpointOptions{.path = "best.safetensors", .save_best_only = true});
class ModelCheckpoint : public Callback {
 public:
  using Mode = train::Mode;
  explicit ModelCheckpoint(ModelCheckpointOptions options);
  void on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) override;

  /// The best monitored value so far (with save_best_only), the number of files written and
  /// the path and 0-based epoch of the last one (-1 before any).
  double best() const { return best_; }
  int64_t saves() const { return saves_; }
  const std::string& last_path() const { return last_path_; }
  int64_t last_saved_epoch() const { return last_saved_epoch_; }

 private:
  ModelCheckpointOptions options_;
  bool minimize_ = true;
  double best_ = 0;
  int64_t saves_ = 0, last_saved_epoch_ = -1;
  std::string last_path_;
};

struct CSVLoggerOptions {
  std::string path;     // the CSV file (History::to_csv's format)
  bool append = false;  // keep the rows already in the file (a resumed run); else start afresh
};
/// Writes every epoch's logs to a CSV file; the whole file is rewritten atomically after each
/// epoch, so it is always complete and readable while training runs.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(CSVLoggerOptions options);
  void on_train_begin(TrainState& state) override;
  void on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) override;
  const History& history() const { return history_; }

 private:
  CSVLoggerOptions options_;
  History history_;
};

struct ProgressBarOptions {
  bool enabled = true;             // false: print nothing
  std::ostream* out = &std::cout;  // where to print
  std::optional<bool> redraw{};    // redraw one line in place with '\r'; default: when `out`
                                   // is std::cout / std::cerr and that is a terminal
  int64_t width = 30;              // characters inside [ ]
  double redraw_interval_s = 0.1;  // in-place redraws at most this often (plus the last)
};
/// Keras-style progress, one line per epoch:
///   Epoch 3/20 [=====>    ] 211/422  loss 0.4123  acc 0.8512  31,204 samples/s  ETA 3s
/// redrawn in place while the epoch runs when printing to a terminal; otherwise (a log file, a
/// pipe) one line per epoch when it ends:
///   Epoch 3/20 422/422  loss 0.4123  acc 0.8512  val_loss 0.4500  val_acc 0.8400
///   31,204 samples/s  1.4s        (the epoch's time, in ms below one second)
/// (on one line). "acc" / "val_*" appear when the logs have them.
class ProgressBar : public Callback {
 public:
  explicit ProgressBar(ProgressBarOptions options = {});
  void on_train_begin(TrainState& state) override;
  void on_epoch_begin(TrainState& state, int64_t epoch) override;
  void on_batch_end(TrainState& state, int64_t batch, double loss) override;
  void on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) override;

 private:
  ProgressBarOptions options_;
  bool redraw_ = false;
  double epoch_start_ = 0, last_draw_ = 0;
  size_t last_len_ = 0;
};

namespace detail {
/// 31204.7 -> "31,205".
std::string thousands(double value);
/// Shortest text that reads back as the same double ("0.1", "1e-05", "nan", "inf").
std::string shortest(double value);
/// Mode::Auto resolved for `monitor`: true when smaller is better.
bool minimize(Mode mode, const std::string& monitor);
}  // namespace detail

}  // namespace soma::train
