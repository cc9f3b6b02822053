// Bad calls throw soma::Error, and the message names the op and the shapes or values involved.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

using soma::Tensor;

// Asserts that fn() throws soma::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const soma::Error& e) {
    const std::string what = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(what.find(p), std::string::npos)
          << "message \"" << what << "\" does not contain \"" << p << "\"";
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected soma::Error containing \"" << (parts.empty() ? "" : parts[0])
                  << "\", got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected soma::Error containing \"" << (parts.empty() ? "" : parts[0])
                << "\", nothing was thrown";
}

struct ErrorCase {
  const char* name;
  std::function<void()> fn;
  std::vector<std::string> parts;
};

// One bad call per line: what it does, and what the message must name.
const std::vector<ErrorCase>& cases() {
  static const std::vector<ErrorCase> table = {
      {"matmul shape mismatch",
       [] {
         soma::matmul(soma::zeros({2, 3}), soma::zeros({4, 5}));
       },
       {"matmul", "[2, 3]", "[4, 5]"}},
      {"matmul dtype mismatch",
       [] {
         soma::matmul(soma::zeros({2, 3}), soma::zeros({3, 2}, soma::kFloat64));
       },
       {"matmul", "float32", "float64"}},
      {"add broadcast failure",
       [] {
         soma::zeros({2, 3}) + soma::zeros({4});
       },
       {"add", "[2, 3]", "[4]", "broadcast"}},
      {"mul broadcast failure",
       [] {
         soma::mul(soma::zeros({5, 2}), soma::zeros({3, 1}));
       },
       {"mul", "[5, 2]", "[3, 1]"}},
      {"in-place result that cannot be cast",
       [] {
         Tensor n = soma::zeros({2}, soma::kInt64);
         n.add_(soma::zeros({2}));
       },
       {"add_", "float32", "int64", "can't be cast"}},
      {"reshape incompatible",
       [] {
         soma::zeros({2, 3}).reshape({4, 2});
       },
       {"reshape", "[4, 2]", "[2, 3]"}},
      {"view non-contiguous",
       [] {
         soma::zeros({2, 3}).t().view({6});
       },
       {"view", "[3, 2]", "contiguous"}},
      {"sum dim out of range",
       [] {
         soma::zeros({2, 3}).sum(2);
       },
       {"sum", "dimension 2", "2 dims"}},
      {"index_select index out of range",
       [] {
         soma::zeros({3, 2}).index_select(0, soma::tensor(std::vector<int64_t>{0, 5}));
       },
       {"index_select", "index 5", "size 3", "[3, 2]"}},
      {"index_select float index",
       [] {
         soma::zeros({3, 2}).index_select(0, soma::tensor(std::vector<float>{0, 1}));
       },
       {"index_select", "int64", "float32"}},
      {"cat mismatched shapes",
       [] {
         soma::cat({soma::zeros({2, 3}), soma::zeros({2, 4})}, 0);
       },
       {"cat", "[2, 3]", "[2, 4]"}},
      {"narrow out of range",
       [] {
         soma::zeros({3, 4}).narrow(1, 2, 3);
       },
       {"narrow", "start 2", "length 3", "size 4", "[3, 4]"}},
      {"tensor wrong number of values",
       [] {
         soma::tensor(std::vector<float>{1, 2, 3}, {2, 2});
       },
       {"tensor", "3 values", "[2, 2]"}},
      {"item on many elements",
       [] {
         soma::zeros({2, 3}).item<float>();
       },
       {"item", "[2, 3]"}},
      {"requires_grad_ on int64",
       [] { soma::zeros({3}, soma::kInt64).requires_grad_(); },
       {"requires_grad_", "int64"}},
      {"backward on non-scalar",
       [] {
         Tensor w = soma::randn({2, 3}).requires_grad_();
         (w * 2.0).backward();
       },
       {"backward", "[2, 3]"}},
      {"backward twice",
       [] {
         Tensor w = soma::randn({3}).requires_grad_();
         Tensor y = (w * w).sum();
         y.backward();
         y.backward();
       },
       {"backward", "second time", "retain_graph"}},
      {"in-place on a leaf requiring grad",
       [] {
         Tensor w = soma::randn({3}).requires_grad_();
         w.add_(1.0);
       },
       {"add_", "leaf", "[3]", "NoGradGuard"}},
      {"relu on int64", [] { soma::relu(soma::zeros({3}, soma::kInt64)); }, {"relu", "int64"}},
      {"softmax dim out of range",
       [] {
         soma::softmax(soma::zeros({2, 3}), 5);
       },
       {"softmax", "5", "2 dims"}},
      {"set_num_threads(0)", [] { soma::set_num_threads(0); }, {"set_num_threads", "0"}},
      {"randint low >= high", [] { soma::randint(5, 2, {3}); }, {"randint", "5", "2"}},
      {"t on 3-D",
       [] {
         soma::zeros({2, 3, 4}).t();
       },
       {"t:", "[2, 3, 4]"}},
      {"saved tensor modified in place",
       [] {
         Tensor w = soma::randn({3}).requires_grad_();
         Tensor a = soma::randn({3});
         Tensor y = (w * a).sum();
         {
           soma::NoGradGuard g;
           a.add_(1.0);
         }
         y.backward();
       },
       {"mul", "in-place"}},
      {"copy_ shape mismatch",
       [] {
         soma::zeros({2, 3}).copy_(soma::zeros({4}));
       },
       {"copy_", "[4]", "[2, 3]"}},
      {"sub of bool tensors",
       [] { soma::ones({2}, soma::kBool) - soma::ones({2}, soma::kBool); },
       {"sub", "bool"}},
      {"integer division by zero",
       [] { soma::div(soma::ones({2}, soma::kInt64), soma::zeros({2}, soma::kInt64), "floor"); },
       {"div", "division by zero"}},
      {"clamp min > max", [] { soma::zeros({2}).clamp(2.0, 1.0); }, {"clamp", "2", "1"}},
      {"mean of int64", [] { soma::zeros({2}, soma::kInt64).mean(); }, {"mean", "int64"}},
      {"arange zero step", [] { soma::arange(0.0, 1.0, 0.0); }, {"arange", "step=0"}},
      {"set_grad shape mismatch",
       [] {
         soma::zeros({2, 3}).set_grad(soma::zeros({3, 2}));
       },
       {"set_grad", "[3, 2]", "[2, 3]"}},
      {"backward gradient shape mismatch",
       [] {
         Tensor w = soma::randn({2}).requires_grad_();
         (w * 3.0).backward(soma::ones({3}));
       },
       {"backward", "[3]", "[2]"}},
  };
  return table;
}

TEST(Errors, EveryBadCallThrowsANamedError) {
  ASSERT_GE(cases().size(), 15u);
  for (const ErrorCase& c : cases()) {
    SCOPED_TRACE(c.name);
    expect_error(c.fn, c.parts);
  }
}

TEST(Errors, MatmulMessageIsPyTorchStyle) {
  expect_error(
      [] {
        soma::matmul(soma::zeros({2, 3}), soma::zeros({4, 5}));
      },
      {"matmul: shapes [2, 3] and [4, 5] cannot be multiplied"});
}

TEST(Errors, InPlaceOnLeafWorksUnderNoGradGuard) {
  Tensor w = soma::zeros({3}).requires_grad_();
  {
    soma::NoGradGuard no_grad;
    w.add_(1.0);
    w.mul_(soma::full({3}, 2.0));
  }
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{2, 2, 2}));
  EXPECT_TRUE(w.requires_grad());
  EXPECT_TRUE(w.is_leaf());
  EXPECT_TRUE(soma::autograd::is_grad_enabled());  // the guard restored grad mode
}

TEST(Errors, RetainGraphAllowsASecondBackward) {
  Tensor w = soma::tensor(std::vector<double>{1, 2, 3}).requires_grad_();
  Tensor y = (w * w).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{4, 8, 12}));
}

TEST(Errors, ThreadCountUnchangedByRejectedCall) {
  const int before = soma::get_num_threads();
  EXPECT_THROW(soma::set_num_threads(0), soma::Error);
  EXPECT_THROW(soma::set_num_threads(-3), soma::Error);
  EXPECT_EQ(soma::get_num_threads(), before);
}

}  // namespace
