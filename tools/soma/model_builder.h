// The network `soma train` builds from its options and load_model rebuilds from
// model.safetensors: the one place that knows the architectures (an MLP today), and the loss
// the tool trains and evaluates with.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "soma/nn/module.h"

namespace soma::cli {

struct Architecture {
  int64_t in_features = 784;
  std::vector<int64_t> hidden;
  int64_t classes = 10;
  std::string activation = "relu";
  double dropout = 0.0;
};

/// The architecture the options describe, for inputs of `in_features` and `classes` classes.
Architecture architecture(const TrainConfig& config, int64_t in_features, int64_t classes);
/// Linear -> activation -> Dropout (if dropout > 0) for each hidden width, then Linear.
std::shared_ptr<nn::Sequential> build_model(const Architecture& arch);
/// As the training header names it: "MLP 784-256-128-10".
std::string describe(const Architecture& arch);
/// Cross-entropy of the logits against class ids.
Tensor training_loss(const Tensor& logits, const Tensor& labels);

}  // namespace soma::cli
