// soma::onnx::export_model: traces a forward with the op layer's recording mode (ops/trace.h)
// and writes the recorded ops as an ONNX ModelProto (proto_writer.h).
//
// Values: a traced value is a graph input or the output of a recorded node; it knows where its
// batch dimension is (or that it has none), so that shapes written into the graph (Reshape)
// keep the batch dynamic. A tensor that is not a traced value is a constant: a module's
// parameter or buffer becomes an initializer named by its state-dict key, any other tensor an
// initializer "const_N". An op whose inputs are all constants is not written: its output is
// itself a constant (folded) when a later op uses it.
#include "soma/onnx/export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <set>
#include <unordered_map>

#include "core/dispatch.h"
#include "onnx/proto_writer.h"
#include "ops/trace.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/io/file.h"
#include "soma/ops/shape.h"

#ifndef SOMA_VERSION_STRING
#define SOMA_VERSION_STRING "unknown"
#endif

namespace soma::onnx {

std::string soma_version() {
  return SOMA_VERSION_STRING;
}

namespace {

using trace::AttrValue;
using trace::Call;

constexpr int64_t kIrVersion = 8;
constexpr int64_t kMinOpset = 13, kMaxOpset = 17;

int64_t onnx_type(DType d) {
  switch (d) {
    case kFloat32:
      return pb::tensor::kFloat;
    case kFloat64:
      return pb::tensor::kDouble;
    case kInt64:
      return pb::tensor::kInt64;
    case kBool:
      return pb::tensor::kBool;
    case kUInt8:
      return pb::tensor::kUint8;
    case kInt8:
      return pb::tensor::kInt8;
    case kInt32:
      return pb::tensor::kInt32;
    case kBFloat16:
      return pb::tensor::kBFloat16;
    case kFloat16:
      return pb::tensor::kFloat16;
  }
  return 0;
}

// ---- attributes ----------------------------------------------------------------------------
pb::Writer attr_int(const std::string& name, int64_t v) {
  pb::Writer a;
  a.bytes(pb::attr::kName, name);
  a.i64(pb::attr::kI, v);
  a.i64(pb::attr::kType, pb::attr::kInt);
  return a;
}
pb::Writer attr_float(const std::string& name, double v) {
  pb::Writer a;
  a.bytes(pb::attr::kName, name);
  a.f32(pb::attr::kF, static_cast<float>(v));
  a.i64(pb::attr::kType, pb::attr::kFloat);
  return a;
}
pb::Writer attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  pb::Writer a;
  a.bytes(pb::attr::kName, name);
  a.packed_i64(pb::attr::kInts, v);
  a.i64(pb::attr::kType, pb::attr::kIntsType);
  return a;
}

pb::Writer tensor_proto(const std::string& name, const Tensor& value) {
  const Tensor c = value.detach().contiguous();
  pb::Writer t;
  t.packed_i64(pb::tensor::kDims, c.shape());
  t.i64(pb::tensor::kDataType, onnx_type(c.dtype()));
  t.bytes(pb::tensor::kName, name);
  const size_t n = static_cast<size_t>(c.numel()) * element_size(c.dtype());
  std::string raw(n, '\0');
  if (n > 0) {
    // raw_data: little-endian element bytes (bool one byte, bfloat16/float16 their 16 bits)
    const char* src = detail::dispatch_all(
        c.dtype(), [&]<typename T>() { return reinterpret_cast<const char*>(c.data<T>()); });
    std::memcpy(raw.data(), src, n);
  }
  t.bytes(pb::tensor::kRawData, raw);
  return t;
}

// ---- recorded attributes -----------------------------------------------------------------
const AttrValue* find_attr(const Call& c, const char* name) {
  for (const auto& [k, v] : c.attrs)
    if (k == name) return &v;
  return nullptr;
}
int64_t get_int(const Call& c, const char* name) {
  const AttrValue* v = find_attr(c, name);
  return v != nullptr && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : 0;
}
double get_double(const Call& c, const char* name, double fallback) {
  const AttrValue* v = find_attr(c, name);
  return v != nullptr && std::holds_alternative<double>(*v) ? std::get<double>(*v) : fallback;
}
std::vector<int64_t> get_ints(const Call& c, const char* name) {
  const AttrValue* v = find_attr(c, name);
  return v != nullptr && std::holds_alternative<std::vector<int64_t>>(*v)
             ? std::get<std::vector<int64_t>>(*v)
             : std::vector<int64_t>{};
}
// torch's ExpandingArray: one value for every spatial dim, or one per dim; empty: `fallback`.
std::vector<int64_t> expand(std::vector<int64_t> v, size_t dims,
                            const std::vector<int64_t>& fallback) {
  if (v.empty()) return fallback;
  if (v.size() == 1) v.assign(dims, v[0]);
  return v;
}
std::vector<int64_t> twice(const std::vector<int64_t>& pads) {  // ONNX pads: begins then ends
  std::vector<int64_t> out = pads;
  out.insert(out.end(), pads.begin(), pads.end());
  return out;
}

struct NodeRec {
  std::string op;
  std::vector<std::string> inputs, outputs;
  std::vector<pb::Writer> attrs;
};

struct Value {
  std::string name;
  int64_t batch = -1;  // the batch dimension's index, -1: none
};

class Exporter final : public trace::Tracer {
 public:
  Exporter(nn::Module& module, const ExportOptions& options) : options_(options) {
    for (const auto& [key, t] : module.named_parameters())
      if (t.defined()) state_.emplace(t.impl().get(), key);
    for (const auto& [key, t] : module.named_buffers())
      if (t.defined()) state_.emplace(t.impl().get(), key);
  }

  void add_input(const Tensor& t, const std::string& name) {
    Value v{name, options_.dynamic_batch && t.dim() >= 1 ? 0 : -1};
    values_[t.impl().get()] = v;
    keep_.push_back(t);
    inputs_.push_back({t, v});
  }

  void on_op(Call c) override {
    ++index_;
    current_ = c.op;
    bool any_traced = false;
    for (const Tensor& t : c.inputs) {
      if (!t.defined()) continue;
      if (t.impl() == c.output.impl()) return;  // the op returned its input: same value
      any_traced = any_traced || traced(t);
    }
    if (!any_traced) return;  // all inputs constant: the output is a constant (folded)
    emit(c);
  }

  void on_unmapped(const char* op, const std::vector<Tensor>& inputs) override {
    ++index_;
    for (const Tensor& t : inputs)
      if (t.defined() && traced(t))
        detail::fail("onnx::export_model: op ", index_, " of the forward, '", op,
                     "', has no ONNX mapping (docs/interop.md lists the ops soma exports)");
  }

  std::string model_bytes(const std::vector<Tensor>& outputs) {
    // Outputs: rename the producing node's output when it is the graph's own, else Identity.
    std::vector<std::pair<std::string, Value>> outs;
    std::set<std::string> input_names;
    for (const auto& in : inputs_) input_names.insert(in.second.name);
    std::set<std::string> renamed;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const Tensor& t = outputs[i];
      SOMA_CHECK(t.defined(), "onnx::export_model: output ", i, " is undefined");
      const std::string want =
          i < options_.output_names.size()
              ? options_.output_names[i]
              : (outputs.size() == 1 ? "output" : "output_" + std::to_string(i));
      Value v = traced(t) ? values_.at(t.impl().get()) : Value{use(t), -1};
      NodeRec* producer = nullptr;
      for (NodeRec& n : nodes_)
        for (const std::string& o : n.outputs)
          if (o == v.name) producer = &n;
      if (producer != nullptr && !input_names.count(v.name) && !renamed.count(v.name)) {
        for (NodeRec& n : nodes_) {
          for (std::string& s : n.inputs)
            if (s == v.name) s = want;
          for (std::string& s : n.outputs)
            if (s == v.name) s = want;
        }
        for (auto& [tensor_impl, value] : values_)
          if (value.name == v.name) value.name = want;
        renamed.insert(want);
      } else {
        nodes_.push_back({"Identity", {v.name}, {want}, {}});
      }
      v.name = want;
      outs.emplace_back(want, v);
      out_tensors_.push_back(t);
    }

    pb::Writer g;
    for (const NodeRec& n : nodes_) {
      pb::Writer w;
      for (const std::string& s : n.inputs) w.bytes(pb::node::kInput, s);
      for (const std::string& s : n.outputs) w.bytes(pb::node::kOutput, s);
      w.bytes(pb::node::kName, n.op + "_" + std::to_string(&n - nodes_.data()));
      w.bytes(pb::node::kOpType, n.op);
      for (const pb::Writer& a : n.attrs) w.message(pb::node::kAttribute, a);
      g.message(pb::graph::kNode, w);
    }
    g.bytes(pb::graph::kName, "soma");
    for (const pb::Writer& init : initializers_) g.message(pb::graph::kInitializer, init);
    for (const auto& [t, v] : inputs_) g.message(pb::graph::kInput, value_info(v.name, t, v.batch));
    for (size_t i = 0; i < outs.size(); ++i)
      g.message(pb::graph::kOutput,
                value_info(outs[i].first, out_tensors_[i], outs[i].second.batch));

    pb::Writer m;
    m.i64(pb::model::kIrVersion, kIrVersion);
    m.bytes(pb::model::kProducerName, "soma");
    m.bytes(pb::model::kProducerVersion, soma_version());
    m.message(pb::model::kGraph, g);
    pb::Writer opset;
    opset.bytes(pb::opset_id::kDomain, "");
    opset.i64(pb::opset_id::kVersion, options_.opset);
    m.message(pb::model::kOpsetImport, opset);
    for (const auto& [k, v] : options_.metadata) {
      pb::Writer e;
      e.bytes(pb::entry::kKey, k);
      e.bytes(pb::entry::kValue, v);
      m.message(pb::model::kMetadataProps, e);
    }
    return m.str();
  }

 private:
  bool traced(const Tensor& t) const { return values_.count(t.impl().get()) > 0; }

  [[noreturn]] void refuse(const std::string& why) const {
    detail::fail("onnx::export_model: op ", index_, " of the forward, '", current_,
                 "', cannot be exported: ", why);
  }

  // The graph name of an input tensor: a traced value, a parameter/buffer (initializer under
  // its state-dict key) or a constant (initializer const_N).
  std::string use(const Tensor& t) {
    auto it = values_.find(t.impl().get());
    if (it != values_.end()) return it->second.name;
    auto c = constants_.find(t.impl().get());
    if (c != constants_.end()) return c->second;
    auto s = state_.find(t.impl().get());
    const std::string name =
        s != state_.end() ? s->second : "const_" + std::to_string(constants_.size());
    initializers_.push_back(tensor_proto(name, t));
    constants_.emplace(t.impl().get(), name);
    keep_.push_back(t);
    return name;
  }

  std::string fresh(const std::string& op) { return op + "_out_" + std::to_string(next_++); }

  std::string node(const std::string& op, std::vector<std::string> inputs,
                   std::vector<pb::Writer> attrs = {}) {
    std::string out = fresh(op);
    nodes_.push_back({op, std::move(inputs), {out}, std::move(attrs)});
    return out;
  }

  std::string scalar(double v, DType dtype) { return use(soma::full({}, v, dtype)); }
  std::string ints(const std::vector<int64_t>& v) {
    return use(soma::tensor(v, {static_cast<int64_t>(v.size())}));
  }

  Value in_value(const Tensor& t) {
    auto it = values_.find(t.impl().get());
    return it != values_.end() ? it->second : Value{use(t), -1};
  }

  void set_output(const Tensor& out, const std::string& name, int64_t batch) {
    values_[out.impl().get()] = Value{name, batch};
    keep_.push_back(out);
  }

  // The batch dim of a broadcasting op's output.
  int64_t broadcast_batch(const Call& c) const {
    const int64_t r = c.output.dim();
    for (const Tensor& t : c.inputs) {
      if (!t.defined() || !traced(t)) continue;
      const int64_t b = values_.at(t.impl().get()).batch;
      if (b < 0) continue;
      const int64_t at = b + (r - t.dim());
      if (at >= 0 && at < r && c.output.size(at) == t.size(b)) return at;
    }
    return -1;
  }

  // A Reshape's target shape for `out` that keeps the batch (of x, at `batch`) dynamic.
  std::pair<std::vector<int64_t>, int64_t> reshape_target(const Tensor& x, int64_t batch,
                                                          const Shape& out) const {
    std::vector<int64_t> shape = out;
    if (batch < 0) return {shape, -1};
    int64_t before = 1;
    for (int64_t d = 0; d < batch; ++d) before *= x.size(d);
    int64_t acc = 1;
    for (size_t j = 0; j < out.size(); ++j) {
      if (acc == before && out[j] == x.size(batch)) {
        shape[j] = -1;
        return {shape, static_cast<int64_t>(j)};
      }
      acc *= out[j];
    }
    if (batch == 0 && !out.empty()) {
      shape[0] = -1;  // the batch folds into (or out of) dimension 0, the others are static
      return {shape, 0};
    }
    refuse("the reshape to " + shape_string(out) +
           " mixes the batch dimension with others (export with dynamic_batch = false)");
  }

  static std::string shape_string(const Shape& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }

  pb::Writer value_info(const std::string& name, const Tensor& t, int64_t batch) const {
    pb::Writer shape;
    for (int64_t d = 0; d < t.dim(); ++d) {
      pb::Writer dim;
      if (d == batch)
        dim.bytes(pb::type::kDimParam, "batch");
      else
        dim.i64(pb::type::kDimValue, t.size(d));
      shape.message(pb::type::kDim, dim);
    }
    pb::Writer tensor_type;
    tensor_type.i64(pb::type::kElemType, onnx_type(t.dtype()));
    tensor_type.message(pb::type::kShape, shape);
    pb::Writer type;
    type.message(pb::type::kTensorType, tensor_type);
    pb::Writer vi;
    vi.bytes(pb::value_info::kName, name);
    vi.message(pb::value_info::kType, type);
    return vi;
  }

  void emit(const Call& c);
  void emit_binary(const Call& c, const char* onnx_op);
  void emit_conv(const Call& c, size_t dims, bool transposed);
  void emit_layer_norm(const Call& c, const Value& x);
  void emit_quantized(const Call& c, const Value& v);

  ExportOptions options_;
  std::unordered_map<const TensorImpl*, std::string> state_;      // parameters and buffers
  std::unordered_map<const TensorImpl*, Value> values_;           // traced values
  std::unordered_map<const TensorImpl*, std::string> constants_;  // initializers written
  std::vector<Tensor> keep_;  // every tensor named above stays alive (its address stays unique)
  std::vector<std::pair<Tensor, Value>> inputs_;
  std::vector<Tensor> out_tensors_;
  std::vector<NodeRec> nodes_;
  std::vector<pb::Writer> initializers_;
  int64_t index_ = 0, next_ = 0;
  std::string current_;
};

void Exporter::emit_binary(const Call& c, const char* onnx_op) {
  const Tensor& a = c.inputs[0];
  const int64_t batch = broadcast_batch(c);
  std::string lhs = in_value(a).name, rhs;
  if (c.inputs.size() == 1) {
    rhs = scalar(get_double(c, "other", 0.0), a.dtype());
  } else {
    rhs = in_value(c.inputs[1]).name;
    const double alpha = get_double(c, "alpha", 1.0);
    if (alpha != 1.0) rhs = node("Mul", {rhs, scalar(alpha, c.inputs[1].dtype())});
  }
  SOMA_CHECK(c.inputs.size() == 1 || a.dtype() == c.inputs[1].dtype(), "onnx::export_model: op ",
             index_, " of the forward, '", c.op, "': operands of dtypes ", a.dtype(), " and ",
             c.inputs[1].dtype(), " (ONNX needs one dtype; convert first)");
  set_output(c.output, node(onnx_op, {lhs, rhs}), batch);
}

void Exporter::emit_conv(const Call& c, size_t dims, bool transposed) {
  const Tensor& x = c.inputs[0];
  const Tensor& w = c.inputs[1];
  if (x.dim() != static_cast<int64_t>(dims) + 2)
    refuse("an unbatched input of shape " + shape_string(x.shape()) + " (ONNX needs [N, C, ...])");
  const std::vector<int64_t> ones(dims, 1), zeros(dims, 0);
  std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
  std::vector<pb::Writer> attrs;
  attrs.push_back(attr_ints("dilations", expand(get_ints(c, "dilation"), dims, ones)));
  attrs.push_back(attr_int("group", get_int(c, "groups")));
  attrs.push_back(attr_ints("kernel_shape", kernel));
  attrs.push_back(attr_ints("pads", twice(expand(get_ints(c, "padding"), dims, zeros))));
  attrs.push_back(attr_ints("strides", expand(get_ints(c, "stride"), dims, ones)));
  if (transposed)
    attrs.push_back(
        attr_ints("output_padding", expand(get_ints(c, "output_padding"), dims, zeros)));
  std::vector<std::string> ins{in_value(x).name, in_value(w).name};
  if (c.inputs[2].defined()) ins.push_back(in_value(c.inputs[2]).name);
  set_output(c.output, node(transposed ? "ConvTranspose" : "Conv", ins, std::move(attrs)),
             in_value(x).batch);
}

// soma::quantization's layers as QDQ: the int8 weights through DequantizeLinear (per output
// channel, axis 0); the input through DynamicQuantizeLinear (dynamic: its own per-batch scale
// and zero point, as soma computes them) or QuantizeLinear with the calibrated uint8 scale and
// zero point (static), then DequantizeLinear; then the float Gemm or Conv, and the fused Relu.
// inputs: x, weight (int8), weight_scale, bias[, input_scale, input_zero_point].
void Exporter::emit_quantized(const Call& c, const Value& v) {
  const Tensor& x = c.inputs[0];
  const bool conv = c.op == "quantized_conv2d";
  if (!conv && x.dim() != 2)
    refuse("a quantized linear layer on an input of shape " + shape_string(x.shape()) +
           " (the ONNX export takes [N, features])");
  std::vector<pb::Writer> axis;
  axis.push_back(attr_int("axis", 0));
  const std::string w =
      node("DequantizeLinear", {in_value(c.inputs[1]).name, in_value(c.inputs[2]).name},
           std::move(axis));
  std::string xdq;
  if (c.op == "dynamic_quant_linear") {
    const std::string q = fresh("DynamicQuantizeLinear"), qs = q + "_scale", qz = q + "_zero_point";
    nodes_.push_back({"DynamicQuantizeLinear", {v.name}, {q, qs, qz}, {}});
    xdq = node("DequantizeLinear", {q, qs, qz});
  } else {
    const Tensor scale = c.inputs[4].contiguous(), zp = c.inputs[5].contiguous();
    const std::string s = scalar(scale.data<float>()[0], kFloat32);
    const std::string z = use(soma::full({}, zp.data<int32_t>()[0], kUInt8));
    xdq = node("DequantizeLinear", {node("QuantizeLinear", {v.name, s, z}), s, z});
  }
  std::vector<std::string> ins{xdq, w};
  if (c.inputs[3].defined()) ins.push_back(in_value(c.inputs[3]).name);
  std::vector<pb::Writer> a;
  std::string y;
  if (conv) {
    const Tensor& wt = c.inputs[1];
    a.push_back(attr_ints("kernel_shape", {wt.size(2), wt.size(3)}));
    a.push_back(attr_ints("pads", twice(get_ints(c, "padding"))));
    a.push_back(attr_ints("strides", get_ints(c, "stride")));
    y = node("Conv", ins, std::move(a));
  } else {
    a.push_back(attr_int("transB", 1));
    y = node("Gemm", ins, std::move(a));
  }
  if (get_int(c, "relu") != 0) y = node("Relu", {y});
  set_output(c.output, y, v.batch);
}

void Exporter::emit_layer_norm(const Call& c, const Value& x) {
  const Tensor& in = c.inputs[0];
  const std::vector<int64_t> ns = get_ints(c, "normalized_shape");
  const double eps = get_double(c, "eps", 1e-5);
  const int64_t axis = in.dim() - static_cast<int64_t>(ns.size());
  const Tensor& w = c.inputs[1];
  const Tensor& b = c.inputs[2];
  if (x.batch >= axis && x.batch >= 0) refuse("layer_norm over the batch dimension");
  if (options_.opset >= 17) {
    std::vector<std::string> ins{x.name,
                                 w.defined() ? in_value(w).name : use(soma::ones(ns, in.dtype()))};
    if (b.defined()) ins.push_back(in_value(b).name);
    set_output(c.output,
               node("LayerNormalization", ins,
                    [&] {
                      std::vector<pb::Writer> a;
                      a.push_back(attr_int("axis", axis));
                      a.push_back(attr_float("epsilon", eps));
                      return a;
                    }()),
               x.batch);
    return;
  }
  // Below opset 17: (x - mean) / sqrt(var + eps) * w + b, over the trailing dims.
  std::vector<int64_t> axes;
  for (int64_t d = axis; d < in.dim(); ++d) axes.push_back(d);
  auto reduce_mean = [&](const std::string& v) {
    std::vector<pb::Writer> a;
    a.push_back(attr_ints("axes", axes));
    a.push_back(attr_int("keepdims", 1));
    return node("ReduceMean", {v}, std::move(a));
  };
  const std::string centred = node("Sub", {x.name, reduce_mean(x.name)});
  const std::string var = reduce_mean(node("Mul", {centred, centred}));
  std::string y =
      node("Div", {centred, node("Sqrt", {node("Add", {var, scalar(eps, in.dtype())})})});
  if (w.defined()) y = node("Mul", {y, in_value(w).name});
  if (b.defined()) y = node("Add", {y, in_value(b).name});
  set_output(c.output, y, x.batch);
}

void Exporter::emit(const Call& c) {
  const std::string& op = c.op;
  const Tensor& x = c.inputs[0];
  if (op == "add") return emit_binary(c, "Add");
  if (op == "sub") return emit_binary(c, "Sub");
  if (op == "mul") return emit_binary(c, "Mul");
  if (op == "div") return emit_binary(c, "Div");
  if (op == "rsub") {  // other - alpha * x
    const Value v = in_value(x);
    const double alpha = get_double(c, "alpha", 1.0);
    std::string ax = alpha == 1.0 ? v.name : node("Mul", {v.name, scalar(alpha, x.dtype())});
    set_output(c.output, node("Sub", {scalar(get_double(c, "other", 0.0), x.dtype()), ax}),
               v.batch);
    return;
  }
  const Value v = in_value(x);
  if (op == "neg" || op == "relu" || op == "sigmoid" || op == "tanh") {
    const char* onnx_op = op == "neg"       ? "Neg"
                          : op == "relu"    ? "Relu"
                          : op == "sigmoid" ? "Sigmoid"
                                            : "Tanh";
    return set_output(c.output, node(onnx_op, {v.name}), v.batch);
  }
  if (op == "leaky_relu") {
    std::vector<pb::Writer> a;
    a.push_back(attr_float("alpha", get_double(c, "negative_slope", 0.01)));
    return set_output(c.output, node("LeakyRelu", {v.name}, std::move(a)), v.batch);
  }
  if (op == "gelu") {  // x * 0.5 * (1 + erf(x / sqrt(2))), as torch writes it below opset 20
    const std::string e =
        node("Erf", {node("Div", {v.name, scalar(std::numbers::sqrt2, x.dtype())})});
    const std::string y = node(
        "Mul",
        {node("Mul", {v.name, node("Add", {e, scalar(1.0, x.dtype())})}), scalar(0.5, x.dtype())});
    return set_output(c.output, y, v.batch);
  }
  if (op == "softmax" || op == "log_softmax") {
    int64_t dim = get_int(c, "dim");
    if (dim < 0) dim += x.dim();
    if (v.batch >= 0 && dim == v.batch) refuse("a softmax over the batch dimension");
    std::vector<pb::Writer> a;
    a.push_back(attr_int("axis", dim));
    return set_output(c.output,
                      node(op == "softmax" ? "Softmax" : "LogSoftmax", {v.name}, std::move(a)),
                      v.batch);
  }
  if (op == "dropout" || op == "contiguous") {  // dropout in training mode included: identity
    values_[c.output.impl().get()] = v;
    keep_.push_back(c.output);
    return;
  }
  if (op == "dynamic_quant_linear" || op == "quantized_linear" || op == "quantized_conv2d") {
    return emit_quantized(c, v);
  }
  if (op == "linear") {
    const Tensor& w = c.inputs[1];
    const Tensor& b = c.inputs[2];
    if (v.batch == x.dim() - 1) refuse("a linear layer over the batch dimension");
    if (x.dim() == 2) {
      std::vector<std::string> ins{v.name, in_value(w).name};
      if (b.defined()) ins.push_back(in_value(b).name);
      std::vector<pb::Writer> a;
      a.push_back(attr_int("transB", 1));
      return set_output(c.output, node("Gemm", ins, std::move(a)), v.batch);
    }
    std::vector<pb::Writer> perm;
    perm.push_back(attr_ints("perm", {1, 0}));
    std::string y =
        node("MatMul", {v.name, node("Transpose", {in_value(w).name}, std::move(perm))});
    if (b.defined()) y = node("Add", {y, in_value(b).name});
    return set_output(c.output, y, v.batch);
  }
  if (op == "matmul") {
    const Tensor& b = c.inputs[1];
    const Value vb = in_value(b);
    int64_t batch = -1;
    if (v.batch >= 0 && x.dim() >= 2 && v.batch < x.dim() - 1)
      batch = v.batch + (c.output.dim() - x.dim());
    else if (vb.batch >= 0 && vb.batch == b.dim() - 1 && b.dim() >= 2)
      batch = c.output.dim() - 1;
    return set_output(c.output, node("MatMul", {v.name, vb.name}), batch);
  }
  if (op == "addmm") {  // beta * input + alpha * (mat1 @ mat2)
    std::vector<pb::Writer> a;
    a.push_back(attr_float("alpha", get_double(c, "alpha", 1.0)));
    a.push_back(attr_float("beta", get_double(c, "beta", 1.0)));
    const Value m1 = in_value(c.inputs[1]);
    return set_output(c.output,
                      node("Gemm", {m1.name, in_value(c.inputs[2]).name, v.name}, std::move(a)),
                      m1.batch == 0 ? 0 : -1);
  }
  if (op == "conv2d") return emit_conv(c, 2, false);
  if (op == "conv1d") return emit_conv(c, 1, false);
  if (op == "conv_transpose2d") return emit_conv(c, 2, true);
  if (op == "max_pool2d" || op == "avg_pool2d") {
    if (x.dim() != 4) refuse("an unbatched input of shape " + shape_string(x.shape()));
    const std::vector<int64_t> kernel = expand(get_ints(c, "kernel_size"), 2, {});
    std::vector<pb::Writer> a;
    a.push_back(attr_int("ceil_mode", get_int(c, "ceil_mode")));
    a.push_back(attr_ints("kernel_shape", kernel));
    a.push_back(attr_ints("pads", twice(expand(get_ints(c, "padding"), 2, {0, 0}))));
    a.push_back(attr_ints("strides", expand(get_ints(c, "stride"), 2, kernel)));
    if (op == "max_pool2d") {
      a.push_back(attr_ints("dilations", expand(get_ints(c, "dilation"), 2, {1, 1})));
      return set_output(c.output, node("MaxPool", {v.name}, std::move(a)), v.batch);
    }
    if (get_int(c, "divisor_override") != 0) refuse("avg_pool2d with a divisor_override");
    a.push_back(attr_int("count_include_pad", get_int(c, "count_include_pad")));
    return set_output(c.output, node("AveragePool", {v.name}, std::move(a)), v.batch);
  }
  if (op == "adaptive_avg_pool2d") {
    if (x.dim() != 4) refuse("an unbatched input of shape " + shape_string(x.shape()));
    const int64_t oh = c.output.size(2), ow = c.output.size(3);
    if (oh == 1 && ow == 1)
      return set_output(c.output, node("GlobalAveragePool", {v.name}), v.batch);
    if (x.size(2) % oh != 0 || x.size(3) % ow != 0)
      refuse("adaptive_avg_pool2d from " + shape_string(x.shape()) + " to " +
             shape_string(c.output.shape()) + " (only 1x1 or a divisor of the input size)");
    const std::vector<int64_t> k{x.size(2) / oh, x.size(3) / ow};
    std::vector<pb::Writer> a;
    a.push_back(attr_ints("kernel_shape", k));
    a.push_back(attr_ints("strides", k));
    return set_output(c.output, node("AveragePool", {v.name}, std::move(a)), v.batch);
  }
  if (op == "batch_norm") {
    if (get_int(c, "training") != 0) refuse("batch_norm in training mode");
    const int64_t channels = x.size(1);
    const Tensor& w = c.inputs[3];
    const Tensor& b = c.inputs[4];
    std::vector<std::string> ins{
        v.name, w.defined() ? in_value(w).name : use(soma::ones({channels}, x.dtype())),
        b.defined() ? in_value(b).name : use(soma::zeros({channels}, x.dtype())),
        in_value(c.inputs[1]).name, in_value(c.inputs[2]).name};
    std::vector<pb::Writer> a;
    a.push_back(attr_float("epsilon", get_double(c, "eps", 1e-5)));
    return set_output(c.output, node("BatchNormalization", ins, std::move(a)), v.batch);
  }
  if (op == "layer_norm") return emit_layer_norm(c, v);
  if (op == "flatten") {
    const int64_t r = std::max<int64_t>(x.dim(), 1);
    int64_t start = get_int(c, "start_dim"), end = get_int(c, "end_dim");
    if (start < 0) start += r;
    if (end < 0) end += r;
    if (x.dim() >= 2 && start == 1 && end == x.dim() - 1 && v.batch <= 0) {
      std::vector<pb::Writer> a;
      a.push_back(attr_int("axis", 1));
      return set_output(c.output, node("Flatten", {v.name}, std::move(a)), v.batch);
    }
  }
  if (op == "flatten" || op == "reshape") {
    const auto [shape, batch] = reshape_target(x, v.batch, c.output.shape());
    return set_output(c.output, node("Reshape", {v.name, ints(shape)}), batch);
  }
  if (op == "transpose" || op == "permute") {
    std::vector<int64_t> perm(x.dim());
    for (int64_t d = 0; d < x.dim(); ++d) perm[d] = d;
    if (op == "transpose") {
      int64_t a = get_int(c, "dim0"), b = get_int(c, "dim1");
      if (a < 0) a += x.dim();
      if (b < 0) b += x.dim();
      std::swap(perm[a], perm[b]);
    } else {
      perm = get_ints(c, "dims");
      for (int64_t& p : perm)
        if (p < 0) p += x.dim();
    }
    int64_t batch = -1;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (perm[d] == v.batch) batch = d;
    std::vector<pb::Writer> a;
    a.push_back(attr_ints("perm", perm));
    return set_output(c.output, node("Transpose", {v.name}, std::move(a)), batch);
  }
  if (op == "cat") {
    int64_t dim = get_int(c, "dim");
    if (dim < 0) dim += x.dim();
    std::vector<std::string> ins;
    int64_t batch = -1;
    for (const Tensor& t : c.inputs) {
      const Value vt = in_value(t);
      ins.push_back(vt.name);
      if (vt.batch >= 0) batch = vt.batch;
    }
    if (batch == dim) refuse("a concatenation along the batch dimension");
    std::vector<pb::Writer> a;
    a.push_back(attr_int("axis", dim));
    return set_output(c.output, node("Concat", ins, std::move(a)), batch);
  }
  refuse("no ONNX mapping for '" + op + "' (docs/interop.md lists the ops soma exports)");
}

// Every module's training flag, to restore after the export.
void collect_modes(nn::Module& m, std::vector<std::pair<nn::Module*, bool>>& out) {
  out.emplace_back(&m, m.is_training());
  for (const auto& child : m.children()) collect_modes(*child, out);
}

}  // namespace

void export_model(nn::Module& module, const Forward& forward,
                  const std::vector<Tensor>& example_inputs, const std::string& path,
                  const ExportOptions& options) {
  SOMA_CHECK(options.opset >= kMinOpset && options.opset <= kMaxOpset, "onnx::export_model: opset ",
             options.opset, " is not supported (", kMinOpset, " to ", kMaxOpset, ")");
  SOMA_CHECK(!example_inputs.empty(), "onnx::export_model: no example inputs");
  SOMA_CHECK(options.input_names.empty() || options.input_names.size() == example_inputs.size(),
             "onnx::export_model: ", options.input_names.size(), " input names for ",
             example_inputs.size(), " inputs");
  std::vector<std::pair<nn::Module*, bool>> modes;
  collect_modes(module, modes);
  struct Restore {
    std::vector<std::pair<nn::Module*, bool>>& modes;
    bool grad = autograd::is_grad_enabled();
    ~Restore() {
      autograd::set_grad_enabled(grad);
      // train() recurses: parents first (the collection's order), so each child ends with
      // its own flag.
      for (auto& [m, on] : modes) m->train(on);
    }
  } restore{modes};
  module.eval();
  // One trace: the ONNX model's bytes for these example inputs.
  auto trace_model = [&](const std::vector<Tensor>& examples) {
    // Inputs that require grad: every op on them reaches autograd::record, so an op without a
    // mapping is reported rather than folded into a constant.
    autograd::set_grad_enabled(true);
    Exporter exporter(module, options);
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < examples.size(); ++i) {
      const Tensor& e = examples[i];
      SOMA_CHECK(e.defined(), "onnx::export_model: example input ", i, " is undefined");
      Tensor t = e.detach().clone();
      if (supports_autograd(t.dtype())) t.requires_grad_(true);
      inputs.push_back(t);
      exporter.add_input(t, i < options.input_names.size()
                                ? options.input_names[i]
                                : (examples.size() == 1 ? "input" : "input_" + std::to_string(i)));
    }
    std::vector<Tensor> outputs;
    {
      trace::TracerGuard guard(&exporter);
      outputs = forward(inputs);
    }
    SOMA_CHECK(!outputs.empty(), "onnx::export_model: the forward returned no outputs");
    SOMA_CHECK(options.output_names.empty() || options.output_names.size() == outputs.size(),
               "onnx::export_model: ", options.output_names.size(), " output names for ",
               outputs.size(), " outputs");
    return exporter.model_bytes(outputs);
  };
  const std::string bytes = trace_model(example_inputs);
  // With a dynamic batch, the graph must not depend on the example's batch size: trace again
  // with one more sample and compare. A reshape whose target only matches the batch by
  // coincidence (a traced batch of 2 and a dimension of 2) or a tensor created with the batch's
  // size would otherwise be exported with the example's numbers and give wrong shapes later.
  bool batched = options.dynamic_batch;
  for (const Tensor& e : example_inputs)
    batched = batched && e.defined() && e.dim() >= 1 && e.size(0) >= 1;
  if (batched) {
    std::vector<Tensor> more;
    for (const Tensor& e : example_inputs) {
      const Tensor d = e.detach();
      more.push_back(soma::cat({d, d.narrow(0, 0, 1)}, 0));
    }
    SOMA_CHECK(trace_model(more) == bytes, "onnx::export_model: the graph traced on a batch of ",
               example_inputs[0].size(0), " differs from the one traced on a batch of ",
               example_inputs[0].size(0) + 1,
               ": the forward uses the batch size in a way the graph cannot keep dynamic (e.g. a "
               "reshape that mixes the batch with another dimension, or a tensor made with the "
               "batch's size); export with dynamic_batch = false, or keep the batch in a "
               "dimension of its own");
  }
  io::atomic_write(path, bytes);
}

void export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                  const std::string& path, const ExportOptions& options) {
  SOMA_CHECK(example_inputs.size() == 1, "onnx::export_model: a module's forward takes one input, ",
             example_inputs.size(), " example inputs given (use the Forward overload)");
  export_model(
      module,
      [&module](const std::vector<Tensor>& in) { return std::vector<Tensor>{module(in[0])}; },
      example_inputs, path, options);
}

}  // namespace soma::onnx
