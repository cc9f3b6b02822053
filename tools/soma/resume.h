// The run's checkpoint: RunRecorder writes it (and history.csv) after every epoch; --resume
// reads it back, merges its recorded options into the configuration and restores the model,
// the optimizer, the schedule, early stopping and the random generator.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "config.h"
#include "model_builder.h"
#include "optimization.h"
#include "soma/io/checkpoint.h"
#include "soma/train/callbacks.h"

namespace soma::cli {

// What --resume found in the checkpoint and decided.
struct Resume {
  io::Checkpoint ckpt;
  int64_t done = 0;                        // epochs completed
  bool replan = false;                     // re-plan the schedule over a new horizon or base rate
  bool reopen = false;                     // a run that stopped early continues
  bool finished = false;                   // nothing left to train: write the outputs only
  bool lr_changed = false;                 // --override of --lr
  bool optimizer_changed = false;          // --override of --optimizer: its state starts afresh
  bool optimizer_options_changed = false;  // --override of momentum, betas, weight decay, ...
  bool has_state = false;                  // the checkpoint has "state." entries (soma >= 0.3)
  nlohmann::json recorded_layers;  // the run's layer list (--arch cnn / FILE.json), when recorded
                                   // and --arch is not overridden; else null
};

/// With config.resume: reads the checkpoint in config.out and merges its recorded
/// configuration into `config` (options not `given` take their recorded values; given ones
/// that change the computation must equal them unless --override). Notices go to stderr
/// (rank 0). Without --resume: nothing.
std::optional<Resume> prepare_resume(TrainConfig& config, const std::set<std::string>& given);

/// Restores the model, optimizer, schedule, early stopping and RNG from the checkpoint;
/// returns the recorded history (rows of per-epoch logs).
nlohmann::json apply_resume(Resume& r, nn::Module& model, Optimization& opt,
                            const TrainConfig& config);

/// Per-epoch logs kept by the tool itself (restored on --resume): writes history.csv and the
/// checkpoint after every epoch.
class RunRecorder : public soma::train::Callback {
 public:
  /// Records `arch`'s layer list and input shape in the checkpoint ("model") besides the
  /// configuration and the history.
  RunRecorder(std::string out, const TrainConfig& config, const Architecture& arch,
              nlohmann::json history, const Optimization& opt);
  void on_epoch_end(soma::train::TrainState& state, int64_t epoch,
                    const soma::train::Logs& logs) override;
  const nlohmann::json& history() const { return history_; }

 private:
  std::string out_, config_json_, model_json_;
  nlohmann::json history_;
  const Optimization& opt_;
};

}  // namespace soma::cli
