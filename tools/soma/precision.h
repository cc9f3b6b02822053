// `soma bench --precision`: how a model is set up to run at a given numeric precision. fp32 runs
// the model as it is; bf16 and int8 go through apply_precision alone, so that the autocast and
// quantization libraries plug in at this one place.
#pragma once

#include <memory>
#include <string>

#include "soma/nn/module.h"

namespace soma::cli {

/// What the timed loop runs: `model` (the one given, or a converted copy such as a quantized
/// one) while `scope` lives (e.g. an autocast guard; null when nothing is needed).
struct PrecisionSetup {
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<void> scope;
};

/// Whether `precision` is one --precision accepts: fp32, bf16 or int8.
bool is_precision_name(const std::string& precision);

/// Sets `model` up to run at `precision` for inference (`train` false) or training steps
/// (`train` true). fp32: the model as it is; bf16: the model under a soma::autocast guard
/// (scope); int8: a model file written by soma quantize as it is, a float model through
/// soma::quantization::quantize_dynamic. Throws soma::Error naming the precision when it cannot
/// (int8 with train; fp32 or bf16 of an int8 model; int8 of a model without Linear layers).
PrecisionSetup apply_precision(const std::string& precision, std::shared_ptr<nn::Module> model,
                               bool train);

}  // namespace soma::cli
