#include "model_builder.h"

#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/nn/layers.h"

namespace soma::cli {

Architecture architecture(const TrainConfig& c, int64_t in_features, int64_t classes) {
  return Architecture{in_features, c.hidden, classes, c.activation, c.dropout};
}

std::shared_ptr<nn::Sequential> build_model(const Architecture& arch) {
  auto model = std::make_shared<nn::Sequential>();
  int64_t in = arch.in_features;
  for (int64_t width : arch.hidden) {
    model->push_back(nn::Linear(in, width));
    if (arch.activation == "relu")
      model->push_back(nn::ReLU());
    else if (arch.activation == "tanh")
      model->push_back(nn::Tanh());
    else if (arch.activation == "sigmoid")
      model->push_back(nn::Sigmoid());
    else if (arch.activation == "gelu")
      model->push_back(nn::GELU());
    else if (arch.activation == "leaky_relu")
      model->push_back(nn::LeakyReLU(0.01));
    else
      detail::fail("model: unknown activation '", arch.activation, "'");
    if (arch.dropout > 0) model->push_back(nn::Dropout(arch.dropout));
    in = width;
  }
  model->push_back(nn::Linear(in, arch.classes));
  return model;
}

std::string describe(const Architecture& arch) {
  std::string s = "MLP " + std::to_string(arch.in_features);
  for (int64_t w : arch.hidden) s += "-" + std::to_string(w);
  return s + "-" + std::to_string(arch.classes);
}

Tensor training_loss(const Tensor& logits, const Tensor& labels) {
  return nn::functional::cross_entropy(logits, labels);
}

}  // namespace soma::cli
