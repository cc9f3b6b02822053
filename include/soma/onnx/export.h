// ONNX export by tracing: soma::onnx::export_model runs a module's forward once on example
// inputs with the op layer's recording mode on and writes the ops it ran as an ONNX graph
// (IR version 8, opset 13-17), parameters and buffers as initializers named by their
// state-dict keys. docs/interop.md ("ONNX") lists the ops and how each maps.
//
//   soma::nn::Sequential model(soma::nn::Linear(784, 128), soma::nn::ReLU(), soma::nn::Linear(128,
//   10)); soma::onnx::export_model(model, {soma::randn({2, 784})}, "mlp.onnx",
//                            {.opset = 17, .input_names = {"pixels"}, .output_names = {"logits"}});
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "soma/core/tensor.h"
#include "soma/nn/module.h"

namespace soma::onnx {

struct ExportOptions {
  /// The ONNX opset written (13 to 17). LayerNormalization needs 17; below it layer_norm is
  /// written as its decomposition.
  int64_t opset = 17;
  /// Dimension 0 of every input (and of every value that carries it) is the symbolic "batch";
  /// false writes the example inputs' sizes.
  bool dynamic_batch = true;
  /// Names of the graph inputs / outputs, in order; empty: "input" / "output" (with "_0",
  /// "_1", ... when there are several).
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  /// Extra (key, value) pairs for the model's metadata_props.
  std::vector<std::pair<std::string, std::string>> metadata;
};

/// The forward to trace when it is not module(input): takes the example inputs, returns the
/// outputs.
using Forward = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

/// Traces module(example_inputs[0]) (exactly one input) and writes the ONNX model to `path`
/// (through a temporary file and a rename). The module runs in eval mode and gets its training
/// flags back afterwards. soma::Error for an op without an ONNX mapping (naming it and its
/// place in the forward), an opset outside 13-17, or a write failure.
void export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                  const std::string& path, const ExportOptions& options = {});
/// The same for any forward over `module`'s parameters: several inputs or outputs, or
/// preprocessing before the module (as `soma export` writes the input normalisation).
void export_model(nn::Module& module, const Forward& forward,
                  const std::vector<Tensor>& example_inputs, const std::string& path,
                  const ExportOptions& options = {});

/// soma's version (the model's producer_version).
std::string soma_version();

}  // namespace soma::onnx
