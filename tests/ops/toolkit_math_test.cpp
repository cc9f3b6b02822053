// toolkit: math. Goldens from tests/reference/toolkit_math.py (outputs, gradients, gradcheck and
// gradgradcheck per float64 case) plus behaviour the goldens can't show.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "toolkit_driver.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;
using toolkit::Op;

Tensor tr(const Tensor& x) {
  return soma::transpose(x, -1, -2);
}

const toolkit::Table& table() {
  static const toolkit::Table tab = [] {
    toolkit::Table m;
    auto u = [&m](const char* name, Tensor (*f)(const Tensor&)) {
      m[name] = Op{one([f](const Inputs& x) { return f(x[0]); })};
    };
    u("sin", soma::sin);
    m["sin_t"] = Op{one([](const Inputs& x) { return tr(x[0]).sin(); })};
    u("cos", soma::cos);
    u("tan", soma::tan);
    u("log1p", soma::log1p);
    u("expm1", soma::expm1);
    u("log2", soma::log2);
    u("log10", soma::log10);
    u("erf", soma::erf);
    u("reciprocal", soma::reciprocal);
    u("rsqrt", soma::rsqrt);
    u("square", soma::square);
    u("floor", soma::floor);
    u("ceil", soma::ceil);
    u("round", soma::round);
    m["round_ties"] = Op{one([](const Inputs& x) { return x[0].round(); }), true, false};
    m["isclose"] = Op{one([](const Inputs& x) { return soma::isclose(x[0], x[1]); }), true, false};
    m["isclose_nan"] =
        Op{one([](const Inputs& x) { return soma::isclose(x[0], x[1], 1e-5, 1e-8, true); }), true,
           false};
    u("sign", soma::sign);
    u("abs_int", soma::abs);
    m["atan2"] = Op{one([](const Inputs& x) { return soma::atan2(x[0], x[1]); })};
    m["atan2_t"] = Op{one([](const Inputs& x) { return tr(x[0]).atan2(x[1]); })};
    m["lerp_scalar_low"] = Op{one([](const Inputs& x) { return soma::lerp(x[0], x[1], 0.3); })};
    m["lerp_scalar_high"] = Op{one([](const Inputs& x) { return x[0].lerp(x[1], 0.7); })};
    m["lerp_tensor"] = Op{one([](const Inputs& x) { return soma::lerp(x[0], x[1], x[2]); })};
    m["matmul"] = Op{one([](const Inputs& x) { return soma::matmul(x[0], x[1]); })};
    m["matmul_t"] = Op{one([](const Inputs& x) { return tr(x[0]).matmul(x[1]); })};
    m["bmm"] = Op{one([](const Inputs& x) { return soma::bmm(x[0], x[1]); })};
    m["bmm_t"] = Op{one([](const Inputs& x) { return x[0].bmm(soma::transpose(x[1], 1, 2)); })};
    m["addmm"] = Op{one([](const Inputs& x) { return soma::addmm(x[0], x[1], x[2]); })};
    m["addmm_scaled"] = Op{one([](const Inputs& x) { return x[0].addmm(x[1], x[2], 0.5, 2.0); })};
    m["outer"] = Op{one([](const Inputs& x) { return soma::outer(x[0], x[1]); })};
    m["dot"] = Op{one([](const Inputs& x) { return x[0].dot(x[1]); })};
    auto e = [&m](const char* name, const char* eq) {
      m[name] = Op{one([eq](const Inputs& x) { return soma::einsum(eq, x); })};
    };
    e("einsum_mm", "ij,jk->ik");
    e("einsum_bmm", "bij,bjk->bik");
    e("einsum_trace", "ii");
    e("einsum_diag", "ii->i");
    e("einsum_diag3", "iji->ij");
    e("einsum_transpose", "ij->ji");
    e("einsum_sum", "ijk->j");
    e("einsum_ellipsis", "...ij,...jk->...ik");
    e("einsum_ellipsis_sum", "...ij->ij");
    e("einsum_implicit", "ij,jk");
    e("einsum_implicit_order", "ba,cb");
    e("einsum_outer", "i,j->ij");
    e("einsum_dot", "i,i->");
    e("einsum_three", "ij,jk,kl->il");
    e("einsum_three_shared", "bi,bj,bk->bijk");
    e("einsum_broadcast", "ij,ij->i");
    e("einsum_bilinear", "bn,anm,bm->ba");
    m["einsum_t"] = Op{one([](const Inputs& x) {
      return soma::einsum("ij,jk->ik", {tr(x[0]), x[1]});
    })};
    m["pow_scalar3"] = Op{one([](const Inputs& x) { return soma::pow(x[0], 3.0); })};
    m["pow_scalar_half"] = Op{one([](const Inputs& x) { return soma::pow(x[0], 0.5); })};
    m["pow_scalar2"] = Op{one([](const Inputs& x) { return soma::pow(x[0], 2.0); })};
    m["pow_scalar0"] = Op{one([](const Inputs& x) { return soma::pow(x[0], 0.0); })};
    m["pow_int"] = Op{one([](const Inputs& x) { return soma::pow(x[0], 3.0); })};
    m["pow_tensor"] = Op{one([](const Inputs& x) { return soma::pow(x[0], x[1]); })};
    m["div"] = Op{one([](const Inputs& x) { return x[0] / x[1]; })};
    m["div_scalar"] = Op{one([](const Inputs& x) { return soma::div(x[0], 2.5); })};
    m["rdiv"] = Op{one([](const Inputs& x) { return 2.0 / x[0]; })};
    m["sub"] = Op{one([](const Inputs& x) { return soma::sub(x[0], x[1], 2); })};
    u("sqrt", soma::sqrt);
    u("sqrt_int", soma::sqrt);
    u("exp", soma::exp);
    u("log", soma::log);
    u("abs", soma::abs);
    m["clamp"] = Op{one([](const Inputs& x) { return soma::clamp(x[0], -0.5, 0.7); })};
    m["maximum"] = Op{one([](const Inputs& x) { return soma::maximum(x[0], x[1]); })};
    m["minimum"] = Op{one([](const Inputs& x) { return soma::minimum(x[0], x[1]); })};
    m["where"] = Op{one([](const Inputs& x) { return soma::where(x[0], x[1], x[2]); })};
    m["remainder"] = Op{one([](const Inputs& x) { return soma::remainder(x[0], x[1]); })};
    m["fmod"] = Op{one([](const Inputs& x) { return soma::fmod(x[0], x[1]); })};
    m["mul_chain"] = Op{one([](const Inputs& x) { return x[0] * x[1] * x[0]; })};
    m["rsub"] = Op{one([](const Inputs& x) { return soma::rsub(x[0], 2.0, 3); })};
    u("neg", soma::neg);
    m["add_alpha"] = Op{one([](const Inputs& x) { return soma::add(x[0], x[1], -1.5); })};
    m["mul_scalar"] = Op{one([](const Inputs& x) { return x[0] * -2.5; })};
    m["remainder_scalar"] = Op{one([](const Inputs& x) { return soma::remainder(x[0], 0.7); })};
    // ties: the gradient is split half and half (not differentiable there: no gradcheck)
    m["maximum_ties"] =
        Op{one([](const Inputs& x) { return soma::maximum(x[0], x[1]); }), true, false};
    m["minimum_ties"] =
        Op{one([](const Inputs& x) { return soma::minimum(x[0], x[1]); }), true, false};
    e("einsum_ellipsis_mid", "i...j->ji...");
    m["addmm_beta0"] = Op{one([](const Inputs& x) { return soma::addmm(x[0], x[1], x[2], 0.0); })};
    return m;
  }();
  return tab;
}

}  // namespace

SOMA_TOOLKIT_SUITE(Math, "toolkit_math_reference.txt", table);

namespace {

Tensor leaf(const soma::Shape& s, uint64_t seed = 1) {
  soma::manual_seed(seed);
  return soma::randn(s, soma::kFloat64).requires_grad_(true);
}

TEST(ToolkitMathBehaviour, ErrorsNameTheOp) {
  const Tensor a = soma::randn({2, 3}), b = soma::randn({4, 2});
  try {
    soma::matmul(a, b);
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos) << e.what();
  }
  try {
    soma::einsum("ij,jk->ik", {a});
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("einsum"), std::string::npos) << e.what();
  }
  EXPECT_THROW(soma::einsum("ij->iij", {a}), soma::Error);
  EXPECT_THROW(soma::einsum("i.j", {a}), soma::Error);
  EXPECT_THROW(soma::einsum("ij,jk", {a, soma::randn({3, 2}, soma::kFloat64)}), soma::Error);
  EXPECT_THROW(soma::matmul(a, soma::randn({3, 2}, soma::kFloat64)), soma::Error);
  EXPECT_THROW(soma::lerp(a, soma::randn({2, 3}, soma::kFloat64), 0.5), soma::Error);
}

TEST(ToolkitMathBehaviour, AddmmBetaZeroIgnoresInput) {
  const Tensor input = soma::full({2, 2}, std::numeric_limits<double>::quiet_NaN(), soma::kFloat64);
  const Tensor r = soma::addmm(input, soma::ones({2, 3}, soma::kFloat64),
                               soma::ones({3, 2}, soma::kFloat64), 0, 1);
  for (double v : r.to_vector<double>()) EXPECT_EQ(v, 3.0);
}

TEST(ToolkitMathBehaviour, IntegerDtypes) {
  const Tensor i = soma::arange(4);
  EXPECT_EQ(soma::floor(i).dtype(), soma::kInt64);
  EXPECT_EQ(soma::round(i).dtype(), soma::kInt64);
  EXPECT_EQ(soma::sign(i).dtype(), soma::kInt64);
  EXPECT_EQ(soma::square(i).dtype(), soma::kInt64);
  EXPECT_EQ(soma::abs(i).dtype(), soma::kInt64);
  EXPECT_EQ(soma::sin(i).dtype(), soma::kFloat32);
  EXPECT_EQ(soma::sqrt(i).dtype(), soma::kFloat32);
  EXPECT_EQ(soma::pow(i, 2.0).dtype(), soma::kInt64);
  EXPECT_EQ(soma::pow(i, 0.5).dtype(), soma::kFloat32);
  EXPECT_EQ(soma::matmul(i, i).item<int64_t>(), 14);
}

// Second derivatives of the converted elementwise ops and of matmul through create_graph.
TEST(ToolkitMathBehaviour, GradGradCheckOlderOps) {
  using soma::autograd::gradgradcheck;
  using F = std::function<Tensor(const std::vector<Tensor>&)>;
  const Tensor x = leaf({2, 3}, 1), y = leaf({2, 3}, 2);
  const Tensor p = (soma::rand({2, 3}, soma::kFloat64) + 0.5).detach().requires_grad_(true);
  const std::vector<std::pair<const char*, F>> fns = {
      {"pow", F([](const Inputs& v) { return soma::pow(v[2], 2.5) + soma::pow(v[2], v[0]); })},
      {"div", F([](const Inputs& v) { return v[0] / v[2] + 1.5 / v[2]; })},
      {"sqrt", F([](const Inputs& v) { return soma::sqrt(v[2]) * v[0]; })},
      {"abs", F([](const Inputs& v) { return soma::abs(v[0]) * v[1]; })},
      {"clamp", F([](const Inputs& v) { return soma::clamp(v[0], -0.3, 0.4) * v[0]; })},
      {"maximum", F([](const Inputs& v) { return soma::maximum(v[0], v[1]) * v[1]; })},
      {"where",
       F([](const Inputs& v) { return soma::where(soma::gt(v[0], 0), v[0] * v[1], v[1]); })},
      {"matmul", F([](const Inputs& v) { return soma::matmul(v[0], tr(v[1] * v[0])); })},
      {"einsum", F([](const Inputs& v) {
         return soma::einsum("ij,kj->ik", {v[0], v[1] * v[2]});
       })},
  };
  for (const auto& [name, f] : fns) {
    EXPECT_NO_THROW(gradgradcheck(f, {x, y, p})) << name;
  }
}

}  // namespace
