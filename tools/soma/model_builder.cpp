#include "model_builder.h"

#include <sstream>

#include "layers.h"
#include "soma/core/error.h"
#include "soma/io/file.h"
#include "soma/nn/functional.h"

namespace soma::cli {

using nlohmann::json;

// `soma train --arch cnn`: two 3x3 convolutions (32 and 64 channels) with BatchNorm, ReLU and
// 2x2 max-pooling, then 3136-128-10 with dropout. For [1, 28, 28] inputs and 10 classes.
const char* const kCnnPreset = R"([
  {"type": "Conv2d", "in_channels": 1, "out_channels": 32, "kernel_size": 3, "padding": 1},
  {"type": "BatchNorm2d", "num_features": 32},
  {"type": "ReLU"},
  {"type": "MaxPool2d", "kernel_size": 2},
  {"type": "Conv2d", "in_channels": 32, "out_channels": 64, "kernel_size": 3, "padding": 1},
  {"type": "BatchNorm2d", "num_features": 64},
  {"type": "ReLU"},
  {"type": "MaxPool2d", "kernel_size": 2},
  {"type": "Flatten"},
  {"type": "Linear", "in_features": 3136, "out_features": 128},
  {"type": "ReLU"},
  {"type": "Dropout", "p": 0.3},
  {"type": "Linear", "in_features": 128, "out_features": 10}
])";

int64_t Architecture::in_features() const {
  int64_t n = 1;
  for (int64_t d : input_shape) n *= d;
  return n;
}

json arch_layers(const TrainConfig& c) {
  if (c.arch == "mlp") return json();
  if (c.arch == "cnn") return json::parse(kCnnPreset);
  std::string text;
  try {
    text = io::read_file(c.arch);
  } catch (const Error& e) {
    detail::fail("arch: ", e.what());
  }
  json layers;
  try {
    layers = json::parse(text);
  } catch (const json::exception& e) {
    detail::fail("arch: ", c.arch, ": invalid JSON (", e.what(), ")");
  }
  SOMA_CHECK(layers.is_array() && !layers.empty(), "arch: ", c.arch,
             ": expected a non-empty JSON array of layers like [{\"type\": \"Linear\", "
             "\"in_features\": 784, \"out_features\": 10}]");
  return layers;
}

bool takes_flat_input(const json& layers) {
  if (layers.is_null()) return true;  // the MLP
  return layers.is_array() && !layers.empty() && layers[0].is_object() &&
         layers[0].value("type", "") == "Linear";
}

json mlp_layers(int64_t in_features, const std::vector<int64_t>& hidden,
                const std::string& activation, double dropout, int64_t classes) {
  json layers = json::array();
  int64_t in = in_features;
  for (int64_t width : hidden) {
    layers.push_back({{"type", "Linear"}, {"in_features", in}, {"out_features", width}});
    if (activation == "relu")
      layers.push_back({{"type", "ReLU"}});
    else if (activation == "tanh")
      layers.push_back({{"type", "Tanh"}});
    else if (activation == "sigmoid")
      layers.push_back({{"type", "Sigmoid"}});
    else if (activation == "gelu")
      layers.push_back({{"type", "GELU"}});
    else if (activation == "leaky_relu")
      layers.push_back({{"type", "LeakyReLU"}, {"negative_slope", 0.01}});
    else
      detail::fail("model: unknown activation '", activation, "'");
    if (dropout > 0) layers.push_back({{"type", "Dropout"}, {"p", dropout}});
    in = width;
  }
  layers.push_back({{"type", "Linear"}, {"in_features", in}, {"out_features", classes}});
  return layers;
}

Architecture architecture(const TrainConfig& c, const json& layers,
                          const std::vector<int64_t>& input_shape, int64_t classes) {
  Architecture a;
  a.name = c.arch;
  a.input_shape = input_shape;
  a.classes = classes;
  if (a.is_mlp()) {
    a.hidden = c.hidden;
    a.activation = c.activation;
    a.dropout = c.dropout;
    a.layers = mlp_layers(a.in_features(), a.hidden, a.activation, a.dropout, classes);
  } else {
    a.layers = layers;
  }
  return a;
}

std::shared_ptr<nn::Sequential> build_model(const Architecture& arch) {
  std::shared_ptr<nn::Sequential> model = build_sequential(arch.layers);
  std::string hint;
  if (arch.input_shape.size() == 1 && !takes_flat_input(arch.layers))
    hint = " (flat samples of " + std::to_string(arch.input_shape[0]) +
           " features: give --input-shape C,H,W for images, or start with a Linear)";
  check_chain(*model, arch.layers, arch.input_shape, arch.classes, hint);
  return model;
}

std::string describe(const Architecture& arch) {
  if (arch.is_mlp()) {
    std::string s = "MLP " + std::to_string(arch.in_features());
    for (int64_t w : arch.hidden) s += "-" + std::to_string(w);
    return s + "-" + std::to_string(arch.classes);
  }
  std::ostringstream os;
  std::vector<int64_t> in{1};
  in.insert(in.end(), arch.input_shape.begin(), arch.input_shape.end());
  os << arch.name << " (" << arch.layers.size() << " layers, input [";
  for (size_t i = 0; i < in.size(); ++i) os << (i ? ", " : "") << in[i];
  os << "])";
  return os.str();
}

Tensor training_loss(const Tensor& logits, const Tensor& labels) {
  return nn::functional::cross_entropy(logits, labels);
}

}  // namespace soma::cli
