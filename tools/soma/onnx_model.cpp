#include "onnx_model.h"

#include <algorithm>

#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/shape.h"

namespace soma::cli {

bool is_onnx_path(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

namespace {

// OnnxCliModel::net: the graph in chunks of its static batch, log of a final Softmax.
class CliNet : public nn::Module {
 public:
  CliNet(std::shared_ptr<onnx::OnnxModel> graph, int64_t batch, bool probabilities)
      : graph_(register_module("graph", std::move(graph))),
        batch_(batch),
        probabilities_(probabilities) {}

  Tensor forward(const Tensor& x) override {
    Tensor y;
    if (batch_ < 0 || x.size(0) == batch_) {
      y = (*graph_)(x);
    } else {
      std::vector<Tensor> parts;
      for (int64_t start = 0; start < x.size(0); start += batch_) {
        const int64_t len = std::min(batch_, x.size(0) - start);
        Tensor chunk = x.narrow(0, start, len);
        if (len < batch_) {  // zeros after the last rows; their outputs are dropped
          Shape pad = chunk.shape();
          pad[0] = batch_ - len;
          chunk = soma::cat({chunk, soma::zeros(pad, chunk.dtype())}, 0);
        }
        parts.push_back((*graph_)(chunk).narrow(0, 0, len));
      }
      y = parts.size() == 1 ? parts[0] : soma::cat(parts, 0);
    }
    // log(p), with p kept above float32's smallest normal so that an underflowed 0 gives a
    // finite log (-87) and gradient.
    return probabilities_ ? soma::log(soma::clamp(y, 1.17549435e-38, 1.0)) : y;
  }
  std::string describe() const override { return graph_->describe(); }

 private:
  std::shared_ptr<onnx::OnnxModel> graph_;
  int64_t batch_;
  bool probabilities_;
};

}  // namespace

OnnxCliModel load_onnx_model(const std::string& path) {
  OnnxCliModel m;
  m.model = onnx::load(path);
  const auto& ins = m.model->inputs();
  const auto& outs = m.model->outputs();
  SOMA_CHECK(ins.size() == 1 && outs.size() == 1, "model: ", path, " has ", ins.size(),
             " inputs and ", outs.size(),
             " outputs (the CLI runs models of one input and one "
             "output)");
  const onnx::ValueSpec& in = ins[0];
  SOMA_CHECK(in.dtype == kFloat32, "model: ", path, ": input '", in.name, "' has dtype ", in.dtype,
             " (the CLI feeds float32)");
  SOMA_CHECK(in.shape.size() >= 2, "model: ", path, ": input '", in.name, "' has shape ", in.shape,
             " (the CLI needs [batch, ...] with a declared sample shape)");
  for (size_t d = 1; d < in.shape.size(); ++d)
    SOMA_CHECK(in.shape[d] > 0, "model: ", path, ": input '", in.name, "' has shape ", in.shape,
               ": dim ", d, " is not static (-1), so the CLI cannot shape the rows");
  m.sample_shape.assign(in.shape.begin() + 1, in.shape.end());
  if (in.shape[0] > 0) m.static_batch = in.shape[0];
  const onnx::ValueSpec& out = outs[0];
  if (out.shape.size() == 2 && out.shape[1] > 0) m.classes = out.shape[1];
  m.probabilities = m.model->output_op() == "Softmax";
  m.model->eval();
  m.net = std::make_shared<CliNet>(m.model, m.static_batch, m.probabilities);
  m.net->eval();
  return m;
}

namespace {
class OnnxInput : public data::transforms::Stage {
 public:
  explicit OnnxInput(std::vector<int64_t> shape) : shape_(std::move(shape)) {}
  Tensor apply(const Tensor& x, const data::transforms::Context&) const override {
    Shape s{x.size(0)};
    s.insert(s.end(), shape_.begin(), shape_.end());
    return x.to(kFloat32).contiguous().reshape(s);
  }

 private:
  std::vector<int64_t> shape_;
};
}  // namespace

data::transforms::Transform onnx_input(const std::vector<int64_t>& sample_shape) {
  return OnnxInput(sample_shape);
}

}  // namespace soma::cli
