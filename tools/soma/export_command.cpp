// soma export: a model.safetensors written by soma train as an ONNX model, traced by
// soma::onnx::export_model. The run's input normalisation ((x * scale - mean) / std, one value
// or one per channel/column) is traced as the graph's first nodes, so the ONNX model takes raw
// float32 values (pixels 0-255, CSV values as they are) of shape [batch, input_shape...];
// --no-preprocessing leaves it out. Metadata: class names, soma's version, the normalisation.
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data_select.h"
#include "model_file.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/onnx/export.h"
#include "soma/ops/elementwise.h"

namespace soma::cli {

void export_onnx(const ExportArgs& args) {
  ModelFile m = load_model(args.model);
  const data::transforms::Normalize norm = m.normalization.transform();
  Shape example{2};  // two samples: the batch stays symbolic, not the example's size
  example.insert(example.end(), m.arch.input_shape.begin(), m.arch.input_shape.end());
  const Tensor x = soma::rand(example) * 255.0;

  // (x * scale - mean) / std, per channel (dim 1) when there are several values, as
  // transforms::Normalize applies them.
  const size_t channels = norm.mean().size();
  SOMA_CHECK(channels == 1 || (example.size() >= 2 && static_cast<size_t>(example[1]) == channels),
             "export: ", args.model, ": ", channels, " normalisation values for input shape ",
             m.arch.input_shape);
  Shape stat_shape{static_cast<int64_t>(channels)};
  for (size_t d = 2; d < example.size(); ++d) stat_shape.push_back(1);
  std::vector<float> mean(norm.mean().begin(), norm.mean().end()),
      std(norm.std().begin(), norm.std().end());
  const Tensor mean_t = soma::tensor(mean, stat_shape), std_t = soma::tensor(std, stat_shape);
  nn::Sequential& model = *m.model;
  const bool pre = args.preprocessing;
  const double scale = norm.scale();
  auto forward = [&](const std::vector<Tensor>& in) {
    Tensor v = in[0];
    if (pre) {
      if (scale != 1.0) v = v * scale;
      v = channels == 1 ? (v - norm.mean()[0]) / norm.std()[0] : (v - mean_t) / std_t;
    }
    return std::vector<Tensor>{model(v)};
  };

  std::vector<std::string> names = args.class_names;
  if (names.empty()) {
    if (!m.normalization.per_feature() && m.arch.classes == 10)
      names = fashion_class_names();  // IDX data (the report's rule)
    else
      for (int64_t c = 0; c < m.arch.classes; ++c) names.push_back(std::to_string(c));
  }
  SOMA_CHECK(static_cast<int64_t>(names.size()) == m.arch.classes, "export: ", names.size(),
             " class names for the ", m.arch.classes, " classes of ", args.model);
  const std::string preprocessing =
      pre ? nlohmann::json{{"scale", scale}, {"mean", norm.mean()}, {"std", norm.std()}}.dump()
          : "none";
  const onnx::ExportOptions options{
      .opset = args.opset,
      .dynamic_batch = true,
      .input_names = {"input"},
      .output_names = {"logits"},
      .metadata = {{"soma_version", onnx::soma_version()},
                   {"class_names", nlohmann::json(names).dump()},
                   {"input_shape", nlohmann::json(m.arch.input_shape).dump()},
                   {"preprocessing", preprocessing},
                   {"architecture", m.arch.name}}};
  onnx::export_model(model, forward, {x}, args.out, options);
}

}  // namespace soma::cli
