// Type promotion, rounding division, remainder/fmod and the in-place cast rule against PyTorch.
//
// tests/reference/make_reference.py (promotion section) runs every binary op in PyTorch for
// every pair of soma's dtypes (bool, uint8, int64, float32, float64) as tensor-tensor,
// tensor-0d, 0d-tensor, tensor-number and number-tensor, plus every sign combination of the
// rounding ops, and writes tests/reference/promotion_reference.txt: the operands, torch's
// result (its dtype and values) or the fact that torch raised, and the gradients, each in its
// input's dtype. Here each case runs the same call in soma through kOps and checks the result
// dtype and values exactly (NaN matches NaN), that soma throws soma::Error where torch raised,
// and the gradients. One test instance per op: Torch/PromotionTest.MatchesTorch/<op>.
//
// The file also has cases with int8, int32, bfloat16 and float16 (a subset of the ops, for every
// pair with the other dtypes, without gradients: soma's autograd is float32/float64 only, so no
// operand of those cases requires grad here either), and torch.promote_types for every pair of
// the nine dtypes ("promote" lines), checked against soma::promote_types except for the
// documented exceptions in kPromoteExceptions.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

using golden::Case;
using golden::RefFile;
using golden::RefTensor;
using soma::Scalar;
using soma::Tensor;

// An operand: a tensor, or a number (a "scalar" line).
struct Operand {
  bool is_scalar = false;
  Tensor t;
  Scalar s;
};
using Operands = std::vector<Operand>;

struct OpEntry {
  std::function<Tensor(Operands&)> fn;
  const char* name;  // what soma's error message must name
};

// A tensor-tensor and a tensor-number form of one op.
template <typename TT, typename TS>
std::function<Tensor(Operands&)> binary(TT tt, TS ts) {
  return [tt, ts](Operands& x) -> Tensor {
    if (x[1].is_scalar) return ts(x[0].t, x[1].s);
    return tt(x[0].t, x[1].t);
  };
}

// An in-place op: modifies input 0 (a fresh tensor) and returns it.
template <typename TT, typename TS>
std::function<Tensor(Operands&)> inplace(TT tt, TS ts) {
  return [tt, ts](Operands& x) -> Tensor {
    Tensor self = x[0].t;
    if (x[1].is_scalar)
      ts(self, x[1].s);
    else
      tt(self, x[1].t);
    return self;
  };
}

// A number on the left of a tensor (Python's reflected operators).
template <typename F>
std::function<Tensor(Operands&)> reflected(F f) {
  return [f](Operands& x) -> Tensor { return f(x[0].s, x[1].t); };
}

// ---- the ops (names mirror PROMO_OPS / PROMO_REFLECTED in make_reference.py) -----------------
const std::map<std::string, OpEntry>& ops() {
  using T = const Tensor&;
  using S = const Scalar&;
  static const std::map<std::string, OpEntry> table = {
      {"add", {binary([](T a, T b) { return a + b; }, [](T a, S s) { return a + s; }), "add"}},
      {"add_alpha_2",
       {binary([](T a, T b) { return soma::add(a, b, 2); },
               [](T a, S s) { return soma::add(a, s, 2); }),
        "add"}},
      {"add_alpha_0p5",
       {binary([](T a, T b) { return soma::add(a, b, 0.5); },
               [](T a, S s) { return soma::add(a, s, 0.5); }),
        "add"}},
      {"sub", {binary([](T a, T b) { return a - b; }, [](T a, S s) { return a - s; }), "sub"}},
      {"mul", {binary([](T a, T b) { return a * b; }, [](T a, S s) { return a * s; }), "mul"}},
      {"div", {binary([](T a, T b) { return a / b; }, [](T a, S s) { return a / s; }), "div"}},
      {"div_trunc",
       {binary([](T a, T b) { return soma::div(a, b, "trunc"); },
               [](T a, S s) { return soma::div(a, s, "trunc"); }),
        "div"}},
      {"div_floor",
       {binary([](T a, T b) { return a.div(b, "floor"); },
               [](T a, S s) { return a.div(s, "floor"); }),
        "div"}},
      {"floor_divide",
       {binary([](T a, T b) { return soma::floor_divide(a, b); },
               [](T a, S s) { return soma::floor_divide(a, s); }),
        "floor_divide"}},
      {"remainder",
       {binary([](T a, T b) { return soma::remainder(a, b); },
               [](T a, S s) { return a.remainder(s); }),
        "remainder"}},
      {"fmod",
       {binary([](T a, T b) { return a.fmod(b); }, [](T a, S s) { return soma::fmod(a, s); }),
        "fmod"}},
      {"eq",
       {binary([](T a, T b) { return soma::eq(a, b); }, [](T a, S s) { return a.eq(s); }), "eq"}},
      {"ne",
       {binary([](T a, T b) { return a.ne(b); }, [](T a, S s) { return soma::ne(a, s); }), "ne"}},
      {"lt",
       {binary([](T a, T b) { return soma::lt(a, b); }, [](T a, S s) { return a.lt(s); }), "lt"}},
      {"le",
       {binary([](T a, T b) { return a.le(b); }, [](T a, S s) { return soma::le(a, s); }), "le"}},
      {"gt",
       {binary([](T a, T b) { return soma::gt(a, b); }, [](T a, S s) { return a.gt(s); }), "gt"}},
      {"ge",
       {binary([](T a, T b) { return a.ge(b); }, [](T a, S s) { return soma::ge(a, s); }), "ge"}},
      {"maximum", {[](Operands& x) { return soma::maximum(x[0].t, x[1].t); }, "maximum"}},
      {"minimum", {[](Operands& x) { return soma::minimum(x[0].t, x[1].t); }, "minimum"}},
      {"where", {[](Operands& x) { return soma::where(x[0].t, x[1].t, x[2].t); }, "where"}},
      {"add_",
       {inplace([](Tensor& a, T b) { a.add_(b); }, [](Tensor& a, S s) { a += s; }), "add_"}},
      {"sub_",
       {inplace([](Tensor& a, T b) { a -= b; }, [](Tensor& a, S s) { a.sub_(s); }), "sub_"}},
      {"mul_",
       {inplace([](Tensor& a, T b) { a.mul_(b); }, [](Tensor& a, S s) { a *= s; }), "mul_"}},
      {"div_",
       {inplace([](Tensor& a, T b) { a /= b; }, [](Tensor& a, S s) { a.div_(s); }), "div_"}},
      {"div_floor_",
       {inplace([](Tensor& a, T b) { a.div_(b, "floor"); },
                [](Tensor& a, S s) { a.div_(s, "floor"); }),
        "div_"}},
      {"remainder_",
       {inplace([](Tensor& a, T b) { a.remainder_(b); }, [](Tensor& a, S s) { a.remainder_(s); }),
        "remainder_"}},
      {"radd", {reflected([](S s, T a) { return s + a; }), "add"}},
      {"rsub", {reflected([](S s, T a) { return s - a; }), "rsub"}},
      {"rmul", {reflected([](S s, T a) { return s * a; }), "mul"}},
      {"rdiv", {reflected([](S s, T a) { return s / a; }), "rdiv"}},
  };
  return table;
}

// ---- the reference file ----------------------------------------------------------------------
// The checked-in file; SOMA_PROMOTION_REFERENCE may name another (e.g. a perturbed copy).
const RefFile& reference() {
  static const RefFile file = golden::parse_reference(
      golden::reference_path("SOMA_PROMOTION_REFERENCE", "promotion_reference.txt"),
      {.roles = {"in", "scalar", "out", "gout", "grad", "error", "backward_error", "promote"},
       .require_gout = false});
  return file;
}

Scalar make_scalar(const RefTensor& r) {
  switch (r.dtype) {
    case soma::kFloat64:
      return Scalar(r.values.at(0));
    case soma::kBool:
      return Scalar(r.values.at(0) != 0);
    default:
      return Scalar(static_cast<int64_t>(r.values.at(0)));
  }
}

// "" when `actual` has the reference's dtype and shape and the same values: exactly for the
// result (tol {0, 0}), within |got - torch| <= atol + rtol |torch| for gradients; NaN matches
// NaN. float32, bfloat16 and float16 values are compared as floats (the file holds them to 9
// digits, which round-trip through float, not through double).
std::string mismatch(const Tensor& actual, const RefTensor& expected, golden::Tolerance tol) {
  std::ostringstream msg;
  msg.precision(17);
  if (!actual.defined()) return "undefined tensor";
  if (actual.dtype() != expected.dtype || actual.shape() != expected.shape) {
    msg << "got dtype " << actual.dtype() << " shape " << soma::shape_str(actual.shape())
        << ", torch " << soma::dtype_name(expected.dtype) << " " << soma::shape_str(expected.shape);
    return msg.str();
  }
  const std::vector<double> got = actual.to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) {
    // bfloat16/float16 values are floats in the file too (%.9g)
    const double e = expected.dtype == soma::kFloat32 || soma::is_reduced_floating(expected.dtype)
                         ? static_cast<double>(static_cast<float>(expected.values[i]))
                         : expected.values[i];
    const bool ok = (std::isnan(e) && std::isnan(got[i])) || got[i] == e ||
                    std::abs(got[i] - e) <= tol.atol + tol.rtol * std::abs(e);
    if (!ok) {
      msg << "element " << i << ": got " << got[i] << ", torch " << e;
      return msg.str();
    }
  }
  return "";
}

// Gradients of a broadcast operand are sums, whose float32 rounding depends on the summation
// order (torch's and soma's differ): float32 anywhere in the case gets float32 tolerances.
golden::Tolerance grad_tolerance(const Case& c) {
  bool single = c.dtype == soma::kFloat32;
  for (const RefTensor& r : c.inputs) single |= !r.is_scalar && r.dtype == soma::kFloat32;
  if (single) return {1e-5, 1e-5};
  return {1e-12, 1e-12};
}

std::string operands_str(const Case& c) {
  std::ostringstream os;
  for (const RefTensor& r : c.inputs)
    os << (r.is_scalar ? " number(" : " tensor(") << soma::dtype_name(r.dtype)
       << (r.is_scalar ? "" : " " + soma::shape_str(r.shape)) << ")";
  return os.str();
}

// Runs one case; returns "" or what went wrong.
std::string run_case(const Case& c, const OpEntry& op) {
  const bool in_place = c.op.back() == '_';
  // a case with one of the newer dtypes has no gradients (see the top of the file)
  bool lowp = false;
  for (const RefTensor& r : c.inputs)
    lowp |= r.dtype == soma::kInt8 || r.dtype == soma::kInt32 || soma::is_reduced_floating(r.dtype);
  Operands x;
  for (const RefTensor& r : c.inputs) {
    Operand o;
    o.is_scalar = r.is_scalar;
    if (r.is_scalar) {
      o.s = make_scalar(r);
    } else {
      o.t = golden::make_tensor(r);
      if (soma::supports_autograd(r.dtype) && !in_place && !lowp) o.t.requires_grad_(true);
    }
    x.push_back(o);
  }
  const std::string where = c.name + " (" + c.op + operands_str(c) + "): ";
  Tensor out;
  try {
    out = op.fn(x);
  } catch (const soma::Error& e) {
    if (c.error.empty()) return where + "soma threw \"" + e.what() + "\", torch returned a result";
    if (std::string(e.what()).find(op.name) != 0)
      return where + "the message \"" + e.what() + "\" does not start with \"" + op.name + "\"";
    return "";
  } catch (const std::exception& e) {
    return where + "threw a non-soma exception: " + e.what();
  }
  if (!c.error.empty())
    return where + "torch raised \"" + c.error + "\", soma returned dtype " +
           std::string(soma::dtype_name(out.dtype()));
  if (std::string m = mismatch(out, c.outs.at(0), {0.0, 0.0}); !m.empty())
    return where + "result " + m;
  if (!c.has_gout) {
    if (!in_place && out.requires_grad()) return where + "soma's result requires grad, torch's not";
    return "";
  }
  if (!out.requires_grad()) return where + "torch's result requires grad, soma's not";
  try {
    (out * golden::make_tensor(c.gout)).sum().backward();
  } catch (const soma::Error& e) {
    if (c.backward_error.empty()) return where + "backward threw \"" + e.what() + "\"";
    return "";
  }
  if (!c.backward_error.empty())
    return where + "torch's backward raised \"" + c.backward_error + "\", soma's did not";
  size_t floating = 0;
  for (const Operand& o : x) floating += !o.is_scalar && o.t.requires_grad();
  if (c.grads.size() != floating) return where + "reference grads vs floating inputs differ";
  for (const RefTensor& g : c.grads) {
    const Tensor& input = x.at(g.index).t;
    if (std::string m = mismatch(input.grad(), g, grad_tolerance(c)); !m.empty())
      return where + "grad of input " + std::to_string(g.index) + ": " + m;
  }
  return "";
}

// ---- the tests ------------------------------------------------------------------------------
// Where soma::promote_types differs from torch.promote_types, and why: {a, b, torch, soma}.
struct PromoteException {
  const char *a, *b, *torch, *soma;
};
constexpr PromoteException kPromoteExceptions[] = {
    // torch promotes uint8 with int8 to int16, a dtype soma lacks; int32 is the narrowest soma
    // dtype that holds both ranges (values are the same, the result dtype and its overflow
    // point differ). Documented in include/soma/core/dtype.h and docs/arithmetic.md.
    {"uint8", "int8", "int16", "int32"},
    {"int8", "uint8", "int16", "int32"},
};

TEST(PromotionFile, PromoteTypesMatchesTorch) {
  ASSERT_EQ(golden::file_problem(reference()), "");
  const auto& table = reference().promotions;
  ASSERT_EQ(table.size(), std::size(soma::kAllDTypes) * std::size(soma::kAllDTypes));
  size_t exceptions_seen = 0;
  for (const auto& p : table) {
    soma::DType a, b, want;
    ASSERT_TRUE(golden::parse_dtype(p[0], &a) && golden::parse_dtype(p[1], &b)) << p[0] << p[1];
    const std::string got(soma::dtype_name(soma::promote_types(a, b)));
    const PromoteException* ex = nullptr;
    for (const PromoteException& e : kPromoteExceptions)
      if (p[0] == e.a && p[1] == e.b) ex = &e;
    if (ex) {
      ++exceptions_seen;
      EXPECT_EQ(p[2], ex->torch) << "the exception list is out of date for " << p[0] << ", "
                                 << p[1];
      EXPECT_EQ(got, ex->soma) << p[0] << ", " << p[1];
      continue;
    }
    ASSERT_TRUE(golden::parse_dtype(p[2], &want))
        << "torch gives " << p[2] << " for " << p[0] << ", " << p[1] << ": not a soma dtype";
    EXPECT_EQ(got, p[2]) << "promote_types(" << p[0] << ", " << p[1] << ")";
  }
  EXPECT_EQ(exceptions_seen, std::size(kPromoteExceptions));
}

TEST(PromotionFile, LoadsCases) {
  ASSERT_EQ(golden::file_problem(reference()), "");
  size_t errors = 0, scalars = 0, uint8 = 0;
  for (const Case& c : reference().cases) {
    errors += !c.error.empty();
    for (const RefTensor& r : c.inputs) {
      scalars += r.is_scalar;
      uint8 += r.dtype == soma::kUInt8;
    }
  }
  // The file exercises what it claims to: raised cases, numbers and uint8 operands.
  EXPECT_GT(errors, 100u);
  EXPECT_GT(scalars, 300u);
  EXPECT_GT(uint8, 300u);
}

// Every op in the file has a table entry and every entry has cases.
TEST(PromotionFile, OpTableMatchesFile) {
  ASSERT_TRUE(reference().error.empty()) << reference().error;
  std::set<std::string> in_file;
  for (const Case& c : reference().cases) in_file.insert(c.op);
  for (const std::string& op : in_file) EXPECT_TRUE(ops().count(op)) << "no entry for " << op;
  for (const auto& [op, entry] : ops()) EXPECT_TRUE(in_file.count(op)) << "no cases for " << op;
}

class PromotionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PromotionTest, MatchesTorch) {
  const std::string& op = GetParam();
  const auto it = ops().find(op);
  ASSERT_NE(it, ops().end()) << op;
  int checked = 0, failed = 0;
  for (const Case& c : reference().cases) {
    if (c.op != op) continue;
    ++checked;
    const std::string problem = run_case(c, it->second);
    if (!problem.empty() && ++failed <= 20) ADD_FAILURE() << problem;
  }
  EXPECT_EQ(failed, 0) << failed << " of " << checked << " cases of " << op << " differ";
  EXPECT_GT(checked, 0);
}

std::vector<std::string> op_names() {
  std::set<std::string> names;
  for (const Case& c : reference().cases) names.insert(c.op);
  return {names.begin(), names.end()};
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PromotionTest);
INSTANTIATE_TEST_SUITE_P(Torch, PromotionTest, ::testing::ValuesIn(op_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
