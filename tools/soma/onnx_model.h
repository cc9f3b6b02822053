// An ONNX model as the CLI uses it (`soma eval|predict|summary --model model.onnx`): the graph
// imported by soma::onnx::load, fed the raw input values (pixels 0-255, CSV values as they are)
// as float32, each row reshaped to the graph input's declared sample shape (e.g. [1, 28, 28]
// or [784]); the model carries its own preprocessing (soma export writes it as the graph's
// first nodes, a torch model its own `x / 255`). The output is taken as the class logits
// [N, classes].
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "soma/data/transforms.h"
#include "soma/onnx/import.h"

namespace soma::cli {

/// Whether `path` names an ONNX model (ends in .onnx).
bool is_onnx_path(const std::string& path);

struct OnnxCliModel {
  std::shared_ptr<onnx::OnnxModel> model;  // the graph (what onnx::save writes back)
  /// What the CLI runs, evaluates and trains: the graph, fed in chunks of its batch size when
  /// that is static (torch.onnx.export without dynamic_axes writes batch 1; the last chunk is
  /// padded with zeros and the padding's outputs dropped), with a final Softmax's
  /// probabilities turned into log-probabilities, so that argmax is unchanged and the
  /// cross-entropy of the CLI's loss is the model's negative log-likelihood.
  std::shared_ptr<nn::Module> net;
  std::vector<int64_t> sample_shape;  // the input's declared shape without the batch
  int64_t static_batch = -1;          // the input's dim 0 when static, else -1
  bool probabilities = false;         // the output comes from a Softmax node
  int64_t classes = -1;               // the output's dim 1 when static, else -1
};

/// Loads the model and checks that the CLI can feed it: one float32 input whose dims after the
/// first are static, one output of rank 2.
OnnxCliModel load_onnx_model(const std::string& path);

/// Rows [N, F] (uint8 pixels or float32 CSV values) -> float32 [N, sample_shape...].
data::transforms::Transform onnx_input(const std::vector<int64_t>& sample_shape);

}  // namespace soma::cli
