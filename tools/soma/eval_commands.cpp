// soma eval / predict / summary: a model.safetensors written by soma train, on IDX or CSV data.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "data_select.h"
#include "model_file.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/reduce.h"
#include "soma/train/fit.h"

namespace soma::cli {

namespace {

struct Loaded {
  ModelFile model;
  Data data;
};

Loaded load_for_inference(const std::string& model_path, const DataArgs& args) {
  Loaded l{load_model(model_path), {}};
  l.data = load_data(args.data.empty() ? "/usr/share/datasets/fashion-mnist" : args.data, args.csv,
                     args.label_column, args.split);
  SOMA_CHECK(
      l.data.x.size(1) == l.model.arch.in_features(), "data has ", l.data.x.size(1),
      " features per sample, the model in ", model_path, " expects ", l.model.arch.in_features(),
      l.model.arch.input_shape.size() > 1 ? " (input shape " : "",
      l.model.arch.input_shape.size() > 1 ? l.model.arch.input_shape : std::vector<int64_t>{},
      l.model.arch.input_shape.size() > 1 ? ")" : "");
  return l;
}

}  // namespace

void eval(const std::string& model_path, const DataArgs& args) {
  Loaded l = load_for_inference(model_path, args);
  const int64_t max_label = l.data.y.max().item<int64_t>();
  SOMA_CHECK(max_label < l.model.arch.classes, "eval: label ", max_label,
             " is out of range for the ", l.model.arch.classes, " classes of ", model_path);
  data::DataLoader loader(
      data::TensorDataset(l.data.x, l.data.y),
      {.batch_size = kEvalBatch,
       .transform = model_input(l.model.normalization, l.model.arch.input_shape)});
  soma::train::EvalResult r = soma::train::evaluate(*l.model.model, loader, training_loss);
  std::cout << std::fixed << std::setprecision(4) << "loss " << r.loss << "  accuracy "
            << r.accuracy << "  samples " << r.samples << "\n";
}

void predict(const std::string& model_path, const DataArgs& args) {
  Loaded l = load_for_inference(model_path, args);
  NoGradGuard no_grad;
  const data::transforms::Transform input =
      model_input(l.model.normalization, l.model.arch.input_shape);
  std::ostringstream out;
  const int64_t n = l.data.x.size(0);
  for (int64_t start = 0; start < n; start += kEvalBatch) {
    const int64_t len = std::min<int64_t>(kEvalBatch, n - start);
    const Tensor logits = (*l.model.model)(input(l.data.x.narrow(0, start, len)));
    for (int64_t p : argmax(logits, 1).to_vector<int64_t>()) out << p << '\n';
  }
  std::cout << out.str();
}

void summary(const std::string& model_path) {
  ModelFile m = load_model(model_path);
  Shape shape{1};
  shape.insert(shape.end(), m.arch.input_shape.begin(), m.arch.input_shape.end());
  std::cout << m.model->summary(shape);
}

}  // namespace soma::cli
