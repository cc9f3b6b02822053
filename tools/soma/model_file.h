// The MLP that `soma train` builds, and model.safetensors with enough metadata to rebuild it:
// tensors are the state dict (PyTorch's names, loadable into the same torch.nn.Sequential),
// metadata "soma.model" holds the architecture and the input normalisation as JSON: "mean" and
// "std" are numbers (one for all inputs: images, and CSV models written before soma standardised
// per feature) or lists of in_features numbers (CSV columns).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "soma/data/dataset.h"
#include "soma/nn/module.h"

namespace soma::cli {

struct Architecture {
  int64_t in_features = 784;
  std::vector<int64_t> hidden;
  int64_t classes = 10;
  std::string activation = "relu";
  double dropout = 0.0;
};

/// Linear -> activation -> Dropout (if dropout > 0) for each hidden width, then Linear.
std::shared_ptr<nn::Sequential> build_mlp(const Architecture& arch);

struct ModelFile {
  std::shared_ptr<nn::Sequential> model;
  Architecture arch;
  data::Normalization normalization;
};

void save_model(const std::string& path, const nn::Module& model, const Architecture& arch,
                const data::Normalization& norm);
ModelFile load_model(const std::string& path);

}  // namespace soma::cli
