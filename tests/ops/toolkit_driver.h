// The test driver for the tensor toolkit's op tables (tests/ops/toolkit_*_test.cpp).
//
// tests/reference/make_toolkit_reference.py runs each area's ops
// (tests/reference/toolkit_<area>.py) in PyTorch and writes
// tests/reference/toolkit_<area>_reference.txt: per case the inputs, every output ("out k"), an
// upstream gradient for every floating output ("gout k") and torch's gradients d sum_k sum(out_k *
// gout_k) / d input; or "error <torch's message>" when torch refuses the inputs. For every case the
// driver checks, in soma:
//   - an error case throws soma::Error;
//   - each output's dtype, shape and values (integer outputs exactly);
//   - each floating input's gradient after backward of sum_k sum(out_k * gout_k);
//   - float64 cases: gradcheck of the op's floating outputs (flattened and concatenated) against
//     central differences, and gradgradcheck (second derivatives through create_graph) unless the
//     op's entry says torch has no double backward for it.
// Each area test file defines its table (op name -> Op) and instantiates the suite with
// SOMA_TOOLKIT_SUITE(Area, "toolkit_<area>_reference.txt", table_function). A table entry
// without a case, or a case without a table entry, fails the suite's OpTableMatchesFile test.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reference/reference_file.h"
#include "soma/autograd/gradcheck.h"
#include "soma/soma.h"

namespace toolkit {

using soma::Tensor;
using Inputs = std::vector<Tensor>;
using Outputs = std::vector<Tensor>;

struct Op {
  std::function<Outputs(const Inputs&)> fn;
  bool double_backward = true;  // false: torch has no double backward (gradgradcheck skipped)
  bool differentiable = true;   // false: no gradcheck (outputs are integer/bool or piecewise)
};

// A one-output op: Op{one([](const Inputs& x) { return soma::flip(x[0], {0}); })}.
template <typename F>
std::function<Outputs(const Inputs&)> one(F f) {
  return [f](const Inputs& x) { return Outputs{f(x)}; };
}
// A two-output op returning std::tuple<Tensor, Tensor> (topk, sort, max over a dim).
template <typename F>
std::function<Outputs(const Inputs&)> two(F f) {
  return [f](const Inputs& x) {
    auto [a, b] = f(x);
    return Outputs{a, b};
  };
}

using Table = std::map<std::string, Op>;

// The message of the soma::Error that f() throws, or "no error".
template <typename F>
std::string error_message(F f) {
  try {
    f();
  } catch (const soma::Error& e) {
    return e.what();
  }
  return "no error";
}

inline golden::Tolerance tolerance(soma::DType dtype) {
  if (dtype == soma::kFloat32) return {1e-5, 1e-6};
  return {1e-12, 1e-12};
}

// A float32 gradient's tolerance: its absolute part grows with the tensor's largest value. A
// gradient entry can be a small difference of terms as large as that value (BatchNorm's
// g - mean(g) - x̂ mean(g x̂)), so its float32 rounding error is a few ulp of that scale, not
// of the entry: the summation order (vector width, compiler, -O level) decides the last bits,
// and torch's order is not ours.
inline golden::Tolerance grad_tolerance(soma::DType dtype, const golden::RefTensor& expected) {
  golden::Tolerance tol = tolerance(dtype);
  if (dtype != soma::kFloat32) return tol;
  double scale = 0;
  for (double v : expected.values) scale = std::max(scale, std::abs(v));
  tol.atol = std::max(tol.atol, 1e-5 * scale);
  return tol;
}

inline Inputs make_inputs(const golden::Case& c) {
  Inputs inputs;
  for (const golden::RefTensor& r : c.inputs) {
    Tensor t = golden::make_tensor(r);
    if (soma::is_floating(r.dtype)) t.requires_grad_(true);
    inputs.push_back(t);
  }
  return inputs;
}

// sum_k sum(out_k * gout_k) over the outputs that have a gout line.
inline Tensor projected(const Outputs& outs, const std::vector<golden::RefTensor>& gouts) {
  Tensor loss;
  for (const golden::RefTensor& g : gouts) {
    const Tensor& o = outs.at(static_cast<size_t>(g.index));
    if (!o.requires_grad()) continue;
    Tensor term = (o * golden::make_tensor(g)).sum();
    loss = loss.defined() ? loss + term : term;
  }
  return loss;
}

// The floating outputs that require grad, flattened and concatenated (for gradcheck).
inline Tensor flat_outputs(const Outputs& outs) {
  std::vector<Tensor> parts;
  for (const Tensor& o : outs)
    if (o.defined() && soma::is_floating(o.dtype())) parts.push_back(soma::reshape(o, {-1}));
  if (parts.empty()) return Tensor();
  return parts.size() == 1 ? parts[0] : soma::cat(parts, 0);
}

inline void check_case(const golden::Case& c, const Op& op) {
  Inputs inputs = make_inputs(c);
  if (!c.error.empty()) {
    EXPECT_THROW(op.fn(inputs), soma::Error) << c.label() << ": torch raised: " << c.error;
    return;
  }
  Outputs outs;
  try {
    outs = op.fn(inputs);
  } catch (const std::exception& e) {
    FAIL() << c.label() << ": forward threw: " << e.what();
  }
  ASSERT_EQ(outs.size(), c.outs.size()) << c.label() << ": number of outputs";
  for (size_t k = 0; k < outs.size(); ++k) {
    // the output's own dtype: an int64 case (written as float64) may give a float32 result
    const std::string err = golden::compare(c, "output " + std::to_string(k), outs[k], c.outs[k],
                                            tolerance(c.outs[k].dtype));
    EXPECT_TRUE(err.empty()) << err;
    if (!err.empty()) return;
  }
  if (!c.grads.empty()) {
    Tensor loss = projected(outs, c.gouts);
    ASSERT_TRUE(loss.defined()) << c.label() << ": torch has gradients, soma's outputs need none";
    try {
      loss.backward();
    } catch (const std::exception& e) {
      FAIL() << c.label() << ": backward threw: " << e.what();
    }
    for (const golden::RefTensor& g : c.grads) {
      const std::string what = "grad of input " + std::to_string(g.index);
      const std::string err =
          golden::compare(c, what, inputs.at(g.index).grad(), g, grad_tolerance(c.dtype, g));
      EXPECT_TRUE(err.empty()) << err;
    }
  }
  // float64: finite differences of the first and the second derivatives.
  if (c.dtype != soma::kFloat64 || !op.differentiable || c.grads.empty()) return;
  Inputs fresh = make_inputs(c);
  int64_t n = 0;
  for (const Tensor& t : fresh)
    if (t.requires_grad()) n += t.numel();
  if (n == 0) return;
  auto f = [&op](const Inputs& x) { return flat_outputs(op.fn(x)); };
  try {
    soma::autograd::gradcheck(f, fresh);
  } catch (const std::exception& e) {
    ADD_FAILURE() << c.label() << ": " << e.what();
  }
  if (!op.double_backward) return;
  // On the squared outputs: for an op linear in its input the second derivative is zero, and a
  // backward computed outside the graph would pass a plain gradgradcheck; squaring makes the
  // second derivative flow through the op's backward.
  auto f2 = [&op](const Inputs& x) {
    Tensor y = flat_outputs(op.fn(x));
    return y * y;
  };
  try {
    soma::autograd::gradgradcheck(f2, fresh);
  } catch (const std::exception& e) {
    ADD_FAILURE() << c.label() << ": " << e.what();
  }
}

// The parsed reference file, once per process. SOMA_TOOLKIT_REFERENCE_DIR may name another
// directory holding the file (a scratch copy with a perturbed value, to see the suite fail).
inline const golden::RefFile& load(const std::string& file) {
  static std::map<std::string, golden::RefFile> files;
  auto it = files.find(file);
  if (it == files.end()) {
    const char* dir = std::getenv("SOMA_TOOLKIT_REFERENCE_DIR");
    const std::string path =
        dir ? std::string(dir) + "/" + file : golden::reference_path("SOMA_TOOLKIT_UNUSED", file);
    golden::ParseRules rules{
        .roles = {"in", "out", "gout", "grad", "error"}, .require_gout = false, .multi_gout = true};
    it = files.emplace(file, golden::parse_reference(path, rules)).first;
  }
  return it->second;
}

inline std::vector<size_t> indices(const golden::RefFile& f) {
  std::vector<size_t> idx(f.cases.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  return idx;
}

inline void check_table(const golden::RefFile& file, const Table& table) {
  ASSERT_EQ(golden::file_problem(file), "");
  std::set<std::string> in_file;
  for (const golden::Case& c : file.cases) in_file.insert(c.op);
  for (const std::string& op : in_file)
    EXPECT_TRUE(table.count(op)) << "op '" << op << "' in " << file.path << " has no table entry";
  for (const auto& [op, entry] : table)
    EXPECT_TRUE(in_file.count(op)) << "op '" << op << "' has no case in " << file.path;
}

}  // namespace toolkit

// Instantiates Torch<Area>/Toolkit<Area>.MatchesTorch/<case>_<dtype> and
// Toolkit<Area>File.OpTableMatchesFile for the table returned by table_fn().
#define SOMA_TOOLKIT_SUITE(Area, file_name, table_fn)                                        \
  TEST(Toolkit##Area##File, OpTableMatchesFile) {                                            \
    toolkit::check_table(toolkit::load(file_name), table_fn());                              \
  }                                                                                          \
  class Toolkit##Area : public ::testing::TestWithParam<size_t> {};                          \
  TEST_P(Toolkit##Area, MatchesTorch) {                                                      \
    const golden::Case& c = toolkit::load(file_name).cases.at(GetParam());                   \
    const auto it = table_fn().find(c.op);                                                   \
    ASSERT_NE(it, table_fn().end()) << c.label() << ": op not in the table";                 \
    toolkit::check_case(c, it->second);                                                      \
  }                                                                                          \
  GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Toolkit##Area);                              \
  INSTANTIATE_TEST_SUITE_P(                                                                  \
      Torch, Toolkit##Area, ::testing::ValuesIn(toolkit::indices(toolkit::load(file_name))), \
      [](const ::testing::TestParamInfo<size_t>& info) {                                     \
        const golden::Case& c = toolkit::load(file_name).cases.at(info.param);               \
        return c.name + "_" + c.dtype_str();                                                 \
      })
