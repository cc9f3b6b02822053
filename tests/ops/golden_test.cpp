// Golden-value tests: soma's forward outputs and gradients against PyTorch's.
//
// tests/reference/make_reference.py runs every op in PyTorch (float32 and float64) and writes
// the inputs, the output, an upstream gradient gout and torch's gradients d sum(out * gout) / d
// input into tests/reference/ops_reference.txt (format documented at the top of both files).
// Here each case builds the same inputs, applies the op named in the case through kOps below,
// checks the output, calls out.backward(gout) and checks every floating input's grad(). Each
// case is one gtest instance: Torch/GoldenTest.MatchesTorch/<case>_<dtype>.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using Inputs = std::vector<Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;

// ---- the ops, one line each (names and meanings mirror OPS in make_reference.py) ------------
const std::map<std::string, OpFn>& ops() {
  static const std::map<std::string, OpFn> table = {
      // elementwise, tensor-tensor (broadcasting)
      {"add", [](const Inputs& x) { return x[0] + x[1]; }},
      {"sub", [](const Inputs& x) { return x[0] - x[1]; }},
      {"mul", [](const Inputs& x) { return x[0] * x[1]; }},
      {"div", [](const Inputs& x) { return x[0] / x[1]; }},
      {"add_alpha_0p5", [](const Inputs& x) { return soma::add(x[0], x[1], 0.5); }},
      {"sub_alpha_2", [](const Inputs& x) { return soma::sub(x[0], x[1], 2.0); }},
      {"add_at", [](const Inputs& x) { return x[0].t() + x[1]; }},
      {"mul_bt", [](const Inputs& x) { return x[0] * x[1].t(); }},
      // elementwise with a scalar
      {"add_scalar_2p5", [](const Inputs& x) { return x[0] + 2.5; }},
      {"sub_scalar_2p5", [](const Inputs& x) { return x[0] - 2.5; }},
      {"mul_scalar_m1p5", [](const Inputs& x) { return x[0] * -1.5; }},
      {"div_scalar_3", [](const Inputs& x) { return x[0] / 3.0; }},
      {"rsub_scalar_2", [](const Inputs& x) { return 2.0 - x[0]; }},
      {"rdiv_scalar_2", [](const Inputs& x) { return 2.0 / x[0]; }},
      // unary
      {"neg", [](const Inputs& x) { return -x[0]; }},
      {"exp", [](const Inputs& x) { return soma::exp(x[0]); }},
      {"exp_t", [](const Inputs& x) { return soma::exp(x[0].t()); }},
      {"log", [](const Inputs& x) { return soma::log(x[0]); }},
      {"sqrt", [](const Inputs& x) { return soma::sqrt(x[0]); }},
      {"abs", [](const Inputs& x) { return soma::abs(x[0]); }},
      {"pow_2p5", [](const Inputs& x) { return soma::pow(x[0], 2.5); }},
      {"pow_3", [](const Inputs& x) { return soma::pow(x[0], 3.0); }},
      {"pow_tensor", [](const Inputs& x) { return soma::pow(x[0], x[1]); }},
      {"clamp_m0p5_0p7", [](const Inputs& x) { return soma::clamp(x[0], -0.5, 0.7); }},
      {"maximum", [](const Inputs& x) { return soma::maximum(x[0], x[1]); }},
      {"minimum", [](const Inputs& x) { return soma::minimum(x[0], x[1]); }},
      {"where", [](const Inputs& x) { return soma::where(x[0], x[1], x[2]); }},
      // matmul
      {"matmul", [](const Inputs& x) { return soma::matmul(x[0], x[1]); }},
      {"matmul_at", [](const Inputs& x) { return soma::matmul(x[0].t(), x[1]); }},
      {"matmul_bt", [](const Inputs& x) { return soma::matmul(x[0], x[1].t()); }},
      {"matmul_bt3", [](const Inputs& x) { return soma::matmul(x[0], x[1].transpose(1, 2)); }},
      // shape
      {"transpose_0_1", [](const Inputs& x) { return soma::transpose(x[0], 0, 1); }},
      {"transpose_0_2", [](const Inputs& x) { return soma::transpose(x[0], 0, 2); }},
      {"transpose_m1_m2", [](const Inputs& x) { return soma::transpose(x[0], -1, -2); }},
      {"t", [](const Inputs& x) { return soma::t(x[0]); }},
      {"reshape_2x6",
       [](const Inputs& x) {
         return soma::reshape(x[0], {2, 6});
       }},
      {"reshape_m1x3",
       [](const Inputs& x) {
         return soma::reshape(x[0], {-1, 3});
       }},
      {"reshape_t_m1", [](const Inputs& x) { return soma::reshape(x[0].t(), {-1}); }},
      {"view_4x3",
       [](const Inputs& x) {
         return soma::view(x[0], {4, 3});
       }},
      {"view_2x1x6",
       [](const Inputs& x) {
         return soma::view(x[0], {2, 1, 6});
       }},
      {"flatten", [](const Inputs& x) { return soma::flatten(x[0]); }},
      {"flatten_1_2", [](const Inputs& x) { return soma::flatten(x[0], 1, 2); }},
      {"squeeze_1", [](const Inputs& x) { return soma::squeeze(x[0], 1); }},
      {"squeeze_all", [](const Inputs& x) { return soma::squeeze(x[0]); }},
      {"unsqueeze_0", [](const Inputs& x) { return soma::unsqueeze(x[0], 0); }},
      {"unsqueeze_m1", [](const Inputs& x) { return soma::unsqueeze(x[0], -1); }},
      {"cat_0", [](const Inputs& x) { return soma::cat(x, 0); }},
      {"cat_1", [](const Inputs& x) { return soma::cat(x, 1); }},
      {"cat_0_t",
       [](const Inputs& x) {
         return soma::cat({x[0].t(), x[1]}, 0);
       }},
      {"narrow_1_1_2", [](const Inputs& x) { return soma::narrow(x[0], 1, 1, 2); }},
      {"narrow_0_2_1", [](const Inputs& x) { return soma::narrow(x[0], 0, 2, 1); }},
      {"slice_1_0_end_2", [](const Inputs& x) { return soma::slice(x[0], 1, 0, 1000, 2); }},
      {"slice_0_1_4_2", [](const Inputs& x) { return soma::slice(x[0], 0, 1, 4, 2); }},
      {"slice_t_1_1_end_2", [](const Inputs& x) { return soma::slice(x[0].t(), 1, 1, 1000, 2); }},
      {"index_select_0", [](const Inputs& x) { return soma::index_select(x[0], 0, x[1]); }},
      {"index_select_1", [](const Inputs& x) { return soma::index_select(x[0], 1, x[1]); }},
      {"contiguous_t", [](const Inputs& x) { return x[0].t().contiguous(); }},
      {"clone", [](const Inputs& x) { return x[0].clone(); }},
      {"clone_t", [](const Inputs& x) { return x[0].t().clone(); }},
      // reductions
      {"sum", [](const Inputs& x) { return soma::sum(x[0]); }},
      {"sum_dim0", [](const Inputs& x) { return soma::sum(x[0], 0); }},
      {"sum_dim1", [](const Inputs& x) { return soma::sum(x[0], 1); }},
      {"sum_dim1_keepdim", [](const Inputs& x) { return soma::sum(x[0], 1, true); }},
      {"sum_dimm1", [](const Inputs& x) { return soma::sum(x[0], -1); }},
      {"sum_dim1_t", [](const Inputs& x) { return soma::sum(x[0].t(), 1); }},
      {"mean", [](const Inputs& x) { return soma::mean(x[0]); }},
      {"mean_dim0", [](const Inputs& x) { return soma::mean(x[0], 0); }},
      {"mean_dim1_keepdim", [](const Inputs& x) { return soma::mean(x[0], 1, true); }},
      {"max", [](const Inputs& x) { return soma::max(x[0]); }},
      {"max_dim1", [](const Inputs& x) { return std::get<0>(soma::max(x[0], 1)); }},
      {"max_dim0_keepdim", [](const Inputs& x) { return std::get<0>(soma::max(x[0], 0, true)); }},
      {"min", [](const Inputs& x) { return soma::min(x[0]); }},
      {"min_dim0", [](const Inputs& x) { return std::get<0>(soma::min(x[0], 0)); }},
      {"min_dim1_keepdim", [](const Inputs& x) { return std::get<0>(soma::min(x[0], 1, true)); }},
      // activations and softmax
      {"relu", [](const Inputs& x) { return soma::relu(x[0]); }},
      {"relu_t", [](const Inputs& x) { return soma::relu(x[0].t()); }},
      {"sigmoid", [](const Inputs& x) { return soma::sigmoid(x[0]); }},
      {"tanh", [](const Inputs& x) { return soma::tanh(x[0]); }},
      {"leaky_relu_0p1", [](const Inputs& x) { return soma::leaky_relu(x[0], 0.1); }},
      {"gelu", [](const Inputs& x) { return soma::gelu(x[0]); }},
      {"softmax_dim0", [](const Inputs& x) { return soma::softmax(x[0], 0); }},
      {"softmax_dim1", [](const Inputs& x) { return soma::softmax(x[0], 1); }},
      {"softmax_dimm1", [](const Inputs& x) { return soma::softmax(x[0], -1); }},
      {"softmax_dim1_t", [](const Inputs& x) { return soma::softmax(x[0].t(), 1); }},
      {"log_softmax_dim0", [](const Inputs& x) { return soma::log_softmax(x[0], 0); }},
      {"log_softmax_dim1", [](const Inputs& x) { return soma::log_softmax(x[0], 1); }},
  };
  return table;
}

// Tolerances: |actual - expected| <= atol + rtol * |expected|. Every op currently uses these;
// loosen one op here only for a real reason, with a comment saying which.
golden::Tolerance tolerance(const std::string& /*op*/, soma::DType dtype) {
  if (dtype == soma::kFloat32) return {1e-5, 1e-6};
  return {1e-12, 1e-12};
}

// ---- the reference file (parsed by tests/reference/reference_file.h) -----------------------
using golden::Case;
using golden::make_tensor;
using golden::RefFile;
using golden::RefTensor;

// The checked-in file; the environment variable SOMA_GOLDEN_REFERENCE may name another one
// (e.g. a scratch copy with a perturbed value, to see the test fail).
const RefFile& reference() {
  static const RefFile file =
      golden::parse_reference(golden::reference_path("SOMA_GOLDEN_REFERENCE", "ops_reference.txt"),
                              {.roles = {"in", "out", "gout", "grad"}, .require_gout = true});
  return file;
}

std::string compare(const Case& c, const std::string& what, const Tensor& actual,
                    const RefTensor& expected) {
  return golden::compare(c, what, actual, expected, tolerance(c.op, c.dtype));
}

// ---- the tests ----------------------------------------------------------------------------
TEST(GoldenFile, LoadsCases) {
  const RefFile& file = reference();
  ASSERT_EQ(golden::file_problem(file), "");
  for (const Case& c : file.cases)
    EXPECT_TRUE(c.dtype == soma::kFloat32 || c.dtype == soma::kFloat64) << c.label();
}

// Every op in the file has a table entry and every table entry has a case, so the two cannot
// drift apart.
TEST(GoldenFile, OpTableMatchesFile) {
  const RefFile& file = reference();
  ASSERT_TRUE(file.error.empty()) << file.error;
  std::set<std::string> in_file;
  for (const Case& c : file.cases) in_file.insert(c.op);
  for (const std::string& op : in_file)
    EXPECT_TRUE(ops().count(op)) << "op '" << op << "' in " << file.path
                                 << " has no entry in ops()";
  for (const auto& [op, fn] : ops())
    EXPECT_TRUE(in_file.count(op)) << "op '" << op << "' in ops() has no case in " << file.path;
}

class GoldenTest : public ::testing::TestWithParam<size_t> {};

TEST_P(GoldenTest, MatchesTorch) {
  const Case& c = reference().cases.at(GetParam());
  const auto it = ops().find(c.op);
  ASSERT_NE(it, ops().end()) << c.label() << ": op '" << c.op << "' is not in the op table";

  std::vector<Tensor> inputs;
  for (const RefTensor& r : c.inputs) {
    Tensor t = make_tensor(r);
    if (soma::is_floating(r.dtype)) t.requires_grad_(true);
    inputs.push_back(t);
  }
  Tensor out;
  try {
    out = it->second(inputs);
  } catch (const std::exception& e) {
    FAIL() << c.label() << ": forward threw: " << e.what();
  }
  const std::string out_err = compare(c, "output", out, c.outs.at(0));
  EXPECT_TRUE(out_err.empty()) << out_err;
  if (!out.defined() || out.shape() != c.outs.at(0).shape) return;

  try {
    out.backward(make_tensor(c.gout));
  } catch (const std::exception& e) {
    FAIL() << c.label() << ": backward threw: " << e.what();
  }
  size_t floating = 0;
  for (const RefTensor& r : c.inputs) floating += soma::is_floating(r.dtype);
  EXPECT_EQ(c.grads.size(), floating) << c.label() << ": reference grads vs floating inputs";
  for (const RefTensor& g : c.grads) {
    ASSERT_LT(static_cast<size_t>(g.index), inputs.size()) << c.label();
    const std::string what =
        "grad of input " + std::to_string(g.index) + " " + soma::shape_str(c.inputs[g.index].shape);
    const std::string err = compare(c, what, inputs[g.index].grad(), g);
    EXPECT_TRUE(err.empty()) << err;
  }
  // float64: the second derivatives too (every op here has a double backward in torch).
  if (c.dtype != soma::kFloat64 || c.grads.empty()) return;
  std::vector<Tensor> fresh;
  for (const RefTensor& r : c.inputs) {
    Tensor t = make_tensor(r);
    if (soma::is_floating(r.dtype)) t.requires_grad_(true);
    fresh.push_back(t);
  }
  // Squared, so that the second derivative of an op linear in its input (add, reshape) flows
  // through its backward (a backward computed outside the graph fails).
  auto squared = [&](const std::vector<Tensor>& x) {
    Tensor y = it->second(x);
    return y * y;
  };
  try {
    soma::autograd::gradgradcheck(squared, fresh);
  } catch (const std::exception& e) {
    ADD_FAILURE() << c.label() << ": " << e.what();
  }
}

std::vector<size_t> case_indices() {
  std::vector<size_t> idx(reference().cases.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  return idx;
}

std::string case_test_name(const ::testing::TestParamInfo<size_t>& info) {
  const Case& c = reference().cases.at(info.param);
  return c.name + "_" + c.dtype_str();
}

// A missing or empty file gives no instances; GoldenFile.LoadsCases then fails.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenTest);
INSTANTIATE_TEST_SUITE_P(Torch, GoldenTest, ::testing::ValuesIn(case_indices()), case_test_name);

}  // namespace
