// The optimizer, learning-rate schedule and early stopping that `soma train` builds from its
// options.
#pragma once

#include <memory>

#include "config.h"
#include "soma/nn/module.h"
#include "soma/optim/lr_scheduler.h"
#include "soma/optim/optimizer.h"
#include "soma/train/callbacks.h"

namespace soma::cli {

struct Optimization {
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LRScheduler> scheduler;      // per-epoch schedules; null for none
  std::unique_ptr<optim::ReduceLROnPlateau> plateau;  // --schedule plateau
  std::shared_ptr<soma::train::EarlyStopping> early;  // --patience > 0
};

Optimization make_optimization(const TrainConfig& c, nn::Module& model);

}  // namespace soma::cli
