#include "optimization.h"

#include <algorithm>
#include <vector>

#include "soma/optim/optimizers.h"

namespace soma::cli {
namespace {

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, std::vector<Tensor> params) {
  const bool wd_set = c.weight_decay >= 0;
  if (c.optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        params, optim::SGDOptions{.lr = c.lr,
                                  .momentum = c.momentum,
                                  .dampening = 0.0,
                                  .weight_decay = wd_set ? c.weight_decay : 0.0,
                                  .nesterov = c.nesterov});
  if (c.optimizer == "adam" || c.optimizer == "adamw") {
    optim::AdamOptions o{.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2};
    if (wd_set) o.weight_decay = c.weight_decay;
    if (c.optimizer == "adam") return std::make_unique<optim::Adam>(params, o);
    return std::make_unique<optim::AdamW>(params, o);
  }
  if (c.optimizer == "rmsprop")
    return std::make_unique<optim::RMSprop>(
        params,
        optim::RMSpropOptions{
            .lr = c.lr, .weight_decay = wd_set ? c.weight_decay : 0.0, .momentum = c.momentum});
  if (c.optimizer == "adagrad")
    return std::make_unique<optim::Adagrad>(
        params, optim::AdagradOptions{.lr = c.lr, .weight_decay = wd_set ? c.weight_decay : 0.0});
  return std::make_unique<optim::Adadelta>(
      params, optim::AdadeltaOptions{.lr = c.lr, .weight_decay = wd_set ? c.weight_decay : 0.0});
}

std::unique_ptr<optim::LRScheduler> make_scheduler(const TrainConfig& c, optim::Optimizer& opt) {
  if (c.schedule == "step")
    return std::make_unique<optim::StepLR>(
        opt, optim::StepLROptions{.step_size = std::max<int64_t>(1, c.epochs / 3), .gamma = 0.1});
  if (c.schedule == "exponential")
    return std::make_unique<optim::ExponentialLR>(opt, optim::ExponentialLROptions{.gamma = 0.9});
  if (c.schedule == "cosine")
    return std::make_unique<optim::CosineAnnealingLR>(
        opt, optim::CosineAnnealingLROptions{.T_max = c.epochs, .eta_min = 0.0});
  return nullptr;
}

}  // namespace

Optimization make_optimization(const TrainConfig& c, nn::Module& model) {
  Optimization o;
  o.optimizer = make_optimizer(c, model.parameters());
  o.scheduler = make_scheduler(c, *o.optimizer);
  if (c.schedule == "plateau")
    o.plateau = std::make_unique<optim::ReduceLROnPlateau>(
        *o.optimizer, optim::ReduceLROnPlateauOptions{.factor = 0.5, .patience = 2});
  if (c.patience > 0) {
    soma::train::EarlyStoppingOptions eo;
    eo.monitor = "val_loss";
    eo.patience = c.patience;
    eo.restore_best_weights = true;
    o.early = std::make_shared<soma::train::EarlyStopping>(eo);
  }
  return o;
}

}  // namespace soma::cli
