// train::fit and train::evaluate: the mini-batch training loop of the lecture, with validation,
// learning-rate schedules, gradient clipping, callbacks and exact resume.
//
// Each epoch e (0-based) of fit:
//   model.train(); train.set_epoch(e)
//   for each batch (x, y):  zero_grad; out = model(x); l = loss(out, y); l.backward();
//                           (clip_grad_norm_); optimizer.step()
//   logs: sample-weighted mean loss and accuracy over the epoch's batches
//   validation (if any): evaluate() in eval mode -> val_loss, val_accuracy
//   scheduler->step(); plateau->step(val_loss, or loss without validation)
//   callbacks' on_epoch_end(logs)        (see callbacks.h for the order and the Logs keys)
// Accuracy is measured when the output is [N, C] with C > 1 and the labels are int64 [N]
// (argmax over dim 1); otherwise the logs have no "accuracy".
//
// Divergence is an error, never silent: a NaN/inf loss, or a NaN/inf gradient, throws
// soma::Error before the optimizer step, so the weights stay as they were after the last good
// step ("fit: non-finite loss (nan) at epoch 3, batch 17"; epochs and batches counted from 1
// in messages, as the progress bar shows them).
//
// Resume: the loader's order for epoch e depends only on (seed, e) and fit calls
// set_epoch(e), so a run saved after epoch k (model, optimizer, soma::get_rng_state(), k: an
// io::Checkpoint, e.g. from ModelCheckpoint{.full_checkpoint = true}) and continued with
// initial_epoch = k in fresh objects ends with the same weights, bit for bit, as one
// uninterrupted run — dropout masks included. Save the scheduler's, ReduceLROnPlateau's and
// EarlyStopping's state_dict() too (e.g. in io::Checkpoint::state) and load them into the
// fresh objects before fit (load the optimizer's state after building the scheduler: it holds
// the current rates); EarlyStopping then continues its wait and best weights.
//
//   soma::data::DataLoader train(soma::data::TensorDataset(x, y), {.batch_size = 128,
//                                                                   .shuffle = true});
//   soma::data::DataLoader val(soma::data::TensorDataset(xv, yv), {.batch_size = 512});
//   soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   auto loss = [](const soma::Tensor& out, const soma::Tensor& y) {
//     return soma::nn::functional::cross_entropy(out, y);
//   };
//   soma::train::History h = soma::train::fit(model, opt, loss, train, {
//       .epochs = 20, .validation = &val,
//       .callbacks = {std::make_shared<soma::train::ProgressBar>(),
//                     std::make_shared<soma::train::EarlyStopping>(
//                         soma::train::EarlyStoppingOptions{.patience = 3})}});
//   soma::train::EvalResult r = soma::train::evaluate(model, test, loss);   // r.accuracy
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "soma/core/tensor.h"
#include "soma/data/dataloader.h"
#include "soma/nn/module.h"
#include "soma/optim/lr_scheduler.h"
#include "soma/optim/optimizer.h"
#include "soma/train/callbacks.h"
#include "soma/train/metrics.h"

namespace soma::train {

/// The loss of a batch: a scalar tensor from the model's output and the batch's targets, e.g.
/// F::cross_entropy or an nn::Loss module (nn::CrossEntropyLoss()). evaluate() and the epoch
/// logs weight each batch's value by its sample count, so it should be a mean over the batch.
using LossFn = std::function<Tensor(const Tensor& output, const Tensor& target)>;

struct FitOptions {
  int64_t epochs = 10;                                 // train epochs [initial_epoch, epochs)
  data::DataLoader* validation = nullptr;              // evaluated after every epoch (val_* logs)
  std::vector<std::shared_ptr<Callback>> callbacks{};  // called in this order
  optim::LRScheduler* scheduler = nullptr;             // step() after every epoch
  optim::ReduceLROnPlateau* plateau = nullptr;         // step(val_loss, or loss) after every epoch
  int64_t initial_epoch = 0;                           // the first epoch to run (resuming a run)
  double max_grad_norm = 0;                            // clip_grad_norm_ to this (0: no clipping)
  // The loss reported as val_loss (and monitored by ReduceLROnPlateau and EarlyStopping); empty:
  // the training loss. E.g. train on label-smoothed cross-entropy, validate on the plain one.
  LossFn validation_loss{};
  // kBFloat16: every training step's forward, loss and backward run under soma::autocast
  // (matrix products in bfloat16 with float32 accumulation; weights, optimizer and the other
  // ops stay float32). kFloat32: plain float32. Evaluation always runs in float32.
  DType autocast = kFloat32;
};

/// Trains `model` with `optimizer` on `train` (see the file comment) and returns every epoch's
/// logs. Leaves the model in the train/eval mode it had on entry.
History fit(nn::Module& model, optim::Optimizer& optimizer, const LossFn& loss,
            data::DataLoader& train, const FitOptions& options = {});

/// Mean loss and accuracy over a whole loader.
struct EvalResult {
  double loss = 0;      // sample-weighted mean of the batch losses
  double accuracy = 0;  // fraction correct; NaN when the output is not [N, C] class scores
  int64_t samples = 0;  // samples seen
};

/// Runs `model` over every batch of `loader` in eval mode (no dropout) under NoGradGuard.
/// Restores the model's train/eval mode afterwards. A loader with no samples is an error.
EvalResult evaluate(nn::Module& model, data::DataLoader& loader, const LossFn& loss);

}  // namespace soma::train
