#include "model_file.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "soma/core/error.h"
#include "soma/io/safetensors.h"
#include "soma/quantization/quantization.h"

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
  json meta = {{"arch", arch.name},
               {"layers", arch.layers},
               {"input_shape", arch.input_shape},
               {"classes", arch.classes},
               {"normalization", normalization}};
  if (!arch.quantization.empty()) meta["quantization"] = arch.quantization;
  if (arch.is_mlp()) {  // what soma wrote before layer lists, for the tools that read it
    meta["in_features"] = arch.in_features();
    meta["hidden"] = arch.hidden;
    meta["activation"] = arch.activation;
    meta["dropout"] = arch.dropout;
  }
  io::save_safetensors(path, model.state_dict(), {{"soma.model", meta.dump()}});
}

ModelFile load_model(const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto it = file.metadata.find("soma.model");
  SOMA_CHECK(it != file.metadata.end(), "model: ", path,
             " has no \"soma.model\" metadata (not written by soma train)");
  ModelFile out;
  Architecture& arch = out.arch;
  try {
    const json meta = json::parse(it->second);
    arch.classes = meta.at("classes").get<int64_t>();
    if (meta.contains("layers")) {  // any architecture (soma >= 0.5)
      arch.name = meta.value("arch", "file");
      arch.layers = meta.at("layers");
      arch.input_shape = meta.at("input_shape").get<std::vector<int64_t>>();
    } else {  // an MLP written before layer lists
      arch.name = "mlp";
      arch.input_shape = {meta.at("in_features").get<int64_t>()};
    }
    if (arch.is_mlp()) {
      arch.hidden = meta.at("hidden").get<std::vector<int64_t>>();
      arch.activation = meta.at("activation").get<std::string>();
      arch.dropout = meta.at("dropout").get<double>();
    }
    arch.quantization = meta.value("quantization", "");
    const json& n = meta.at("normalization");
    out.normalization.scale = n.at("scale").get<double>();
    if (n.at("mean").is_array()) {  // per feature (CSV data) or per channel
      out.normalization.feature_mean = n.at("mean").get<std::vector<double>>();
      out.normalization.feature_std = n.at("std").get<std::vector<double>>();
    } else {  // one mean and std (images; every CSV model written before per-feature statistics)
      out.normalization.mean = n.at("mean").get<double>();
      out.normalization.std = n.at("std").get<double>();
    }
  } catch (const json::exception& e) {
    detail::fail("model: ", path, ": invalid \"soma.model\" metadata (", e.what(), ")");
  }
  bool shape_ok = !arch.input_shape.empty() && arch.input_shape.size() <= 3;
  int64_t elements = 1;
  for (int64_t d : arch.input_shape) {
    shape_ok = shape_ok && d > 0 && d <= (int64_t{1} << 28) / elements;
    if (shape_ok) elements *= d;
  }
  SOMA_CHECK(
      arch.quantization.empty() || arch.quantization == "dynamic" || arch.quantization == "static",
      "model: ", path, ": unknown quantization '", arch.quantization,
      "' in \"soma.model\" metadata (this soma knows \"dynamic\" and \"static\")");
  SOMA_CHECK(shape_ok, "model: ", path, ": invalid input shape ", arch.input_shape,
             " in \"soma.model\" metadata");
  SOMA_CHECK(arch.classes > 0 && arch.dropout >= 0 && arch.dropout < 1 &&
                 out.normalization.std > 0 && std::isfinite(out.normalization.scale),
             "model: ", path, ": invalid architecture in \"soma.model\" metadata");
  const data::Normalization& norm = out.normalization;
  if (norm.per_feature()) {
    const int64_t channels = arch.input_shape[0];
    SOMA_CHECK(static_cast<int64_t>(norm.feature_mean.size()) == channels &&
                   norm.feature_std.size() == norm.feature_mean.size(),
               "model: ", path, ": the normalization has ", norm.feature_mean.size(),
               " feature means and ", norm.feature_std.size(), " stds, the model has ", channels,
               arch.input_shape.size() == 1 ? " input features" : " input channels");
    for (size_t j = 0; j < norm.feature_std.size(); ++j)
      SOMA_CHECK(std::isfinite(norm.feature_mean[j]) && std::isfinite(norm.feature_std[j]) &&
                     norm.feature_std[j] > 0,
                 "model: ", path, ": invalid normalization of feature ", j,
                 ": mean=", norm.feature_mean[j], " std=", norm.feature_std[j]);
  }
  for (int64_t w : arch.hidden)
    SOMA_CHECK(w > 0 && w <= (1 << 20), "model: ", path, ": invalid hidden width ", w);
  if (arch.layers.is_null())
    arch.layers =
        mlp_layers(arch.in_features(), arch.hidden, arch.activation, arch.dropout, arch.classes);
  try {
    out.model = build_model(arch);
  } catch (const Error& e) {
    detail::fail("model: ", path, ": ", e.what());
  }
  // A quantized file holds the int8 layers' buffers: swap the layers first (their float
  // weights are drawn and dropped), then load.
  if (arch.quantization == "dynamic") quantization::quantize_dynamic_(*out.model);
  if (arch.quantization == "static")
    out.model = std::dynamic_pointer_cast<nn::Sequential>(
        quantization::static_quantized_structure(*out.model));
  out.model->load_state_dict(file.tensors);
  out.model->eval();
  return out;
}

}  // namespace soma::cli
