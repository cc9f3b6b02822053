// ONNX import: soma::onnx::load reads an ONNX model (as torch.onnx.export writes it for MLPs and
// CNNs, opsets 13-17) into a module that runs the graph with soma's ops, so it can be
// evaluated, fine-tuned (autograd flows into its weights) and saved like any other module.
//
//   std::shared_ptr<soma::onnx::OnnxModel> model = soma::onnx::load("mnist_cnn.onnx");
//   model->eval();
//   soma::Tensor logits = (*model)(images);            // images: [N, 1, 28, 28] float32
//   soma::optim::SGD opt(model->parameters(), {.lr = 0.01});   // fine-tune
//   soma::io::save_safetensors("tuned.safetensors", model->state_dict());
//
// Initializers become the module's tensors under sanitised names (every character other than
// a letter, digit or '_' becomes '_': "fc1.weight" -> "fc1_weight"; state_key() maps an ONNX
// name to its key): float32 initializers are parameters that require grad, except
// BatchNormalization's running mean and variance, which are buffers, as are int64 ones.
// load() sorts the nodes topologically, validates every node's op and attributes, and runs the
// graph once on zeros of the declared input shape (symbolic dims 1) so that shape errors
// surface at load. docs/interop.md ("ONNX", "Import") lists the supported ops.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "soma/core/tensor.h"
#include "soma/nn/module.h"

namespace soma::onnx {

/// A graph input or output: its name, dtype and shape (-1 for a symbolic dim such as "batch").
struct ValueSpec {
  std::string name;
  DType dtype = kFloat32;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;  // per dim: the dim_param, "" when static
};

/// An imported ONNX graph as a module.
class OnnxModel : public nn::Module {
 public:
  struct Impl;
  explicit OnnxModel(std::shared_ptr<Impl> impl);
  ~OnnxModel() override;

  /// Runs the graph on one input and returns its one output (soma::Error for a graph with
  /// several inputs or outputs: use run()).
  Tensor forward(const Tensor& input) override;
  /// Runs the graph on all inputs (in the graph's order) and returns all outputs.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  const std::vector<ValueSpec>& inputs() const;
  const std::vector<ValueSpec>& outputs() const;
  /// The state-dict key of an initializer, by its ONNX name (soma::Error if there is none).
  std::string state_key(const std::string& onnx_name) const;
  /// (ONNX name, state-dict key) of every initializer, in the file's order.
  const std::vector<std::pair<std::string, std::string>>& initializer_keys() const;
  /// The model's metadata_props, opset, producer, and node count.
  const std::vector<std::pair<std::string, std::string>>& metadata() const;
  int64_t opset() const;
  const std::string& producer() const;
  size_t num_nodes() const;
  /// The op type of the node that computes output i ("Softmax", "Gemm"), or "" when the output
  /// is a graph input or an initializer. The CLI reads a model ending in Softmax as giving
  /// probabilities, not logits.
  std::string output_op(size_t i = 0) const;
  /// "OnnxModel(<producer>, opset N, M nodes)".
  std::string describe() const override;

 private:
  friend void save(const OnnxModel& model, const std::string& path);
  std::shared_ptr<Impl> impl_;
};

/// Loads an ONNX model file. soma::Error (naming the node: index, name, op, and the values
/// involved) for a malformed file, an op or attribute soma does not support, a missing input
/// or initializer, a cycle, an opset of the default domain outside 13-17, a dtype other than
/// float32 / int64, external data, or shapes that do not fit.
std::shared_ptr<OnnxModel> load(const std::string& path);
/// The same from the file's bytes; `origin` names it in errors.
std::shared_ptr<OnnxModel> load_bytes(std::string_view bytes,
                                      const std::string& origin = "<bytes>");

/// Writes the model's ONNX file again with every initializer replaced by the module's current
/// tensor (fine-tuned weights, loaded state), everything else byte for byte; through a
/// temporary file and a rename. soma::Error if a tensor changed its shape or dtype.
void save(const OnnxModel& model, const std::string& path);

namespace detail {
/// The limits of load()'s dry run, for one sample: elements of one value, elements of all live
/// values together, and multiply-adds of one node (defaults 2^24, 2^26, 2^32). The fuzz target
/// lowers them; not thread-safe (set before loading).
void set_load_limits(double max_elements, double max_live_elements, double max_macs);
}  // namespace detail

}  // namespace soma::onnx
