// Training checkpoints: everything a run needs to resume exactly, in one safetensors file.
//
//   tensors    "model.<key>"      the model's state dict (nn::Module::state_dict())
//              "optimizer.<key>"  the optimizer's state (optim::Optimizer::state_dict())
//              "state.<key>"      any other state the caller keeps (schedulers, callbacks)
//   metadata   "format"    = "soma-checkpoint-1"
//              "epoch"     = epochs completed, decimal
//              "rng_state" = soma::get_rng_state() at save time
//              plus the caller's entries (history JSON, scheduler state, config, ...)
//
//   soma::io::Checkpoint ckpt{.model = model.state_dict(), .optimizer = opt.state_dict(),
//                             .epoch = epoch + 1, .rng_state = soma::get_rng_state()};
//   soma::io::save_checkpoint("ckpt.safetensors", ckpt);
//   auto back = soma::io::load_checkpoint("ckpt.safetensors");
//   model.load_state_dict(back.model); opt.load_state_dict(back.optimizer);
//   soma::set_rng_state(back.rng_state);
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "soma/core/tensor.h"
#include "soma/io/safetensors.h"

namespace soma::io {

/// The value of the "format" metadata entry of a soma checkpoint.
inline constexpr const char* kCheckpointFormat = "soma-checkpoint-1";

struct Checkpoint {
  std::map<std::string, Tensor> model;      // nn::StateDict
  std::map<std::string, Tensor> optimizer;  // optim::OptimizerState
  int64_t epoch = 0;                        // epochs completed (>= 0)
  std::string rng_state;                    // from soma::get_rng_state() (may be empty)
  Metadata extra;  // caller's entries; "format", "epoch" and "rng_state" are reserved
  std::map<std::string, Tensor> state{};  // other state by name, e.g. "scheduler.last_epoch"
};

/// Writes `ckpt` atomically. A negative epoch or a reserved key in `extra` is an error.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

/// Reads a checkpoint. Errors (naming the file): every safetensors error, not a soma
/// checkpoint (no or another "format"), a missing or malformed "epoch", tensors outside
/// "model." / "optimizer." / "state.".
Checkpoint load_checkpoint(const std::string& path);

/// load_checkpoint of a file's bytes (e.g. read by rank 0 and broadcast to the other ranks);
/// `name_for_errors` stands for the file in messages.
Checkpoint parse_checkpoint(std::string_view bytes, const std::string& name_for_errors);

}  // namespace soma::io
