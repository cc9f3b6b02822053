// model.safetensors: the trained network with enough metadata to rebuild it (build_model):
// tensors are the state dict (PyTorch's names, loadable into the same torch.nn.Sequential),
// metadata "soma.model" holds the architecture and the input normalisation as JSON: "mean" and
// "std" are numbers (one for all inputs: images, and CSV models written before soma standardised
// per feature) or lists of in_features numbers (CSV columns).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model_builder.h"
#include "soma/data/dataset.h"
#include "soma/nn/module.h"

namespace soma::cli {

struct ModelFile {
  std::shared_ptr<nn::Sequential> model;
  Architecture arch;
  data::Normalization normalization;
};

void save_model(const std::string& path, const nn::Module& model, const Architecture& arch,
                const data::Normalization& norm);
ModelFile load_model(const std::string& path);

}  // namespace soma::cli
