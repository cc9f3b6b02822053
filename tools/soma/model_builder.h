// The network `soma train` builds from its options and load_model rebuilds from
// model.safetensors: the one place that knows the architectures (--arch mlp, the cnn preset, a
// FILE.json layer list: every one of them a JSON layer list, layers.h), and the loss the tool
// trains and evaluates with.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config.h"
#include "soma/nn/module.h"

namespace soma::cli {

/// The layers of `--arch cnn` for Fashion-MNIST ([1, 28, 28] inputs, 10 classes), as the JSON
/// layer list a FILE.json holds (docs/cli.md shows it).
extern const char* const kCnnPreset;

struct Architecture {
  std::string name = "mlp";          // "mlp", "cnn" or the FILE.json it came from
  nlohmann::json layers;             // the JSON layer list (layers.h)
  std::vector<int64_t> input_shape;  // one sample: [784] (flat) or [C, H, W]
  int64_t classes = 10;
  // --arch mlp only: what the layers were made from (also written to the model file, as soma
  // before layer lists wrote it)
  std::vector<int64_t> hidden;
  std::string activation = "relu";
  double dropout = 0.0;
  // "" (float32); "dynamic": the Linear layers are soma::quantization::DynamicQuantLinear;
  // "static": convert(prepare(model)) (int8 Conv2d/Linear; both written by soma quantize)
  std::string quantization;

  bool is_mlp() const { return name == "mlp"; }
  int64_t in_features() const;  // the product of input_shape
};

/// The layer list of --arch (before the data is known: `in_features` and `classes` of the MLP
/// come later). Reads FILE.json. Its first layer decides the input: a Linear takes flat
/// samples, anything else images [C, H, W].
nlohmann::json arch_layers(const TrainConfig& config);
/// Whether the layer list starts with a Linear (flat [F] samples, not images).
bool takes_flat_input(const nlohmann::json& layers);
/// The architecture the options describe, for samples of `input_shape` and `classes` classes.
/// `layers` is arch_layers(config) (or a recorded layer list); unused for --arch mlp.
Architecture architecture(const TrainConfig& config, const nlohmann::json& layers,
                          const std::vector<int64_t>& input_shape, int64_t classes);
/// The MLP's layer list: Linear -> activation -> Dropout (if dropout > 0) for each hidden
/// width, then Linear.
nlohmann::json mlp_layers(int64_t in_features, const std::vector<int64_t>& hidden,
                          const std::string& activation, double dropout, int64_t classes);
/// The Sequential of arch.layers, checked to chain from [1, input_shape...] to [1, classes]
/// (soma::Error "arch: layer 3 (Linear): input [1, 3136]: ..." otherwise).
std::shared_ptr<nn::Sequential> build_model(const Architecture& arch);
/// As the training header names it: "MLP 784-256-128-10", "cnn (12 layers, input [1, 28, 28])".
std::string describe(const Architecture& arch);
/// Cross-entropy of the logits against class ids.
Tensor training_loss(const Tensor& logits, const Tensor& labels);

}  // namespace soma::cli
