#include "onnx_model.h"

#include "soma/core/error.h"

namespace soma::cli {

bool is_onnx_path(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

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
  const onnx::ValueSpec& out = outs[0];
  if (out.shape.size() == 2 && out.shape[1] > 0) m.classes = out.shape[1];
  m.model->eval();
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
