// Arithmetic like PyTorch beyond the golden file (tests/ops/promotion_test.cpp): the regressions
// of issue 15 ("Trust"), each of which the old code got wrong, integer division by zero and
// INT64_MIN / -1, gradients in each input's own dtype, and the aliasing rules of in-place ops
// (partial overlap, internal overlap, exact aliases, disjoint views).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

using soma::Tensor;

Tensor i64(const std::vector<int64_t>& v, const soma::Shape& shape = {-1}) {
  return soma::tensor(v, shape);
}

// Asserts that fn() throws soma::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const soma::Error& e) {
    const std::string what = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "\"" << what << "\" lacks \"" << p << "\"";
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected soma::Error, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected soma::Error containing \"" << parts.at(0) << "\", nothing thrown";
}

// ---- promotion regressions -----------------------------------------------------------------

// Old: the scalar was truncated to the tensor's dtype, so 0.5 became 0 and [0, 1] < 0 gave
// [false, false]. Now the comparison runs in float32.
TEST(ArithRegression, ComparisonWithAFractionalScalarPromotes) {
  const Tensor m = soma::lt(i64({0, 1}), 0.5);
  EXPECT_EQ(m.dtype(), soma::kBool);
  EXPECT_EQ(m.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(soma::ge(i64({0, 1}), 0.5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(i64({2}).eq(2.5).item<bool>(), false);  // old: 2.5 -> 2, so true
}

// Old: int64.mul_(0.5) multiplied by static_cast<int64_t>(0.5) == 0 and silently gave zeros.
TEST(ArithRegression, InPlaceResultThatCannotBeCastThrows) {
  Tensor x = i64({1, 2, 3});
  expect_error([&] { x.mul_(0.5); }, {"mul_", "float32", "int64"});
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));  // untouched
  expect_error([&] { x.div_(2); }, {"div_", "float32", "int64"});      // true division
  expect_error([&] { x.add_(soma::ones({3})); }, {"add_", "float32", "int64"});
  Tensor mask = soma::ones({2}, soma::kBool);
  expect_error([&] { mask.add_(1); }, {"add_", "int64", "bool"});
  // What may be cast stays legal: float32 += float64, int64 //= 2, int64 *= 2.
  Tensor f = soma::ones({2});
  f.add_(soma::full({2}, 0.25, soma::kFloat64));
  EXPECT_EQ(f.dtype(), soma::kFloat32);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.25f, 1.25f}));
  x.mul_(2).div_(3, "floor");
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
}

// Old: "add: dtypes int64 and float32 differ".
TEST(ArithRegression, MixedDtypesPromoteInsteadOfThrowing) {
  const Tensor y = soma::add(i64({1, 2}), soma::tensor({0.5f, 1.5f}));
  EXPECT_EQ(y.dtype(), soma::kFloat32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1.5f, 3.5f}));
  EXPECT_EQ((soma::ones({2}) + soma::ones({2}, soma::kFloat64)).dtype(), soma::kFloat64);
  EXPECT_EQ((soma::ones({2}) + soma::ones({}, soma::kFloat64)).dtype(), soma::kFloat32);
  EXPECT_EQ((i64({1}) * 2).dtype(), soma::kInt64);
  EXPECT_EQ((i64({1}) * 2.0).dtype(), soma::kFloat32);
  EXPECT_EQ((soma::ones({1}, soma::kBool) + 1).dtype(), soma::kInt64);
  EXPECT_EQ((soma::ones({1}, soma::kUInt8) + int64_t{300}).dtype(), soma::kUInt8);
  EXPECT_EQ(soma::result_type(i64({1}), soma::ones({}, soma::kFloat64)), soma::kFloat64);
  EXPECT_EQ(soma::promote_types(soma::kUInt8, soma::kBool), soma::kUInt8);
  EXPECT_FALSE(soma::can_cast(soma::kFloat32, soma::kInt64));
  EXPECT_TRUE(soma::can_cast(soma::kInt64, soma::kFloat32));
}

// Old: integer division truncated ([3, -3]); now / is true division and the rounding modes are
// explicit.
TEST(ArithRegression, IntegerDivisionIsTrueDivision) {
  const Tensor a = i64({7, -7}), b = i64({2, 2});
  EXPECT_EQ((a / b).dtype(), soma::kFloat32);
  EXPECT_EQ((a / b).to_vector<float>(), (std::vector<float>{3.5f, -3.5f}));
  EXPECT_EQ(soma::div(a, b, "trunc").to_vector<int64_t>(), (std::vector<int64_t>{3, -3}));
  EXPECT_EQ(soma::div(a, b, "floor").to_vector<int64_t>(), (std::vector<int64_t>{3, -4}));
  EXPECT_EQ(soma::floor_divide(a, b).dtype(), soma::kInt64);
  expect_error([&] { soma::div(a, b, "round"); }, {"div", "rounding_mode", "round"});
}

// ---- integer division by zero and INT64_MIN / -1 (old: SIGFPE killed the process) ------------
TEST(ArithDivision, IntegerDivisionByZeroThrows) {
  const Tensor a = i64({7, 1}), zero = i64({0, 1});
  expect_error([&] { soma::div(a, zero, "trunc"); }, {"div", "division by zero", "trunc"});
  expect_error([&] { soma::div(a, zero, "floor"); }, {"div", "division by zero", "floor"});
  expect_error([&] { soma::floor_divide(a, zero); }, {"floor_divide", "division by zero"});
  expect_error([&] { soma::remainder(a, zero); }, {"remainder", "division by zero"});
  expect_error([&] { soma::fmod(a, zero); }, {"fmod", "division by zero"});
  expect_error([&] { soma::div(a, 0, "trunc"); }, {"div", "division by zero"});
  expect_error([&] { soma::remainder(a, 0); }, {"remainder", "division by zero"});
  expect_error([&] { soma::fmod(soma::ones({2}, soma::kUInt8), 0); }, {"fmod", "zero"});
  Tensor x = i64({7, 1});
  expect_error([&] { x.div_(zero, "floor"); }, {"div_", "division by zero"});
  expect_error([&] { x.remainder_(0); }, {"remainder_", "division by zero"});
  expect_error([&] { x.fmod_(zero.narrow(0, 0, 1)); }, {"fmod_", "division by zero"});
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{7, 1}));  // untouched
  // A zero anywhere in a broadcast or strided divisor counts.
  expect_error(
      [&] {
        soma::div(i64({1, 2, 3, 4}, {2, 2}), i64({1, 0, 3, 4}, {2, 2}).t(), "trunc");
      },
      {"div", "zero"});
  // Floating division by zero is IEEE (inf/nan), as in PyTorch.
  EXPECT_TRUE(std::isinf(soma::div(soma::ones({1}), 0, "floor").item<float>()));
  EXPECT_TRUE(std::isinf((i64({1}) / 0).item<float>()));  // true division: float32
}

TEST(ArithDivision, Int64MinByMinusOneWraps) {
  const int64_t min = std::numeric_limits<int64_t>::min();
  const Tensor a = i64({min, min, -7}), m1 = i64({-1, -1, -1});
  // The quotient 2^63 does not fit and wraps to INT64_MIN; the remainder is 0.
  EXPECT_EQ(soma::div(a, m1, "trunc").to_vector<int64_t>(), (std::vector<int64_t>{min, min, 7}));
  EXPECT_EQ(soma::div(a, m1, "floor").to_vector<int64_t>(), (std::vector<int64_t>{min, min, 7}));
  EXPECT_EQ(soma::floor_divide(a, -1).to_vector<int64_t>(), (std::vector<int64_t>{min, min, 7}));
  EXPECT_EQ(soma::remainder(a, m1).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(soma::fmod(a, -1).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
  // Sums and products wrap too (two's complement), without signed-overflow UB.
  EXPECT_EQ((i64({std::numeric_limits<int64_t>::max()}) + 1).item<int64_t>(), min);
  EXPECT_EQ((i64({min}) * -1).item<int64_t>(), min);
}

// remainder takes the divisor's sign, fmod the dividend's (goldens in promotion_reference.txt;
// here the identity a == trunc/floor(a / b) * b + r that defines them, for every sign).
TEST(ArithDivision, RemainderAndFmodSatisfyTheirDivisionIdentity) {
  const Tensor a = i64({7, -7, 7, -7, 0, 5}), b = i64({3, 3, -3, -3, 2, -5});
  const Tensor r = soma::remainder(a, b), f = soma::fmod(a, b);
  EXPECT_TRUE(
      soma::eq(soma::div(a, b, "floor") * b + r, a).to(soma::kInt64).sum().item<int64_t>() == 6);
  EXPECT_TRUE(
      soma::eq(soma::div(a, b, "trunc") * b + f, a).to(soma::kInt64).sum().item<int64_t>() == 6);
  const std::vector<int64_t> rv = r.to_vector<int64_t>(), fv = f.to_vector<int64_t>(),
                             av = a.to_vector<int64_t>(), bv = b.to_vector<int64_t>();
  for (size_t i = 0; i < rv.size(); ++i) {
    EXPECT_TRUE(rv[i] == 0 || (rv[i] < 0) == (bv[i] < 0)) << i;
    EXPECT_TRUE(fv[i] == 0 || (fv[i] < 0) == (av[i] < 0)) << i;
  }
}

// ---- autograd across dtypes ------------------------------------------------------------------
TEST(ArithAutograd, GradientsComeBackInEachInputsDtype) {
  Tensor a = soma::tensor({1.5f, -2.0f, 3.0f}).requires_grad_();
  Tensor b = soma::tensor(std::vector<double>{0.5, 4.0, -1.0}).requires_grad_();
  Tensor y = a * b;
  EXPECT_EQ(y.dtype(), soma::kFloat64);
  y.sum().backward();
  ASSERT_TRUE(a.grad().defined() && b.grad().defined());
  EXPECT_EQ(a.grad().dtype(), soma::kFloat32);
  EXPECT_EQ(b.grad().dtype(), soma::kFloat64);
  EXPECT_EQ(a.grad().to_vector<double>(), b.to_vector<double>());  // d(ab)/da = b
  EXPECT_EQ(b.grad().to_vector<double>(), a.to_vector<double>());

  // int64 * float32: only the floating input gets a gradient; a float64 0-d tensor does not
  // raise a float32 tensor's dtype, and its gradient is float64.
  Tensor w = soma::tensor({2.0f, 3.0f}).requires_grad_();
  Tensor s = soma::full({}, 2.0, soma::kFloat64).requires_grad_();
  Tensor z = (i64({1, 2}) * w + s) / s;
  EXPECT_EQ(z.dtype(), soma::kFloat32);
  z.sum().backward();
  EXPECT_EQ(w.grad().dtype(), soma::kFloat32);
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{0.5f, 1.0f}));
  EXPECT_EQ(s.grad().dtype(), soma::kFloat64);
}

TEST(ArithAutograd, RemainderAndFmodGradients) {
  Tensor a = soma::tensor(std::vector<double>{5.5, -5.5, 7.0}).requires_grad_();
  Tensor b = soma::tensor(std::vector<double>{2.0, 2.0, -3.0}).requires_grad_();
  EXPECT_TRUE(soma::autograd::gradcheck(
      [](const std::vector<Tensor>& x) { return soma::remainder(x[0], x[1]); }, {a, b}));
  EXPECT_TRUE(soma::autograd::gradcheck(
      [](const std::vector<Tensor>& x) { return soma::fmod(x[0], x[1]); }, {a, b}));
  // floor_divide has no derivative in PyTorch; soma's backward says so instead of guessing.
  Tensor q = soma::floor_divide(a, 2.0);
  expect_error([&] { q.sum().backward(); }, {"floor_divide", "derivative"});
  // div with a rounding mode is piecewise constant: zero gradient.
  Tensor d = soma::div(a, b, "floor");
  d.sum().backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

// ---- aliasing: partial overlap, internal overlap ----------------------------------------------

// Old: x.add_(x.t()) read elements it had already overwritten and silently returned
// [[2, 6, 10], [10, 10, 14], [17, 22, 18]] instead of x + x^T.
TEST(ArithAliasing, InPlaceWithATransposedSelfThrows) {
  Tensor x = soma::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  const Tensor before = x.clone();
  expect_error([&] { x.add_(x.t()); },
               {"add_",
                "some elements of the input tensor and the written-to tensor refer to a "
                "single memory location"});
  EXPECT_EQ(x.to_vector<float>(), before.to_vector<float>());  // nothing written
  expect_error([&] { x.mul_(x.t()); }, {"mul_"});
  expect_error([&] { x.sub_(x.t(), 2); }, {"sub_"});
  expect_error([&] { x.div_(x.t()); }, {"div_"});
  expect_error([&] { x.remainder_(x.t()); }, {"remainder_"});
  expect_error([&] { x.fmod_(x.t()); }, {"fmod_"});
  expect_error([&] { x.floor_divide_(x.t()); }, {"floor_divide_"});
  expect_error([&] { x.copy_(x.t()); }, {"copy_"});
  // A broadcast row of x read while x's rows are written.
  expect_error([&] { x.add_(x.narrow(0, 0, 1)); }, {"add_"});
  // The out-of-place op is fine.
  EXPECT_EQ((x + x.t()).to_vector<float>(), (before + before.t()).to_vector<float>());
}

// Old: copied through overlapping memory with no error (torch raises).
TEST(ArithAliasing, CopyBetweenOverlappingNarrowsThrows) {
  Tensor y = soma::tensor({1, 2, 3, 4});
  expect_error([&] { y.narrow(0, 1, 3).copy_(y.narrow(0, 0, 3)); },
               {"copy_", "single memory location", "[3]"});
  expect_error([&] { y.narrow(0, 0, 3).add_(y.narrow(0, 1, 3)); }, {"add_"});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(ArithAliasing, ExactAliasAndDisjointViewsStayLegal) {
  Tensor x = soma::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor orig = x.clone();
  x.add_(x);  // the same tensor: each element read where it is written
  EXPECT_EQ(x.to_vector<float>(), (orig * 2).to_vector<float>());
  x.mul_(x.detach());  // another handle on the same view
  EXPECT_EQ(x.to_vector<float>(), (orig * 2 * (orig * 2)).to_vector<float>());
  x.copy_(x);  // copying onto itself does nothing
  x.copy_(orig);
  // Different rows: disjoint memory.
  x.narrow(0, 0, 1).add_(x.narrow(0, 1, 1));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{5, 7, 9, 4, 5, 6}));
  // Different columns: interleaved spans, but no element shared.
  x.copy_(orig);
  x.narrow(1, 0, 1).sub_(x.narrow(1, 2, 1));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{-2, 2, 3, -2, 5, 6}));
  x.copy_(orig);
  x.slice(1, 0, 3, 2).copy_(x.narrow(1, 1, 1));  // columns 0 and 2 from column 1
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{2, 2, 2, 5, 5, 5}));
  // A transposed view of a transposed view is the same memory layout: an exact alias.
  x.copy_(orig);
  x.t().add_(x.t().t().t());
  EXPECT_EQ(x.to_vector<float>(), (orig * 2).to_vector<float>());
}

TEST(ArithAliasing, WritingIntoAnExpandedViewThrows) {
  Tensor base = soma::tensor({1, 2, 3});
  Tensor e = base.expand({2, 3});
  EXPECT_EQ(e.shape(), (soma::Shape{2, 3}));
  EXPECT_EQ(e.stride(0), 0);
  EXPECT_EQ(e.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  const char* msg = "more than one element of the written-to tensor refers to a single memory";
  expect_error([&] { e.add_(1); }, {"add_", msg});
  expect_error([&] { e.add_(soma::ones({2, 3})); }, {"add_", msg});
  expect_error([&] { e.mul_(2.0); }, {"mul_", msg});
  expect_error([&] { e.copy_(soma::ones({2, 3})); }, {"copy_", msg});
  expect_error([&] { e.fill_(0); }, {"fill_", msg});
  expect_error([&] { e.zero_(); }, {"fill_", msg});
  EXPECT_EQ(base.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  // Reading an expanded view is fine, and so is writing into its base or a clone.
  Tensor c = e.clone();
  c.add_(e);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{2, 4, 6, 2, 4, 6}));
  expect_error([&] { base.expand({2, 4}); }, {"expand", "[2, 4]", "[3]"});
  expect_error([&] { soma::zeros({2, 3}).expand({3}); }, {"expand", "[2, 3]"});
}

TEST(ArithAliasing, ExpandIsDifferentiable) {
  Tensor x = soma::tensor(std::vector<double>{1, 2, 3}, {3, 1}).requires_grad_();
  EXPECT_TRUE(soma::autograd::gradcheck(
      [](const std::vector<Tensor>& v) {
        return v[0].expand({2, 3, 4}) * 1.5;
      },
      {x}));
  Tensor y = x.expand({-1, 4});
  EXPECT_EQ(y.shape(), (soma::Shape{3, 4}));
  y.sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 4, 4}));
}

TEST(ArithScalar, FillAndFullCheckIntegerRange) {
  Tensor x = soma::zeros({2}, soma::kInt64);
  x.fill_(2.7);  // truncates, as in PyTorch
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{2, 2}));
  const int64_t big = (int64_t{1} << 60) + 1;  // not representable in a double
  x.fill_(big);
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{big, big}));
  expect_error([&] { x.fill_(1e30); }, {"full", "int64", "overflow"});
  expect_error([&] { soma::full({2}, std::nan(""), soma::kInt64); }, {"full", "nan"});
  EXPECT_EQ(soma::Scalar(3).type(), soma::kInt64);
  EXPECT_EQ(soma::Scalar(3.0f).type(), soma::kFloat64);
  EXPECT_EQ(soma::Scalar(true).type(), soma::kBool);
}

}  // namespace
