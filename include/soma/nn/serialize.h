// soma::save / soma::load: a model's weights as a safetensors file.
//
// The tensor names are the state dict's, which are PyTorch's ("0.weight", "0.bias", ...), so
// the file loads into the same torch.nn.Sequential (tests/interop/torch_safetensors.py shows
// how) and a file written from a torch state dict loads into the same soma model.
//   soma::save(model, "model.safetensors");
//   soma::load(model, "model.safetensors");
#pragma once

#include <string>

#include "soma/nn/module.h"

namespace soma {

/// Saves model.state_dict() (parameters and buffers) with atomic_write. The header's
/// "__metadata__" holds {"format": "pt"}, as the safetensors package's torch writer does.
void save(const nn::Module& model, const std::string& path);

/// Loads weights saved by save() (or by torch) into `model`. Names are strict and shapes and
/// dtypes must match, with messages such as
///   load: missing tensor "2.weight" in model.safetensors
///   load: "0.weight" has shape [256, 784] where [128, 784] was expected in model.safetensors
/// On any error the model is unchanged.
void load(nn::Module& model, const std::string& path);

}  // namespace soma
