#include "model_file.h"

#include <nlohmann/json.hpp>

#include "soma/core/error.h"
#include "soma/io/safetensors.h"
#include "soma/nn/layers.h"

namespace soma::cli {

using nlohmann::json;

std::shared_ptr<nn::Sequential> build_mlp(const Architecture& arch) {
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

void save_model(const std::string& path, const nn::Module& model, const Architecture& arch,
                const data::Normalization& norm) {
  json meta = {{"in_features", arch.in_features},
               {"hidden", arch.hidden},
               {"classes", arch.classes},
               {"activation", arch.activation},
               {"dropout", arch.dropout},
               {"normalization", {{"mean", norm.mean}, {"std", norm.std}, {"scale", norm.scale}}}};
  io::save_safetensors(path, model.state_dict(), {{"soma.model", meta.dump()}});
}

ModelFile load_model(const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto it = file.metadata.find("soma.model");
  SOMA_CHECK(it != file.metadata.end(), "model: ", path,
             " has no \"soma.model\" metadata (not written by soma train)");
  ModelFile out;
  try {
    const json meta = json::parse(it->second);
    out.arch.in_features = meta.at("in_features").get<int64_t>();
    out.arch.hidden = meta.at("hidden").get<std::vector<int64_t>>();
    out.arch.classes = meta.at("classes").get<int64_t>();
    out.arch.activation = meta.at("activation").get<std::string>();
    out.arch.dropout = meta.at("dropout").get<double>();
    const json& n = meta.at("normalization");
    out.normalization.mean = n.at("mean").get<double>();
    out.normalization.std = n.at("std").get<double>();
    out.normalization.scale = n.at("scale").get<double>();
  } catch (const json::exception& e) {
    detail::fail("model: ", path, ": invalid \"soma.model\" metadata (", e.what(), ")");
  }
  SOMA_CHECK(out.arch.in_features > 0 && out.arch.classes > 0 && out.arch.dropout >= 0 &&
                 out.arch.dropout < 1 && out.normalization.std > 0,
             "model: ", path, ": invalid architecture in \"soma.model\" metadata");
  for (int64_t w : out.arch.hidden)
    SOMA_CHECK(w > 0 && w <= (1 << 20), "model: ", path, ": invalid hidden width ", w);
  out.model = build_mlp(out.arch);
  out.model->load_state_dict(file.tensors);
  out.model->eval();
  return out;
}

}  // namespace soma::cli
