#include "model_file.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "soma/core/error.h"
#include "soma/io/safetensors.h"

namespace soma::cli {

using nlohmann::json;

void save_model(const std::string& path, const nn::Module& model, const Architecture& arch,
                const data::Normalization& norm) {
  // Per feature, "mean" and "std" are lists: a soma that knows only the scalar form refuses
  // the file rather than normalising it wrongly.
  const json normalization =
      norm.per_feature()
          ? json{{"mean", norm.feature_mean}, {"std", norm.feature_std}, {"scale", norm.scale}}
          : json{{"mean", norm.mean}, {"std", norm.std}, {"scale", norm.scale}};
  json meta = {{"in_features", arch.in_features}, {"hidden", arch.hidden},
               {"classes", arch.classes},         {"activation", arch.activation},
               {"dropout", arch.dropout},         {"normalization", normalization}};
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
    out.normalization.scale = n.at("scale").get<double>();
    if (n.at("mean").is_array()) {  // per feature (CSV data)
      out.normalization.feature_mean = n.at("mean").get<std::vector<double>>();
      out.normalization.feature_std = n.at("std").get<std::vector<double>>();
    } else {  // one mean and std (images; every CSV model written before per-feature statistics)
      out.normalization.mean = n.at("mean").get<double>();
      out.normalization.std = n.at("std").get<double>();
    }
  } catch (const json::exception& e) {
    detail::fail("model: ", path, ": invalid \"soma.model\" metadata (", e.what(), ")");
  }
  SOMA_CHECK(out.arch.in_features > 0 && out.arch.classes > 0 && out.arch.dropout >= 0 &&
                 out.arch.dropout < 1 && out.normalization.std > 0 &&
                 std::isfinite(out.normalization.scale),
             "model: ", path, ": invalid architecture in \"soma.model\" metadata");
  const data::Normalization& norm = out.normalization;
  if (norm.per_feature()) {
    SOMA_CHECK(static_cast<int64_t>(norm.feature_mean.size()) == out.arch.in_features &&
                   norm.feature_std.size() == norm.feature_mean.size(),
               "model: ", path, ": the normalization has ", norm.feature_mean.size(),
               " feature means and ", norm.feature_std.size(), " stds, the model has ",
               out.arch.in_features, " input features");
    for (size_t j = 0; j < norm.feature_std.size(); ++j)
      SOMA_CHECK(std::isfinite(norm.feature_mean[j]) && std::isfinite(norm.feature_std[j]) &&
                     norm.feature_std[j] > 0,
                 "model: ", path, ": invalid normalization of feature ", j,
                 ": mean=", norm.feature_mean[j], " std=", norm.feature_std[j]);
  }
  for (int64_t w : out.arch.hidden)
    SOMA_CHECK(w > 0 && w <= (1 << 20), "model: ", path, ": invalid hidden width ", w);
  out.model = build_model(out.arch);
  out.model->load_state_dict(file.tensors);
  out.model->eval();
  return out;
}

}  // namespace soma::cli
