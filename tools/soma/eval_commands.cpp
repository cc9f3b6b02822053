// soma eval / predict / summary: a model.safetensors written by soma train, or an ONNX model
// (a path ending in .onnx: onnx_model.h), on IDX or CSV data.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "data_select.h"
#include "model_file.h"
#include "onnx_model.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
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

Data load_args(const DataArgs& args) {
  return load_data(args.data.empty() ? "/usr/share/datasets/fashion-mnist" : args.data, args.csv,
                   args.label_column, args.split);
}

// An ONNX model and the data it runs on: the rows must fill its declared sample shape.
struct LoadedOnnx {
  OnnxCliModel model;
  Data data;
};

LoadedOnnx load_onnx_for_inference(const std::string& model_path, const DataArgs& args) {
  LoadedOnnx l{load_onnx_model(model_path), load_args(args)};
  int64_t sample = 1;
  for (int64_t d : l.model.sample_shape) sample *= d;
  SOMA_CHECK(l.data.x.size(1) == sample, "data has ", l.data.x.size(1),
             " features per sample, the ONNX model ", model_path, " takes inputs of shape ",
             l.model.model->inputs()[0].shape, " (", sample, " values per sample)");
  return l;
}

// Logits [n, classes] for rows [n, F], in batches.
Tensor onnx_logits(const LoadedOnnx& l, int64_t start, int64_t len, const std::string& path) {
  const data::transforms::Transform input = onnx_input(l.model.sample_shape);
  const Tensor logits = (*l.model.net)(input(l.data.x.narrow(0, start, len)));
  SOMA_CHECK(logits.dim() == 2 && logits.size(0) == len, "model: ", path, ": output of shape ",
             logits.shape(), " for ", len, " samples (the CLI needs class scores [N, classes])");
  return logits;
}

void eval_onnx(const std::string& model_path, const DataArgs& args) {
  LoadedOnnx l = load_onnx_for_inference(model_path, args);
  NoGradGuard no_grad;
  const int64_t n = l.data.x.size(0);
  const int64_t max_label = l.data.y.max().item<int64_t>();
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += kEvalBatch) {
    const int64_t len = std::min<int64_t>(kEvalBatch, n - start);
    const Tensor logits = onnx_logits(l, start, len, model_path);
    SOMA_CHECK(max_label < logits.size(1), "eval: label ", max_label, " is out of range for the ",
               logits.size(1), " outputs of ", model_path);
    const Tensor y = l.data.y.narrow(0, start, len);
    loss_sum += training_loss(logits, y).item<float>() * static_cast<double>(len);
    correct += soma::eq(argmax(logits, 1), y).to(kInt64).sum().item<int64_t>();
  }
  std::cout << std::fixed << std::setprecision(4) << "loss " << loss_sum / static_cast<double>(n)
            << "  accuracy " << static_cast<double>(correct) / static_cast<double>(n)
            << "  samples " << n << "\n";
}

void predict_onnx(const std::string& model_path, const DataArgs& args) {
  LoadedOnnx l = load_onnx_for_inference(model_path, args);
  NoGradGuard no_grad;
  std::ostringstream out;
  const int64_t n = l.data.x.size(0);
  for (int64_t start = 0; start < n; start += kEvalBatch) {
    const int64_t len = std::min<int64_t>(kEvalBatch, n - start);
    for (int64_t p : argmax(onnx_logits(l, start, len, model_path), 1).to_vector<int64_t>())
      out << p << '\n';
  }
  std::cout << out.str();
}

void summary_onnx(const std::string& model_path) {
  OnnxCliModel m = load_onnx_model(model_path);
  const auto& in = m.model->inputs()[0];
  const auto& out = m.model->outputs()[0];
  auto dims = [](const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  };
  std::cout << m.model->describe() << "\ninput  " << in.name << " " << dims(in.shape)
            << " float32\noutput " << out.name << " " << dims(out.shape) << "   (-1: any size)\n";
  if (m.static_batch > 0)
    std::cout << "the batch size is fixed at " << m.static_batch
              << ": the CLI feeds the model in chunks of " << m.static_batch << "\n";
  if (m.probabilities)
    std::cout << "the output is a Softmax's: the CLI uses its log as the class scores\n";
  Shape shape{m.static_batch > 0 ? m.static_batch : 1};
  shape.insert(shape.end(), m.sample_shape.begin(), m.sample_shape.end());
  std::cout << m.model->summary(shape);
}

}  // namespace

void eval(const std::string& model_path, const DataArgs& args) {
  if (is_onnx_path(model_path)) return eval_onnx(model_path, args);
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
  if (is_onnx_path(model_path)) return predict_onnx(model_path, args);
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
  if (is_onnx_path(model_path)) return summary_onnx(model_path);
  ModelFile m = load_model(model_path);
  Shape shape{1};
  shape.insert(shape.end(), m.arch.input_shape.begin(), m.arch.input_shape.end());
  std::cout << m.model->summary(shape);
  if (m.arch.quantization == "dynamic")
    std::cout << "quantization: dynamic int8 (the Linear layers hold int8 weights and float32 "
                 "per-channel scales; inputs are quantized per batch)\n";
  else if (m.arch.quantization == "static")
    std::cout << "quantization: static int8 (Conv2d and Linear hold int8 weights, per-channel "
                 "scales and calibrated input scales; BatchNorm folded, ReLU fused)\n";
}

}  // namespace soma::cli
