// soma::onnx::load, op by op: one-node (or few-node) graphs built here, each with attributes
// torch.onnx.export seldom writes (Gemm's transA/alpha/beta, uneven conv pads, groups and
// dilations, ceil_mode, count_include_pad, Reshape's 0, Cast's truncation, Pad's modes,
// negative Gather indices, Flatten's axis, Softmax on an inner axis, empty axes lists ...).
// The reference is ONNX Runtime on the same file and the same random input: soma's output
// must equal it to 1e-5. Skipped, saying so, only when node or ONNX Runtime is not installed.
#include <gtest/gtest.h>
#include <soma/onnx/import.h>
#include <soma/soma.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <variant>

#include "onnx/ort_runner.h"
#include "onnx/proto_writer.h"

namespace {

namespace fs = std::filesystem;
namespace pb = soma::onnx::pb;
using soma::Tensor;

// AttributeProto: one of int, float, string, ints, floats, tensor.
struct Attr {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>, Tensor> value;
};
Attr ai(std::string n, int64_t v) {
  return {std::move(n), v};
}
Attr af(std::string n, float v) {
  return {std::move(n), v};
}
Attr as(std::string n, std::string v) {
  return {std::move(n), std::move(v)};
}
Attr ais(std::string n, std::vector<int64_t> v) {
  return {std::move(n), std::move(v)};
}
Attr at(std::string n, Tensor v) {
  return {std::move(n), std::move(v)};
}

struct Node {
  std::string op;
  std::vector<std::string> in, out;
  std::vector<Attr> attrs;
};

struct Case {
  std::string name;
  soma::Shape x;  // the graph input "x" (float32, static shape)
  std::vector<Node> nodes;
  std::vector<std::pair<std::string, Tensor>> inits = {};  // float32 or int64
  int64_t opset = 17;
};

pb::Writer tensor_proto(const std::string& name, const Tensor& t) {
  pb::Writer w;
  w.packed_i64(pb::tensor::kDims, t.shape());
  const bool f = t.dtype() == soma::kFloat32;
  w.i64(pb::tensor::kDataType, f ? pb::tensor::kFloat : pb::tensor::kInt64);
  w.bytes(pb::tensor::kName, name);
  const Tensor c = t.contiguous();
  const char* p = f ? reinterpret_cast<const char*>(c.data<float>())
                    : reinterpret_cast<const char*>(c.data<int64_t>());
  w.bytes(pb::tensor::kRawData, std::string(p, static_cast<size_t>(c.numel()) * (f ? 4 : 8)));
  return w;
}

pb::Writer attr_proto(const Attr& a) {
  pb::Writer w;
  w.bytes(pb::attr::kName, a.name);
  if (const auto* i = std::get_if<int64_t>(&a.value)) {
    w.i64(pb::attr::kI, *i);
    w.i64(pb::attr::kType, 2);
  } else if (const auto* f = std::get_if<float>(&a.value)) {
    w.f32(pb::attr::kF, *f);
    w.i64(pb::attr::kType, 1);
  } else if (const auto* s = std::get_if<std::string>(&a.value)) {
    w.bytes(4, *s);
    w.i64(pb::attr::kType, 3);
  } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a.value)) {
    w.packed_i64(pb::attr::kInts, *is);
    w.i64(pb::attr::kType, 7);
  } else if (const auto* fs = std::get_if<std::vector<float>>(&a.value)) {
    for (float f : *fs) w.f32(7, f);
    w.i64(pb::attr::kType, 6);
  } else {
    w.message(pb::attr::kT, tensor_proto(a.name, std::get<Tensor>(a.value)));
    w.i64(pb::attr::kType, pb::attr::kTensor);
  }
  return w;
}

std::string model_bytes(const Case& c) {
  pb::Writer g;
  for (size_t k = 0; k < c.nodes.size(); ++k) {
    const Node& n = c.nodes[k];
    pb::Writer w;
    for (const auto& s : n.in) w.bytes(pb::node::kInput, s);
    for (const auto& s : n.out) w.bytes(pb::node::kOutput, s);
    w.bytes(pb::node::kName, n.op + "_" + std::to_string(k));
    w.bytes(pb::node::kOpType, n.op);
    for (const Attr& a : n.attrs) w.message(pb::node::kAttribute, attr_proto(a));
    g.message(pb::graph::kNode, w);
  }
  g.bytes(pb::graph::kName, c.name);
  for (const auto& [name, t] : c.inits) g.message(pb::graph::kInitializer, tensor_proto(name, t));
  auto value = [](const std::string& name, const soma::Shape* dims) {
    pb::Writer tt;
    tt.i64(pb::type::kElemType, pb::tensor::kFloat);
    if (dims != nullptr) {
      pb::Writer shape;
      for (int64_t d : *dims) {
        pb::Writer dim;
        dim.i64(pb::type::kDimValue, d);
        shape.message(pb::type::kDim, dim);
      }
      tt.message(pb::type::kShape, shape);
    }
    pb::Writer ty;
    ty.message(pb::type::kTensorType, tt);
    pb::Writer vi;
    vi.bytes(pb::value_info::kName, name);
    vi.message(pb::value_info::kType, ty);
    return vi;
  };
  g.message(pb::graph::kInput, value("x", &c.x));
  g.message(pb::graph::kOutput, value("y", nullptr));
  pb::Writer m;
  m.i64(pb::model::kIrVersion, 8);
  m.bytes(pb::model::kProducerName, "soma import_ops_test");
  m.message(pb::model::kGraph, g);
  pb::Writer o;
  o.bytes(pb::opset_id::kDomain, "");
  o.i64(pb::opset_id::kVersion, c.opset);
  m.message(pb::model::kOpsetImport, o);
  return m.str();
}

Tensor randn(soma::Shape s) {
  return soma::randn(std::move(s));
}
Tensor ints(std::vector<int64_t> v, soma::Shape s) {
  return soma::tensor(v, s);
}
Tensor ints(std::vector<int64_t> v) {
  const auto n = static_cast<int64_t>(v.size());
  return soma::tensor(v, {n});
}
Tensor scalar(float v) {
  return soma::tensor(std::vector<float>{v}, soma::Shape{});
}

std::vector<Case> cases() {
  soma::manual_seed(19);
  std::vector<Case> c;
  const std::vector<std::string> xw{"x", "w"}, xwb{"x", "w", "b"}, y{"y"};
  // Gemm
  c.push_back({"gemm_transA_alpha_beta",
               {4, 3},
               {{"Gemm", xwb, y, {ai("transA", 1), af("alpha", 0.5f), af("beta", 2.0f)}}},
               {{"w", randn({4, 5})}, {"b", randn({1, 5})}}});
  c.push_back({"gemm_transB_column_C",
               {3, 4},
               {{"Gemm", xwb, y, {ai("transB", 1), af("beta", -1.5f)}}},
               {{"w", randn({5, 4})}, {"b", randn({3, 1})}}});
  c.push_back({"gemm_both_transposed_0d_C",
               {4, 3},
               {{"Gemm", xwb, y, {ai("transA", 1), ai("transB", 1), af("alpha", -2.0f)}}},
               {{"w", randn({5, 4})}, {"b", scalar(0.25f)}}});
  c.push_back({"gemm_no_C", {2, 6}, {{"Gemm", xw, y, {}}}, {{"w", randn({6, 3})}}});
  c.push_back(
      {"matmul_batched_broadcast", {2, 3, 4}, {{"MatMul", xw, y, {}}}, {{"w", randn({4, 5})}}});
  c.push_back({"matmul_vector", {3, 4}, {{"MatMul", xw, y, {}}}, {{"w", randn({4})}}});
  // Conv and ConvTranspose
  c.push_back({"conv_uneven_pads_groups_dilations",
               {2, 4, 9, 8},
               {{"Conv",
                 xwb,
                 y,
                 {ai("group", 2), ais("pads", {0, 1, 2, 0}), ais("strides", {2, 1}),
                  ais("dilations", {2, 1}), ais("kernel_shape", {3, 2})}}},
               {{"w", randn({6, 2, 3, 2})}, {"b", randn({6})}}});
  c.push_back({"conv_depthwise_no_bias",
               {1, 3, 6, 6},
               {{"Conv", xw, y, {ai("group", 3), ais("pads", {1, 1, 1, 1})}}},
               {{"w", randn({3, 1, 3, 3})}}});
  c.push_back(
      {"conv1d_strided_dilated",
       {2, 3, 11},
       {{"Conv", xwb, y, {ais("strides", {2}), ais("pads", {1, 2}), ais("dilations", {2})}}},
       {{"w", randn({4, 3, 3})}, {"b", randn({4})}}});
  c.push_back(
      {"conv_transpose_output_padding",
       {2, 4, 5, 5},
       {{"ConvTranspose",
         xwb,
         y,
         {ais("strides", {2, 2}), ais("pads", {1, 1, 1, 1}), ais("output_padding", {1, 0})}}},
       {{"w", randn({4, 3, 3, 3})}, {"b", randn({3})}}});
  c.push_back({"conv_transpose_groups",
               {1, 4, 4, 4},
               {{"ConvTranspose", xw, y, {ai("group", 2), ais("strides", {2, 2})}}},
               {{"w", randn({4, 3, 2, 2})}}});
  // Pooling
  c.push_back({"maxpool_ceil_mode_pads",
               {2, 3, 8, 8},
               {{"MaxPool",
                 {"x"},
                 y,
                 {ais("kernel_shape", {3, 3}), ais("strides", {2, 2}), ais("pads", {1, 1, 1, 1}),
                  ai("ceil_mode", 1)}}}});
  c.push_back({"maxpool_dilations",
               {1, 2, 9, 9},
               {{"MaxPool", {"x"}, y, {ais("kernel_shape", {2, 2}), ais("dilations", {2, 2})}}}});
  c.push_back({"maxpool_1d",
               {2, 3, 10},
               {{"MaxPool", {"x"}, y, {ais("kernel_shape", {3}), ais("strides", {2})}}}});
  c.push_back({"avgpool_count_include_pad",
               {2, 3, 7, 7},
               {{"AveragePool",
                 {"x"},
                 y,
                 {ais("kernel_shape", {3, 3}), ais("strides", {2, 2}), ais("pads", {1, 1, 1, 1}),
                  ai("count_include_pad", 1)}}}});
  c.push_back({"avgpool_exclude_pad_ceil",
               {2, 3, 7, 7},
               {{"AveragePool",
                 {"x"},
                 y,
                 {ais("kernel_shape", {3, 3}), ais("strides", {2, 2}), ais("pads", {1, 1, 1, 1}),
                  ai("ceil_mode", 1)}}}});
  c.push_back({"global_average_pool", {2, 3, 5, 4}, {{"GlobalAveragePool", {"x"}, y, {}}}});
  // Normalisation
  c.push_back(
      {"batchnorm_epsilon",
       {2, 3, 4, 4},
       {{"BatchNormalization", {"x", "s", "b", "m", "v"}, y, {af("epsilon", 1e-3f)}}},
       {{"s", randn({3})}, {"b", randn({3})}, {"m", randn({3})}, {"v", soma::rand({3}) + 0.5}}});
  c.push_back({"layernorm_axis_minus2",
               {2, 3, 4},
               {{"LayerNormalization", {"x", "s", "b"}, y, {ai("axis", -2), af("epsilon", 1e-3f)}}},
               {{"s", randn({3, 4})}, {"b", randn({3, 4})}}});
  // Shapes
  c.push_back({"reshape_zero_copies_dim",
               {2, 3, 4},
               {{"Reshape", {"x", "s"}, y, {}}},
               {{"s", ints({0, -1, 2})}}});
  c.push_back({"reshape_allowzero_without_zero",
               {2, 3, 4},
               {{"Reshape", {"x", "s"}, y, {ai("allowzero", 1)}}},
               {{"s", ints({4, -1})}}});
  c.push_back({"flatten_axis2", {2, 3, 4, 5}, {{"Flatten", {"x"}, y, {ai("axis", 2)}}}});
  c.push_back({"flatten_axis0", {2, 3, 4}, {{"Flatten", {"x"}, y, {ai("axis", 0)}}}});
  c.push_back({"flatten_axis_minus1", {2, 3, 4}, {{"Flatten", {"x"}, y, {ai("axis", -1)}}}});
  c.push_back({"transpose_perm", {2, 3, 4}, {{"Transpose", {"x"}, y, {ais("perm", {2, 0, 1})}}}});
  c.push_back({"transpose_default_reverses", {2, 3, 4}, {{"Transpose", {"x"}, y, {}}}});
  c.push_back({"concat_negative_axis",
               {2, 3},
               {{"Relu", {"x"}, {"r"}, {}}, {"Concat", {"x", "r", "x"}, y, {ai("axis", -1)}}}});
  c.push_back({"gather_negative_indices",
               {3, 5},
               {{"Gather", {"x", "i"}, y, {ai("axis", 1)}}},
               {{"i", ints({-1, 0, 2, -3}, {2, 2})}}});
  c.push_back(
      {"gather_scalar_index", {4, 5}, {{"Gather", {"x", "i"}, y, {}}}, {{"i", ints({-2}, {})}}});
  c.push_back({"squeeze_unsqueeze_negative_axes",
               {3, 1, 4},
               {{"Squeeze", {"x", "a"}, {"s"}, {}}, {"Unsqueeze", {"s", "u"}, y, {}}},
               {{"a", ints({-2})}, {"u", ints({-1, 0})}}});
  c.push_back({"squeeze_without_axes", {1, 3, 1, 4}, {{"Squeeze", {"x"}, y, {}}}});
  c.push_back({"reduce_mean_axes_keepdims0",
               {2, 3, 4},
               {{"ReduceMean", {"x"}, y, {ais("axes", {-1, 0}), ai("keepdims", 0)}}}});
  c.push_back({"reduce_mean_no_axes", {2, 3, 4}, {{"ReduceMean", {"x"}, y, {}}}});
  // Elementwise, activations, casts
  c.push_back({"cast_truncates_toward_zero",
               {3, 4},
               {{"Mul", {"x", "k"}, {"m"}, {}},
                {"Cast", {"m"}, {"i"}, {ai("to", 7)}},
                {"Cast", {"i"}, y, {ai("to", 1)}}},
               {{"k", scalar(3.0f)}}});
  c.push_back({"pad_constant_value",
               {2, 3, 4},
               {{"Pad", {"x", "p", "v"}, y, {}}},
               {{"p", ints({0, 1, 2, 0, 2, 1})}, {"v", scalar(0.5f)}}});
  c.push_back({"pad_reflect",
               {1, 2, 4, 5},
               {{"Pad", {"x", "p"}, y, {as("mode", "reflect")}}},
               {{"p", ints({0, 0, 1, 2, 0, 0, 2, 1})}}});
  c.push_back({"pad_edge",
               {1, 2, 4, 5},
               {{"Pad", {"x", "p"}, y, {as("mode", "edge")}}},
               {{"p", ints({0, 0, 3, 0, 0, 0, 1, 2})}}});
  c.push_back({"pad_outer_dim_only",
               {2, 3, 4},
               {{"Pad", {"x", "p"}, y, {}}},
               {{"p", ints({1, 0, 0, 2, 0, 0})}}});
  c.push_back({"softmax_inner_axis", {2, 3, 4}, {{"Softmax", {"x"}, y, {ai("axis", 1)}}}});
  c.push_back({"log_softmax_axis_minus2", {2, 3, 4}, {{"LogSoftmax", {"x"}, y, {ai("axis", -2)}}}});
  c.push_back({"softmax_opset13_default_axis", {2, 3, 4}, {{"Softmax", {"x"}, y, {}}}, {}, 13});
  c.push_back(
      {"leaky_relu_elu_alpha",
       {3, 4},
       {{"LeakyRelu", {"x"}, {"l"}, {af("alpha", 0.3f)}}, {"Elu", {"l"}, y, {af("alpha", 0.7f)}}}});
  c.push_back({"sub_div_broadcast_constants",
               {3, 4},
               {{"Sub", {"c", "x"}, {"s"}, {}}, {"Div", {"s", "d"}, y, {}}},
               {{"c", randn({1, 4})}, {"d", soma::rand({3, 1}) + 1.0}}});
  c.push_back({"unary_chain",
               {3, 4},
               {{"Abs", {"x"}, {"a"}, {}},
                {"Sqrt", {"a"}, {"s"}, {}},
                {"Log", {"s"}, {"l"}, {}},
                {"Erf", {"l"}, {"e"}, {}},
                {"Exp", {"e"}, {"x2"}, {}},
                {"Neg", {"x2"}, {"n"}, {}},
                {"Tanh", {"n"}, {"t"}, {}},
                {"Sigmoid", {"t"}, y, {}}}});
  c.push_back({"pow_constant_exponent",
               {3, 4},
               {{"Abs", {"x"}, {"a"}, {}}, {"Pow", {"a", "e"}, y, {}}},
               {{"e", scalar(1.5f)}}});
  c.push_back({"identity_dropout_constant",
               {3, 4},
               {{"Constant", {}, {"k"}, {at("value", randn({1, 4}))}},
                {"Dropout", {"x"}, {"d"}, {}},
                {"Identity", {"d"}, {"i"}, {}},
                {"Add", {"i", "k"}, y, {}}}});
  return c;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ImportOp : public ::testing::TestWithParam<Case> {};

TEST_P(ImportOp, MatchesOnnxRuntime) {
  REQUIRE_ORT();
  const Case& c = GetParam();
  std::string t = (fs::temp_directory_path() / "soma_onnx_ops_XXXXXX").string();
  const fs::path dir = mkdtemp(t.data());
  const std::string path = (dir / (c.name + ".onnx")).string();
  std::ofstream(path, std::ios::binary) << model_bytes(c);
  const Tensor x = soma::randn(c.x);
  Tensor got;
  try {
    auto model = soma::onnx::load(path);
    soma::NoGradGuard no_grad;
    got = (*model)(x);
  } catch (const soma::Error& e) {
    fs::remove_all(dir);
    FAIL() << c.name << ": soma could not run it: " << e.what();
  }
  const Tensor want = soma_test::run_ort(dir, path, x);
  fs::remove_all(dir);
  ASSERT_TRUE(want.defined());
  ASSERT_EQ(got.shape(), want.shape()) << c.name;
  const std::vector<float> g = got.contiguous().to_vector<float>(),
                           w = want.contiguous().to_vector<float>();
  float worst = 0;
  for (size_t i = 0; i < g.size(); ++i)
    worst = std::max(worst, std::abs(g[i] - w[i]) / (1.0f + std::abs(w[i])));
  EXPECT_LE(worst, 1e-5f) << c.name << ": largest difference " << worst;
}

INSTANTIATE_TEST_SUITE_P(OnnxImport, ImportOp, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
