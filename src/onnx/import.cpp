// soma::onnx::load: an ONNX ModelProto (proto_reader.h) as an nn::Module that runs the graph
// with soma's ops (so autograd flows into the initializers).
//
// Load: parse -> check the opset, dtypes and names -> initializers into tensors (registered on
// the module) -> validate every node (op, input/output counts, attributes, into a Node) ->
// topological order (Kahn; a cycle is an error) -> one dry run on zeros of the declared input
// shape, with limits on every value's size so that a hostile file cannot make it allocate
// without bound. Every error names the node: its index in the file, its name and its op.
#include "soma/onnx/import.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "onnx/proto_reader.h"
#include "onnx/proto_writer.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/io/file.h"
#include "soma/nn/conv.h"
#include "soma/nn/functional.h"
#include "soma/nn/normalization.h"
#include "soma/nn/pooling.h"
#include "soma/ops/activation.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/matmul.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma::onnx {

namespace F = nn::functional;

namespace {

constexpr int64_t kMinOpset = 13, kMaxOpset = 17;
// Dry-run limits (one sample): elements of one value, of all live values, multiply-adds of
// one node.
double kMaxElements = double(1 << 24);
double kMaxLiveElements = double(1 << 26);
double kMaxMacs = double(int64_t{1} << 32);

const char* onnx_dtype_name(int64_t t) {
  static const char* names[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                "int16",      "int32",   "int64",  "string", "bool",
                                "float16",    "double",  "uint32", "uint64", "complex64",
                                "complex128", "bfloat16"};
  return t >= 0 && t <= 16 ? names[t] : "unknown";
}

// float32 and int64 only.
bool to_dtype(int64_t onnx_type, DType& out) {
  if (onnx_type == 1) {
    out = kFloat32;
    return true;
  }
  if (onnx_type == 7) {
    out = kInt64;
    return true;
  }
  return false;
}

std::string dtype_desc(int64_t t) {
  return std::string(onnx_dtype_name(t)) + " (" + std::to_string(t) + ")";
}

std::string sanitize(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      c = '_';
  return out.empty() ? "_" : out;
}

// ---- attributes --------------------------------------------------------------------------
enum AttrType : int64_t { kF = 1, kI = 2, kS = 3, kT = 4, kFs = 6, kIs = 7 };
const char* attr_type_name(int64_t t) {
  switch (t) {
    case kF:
      return "FLOAT";
    case kI:
      return "INT";
    case kS:
      return "STRING";
    case kT:
      return "TENSOR";
    case kFs:
      return "FLOATS";
    case kIs:
      return "INTS";
    case 5:
      return "GRAPH";
    case 10:
      return "GRAPHS";
  }
  return "other";
}

struct OpSpec {
  size_t min_in, max_in, max_out;
  std::vector<std::pair<const char*, int64_t>> attrs;
};

const std::map<std::string, OpSpec>& op_specs() {
  static const std::map<std::string, OpSpec> specs = [] {
    std::map<std::string, OpSpec> s;
    const OpSpec unary{1, 1, 1, {}};
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Identity", "Neg", "Exp",
                           "Log", "Abs", "Shape_"})
      s[op] = unary;
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "MatMul"}) s[op] = {2, 2, 1, {}};
    s["LeakyRelu"] = {1, 1, 1, {{"alpha", kF}}};
    s["Elu"] = {1, 1, 1, {{"alpha", kF}}};
    s["Softmax"] = {1, 1, 1, {{"axis", kI}}};
    s["LogSoftmax"] = {1, 1, 1, {{"axis", kI}}};
    s["Gemm"] = {2, 3, 1, {{"alpha", kF}, {"beta", kF}, {"transA", kI}, {"transB", kI}}};
    s["Conv"] = {2,
                 3,
                 1,
                 {{"auto_pad", kS},
                  {"dilations", kIs},
                  {"group", kI},
                  {"kernel_shape", kIs},
                  {"pads", kIs},
                  {"strides", kIs}}};
    s["ConvTranspose"] = {2,
                          3,
                          1,
                          {{"auto_pad", kS},
                           {"dilations", kIs},
                           {"group", kI},
                           {"kernel_shape", kIs},
                           {"pads", kIs},
                           {"strides", kIs},
                           {"output_padding", kIs},
                           {"output_shape", kIs}}};
    s["MaxPool"] = {1,
                    1,
                    2,
                    {{"auto_pad", kS},
                     {"ceil_mode", kI},
                     {"dilations", kIs},
                     {"kernel_shape", kIs},
                     {"pads", kIs},
                     {"storage_order", kI},
                     {"strides", kIs}}};
    s["AveragePool"] = {1,
                        1,
                        1,
                        {{"auto_pad", kS},
                         {"ceil_mode", kI},
                         {"count_include_pad", kI},
                         {"kernel_shape", kIs},
                         {"pads", kIs},
                         {"strides", kIs}}};
    s["GlobalAveragePool"] = {1, 1, 1, {}};
    s["BatchNormalization"] = {5, 5, 3, {{"epsilon", kF}, {"momentum", kF}, {"training_mode", kI}}};
    s["LayerNormalization"] = {2, 3, 3, {{"axis", kI}, {"epsilon", kF}, {"stash_type", kI}}};
    s["Flatten"] = {1, 1, 1, {{"axis", kI}}};
    s["Reshape"] = {2, 2, 1, {{"allowzero", kI}}};
    s["Transpose"] = {1, 1, 1, {{"perm", kIs}}};
    s["Concat"] = {1, size_t{1} << 20, 1, {{"axis", kI}}};
    s["Gather"] = {2, 2, 1, {{"axis", kI}}};
    s["Shape"] = {1, 1, 1, {{"start", kI}, {"end", kI}}};
    s["Unsqueeze"] = {2, 2, 1, {}};
    s["Squeeze"] = {1, 2, 1, {}};
    s["Constant"] = {0,
                     0,
                     1,
                     {{"value", kT},
                      {"value_float", kF},
                      {"value_floats", kFs},
                      {"value_int", kI},
                      {"value_ints", kIs}}};
    s["Dropout"] = {1, 3, 2, {{"seed", kI}}};
    s["Cast"] = {1, 1, 1, {{"to", kI}}};
    s["ReduceMean"] = {1, 1, 1, {{"axes", kIs}, {"keepdims", kI}}};
    s["Pad"] = {2, 3, 1, {{"mode", kS}}};
    s.erase("Shape_");
    return s;
  }();
  return specs;
}

// A validated node.
struct Node {
  size_t index = 0;  // in the file
  std::string name, op;
  std::vector<int> in, out;  // value slots; -1: an optional input/output left out
  std::map<std::string, const pb::AttributeMsg*> attr_msgs;
  // Parsed attributes (what each op uses).
  int64_t axis = 0, group = 1, to = 0, keepdims = 1, allowzero = 0, shape_start = 0,
          shape_end = INT64_MAX;
  bool trans_a = false, trans_b = false, ceil_mode = false, count_include_pad = false,
       has_axis = false, has_perm = false, has_axes = false;
  double alpha = 1.0, beta = 1.0, eps = 1e-5;
  std::vector<int64_t> perm, kernel, strides, pads, dilations, output_padding, axes;
  std::string mode;  // Pad's: constant, reflect, replicate (ONNX "edge")
  Tensor constant;   // Constant's value
};

}  // namespace

// ---- the model ---------------------------------------------------------------------------
struct OnnxModel::Impl {
  std::string origin;
  std::string bytes;  // the file, for save()
  std::vector<ValueSpec> inputs, outputs;
  std::vector<int> input_slots, output_slots;
  std::vector<std::string> slot_names;
  std::vector<Tensor> initial;   // per slot: the initializer tensor (undefined otherwise)
  std::vector<Node> nodes;       // topological order
  std::vector<size_t> last_use;  // per slot: the position of its last consumer
  std::vector<std::pair<std::string, std::string>> keys, metadata;
  std::map<std::string, std::string> key_of;
  int64_t opset = 0;
  std::string producer;

  std::vector<Tensor> execute(const std::vector<Tensor>& inputs, bool dry_run) const;
};

namespace {

std::string node_label(const Node& n) {
  return "node " + std::to_string(n.index) + " '" + n.name + "' (" + n.op + ")";
}

template <typename... Parts>
[[noreturn]] void node_fail(const std::string& origin, const Node& n, const Parts&... parts) {
  soma::detail::fail("onnx::load: ", origin, ": ", node_label(n), ": ", parts...);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

double numel_of(const std::vector<int64_t>& s) {
  double n = 1;
  for (int64_t d : s) n *= static_cast<double>(d);
  return n;
}

// A TensorProto as a soma tensor (float32 / int64, data in the file).
Tensor make_tensor(const pb::TensorMsg& t, const std::string& what, const std::string& origin) {
  auto fail = [&](const auto&... parts) {
    soma::detail::fail("onnx::load: ", origin, ": ", what, ": ", parts...);
  };
  if (t.external)
    fail(
        "its data is stored outside the file (external data), which soma does not read; "
        "save the model with all tensors inside it (onnx.save_model(..., "
        "save_as_external_data=False))");
  if (t.segmented) fail("segmented tensors are not supported");
  DType dtype;
  if (!to_dtype(t.data_type, dtype))
    fail("dtype ", dtype_desc(t.data_type), " is not supported (float32 and int64 only)");
  if (t.dims.size() > 8) fail(t.dims.size(), " dims (at most 8)");
  double n = 1;
  for (int64_t d : t.dims) {
    if (d < 0) fail("negative dim in ", shape_str(t.dims));
    n *= static_cast<double>(d);
  }
  const size_t esize = element_size(dtype);
  const size_t count = static_cast<size_t>(n > 1e15 ? 1e15 : n);
  const char* src = nullptr;
  size_t have = 0;
  if (t.has_raw) {
    src = t.raw_data.data();
    have = t.raw_data.size() / esize;
    if (t.raw_data.size() % esize != 0 || n != static_cast<double>(have))
      fail("raw_data holds ", t.raw_data.size(), " bytes, shape ", shape_str(t.dims), " of ",
           onnx_dtype_name(t.data_type), " needs ", n * static_cast<double>(esize));
  } else if (dtype == kFloat32) {
    have = t.float_data.size();
    src = reinterpret_cast<const char*>(t.float_data.data());
    if (!t.int64_data.empty() || !t.int32_data.empty() || t.other_data != 0)
      fail("float tensor with its values in a field of another type");
  } else {
    have = t.int64_data.size();
    src = reinterpret_cast<const char*>(t.int64_data.data());
    if (!t.float_data.empty() || !t.int32_data.empty() || t.other_data != 0)
      fail("int64 tensor with its values in a field of another type");
  }
  if (static_cast<double>(have) != n)
    fail("holds ", have, " values, its shape ", shape_str(t.dims), " needs ", n);
  Tensor out = soma::empty(t.dims, dtype);
  if (count > 0) {
    char* dst = dtype == kFloat32 ? reinterpret_cast<char*>(out.data<float>())
                                  : reinterpret_cast<char*>(out.data<int64_t>());
    std::memcpy(dst, src, count * esize);
  }
  return out;
}

// ---- node validation ---------------------------------------------------------------------
class Validator {
 public:
  Validator(const std::string& origin, Node& n) : origin_(origin), n_(n) {}

  const pb::AttributeMsg* get(const char* name) const {
    auto it = n_.attr_msgs.find(name);
    return it == n_.attr_msgs.end() ? nullptr : it->second;
  }
  int64_t i(const char* name, int64_t fallback) const {
    const pb::AttributeMsg* a = get(name);
    return a ? a->i : fallback;
  }
  double f(const char* name, double fallback) const {
    const pb::AttributeMsg* a = get(name);
    return a ? a->f : fallback;
  }
  std::vector<int64_t> ints(const char* name, std::vector<int64_t> fallback = {}) const {
    const pb::AttributeMsg* a = get(name);
    return a ? a->ints : fallback;
  }
  bool flag(const char* name, bool fallback) const {
    const int64_t v = i(name, fallback ? 1 : 0);
    if (v != 0 && v != 1) node_fail(origin_, n_, "attribute ", name, " = ", v, " (0 or 1)");
    return v == 1;
  }
  template <typename... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    node_fail(origin_, n_, parts...);
  }
  void no_auto_pad() const {
    const pb::AttributeMsg* a = get("auto_pad");
    if (a && a->s != "NOTSET" && a->s != "VALID")
      fail("auto_pad ", std::string(a->s),
           " is not supported (NOTSET with explicit pads, or VALID)");
  }
  // kernel / strides / pads / dilations of a conv or pool over `spatial` dims.
  void window(size_t spatial, bool has_dilations) {
    n_.kernel = ints("kernel_shape");
    if (!n_.kernel.empty() && n_.kernel.size() != spatial)
      fail("kernel_shape ", shape_str(n_.kernel), " for ", spatial, " spatial dims");
    for (int64_t k : n_.kernel)
      if (k < 1 || k > (1 << 20)) fail("kernel_shape ", shape_str(n_.kernel));
    n_.strides = ints("strides", std::vector<int64_t>(spatial, 1));
    n_.dilations = ints("dilations", std::vector<int64_t>(spatial, 1));
    std::vector<int64_t> pads = ints("pads", std::vector<int64_t>(2 * spatial, 0));
    const pb::AttributeMsg* ap = get("auto_pad");
    if (ap && ap->s == "VALID") pads.assign(2 * spatial, 0);
    if (n_.strides.size() != spatial || n_.dilations.size() != spatial ||
        pads.size() != 2 * spatial)
      fail("strides ", shape_str(n_.strides), ", dilations ", shape_str(n_.dilations), ", pads ",
           shape_str(pads), " do not fit ", spatial, " spatial dims");
    for (int64_t s : n_.strides)
      if (s < 1 || s > (1 << 20)) fail("strides ", shape_str(n_.strides));
    for (int64_t d : n_.dilations)
      if (d < 1 || d > (1 << 20)) fail("dilations ", shape_str(n_.dilations));
    if (!has_dilations && get("dilations") != nullptr) fail("dilations are not supported here");
    for (int64_t p : pads)
      if (p < 0 || p > (1 << 20)) fail("pads ", shape_str(pads));
    n_.pads = pads;  // begins then ends
  }

 private:
  const std::string& origin_;
  Node& n_;
};

// Parses and checks the node's attributes (types and values) into n.
void validate_node(const std::string& origin, Node& n, const pb::NodeMsg& msg, int64_t opset) {
  const auto& specs = op_specs();
  auto it = specs.find(n.op);
  if (it == specs.end())
    node_fail(origin, n, "op '", n.op,
              "' is not supported (docs/interop.md lists the ops soma imports)");
  const OpSpec& spec = it->second;
  if (msg.input.size() < spec.min_in || msg.input.size() > spec.max_in)
    node_fail(origin, n, msg.input.size(), " inputs (", n.op, " takes ", spec.min_in,
              spec.min_in == spec.max_in ? "" : " to " + std::to_string(spec.max_in), ")");
  if (msg.output.empty() || msg.output.size() > spec.max_out)
    node_fail(origin, n, msg.output.size(), " outputs (", n.op, " has at most ", spec.max_out, ")");
  for (const pb::AttributeMsg& a : msg.attribute) {
    if (a.ref_attr) node_fail(origin, n, "attribute '", a.name, "' refers to a function attribute");
    auto spec_attr = std::find_if(spec.attrs.begin(), spec.attrs.end(),
                                  [&](const auto& p) { return a.name == p.first; });
    if (spec_attr == spec.attrs.end())
      node_fail(origin, n, "attribute '", a.name, "' is not supported for ", n.op);
    if (a.type != spec_attr->second)
      node_fail(origin, n, "attribute '", a.name, "' has type ", attr_type_name(a.type), " (",
                a.type, "), ", n.op, " expects ", attr_type_name(spec_attr->second));
    if (!n.attr_msgs.emplace(a.name, &a).second)
      node_fail(origin, n, "attribute '", a.name, "' given twice");
  }
  Validator v(origin, n);
  const std::string& op = n.op;
  if (op == "LeakyRelu") n.alpha = v.f("alpha", 0.01);
  if (op == "Elu") n.alpha = v.f("alpha", 1.0);
  if (op == "Softmax" || op == "LogSoftmax") n.axis = v.i("axis", -1);
  if (op == "Gemm") {
    n.alpha = v.f("alpha", 1.0);
    n.beta = v.f("beta", 1.0);
    n.trans_a = v.flag("transA", false);
    n.trans_b = v.flag("transB", false);
  }
  if (op == "Conv" || op == "ConvTranspose") {
    v.no_auto_pad();
    n.group = v.i("group", 1);
    if (n.group < 1 || n.group > (1 << 20)) v.fail("group ", n.group);
    if (v.get("output_shape")) v.fail("output_shape is not supported (give pads instead)");
    // The spatial rank is known once the weight is; checked again at run time.
    const size_t spatial = !v.ints("kernel_shape").empty() ? v.ints("kernel_shape").size()
                           : !v.ints("strides").empty()    ? v.ints("strides").size()
                           : !v.ints("pads").empty()       ? v.ints("pads").size() / 2
                           : !v.ints("dilations").empty()  ? v.ints("dilations").size()
                                                           : 0;
    if (spatial > 2) v.fail(spatial, "-d convolution (soma imports 1-d and 2-d)");
    if (spatial > 0) v.window(spatial, true);
    n.output_padding = v.ints("output_padding");
    for (int64_t p : n.output_padding)
      if (p < 0 || p > (1 << 20)) v.fail("output_padding ", shape_str(n.output_padding));
  }
  if (op == "MaxPool" || op == "AveragePool") {
    v.no_auto_pad();
    const std::vector<int64_t> k = v.ints("kernel_shape");
    if (k.empty()) v.fail("kernel_shape is required");
    if (k.size() > 2) v.fail(k.size(), "-d pooling (soma imports 1-d and 2-d)");
    v.window(k.size(), op == "MaxPool");
    n.ceil_mode = v.flag("ceil_mode", false);
    if (op == "MaxPool") {
      if (v.i("storage_order", 0) != 0) v.fail("storage_order 1 is not supported");
      if (msg.output.size() > 1 && !msg.output[1].empty())
        v.fail("the Indices output is not supported");
    } else {
      n.count_include_pad = v.flag("count_include_pad", false);
    }
  }
  if (op == "BatchNormalization") {
    n.eps = v.f("epsilon", 1e-5);
    if (!(n.eps >= 0)) v.fail("epsilon ", n.eps);
    if (v.i("training_mode", 0) != 0)
      v.fail("training_mode = ", v.i("training_mode", 0),
             " (soma imports BatchNormalization for inference only)");
    for (size_t o = 1; o < msg.output.size(); ++o)
      if (!msg.output[o].empty())
        v.fail("the running mean/var outputs (training) are not supported");
  }
  if (op == "LayerNormalization") {
    n.axis = v.i("axis", -1);
    n.eps = v.f("epsilon", 1e-5);
    if (!(n.eps >= 0)) v.fail("epsilon ", n.eps);
    for (size_t o = 1; o < msg.output.size(); ++o)
      if (!msg.output[o].empty()) v.fail("the Mean / InvStdDev outputs are not supported");
  }
  if (op == "Flatten") n.axis = v.i("axis", 1);
  if (op == "Reshape") n.allowzero = v.flag("allowzero", false) ? 1 : 0;
  if (op == "Transpose") {
    n.has_perm = v.get("perm") != nullptr;
    n.perm = v.ints("perm");
  }
  if (op == "Concat") {
    if (!v.get("axis")) v.fail("attribute axis is required");
    n.axis = v.i("axis", 0);
  }
  if (op == "Gather") n.axis = v.i("axis", 0);
  if (op == "Shape") {
    if (opset < 15 && (v.get("start") || v.get("end")))
      v.fail("start/end need opset 15 (the model imports ", opset, ")");
    n.shape_start = v.i("start", 0);
    n.shape_end = v.i("end", INT64_MAX);
  }
  if (op == "Constant") {
    if (msg.attribute.size() != 1)
      v.fail(msg.attribute.size(), " attributes (exactly one of value, value_float, ...)");
    const pb::AttributeMsg& a = msg.attribute[0];
    if (a.name == "value") {
      if (!a.has_t) v.fail("attribute value holds no tensor");
      n.constant = make_tensor(a.t, node_label(n) + " value", origin);
    } else if (a.name == "value_float") {
      n.constant = soma::full({}, a.f);
    } else if (a.name == "value_int") {
      n.constant = soma::full({}, a.i, kInt64);
    } else if (a.name == "value_floats") {
      n.constant = soma::tensor(a.floats, {static_cast<int64_t>(a.floats.size())});
    } else {
      n.constant = soma::tensor(a.ints, {static_cast<int64_t>(a.ints.size())});
    }
  }
  if (op == "Dropout") {
    if (msg.output.size() > 1 && !msg.output[1].empty())
      v.fail("the mask output is not supported (Dropout imports as inference: identity)");
  }
  if (op == "Cast") {
    n.to = v.i("to", 0);
    DType d;
    if (!to_dtype(n.to, d))
      v.fail("cast to ", dtype_desc(n.to), " is not supported (float32 and int64 only)");
  }
  if (op == "Pad") {
    const pb::AttributeMsg* a = v.get("mode");
    const std::string mode = a ? std::string(a->s) : "constant";
    if (mode != "constant" && mode != "reflect" && mode != "edge")
      v.fail("mode '", mode, "' is not supported (constant, reflect, edge)");
    n.mode = mode == "edge" ? "replicate" : mode;
  }
  if (op == "ReduceMean") {
    n.has_axes = v.get("axes") != nullptr;
    n.axes = v.ints("axes");
    n.keepdims = v.flag("keepdims", true) ? 1 : 0;
  }
}

// ---- running ops -------------------------------------------------------------------------
int64_t norm_axis(const std::string& origin, const Node& n, int64_t axis, int64_t rank,
                  const char* what = "axis") {
  if (axis < -rank || axis >= rank)
    node_fail(origin, n, what, " ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> int_values(const std::string& origin, const Node& n, const Tensor& t,
                                const char* what) {
  if (t.dtype() != kInt64 || t.dim() > 1)
    node_fail(origin, n, what, " must be a 1-d int64 tensor, got ", t.dtype(), " of shape ",
              shape_str(t.shape()));
  return t.contiguous().to_vector<int64_t>();
}

std::vector<int64_t> broadcast_shape(const std::string& origin, const Node& n, const Shape& a,
                                     const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      node_fail(origin, n, "shapes ", shape_str(a), " and ", shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

struct Runner {
  const std::string& origin;
  const Node& n;
  bool dry;

  template <typename... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    node_fail(origin, n, parts...);
  }
  void limit(double elements, double macs = 0) const {
    if (!dry) return;
    if (elements > kMaxElements)
      fail("its output would hold ", elements, " elements for one sample (the limit is ",
           kMaxElements, ")");
    if (macs > kMaxMacs)
      fail("it would take ", macs, " multiply-adds for one sample (the limit is ", kMaxMacs, ")");
  }
  void same_dtype(const Tensor& a, const Tensor& b) const {
    if (a.dtype() != b.dtype())
      fail("operands of dtypes ", a.dtype(), " and ", b.dtype(), " (shapes ", shape_str(a.shape()),
           ", ", shape_str(b.shape()), ")");
  }
  void floating(const Tensor& x, const char* what = "input") const {
    if (x.dtype() != kFloat32) fail(what, " has dtype ", x.dtype(), ", ", n.op, " needs float32");
  }
  void rank(const Tensor& x, int64_t lo, int64_t hi, const char* what = "input") const {
    if (x.dim() < lo || x.dim() > hi)
      fail(what, " of shape ", shape_str(x.shape()), ": rank ", x.dim(), " (", n.op, " takes ", lo,
           lo == hi ? "" : " to " + std::to_string(hi), ")");
  }

  Tensor binary(const Tensor& a, const Tensor& b) const {
    same_dtype(a, b);
    const std::vector<int64_t> out = broadcast_shape(origin, n, a.shape(), b.shape());
    limit(numel_of(out));
    const std::string& op = n.op;
    if (op == "Add") return soma::add(a, b);
    if (op == "Sub") return soma::sub(a, b);
    if (op == "Mul") return soma::mul(a, b);
    if (op == "Div") {
      if (a.dtype() == kInt64) return soma::div(a, b, "trunc");
      return soma::div(a, b);
    }
    // Pow
    floating(a);
    return soma::pow(a, b);
  }

  // Conv / ConvTranspose.
  Tensor conv(const Tensor& x, const Tensor& w, const Tensor& b, bool transposed) const {
    floating(x);
    floating(w, "weight");
    rank(x, 3, 4);
    if (w.dim() != x.dim())
      fail("weight of shape ", shape_str(w.shape()), " for input of shape ", shape_str(x.shape()));
    const size_t spatial = static_cast<size_t>(x.dim() - 2);
    Node m = n;  // the window attributes with defaults for this rank
    if (m.strides.empty()) m.strides.assign(spatial, 1);
    if (m.dilations.empty()) m.dilations.assign(spatial, 1);
    if (m.pads.empty()) m.pads.assign(2 * spatial, 0);
    if (m.strides.size() != spatial || m.pads.size() != 2 * spatial)
      fail("attributes for ", m.strides.size(), " spatial dims, input of shape ",
           shape_str(x.shape()));
    const std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
    if (!m.kernel.empty() && m.kernel != kernel)
      fail("kernel_shape ", shape_str(m.kernel), " but weight of shape ", shape_str(w.shape()));
    std::vector<int64_t> begin(m.pads.begin(), m.pads.begin() + spatial),
        end(m.pads.begin() + spatial, m.pads.end());
    const int64_t cin = x.size(1);
    const int64_t cout = transposed ? w.size(1) * m.group : w.size(0);
    if (transposed ? w.size(0) != cin : w.size(1) * m.group != cin)
      fail("input of shape ", shape_str(x.shape()), " has ", cin, " channels, weight of shape ",
           shape_str(w.shape()), " with group ", m.group, " expects ",
           transposed ? w.size(0) : w.size(1) * m.group);
    if (b.defined() && (b.dim() != 1 || b.size(0) != cout))
      fail("bias of shape ", shape_str(b.shape()), " for ", cout, " output channels");
    std::vector<int64_t> op =
        m.output_padding.empty() ? std::vector<int64_t>(spatial, 0) : m.output_padding;
    if (op.size() != spatial) fail("output_padding ", shape_str(op), " for ", spatial, " dims");
    double out = static_cast<double>(x.size(0)) * static_cast<double>(cout);
    double kvol = static_cast<double>(transposed ? cout / m.group : cin / m.group);
    for (size_t d = 0; d < spatial; ++d) {
      const double in = static_cast<double>(x.size(2 + d));
      const double k = static_cast<double>(kernel[d]);
      const double o =
          transposed
              ? (in - 1) * m.strides[d] - begin[d] - end[d] + m.dilations[d] * (k - 1) + op[d] + 1
              : std::floor((in + begin[d] + end[d] - m.dilations[d] * (k - 1) - 1) / m.strides[d]) +
                    1;
      if (o < 1)
        fail("output size ", o, " along spatial dim ", d, " (input ", shape_str(x.shape()),
             ", kernel ", shape_str(kernel), ")");
      out *= o;
      kvol *= k;
    }
    limit(out, out * kvol);
    if (transposed) {
      if (begin != end)
        fail("asymmetric pads ", shape_str(m.pads), " are not supported for ConvTranspose");
      return spatial == 2
                 ? F::conv_transpose2d(x, w, b, m.strides, begin, op, m.group, m.dilations)
                 : F::conv_transpose1d(x, w, b, m.strides, begin, op, m.group, m.dilations);
    }
    Tensor in = x;
    std::vector<int64_t> padding = begin;
    if (begin != end) {  // pad explicitly (F::pad: pairs from the last dim)
      std::vector<int64_t> p;
      for (size_t d = spatial; d-- > 0;) {
        p.push_back(begin[d]);
        p.push_back(end[d]);
      }
      in = F::pad(x, p);
      padding.assign(spatial, 0);
    }
    return spatial == 2 ? F::conv2d(in, w, b, m.strides, padding, m.dilations, m.group)
                        : F::conv1d(in, w, b, m.strides, padding, m.dilations, m.group);
  }

  Tensor pool(const Tensor& x) const {
    floating(x);
    const size_t spatial = n.kernel.size();
    rank(x, static_cast<int64_t>(spatial) + 2, static_cast<int64_t>(spatial) + 2);
    std::vector<int64_t> begin(n.pads.begin(), n.pads.begin() + spatial),
        end(n.pads.begin() + spatial, n.pads.end());
    if (begin != end) fail("asymmetric pads ", shape_str(n.pads), " are not supported for ", n.op);
    double out = static_cast<double>(x.size(0)) * static_cast<double>(x.size(1));
    for (size_t d = 0; d < spatial; ++d) {
      const double o =
          std::floor((x.size(2 + d) + 2.0 * begin[d] - n.dilations[d] * (n.kernel[d] - 1.0) - 1) /
                     n.strides[d]) +
          2;
      out *= std::max(o, 1.0);
    }
    limit(out, out * numel_of(n.kernel));
    if (n.op == "MaxPool") {
      if (spatial == 2)
        return F::max_pool2d(x, n.kernel, n.strides, begin, n.dilations, n.ceil_mode);
      return F::max_pool1d(x, n.kernel[0], n.strides[0], begin[0], n.dilations[0], n.ceil_mode);
    }
    if (spatial == 2)
      return F::avg_pool2d(x, n.kernel, n.strides, begin, n.ceil_mode, n.count_include_pad);
    return F::avg_pool1d(x, n.kernel[0], n.strides[0], begin[0], n.ceil_mode, n.count_include_pad);
  }

  Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& c) const {
    floating(a, "A");
    floating(b, "B");
    if (a.dim() != 2 || b.dim() != 2)
      fail("A of shape ", shape_str(a.shape()), " and B of shape ", shape_str(b.shape()),
           " (Gemm takes matrices)");
    const int64_t m = n.trans_a ? a.size(1) : a.size(0), k = n.trans_a ? a.size(0) : a.size(1);
    const int64_t kb = n.trans_b ? b.size(1) : b.size(0), nn = n.trans_b ? b.size(0) : b.size(1);
    if (k != kb)
      fail("A of shape ", shape_str(a.shape()), (n.trans_a ? " (transposed)" : ""),
           " and B of shape ", shape_str(b.shape()), (n.trans_b ? " (transposed)" : ""),
           " cannot be multiplied");
    limit(double(m) * double(nn), double(m) * double(nn) * double(k));
    if (c.defined()) {
      floating(c, "C");
      // C broadcasts one way, to [M, N] (ONNX's unidirectional broadcasting): a C the
      // product would broadcast to, like [5] with N = 1, is an error, not a wider result.
      if (c.dim() > 2 || broadcast_shape(origin, n, c.shape(), {m, nn}) != Shape{m, nn})
        fail("C of shape ", shape_str(c.shape()), " does not broadcast to A*B's shape ",
             shape_str(Shape{m, nn}));
    }
    if (!n.trans_a && n.trans_b && n.alpha == 1.0 && n.beta == 1.0 &&
        (!c.defined() || (c.dim() == 1 && c.size(0) == nn)))
      return F::linear(a, b, c);
    Tensor y = soma::matmul(n.trans_a ? soma::transpose(a, 0, 1) : a,
                            n.trans_b ? soma::transpose(b, 0, 1) : b);
    if (n.alpha != 1.0) y = y * n.alpha;
    if (c.defined()) y = y + (n.beta == 1.0 ? c : c * n.beta);
    return y;
  }

  Tensor matmul(const Tensor& a, const Tensor& b) const {
    same_dtype(a, b);
    floating(a);
    if (a.dim() < 1 || b.dim() < 1)
      fail("operands of shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
    const int64_t k = a.size(-1);
    const int64_t kb = b.dim() == 1 ? b.size(0) : b.size(-2);
    if (k != kb)
      fail("shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), " cannot be multiplied");
    const double rows = k == 0 ? 0 : numel_of(a.shape()) / double(k);
    const double cols = kb == 0 ? 0 : numel_of(b.shape()) / double(kb);
    limit(rows * cols, rows * cols * double(k));
    return soma::matmul(a, b);
  }

  Tensor gather(const Tensor& data, const Tensor& idx) const {
    if (idx.dtype() != kInt64) fail("indices have dtype ", idx.dtype(), " (int64 expected)");
    if (data.dim() < 1) fail("data is a scalar");
    const int64_t axis = norm_axis(origin, n, n.axis, data.dim());
    const int64_t size = data.size(axis);
    const double slice = size == 0 ? 0 : numel_of(data.shape()) / double(size);
    limit(slice * numel_of(idx.shape()));
    std::vector<int64_t> ix = idx.contiguous().to_vector<int64_t>();
    for (int64_t& i : ix) {
      if (i < -size || i >= size)
        fail("index ", i, " is out of range for dim ", axis, " of size ", size, " (data shape ",
             shape_str(data.shape()), ")");
      if (i < 0) i += size;
    }
    Tensor sel =
        soma::index_select(data, axis, soma::tensor(ix, {static_cast<int64_t>(ix.size())}));
    Shape out(data.shape().begin(), data.shape().begin() + axis);
    out.insert(out.end(), idx.shape().begin(), idx.shape().end());
    out.insert(out.end(), data.shape().begin() + axis + 1, data.shape().end());
    return soma::reshape(sel, out);
  }

  Tensor reshape(const Tensor& x, const Tensor& shape_t) const {
    std::vector<int64_t> shape = int_values(origin, n, shape_t, "the shape input");
    int64_t infer = -1;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0 && n.allowzero == 0) {
        if (static_cast<int64_t>(d) >= x.dim())
          fail("shape ", shape_str(shape), " copies dim ", d, " of an input of shape ",
               shape_str(x.shape()));
        shape[d] = x.size(static_cast<int64_t>(d));
      } else if (shape[d] == -1) {
        if (infer >= 0) fail("shape ", shape_str(shape), " has two -1 dims");
        infer = static_cast<int64_t>(d);
      } else if (shape[d] < 0) {
        fail("shape ", shape_str(shape), " has a negative dim");
      }
    }
    const double total = numel_of(x.shape());
    if (infer >= 0) {
      double rest = 1;
      for (size_t d = 0; d < shape.size(); ++d)
        if (static_cast<int64_t>(d) != infer) rest *= static_cast<double>(shape[d]);
      if (rest == 0 || std::fmod(total, rest) != 0)
        fail("cannot reshape ", shape_str(x.shape()), " to ", shape_str(shape));
      shape[infer] = static_cast<int64_t>(total / rest);
    }
    if (numel_of(shape) != total)
      fail("cannot reshape ", shape_str(x.shape()), " (", total, " elements) to ",
           shape_str(shape));
    return soma::reshape(x, shape);
  }

  Tensor pad(const Tensor& x, const Tensor& pads_t, const Tensor& value_t) const {
    const std::vector<int64_t> pads = int_values(origin, n, pads_t, "pads");
    const int64_t r = x.dim();
    if (static_cast<int64_t>(pads.size()) != 2 * r)
      fail("pads ", shape_str(pads), " for an input of rank ", r, " (2 * rank values)");
    double value = 0;
    if (value_t.defined()) {
      if (value_t.numel() != 1 || value_t.dtype() != x.dtype())
        fail("constant_value of shape ", shape_str(value_t.shape()), " and dtype ", value_t.dtype(),
             " for an input of dtype ", x.dtype());
      value = value_t.dtype() == kFloat32 ? double(value_t.item<float>())
                                          : double(value_t.item<int64_t>());
    }
    // F::pad takes (begin, end) pairs from the last dim; leading dims without padding are
    // left out (reflect / replicate pad at most the last 3 dims).
    std::vector<int64_t> p;
    double out = 1;
    int64_t used = 0;
    for (int64_t d = 0; d < r; ++d) {
      const double size = double(x.size(d)) + double(pads[d]) + double(pads[d + r]);
      if (size < 0) fail("pads ", shape_str(pads), " crop dim ", d, " of ", shape_str(x.shape()));
      out *= size;
      if (used == 0 && (pads[d] != 0 || pads[d + r] != 0)) used = r - d;  // the outermost
    }
    limit(out);
    if (used == 0) return x;
    for (int64_t d = r - 1; d >= r - used; --d) {
      p.push_back(pads[d]);
      p.push_back(pads[d + r]);
    }
    return F::pad(x, p, n.mode, value);
  }

  Tensor unsqueeze(const Tensor& x, const Tensor& axes_t) const {
    std::vector<int64_t> axes = int_values(origin, n, axes_t, "axes");
    const int64_t r = x.dim() + static_cast<int64_t>(axes.size());
    if (r > 16) fail("rank ", r, " (at most 16)");
    for (int64_t& a : axes) a = norm_axis(origin, n, a, r, "axes value");
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
      fail("axes ", shape_str(axes_t.contiguous().to_vector<int64_t>()), " repeat a dim");
    Tensor y = x;
    for (int64_t a : axes) y = soma::unsqueeze(y, a);
    return y;
  }

  Tensor squeeze(const Tensor& x, const Tensor& axes_t) const {
    std::vector<int64_t> axes;
    // An empty axes tensor is read as no axes (ONNX Runtime's reading): squeeze every 1.
    if (axes_t.defined() && axes_t.numel() > 0) {
      axes = int_values(origin, n, axes_t, "axes");
      for (int64_t& a : axes) a = norm_axis(origin, n, a, x.dim(), "axes value");
    } else {
      for (int64_t d = 0; d < x.dim(); ++d)
        if (x.size(d) == 1) axes.push_back(d);
    }
    std::sort(axes.begin(), axes.end());
    axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    Tensor y = x;
    for (size_t i = axes.size(); i-- > 0;) {
      if (x.size(axes[i]) != 1)
        fail("cannot squeeze dim ", axes[i], " of size ", x.size(axes[i]), " (input shape ",
             shape_str(x.shape()), ")");
      y = soma::squeeze(y, axes[i]);
    }
    return y;
  }
};

}  // namespace

std::vector<Tensor> OnnxModel::Impl::execute(const std::vector<Tensor>& args, bool dry) const {
  SOMA_CHECK(args.size() == inputs.size(), "onnx model ", origin, ": ", args.size(),
             " inputs given, the graph takes ", inputs.size());
  std::vector<Tensor> v = initial;
  for (size_t i = 0; i < args.size(); ++i) {
    const ValueSpec& spec = inputs[i];
    const Tensor& t = args[i];
    SOMA_CHECK(t.defined(), "onnx model ", origin, ": input '", spec.name, "' is undefined");
    SOMA_CHECK(t.dtype() == spec.dtype, "onnx model ", origin, ": input '", spec.name,
               "' has dtype ", t.dtype(), ", the graph declares ", spec.dtype);
    const bool declared = !(spec.shape.empty() && spec.dim_names.empty());
    bool ok = !declared || t.dim() == static_cast<int64_t>(spec.shape.size());
    for (size_t d = 0; ok && declared && d < spec.shape.size(); ++d)
      ok = spec.shape[d] < 0 || spec.shape[d] == t.size(static_cast<int64_t>(d));
    SOMA_CHECK(ok, "onnx model ", origin, ": input '", spec.name, "' has shape ",
               shape_str(t.shape()), ", the graph declares ", shape_str(spec.shape),
               " (-1: any size)");
    v[input_slots[i]] = t;
  }
  double live = 0;
  std::vector<char> keep(v.size(), 0);
  for (int s : output_slots) keep[s] = 1;
  for (size_t pos = 0; pos < nodes.size(); ++pos) {
    const Node& n = nodes[pos];
    Runner r{origin, n, dry};
    auto in = [&](size_t i) -> const Tensor& {
      static const Tensor none;
      return i < n.in.size() && n.in[i] >= 0 ? v[n.in[i]] : none;
    };
    Tensor out;
    try {
      const std::string& op = n.op;
      const Tensor& x = in(0);
      if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") {
        out = r.binary(x, in(1));
      } else if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Erf" || op == "Sqrt" ||
                 op == "Exp" || op == "Log" || op == "LeakyRelu" || op == "Elu" ||
                 op == "Softmax" || op == "LogSoftmax") {
        r.floating(x);
        if (op == "Relu") out = soma::relu(x);
        if (op == "Sigmoid") out = soma::sigmoid(x);
        if (op == "Tanh") out = soma::tanh(x);
        if (op == "Erf") out = soma::erf(x);
        if (op == "Sqrt") out = soma::sqrt(x);
        if (op == "Exp") out = soma::exp(x);
        if (op == "Log") out = soma::log(x);
        if (op == "LeakyRelu") out = soma::leaky_relu(x, n.alpha);
        if (op == "Elu") out = soma::elu(x, n.alpha);
        if (op == "Softmax" || op == "LogSoftmax") {
          r.rank(x, 1, 16);
          const int64_t axis = norm_axis(origin, n, n.axis, x.dim());
          out = op == "Softmax" ? soma::softmax(x, axis) : soma::log_softmax(x, axis);
        }
      } else if (op == "Neg" || op == "Abs") {
        out = op == "Neg" ? soma::neg(x) : soma::abs(x);
      } else if (op == "Identity" || op == "Dropout") {
        out = x;
      } else if (op == "Gemm") {
        out = r.gemm(x, in(1), in(2));
      } else if (op == "MatMul") {
        out = r.matmul(x, in(1));
      } else if (op == "Conv" || op == "ConvTranspose") {
        out = r.conv(x, in(1), in(2), op == "ConvTranspose");
      } else if (op == "MaxPool" || op == "AveragePool") {
        out = r.pool(x);
      } else if (op == "GlobalAveragePool") {
        r.floating(x);
        r.rank(x, 3, 4);
        std::vector<int64_t> dims;
        for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
        out = soma::mean(x, dims, true);
      } else if (op == "BatchNormalization") {
        r.floating(x);
        r.rank(x, 2, 5);
        const int64_t c = x.size(1);
        const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
        for (size_t i = 1; i < 5; ++i) {
          r.floating(in(i), names[i]);
          if (in(i).dim() != 1 || in(i).size(0) != c)
            r.fail(names[i], " of shape ", shape_str(in(i).shape()), " for ", c,
                   " channels (input shape ", shape_str(x.shape()), ")");
        }
        out = F::batch_norm(x, in(3), in(4), in(1), in(2), false, 0.1, n.eps);
      } else if (op == "LayerNormalization") {
        r.floating(x);
        r.rank(x, 1, 16);
        const int64_t axis = norm_axis(origin, n, n.axis, x.dim());
        const std::vector<int64_t> ns(x.shape().begin() + axis, x.shape().end());
        if (in(1).shape() != ns || (in(2).defined() && in(2).shape() != ns))
          r.fail("scale of shape ", shape_str(in(1).shape()), " and bias of shape ",
                 shape_str(in(2).defined() ? in(2).shape() : Shape{}), " for normalized shape ",
                 shape_str(ns));
        out = F::layer_norm(x, ns, in(1), in(2), n.eps);
      } else if (op == "Flatten") {
        const int64_t rk = std::max<int64_t>(x.dim(), 1);
        if (n.axis < -rk || n.axis > rk)
          r.fail("axis ", n.axis, " is out of range for rank ", x.dim());
        const int64_t axis = n.axis < 0 ? n.axis + rk : n.axis;
        int64_t a = 1, b = 1;
        for (int64_t d = 0; d < x.dim(); ++d) (d < axis ? a : b) *= x.size(d);
        out = soma::reshape(x, {a, b});
      } else if (op == "Reshape") {
        out = r.reshape(x, in(1));
      } else if (op == "Transpose") {
        std::vector<int64_t> perm = n.perm;
        if (!n.has_perm)
          for (int64_t d = x.dim(); d-- > 0;) perm.push_back(d);
        std::vector<int64_t> sorted = perm;
        std::sort(sorted.begin(), sorted.end());
        bool ok = static_cast<int64_t>(perm.size()) == x.dim();
        for (size_t d = 0; ok && d < sorted.size(); ++d) ok = sorted[d] == static_cast<int64_t>(d);
        if (!ok) r.fail("perm ", shape_str(perm), " for an input of shape ", shape_str(x.shape()));
        out = soma::permute(x, perm);
      } else if (op == "Concat") {
        std::vector<Tensor> parts;
        double total = 0;
        for (size_t i = 0; i < n.in.size(); ++i) {
          if (!in(i).defined()) r.fail("input ", i, " is empty");
          r.same_dtype(x, in(i));
          if (in(i).dim() != x.dim())
            r.fail("inputs of shapes ", shape_str(x.shape()), " and ", shape_str(in(i).shape()));
          total += numel_of(in(i).shape());
          parts.push_back(in(i));
        }
        r.rank(x, 1, 16);
        const int64_t axis = norm_axis(origin, n, n.axis, x.dim());
        for (const Tensor& p : parts)
          for (int64_t d = 0; d < x.dim(); ++d)
            if (d != axis && p.size(d) != x.size(d))
              r.fail("inputs of shapes ", shape_str(x.shape()), " and ", shape_str(p.shape()),
                     " differ outside axis ", axis);
        r.limit(total);
        out = soma::cat(parts, axis);
      } else if (op == "Gather") {
        out = r.gather(x, in(1));
      } else if (op == "Shape") {
        const int64_t rk = x.dim();
        auto clampi = [&](int64_t i) {
          if (i < 0) i += rk;
          return std::clamp<int64_t>(i, 0, rk);
        };
        const int64_t s = clampi(n.shape_start),
                      e = n.shape_end == INT64_MAX ? rk : clampi(n.shape_end);
        std::vector<int64_t> dims;
        for (int64_t d = s; d < e; ++d) dims.push_back(x.size(d));
        out = soma::tensor(dims, {static_cast<int64_t>(dims.size())});
      } else if (op == "Pad") {
        out = r.pad(x, in(1), in(2));
      } else if (op == "Unsqueeze") {
        out = r.unsqueeze(x, in(1));
      } else if (op == "Squeeze") {
        out = r.squeeze(x, in(1));
      } else if (op == "Constant") {
        out = n.constant;
      } else if (op == "Cast") {
        DType d = kFloat32;
        to_dtype(n.to, d);
        out = x.dtype() == d ? x : x.to(d);
      } else if (op == "ReduceMean") {
        r.floating(x);
        std::vector<int64_t> axes;
        // An empty axes list reduces over all dims, as no axes (opsets 13-17 have no
        // noop_with_empty_axes).
        if (n.has_axes && !n.axes.empty()) {
          for (int64_t a : n.axes) axes.push_back(norm_axis(origin, n, a, x.dim(), "axes value"));
          std::sort(axes.begin(), axes.end());
          axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
        } else {
          for (int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
        }
        out = axes.empty() ? x : soma::mean(x, axes, n.keepdims == 1);  // empty: a 0-d x
      } else {
        r.fail("op '", op, "' has no implementation");
      }
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.rfind("onnx::load", 0) == 0) throw;
      node_fail(origin, n, msg);
    }
    v[n.out[0]] = out;
    if (dry) {
      live += numel_of(out.shape());
      if (live > kMaxLiveElements)
        node_fail(origin, n, "the graph's values would hold more than ", kMaxLiveElements,
                  " elements for one sample");
    }
    // Values no later node reads are dropped (graph outputs and initializers stay).
    for (int s : n.in)
      if (s >= 0 && !keep[s] && last_use[s] == pos && !initial[s].defined()) {
        if (dry && v[s].defined()) live -= numel_of(v[s].shape());
        v[s] = Tensor();
      }
  }
  std::vector<Tensor> outs;
  for (int s : output_slots) outs.push_back(v[s]);
  return outs;
}

// ---- load --------------------------------------------------------------------------------
OnnxModel::OnnxModel(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnnxModel::~OnnxModel() = default;

Tensor OnnxModel::forward(const Tensor& input) {
  SOMA_CHECK(impl_->inputs.size() == 1 && impl_->outputs.size() == 1, "onnx model ", impl_->origin,
             ": forward takes graphs of one input and one output, this one has ",
             impl_->inputs.size(), " and ", impl_->outputs.size(), " (use run())");
  return impl_->execute({input}, false)[0];
}
std::vector<Tensor> OnnxModel::run(const std::vector<Tensor>& inputs) {
  return impl_->execute(inputs, false);
}
const std::vector<ValueSpec>& OnnxModel::inputs() const {
  return impl_->inputs;
}
const std::vector<ValueSpec>& OnnxModel::outputs() const {
  return impl_->outputs;
}
std::string OnnxModel::state_key(const std::string& onnx_name) const {
  auto it = impl_->key_of.find(onnx_name);
  SOMA_CHECK(it != impl_->key_of.end(), "onnx model ", impl_->origin, ": no initializer named '",
             onnx_name, "'");
  return it->second;
}
const std::vector<std::pair<std::string, std::string>>& OnnxModel::initializer_keys() const {
  return impl_->keys;
}
const std::vector<std::pair<std::string, std::string>>& OnnxModel::metadata() const {
  return impl_->metadata;
}
int64_t OnnxModel::opset() const {
  return impl_->opset;
}
const std::string& OnnxModel::producer() const {
  return impl_->producer;
}
size_t OnnxModel::num_nodes() const {
  return impl_->nodes.size();
}
std::string OnnxModel::output_op(size_t i) const {
  SOMA_CHECK(i < impl_->output_slots.size(), "OnnxModel::output_op: output ", i, " of ",
             impl_->output_slots.size());
  const int slot = impl_->output_slots[i];
  for (const Node& n : impl_->nodes)
    for (int o : n.out)
      if (o == slot) return n.op;
  return "";
}
std::string OnnxModel::describe() const {
  return "OnnxModel(" +
         (impl_->producer.empty() ? std::string("unknown producer") : impl_->producer) +
         ", opset " + std::to_string(impl_->opset) + ", " + std::to_string(impl_->nodes.size()) +
         " nodes)";
}

std::shared_ptr<OnnxModel> load_bytes(std::string_view bytes, const std::string& origin) {
  const pb::ModelMsg m = pb::parse_model(bytes, origin);
  auto fail = [&](const auto&... parts) {
    soma::detail::fail("onnx::load: ", origin, ": ", parts...);
  };
  if (!m.has_graph) fail("the model has no graph");
  if (m.ir_version < 3) fail("IR version ", m.ir_version, " (soma imports IR version 3 or later)");
  int64_t opset = -1;
  for (const pb::OpsetMsg& o : m.opset_import) {
    if (o.domain.empty() || o.domain == "ai.onnx") {
      if (opset >= 0) fail("the default domain is imported twice");
      opset = o.version;
    }
  }
  if (opset < 0) fail("no opset_import for the default ONNX domain");
  if (opset < kMinOpset || opset > kMaxOpset)
    fail("opset ", opset, " of the default domain is not supported (soma imports opsets ",
         kMinOpset, " to ", kMaxOpset, ")");
  const pb::GraphMsg& g = m.graph;
  if (g.sparse_initializers > 0) fail("sparse initializers are not supported");

  auto impl = std::make_shared<OnnxModel::Impl>();
  impl->origin = origin;
  impl->bytes = std::string(bytes);
  impl->opset = opset;
  impl->producer = m.producer_name + (m.producer_version.empty() ? "" : " " + m.producer_version);
  impl->metadata = m.metadata;
  std::unordered_map<std::string, int> slot;
  auto define = [&](const std::string& name, const std::string& by) {
    if (name.empty()) fail(by, " defines a value with an empty name");
    if (!slot.emplace(name, static_cast<int>(impl->slot_names.size())).second)
      fail(by, " defines '", name, "', which is already defined (values must be unique)");
    impl->slot_names.push_back(name);
    impl->initial.emplace_back();
    return static_cast<int>(impl->slot_names.size()) - 1;
  };

  // Initializers (converted now; registered once their use is known).
  std::vector<std::pair<int, const pb::TensorMsg*>> inits;
  for (size_t i = 0; i < g.initializer.size(); ++i) {
    const pb::TensorMsg& t = g.initializer[i];
    const std::string what = "initializer " + std::to_string(i) + " '" + t.name + "'";
    const int s = define(t.name, what);
    impl->initial[s] = make_tensor(t, what, origin);
    inits.emplace_back(s, &t);
  }
  // Graph inputs (those that are not initializers: IR < 4 lists initializers as inputs too).
  std::set<std::string> init_names;
  for (const auto& t : g.initializer) init_names.insert(t.name);
  auto spec_of = [&](const pb::ValueInfoMsg& vi, const char* kind, size_t i) {
    ValueSpec s;
    s.name = vi.name;
    if (!vi.is_tensor) fail("graph ", kind, " ", i, " '", vi.name, "' is not a tensor");
    if (!to_dtype(vi.elem_type, s.dtype))
      fail("graph ", kind, " ", i, " '", vi.name, "' has dtype ", dtype_desc(vi.elem_type),
           " (soma imports float32 and int64)");
    if (vi.has_shape) {
      if (vi.dims.size() > 16)
        fail("graph ", kind, " '", vi.name, "' has ", vi.dims.size(), " dims");
      s.shape = vi.dims;
      s.dim_names = vi.dim_params;
      for (size_t d = 0; d < s.shape.size(); ++d)
        if (s.shape[d] == 0 && s.dim_names[d].empty())
          fail("graph ", kind, " '", vi.name, "' has a dim of size 0");
    }
    return s;
  };
  for (size_t i = 0; i < g.input.size(); ++i) {
    if (init_names.count(g.input[i].name)) continue;
    impl->inputs.push_back(spec_of(g.input[i], "input", i));
    impl->input_slots.push_back(define(g.input[i].name, "graph input " + std::to_string(i)));
  }
  if (impl->inputs.empty()) fail("the graph has no inputs");
  if (g.output.empty()) fail("the graph has no outputs");

  // Nodes: validated, outputs defined.
  std::vector<Node> nodes(g.node.size());
  for (size_t i = 0; i < g.node.size(); ++i) {
    const pb::NodeMsg& msg = g.node[i];
    Node& n = nodes[i];
    n.index = i;
    n.name = msg.name;
    n.op = msg.op_type;
    if (!msg.domain.empty() && msg.domain != "ai.onnx")
      node_fail(origin, n, "op '", n.op, "' of domain '", msg.domain,
                "' is not supported (soma imports the default ONNX domain)");
    validate_node(origin, n, msg, opset);
    for (size_t o = 0; o < msg.output.size(); ++o) {
      if (msg.output[o].empty()) {
        if (o == 0) node_fail(origin, n, "its first output has no name");
        n.out.push_back(-1);
        continue;
      }
      n.out.push_back(define(msg.output[o], node_label(n)));
    }
  }
  // Inputs resolved (any order in the file), then the topological order (Kahn).
  std::vector<int> producer(impl->slot_names.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int s : nodes[i].out)
      if (s >= 0) producer[s] = static_cast<int>(i);
  std::vector<std::vector<size_t>> consumers(nodes.size());
  std::vector<size_t> pending(nodes.size(), 0);
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    for (size_t k = 0; k < g.node[i].input.size(); ++k) {
      const std::string& name = g.node[i].input[k];
      if (name.empty()) {
        n.in.push_back(-1);
        continue;
      }
      auto it = slot.find(name);
      if (it == slot.end())
        node_fail(origin, n, "input ", k, " '", name,
                  "' is neither a graph input, an initializer nor a node's output (a missing "
                  "initializer?)");
      n.in.push_back(it->second);
      if (producer[it->second] >= 0) {
        consumers[producer[it->second]].push_back(i);
        ++pending[i];
      }
    }
    // Required inputs: the optional ones are Gemm's C, Conv's B, Squeeze's axes, Dropout's
    // ratio / training_mode and LayerNormalization's B.
    for (size_t k = 0; k < n.in.size(); ++k) {
      const bool optional = (n.op == "Gemm" && k == 2) ||
                            ((n.op == "Conv" || n.op == "ConvTranspose") && k == 2) ||
                            (n.op == "Squeeze" && k == 1) || (n.op == "Dropout" && k > 0) ||
                            (n.op == "LayerNormalization" && k == 2) || (n.op == "Pad" && k == 2);
      if (n.in[k] < 0 && !optional) node_fail(origin, n, "required input ", k, " is empty");
    }
  }
  std::vector<size_t> ready;
  for (size_t i = nodes.size(); i-- > 0;)
    if (pending[i] == 0) ready.push_back(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (size_t c : consumers[i])
      if (--pending[c] == 0) ready.push_back(c);
  }
  if (order.size() != nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (pending[i] > 0)
        node_fail(origin, nodes[i], "the graph has a cycle through this node (",
                  nodes.size() - order.size(), " nodes are on or after a cycle)");
  }
  impl->nodes.reserve(nodes.size());
  for (size_t i : order) impl->nodes.push_back(std::move(nodes[i]));
  // attr_msgs point into `m`, which dies here: the nodes keep the parsed values only.
  for (Node& n : impl->nodes) n.attr_msgs.clear();

  // Graph outputs.
  for (size_t i = 0; i < g.output.size(); ++i) {
    auto it = slot.find(g.output[i].name);
    if (it == slot.end())
      fail("graph output ", i, " '", g.output[i].name, "' is not produced by any node");
    ValueSpec s;
    s.name = g.output[i].name;
    if (g.output[i].is_tensor) {
      to_dtype(g.output[i].elem_type, s.dtype);
      if (g.output[i].has_shape) {
        s.shape = g.output[i].dims;
        s.dim_names = g.output[i].dim_params;
      }
    }
    impl->outputs.push_back(s);
    impl->output_slots.push_back(it->second);
  }
  impl->last_use.assign(impl->slot_names.size(), 0);
  for (size_t pos = 0; pos < impl->nodes.size(); ++pos)
    for (int s : impl->nodes[pos].in)
      if (s >= 0) impl->last_use[s] = pos;

  // Which initializers are running statistics (buffers, not trained).
  std::set<int> stats;
  for (const Node& n : impl->nodes)
    if (n.op == "BatchNormalization")
      for (size_t k = 3; k < n.in.size(); ++k) stats.insert(n.in[k]);

  auto model = std::make_shared<OnnxModel>(impl);
  std::set<std::string> used;
  for (const auto& [s, t] : inits) {
    std::string key = sanitize(t->name);
    for (int k = 1; used.count(key); ++k) key = sanitize(t->name) + "_" + std::to_string(k);
    used.insert(key);
    Tensor& value = impl->initial[s];
    const bool weight = value.dtype() == kFloat32 && value.dim() >= 1 && !stats.count(s);
    value = weight ? model->register_parameter(key, value) : model->register_buffer(key, value);
    impl->keys.emplace_back(t->name, key);
    impl->key_of[t->name] = key;
  }

  // The dry run: zeros of the declared shapes (symbolic dims 1), without grad.
  // Every input needs a declared rank: the dry run is what bounds the sizes a hostile file can
  // make a forward allocate (torch.onnx.export always declares it).
  std::vector<Tensor> zeros_in;
  for (const ValueSpec& s : impl->inputs) {
    if (s.shape.empty() && s.dim_names.empty())
      fail("graph input '", s.name,
           "' has no declared shape (or is a scalar); soma needs each "
           "input's rank and its non-batch sizes");
    std::vector<int64_t> shape = s.shape;
    for (int64_t& d : shape)
      if (d < 0) d = 1;
    if (numel_of(shape) > kMaxElements)
      fail("graph input '", s.name, "' of shape ", shape_str(s.shape), " holds more than ",
           kMaxElements, " elements per sample");
    zeros_in.push_back(soma::zeros(shape, s.dtype));
  }
  {
    NoGradGuard no_grad;
    impl->execute(zeros_in, true);
  }
  model->eval();
  return model;
}

void detail::set_load_limits(double max_elements, double max_live_elements, double max_macs) {
  kMaxElements = max_elements;
  kMaxLiveElements = max_live_elements;
  kMaxMacs = max_macs;
}

void save(const OnnxModel& model, const std::string& path) {
  const OnnxModel::Impl& impl = *model.impl_;
  const nn::StateDict state = model.state_dict();
  std::map<std::string, Tensor> by_name;
  for (size_t i = 0; i < impl.keys.size(); ++i) {
    const auto& [name, key] = impl.keys[i];
    auto it = state.find(key);
    SOMA_CHECK(it != state.end(), "onnx::save: ", path, ": the module has no tensor '", key,
               "' (initializer '", name, "')");
    by_name[name] = it->second;
  }
  const std::string out = pb::rewrite_initializers(
      impl.bytes, impl.origin, [&](const std::string& name) -> std::optional<std::string> {
        auto it = by_name.find(name);
        if (it == by_name.end()) return std::nullopt;
        const Tensor t = it->second.detach().contiguous();
        SOMA_CHECK(t.dtype() == kFloat32 || t.dtype() == kInt64, "onnx::save: ", path,
                   ": initializer '", name, "' has dtype ", t.dtype(),
                   " (float32 or int64; convert the module back)");
        pb::Writer w;
        w.packed_i64(pb::tensor::kDims, t.shape());
        w.i64(pb::tensor::kDataType,
              t.dtype() == kFloat32 ? pb::tensor::kFloat : pb::tensor::kInt64);
        w.bytes(pb::tensor::kName, name);
        const size_t n = static_cast<size_t>(t.numel()) * element_size(t.dtype());
        const char* src = t.dtype() == kFloat32 ? reinterpret_cast<const char*>(t.data<float>())
                                                : reinterpret_cast<const char*>(t.data<int64_t>());
        w.bytes(pb::tensor::kRawData, std::string_view(n ? src : "", n));
        return w.str();
      });
  // What is written must load again (and run: shapes may not have changed).
  load_bytes(out, path);
  io::atomic_write(path, out);
}

std::shared_ptr<OnnxModel> load(const std::string& path) {
  const std::string bytes = io::read_file(path);
  return load_bytes(bytes, path);
}

}  // namespace soma::onnx
