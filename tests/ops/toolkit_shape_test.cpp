// The shape and copy ops against PyTorch (tests/reference/toolkit_shape.py): outputs,
// gradients, gradcheck and gradgradcheck per case (tests/ops/toolkit_driver.h), plus views
// sharing storage and error messages.
#include <gtest/gtest.h>

#include "ops/toolkit_driver.h"
#include "soma/nn/functional.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;
using toolkit::Op;
using toolkit::Outputs;
namespace F = soma::nn::functional;

// An op returning std::vector<Tensor> (split, chunk, unbind).
template <typename Fn>
std::function<Outputs(const Inputs&)> many(Fn f) {
  return [f](const Inputs& x) { return Outputs(f(x)); };
}

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"permute", Op{one([](const Inputs& x) {
         return soma::permute(x[0], {2, 0, 1});
       })}},
      {"permute_neg", Op{one([](const Inputs& x) {
         return x[0].permute({-1, 0, -2});
       })}},
      {"permute_t", Op{one([](const Inputs& x) {
         return x[0].t().permute({1, 0});
       })}},
      {"permute_repeat", Op{one([](const Inputs& x) {
         return x[0].permute({0, 0, 1});
       })}},
      {"movedim", Op{one([](const Inputs& x) { return soma::movedim(x[0], 0, -1); })}},
      {"movedim_list", Op{one([](const Inputs& x) {
         return x[0].movedim({0, 1}, {2, 0});
       })}},
      {"repeat", Op{one([](const Inputs& x) {
         return x[0].repeat({2, 1, 3});
       })}},
      {"repeat_t", Op{one([](const Inputs& x) {
         return soma::repeat(x[0].t(), {2, 2});
       })}},
      {"repeat_zero", Op{one([](const Inputs& x) {
         return x[0].repeat({0, 2});
       })}},
      {"stack", Op{one([](const Inputs& x) {
         return soma::stack({x[0], x[1]}, 1);
       })}},
      {"stack_neg", Op{one([](const Inputs& x) {
         return soma::stack({x[0], x[1], x[2]}, -1);
       })}},
      {"stack_t", Op{one([](const Inputs& x) {
         return soma::stack({x[0].t(), x[1]}, 0);
       })}},
      {"split", Op{many([](const Inputs& x) { return soma::split(x[0], 2, 1); })}},
      {"split_sizes", Op{many([](const Inputs& x) {
         return x[0].split({1, 3, 1}, -1);
       })}},
      {"split_t", Op{many([](const Inputs& x) { return x[0].t().split(2); })}},
      {"chunk", Op{many([](const Inputs& x) { return soma::chunk(x[0], 3, 1); })}},
      {"chunk_fewer", Op{many([](const Inputs& x) { return x[0].chunk(4, 0); })}},
      {"unbind", Op{many([](const Inputs& x) { return soma::unbind(x[0], 1); })}},
      {"unbind_t", Op{many([](const Inputs& x) { return x[0].t().unbind(-1); })}},
      {"flip", Op{one([](const Inputs& x) {
         return soma::flip(x[0], {0, 2});
       })}},
      {"flip_neg", Op{one([](const Inputs& x) { return x[0].flip({-1}); })}},
      {"flip_t", Op{one([](const Inputs& x) {
         return x[0].t().flip({0, 1});
       })}},
      {"roll", Op{one([](const Inputs& x) { return soma::roll(x[0], {2}, {1}); })}},
      {"roll_dims", Op{one([](const Inputs& x) {
         return x[0].roll({1, -2}, {0, -1});
       })}},
      {"roll_flat", Op{one([](const Inputs& x) { return soma::roll(x[0], {3}); })}},
      {"roll_t", Op{one([](const Inputs& x) { return x[0].t().roll({-1}, {0}); })}},
      {"tril", Op{one([](const Inputs& x) { return soma::tril(x[0]); })}},
      {"tril_up", Op{one([](const Inputs& x) { return x[0].tril(1); })}},
      {"tril_down", Op{one([](const Inputs& x) { return soma::tril(x[0], -1); })}},
      {"triu", Op{one([](const Inputs& x) { return soma::triu(x[0]); })}},
      {"triu_up", Op{one([](const Inputs& x) { return x[0].triu(2); })}},
      {"triu_down", Op{one([](const Inputs& x) { return soma::triu(x[0], -1); })}},
      {"triu_t", Op{one([](const Inputs& x) { return soma::triu(x[0].transpose(-1, -2)); })}},
      {"unfold", Op{one([](const Inputs& x) { return x[0].unfold(1, 2, 1); })}},
      {"unfold_step", Op{one([](const Inputs& x) { return soma::unfold(x[0], 0, 2, 2); })}},
      {"unfold_neg", Op{one([](const Inputs& x) { return x[0].unfold(-1, 3, 2); })}},
      {"unfold_t", Op{one([](const Inputs& x) { return x[0].t().unfold(0, 2, 1); })}},
      {"pad", Op{one([](const Inputs& x) {
         return F::pad(x[0], {1, 2});
       })}},
      {"pad_2d", Op{one([](const Inputs& x) {
         return F::pad(x[0], {1, 0, 2, 1}, "constant", 1.5);
       })}},
      {"pad_neg", Op{one([](const Inputs& x) {
         return F::pad(x[0], {-1, 2, 0, -1});
       })}},
      {"pad_t", Op{one([](const Inputs& x) {
         return F::pad(x[0].t(), {0, 1, 1, 1}, "constant", -2.0);
       })}},
      {"pad_reflect", Op{one([](const Inputs& x) {
         return F::pad(x[0], {2, 1}, "reflect");
       })}},
      {"pad_reflect_2d", Op{one([](const Inputs& x) {
         return F::pad(x[0], {1, 2, 2, 1}, "reflect");
       })}},
      {"pad_replicate", Op{one([](const Inputs& x) {
         return F::pad(x[0], {2, 1}, "replicate");
       })}},
      {"pad_replicate_2d", Op{one([](const Inputs& x) {
         return F::pad(x[0], {1, 3, 0, 2}, "replicate");
       })}},
      {"pad_replicate_3d", Op{one([](const Inputs& x) {
         return F::pad(x[0], {1, 1, 2, 0, 1, 1}, "replicate");
       })}},
      {"fn_unfold", Op{one([](const Inputs& x) { return F::unfold(x[0], {2}); })}},
      {"fn_unfold_opts", Op{one([](const Inputs& x) {
         return F::unfold(x[0], {2, 3}, {1, 2}, {1, 0}, {2, 1});
       })}},
      {"fn_unfold_3d",
       Op{one([](const Inputs& x) { return F::unfold(x[0], {2}, {1}, {1}, {2}); })}},
      {"fold", Op{one([](const Inputs& x) {
         return F::fold(x[0], {4, 5}, {2});
       })}},
      {"fold_opts", Op{one([](const Inputs& x) {
         return F::fold(x[0], {5, 4}, {2, 3}, {2, 1}, {0, 1}, {1, 2});
       })}},
      {"fold_2d", Op{one([](const Inputs& x) {
         return F::fold(x[0], {3, 3}, {2}, {1}, {1}, {2});
       })}},
      // existing ops: their backward is differentiable too
      {"index_select", Op{one([](const Inputs& x) { return soma::index_select(x[0], 1, x[1]); })}},
      {"index_select_t", Op{one([](const Inputs& x) { return x[0].t().index_select(0, x[1]); })}},
      {"cat", Op{one([](const Inputs& x) {
         return soma::cat({x[0], x[1], x[2]}, 1);
       })}},
      {"cat_neg", Op{one([](const Inputs& x) {
         return soma::cat({x[0], x[1]}, -1);
       })}},
      {"expand", Op{one([](const Inputs& x) {
         return x[0].expand({2, 3, 4});
       })}},
      {"expand_keep", Op{one([](const Inputs& x) {
         return soma::expand(x[0], {-1, 4});
       })}},
      {"slice", Op{one([](const Inputs& x) { return x[0].slice(1, 1, 5, 2); })}},
      {"slice_neg", Op{one([](const Inputs& x) { return x[0].slice(0, -2, 3).slice(1, 0, -1); })}},
      {"narrow", Op{one([](const Inputs& x) { return soma::narrow(x[0], 0, 1, 2); })}},
      {"reshape_t", Op{one([](const Inputs& x) {
         return x[0].t().reshape({2, -1});
       })}},
      {"transpose", Op{one([](const Inputs& x) { return x[0].transpose(0, 2); })}},
      {"squeeze_unsqueeze", Op{one([](const Inputs& x) { return x[0].squeeze(1).unsqueeze(-1); })}},
      {"contiguous_t", Op{one([](const Inputs& x) { return x[0].t().contiguous(); })}},
      {"to_float64", Op{one([](const Inputs& x) { return x[0].to(soma::kFloat64); })}},
  };
  return t;
}

SOMA_TOOLKIT_SUITE(Shape, "toolkit_shape_reference.txt", table);

// Whether a's first element lies inside b's (contiguous float) buffer.
bool same_storage(const Tensor& a, const Tensor& b) {
  const float* p = a.data<float>();
  const float* base = b.data<float>();
  return p >= base && p < base + b.numel();
}

TEST(ToolkitShapeViews, ViewsShareStorageCopiesDoNot) {
  Tensor x = soma::arange(24, soma::kFloat32).reshape({2, 3, 4});
  EXPECT_TRUE(same_storage(x.permute({2, 0, 1}), x));
  EXPECT_TRUE(same_storage(x.movedim(0, -1), x));
  EXPECT_TRUE(same_storage(x.unfold(2, 2, 1), x));
  for (const Tensor& p : x.split(2, 2)) EXPECT_TRUE(same_storage(p, x));
  for (const Tensor& p : x.chunk(2, 1)) EXPECT_TRUE(same_storage(p, x));
  for (const Tensor& p : x.unbind(0)) EXPECT_TRUE(same_storage(p, x));
  EXPECT_FALSE(same_storage(x.repeat({1, 1, 1}), x));
  EXPECT_FALSE(same_storage(x.flip({}), x));
  EXPECT_FALSE(same_storage(x.roll({0}, {0}), x));
  EXPECT_FALSE(same_storage(F::pad(x, {0, 0}), x));
  EXPECT_FALSE(same_storage(soma::stack({x}), x));
  // a write through the unfolded view shows in the base
  Tensor w = x.unfold(2, 2, 2);
  EXPECT_EQ(w.shape(), (soma::Shape{2, 3, 2, 2}));
  soma::narrow(w, 3, 0, 1).fill_(-1.0);
  const std::vector<float> v = x.to_vector<float>();
  EXPECT_EQ(v[0], -1.0f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_EQ(v[2], -1.0f);
}

// The message names the op and the offending values.
void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ToolkitShapeErrors, MessagesNameTheOpAndValues) {
  const Tensor x = soma::zeros({2, 3});
  expect_error([&] { x.permute({0, 0}); }, "permute: dim 0 appears multiple times");
  expect_error([&] { x.repeat({2}); }, "repeat: Number of dimensions of repeat dims (1)");
  expect_error([&] { soma::stack({x, x.t()}); }, "stack: stack expects each tensor");
  expect_error([&] { x.split({1, 1}, 1); }, "split_with_sizes: expects split_sizes to sum");
  expect_error([&] { x.chunk(0); }, "chunk: chunk expects `chunks` to be greater than 0, got: 0");
  expect_error([&] { x.roll({1, 2}, {0}); }, "roll: shifts and dimensions must align");
  expect_error([&] { soma::tril(soma::zeros({3})); }, "tril: input tensor must have at least 2");
  expect_error([&] { x.unfold(1, 4, 1); }, "unfold: maximum size for tensor at dimension 1 is 3");
  expect_error([&] { x.unfold(1, 2, 0); }, "unfold: step is 0");
  expect_error([&] { F::pad(x, {1}); }, "pad: Padding length must be divisible by 2");
  expect_error([&] { F::pad(x, {1, 1}, "wrap"); }, "pad: unknown padding mode \"wrap\"");
  expect_error([&] { F::pad(x, {1, 1}, "reflect", 2.0); }, "doesn't take in value");
  expect_error([&] { F::unfold(soma::zeros({1, 1, 3, 3}, soma::kInt64), {2}); }, "unfold:");
  expect_error([&] { F::unfold(soma::zeros({1, 1, 3, 3}), {2, 2, 2}); }, "kernel_size must hold");
  expect_error(
      [&] {
        F::fold(soma::zeros({1, 4, 3}), {3, 3}, {2});
      },
      "calculated number of sliding blocks 2 * 2 = 4, but got input.size(2)=3");
}

TEST(ToolkitShapeFold, FoldIsUnfoldsAdjoint) {
  // <unfold(x), c> == <x, fold(c)> for random x and c
  soma::manual_seed(3);
  const Tensor x = soma::randn({2, 3, 5, 6}, soma::kFloat64);
  const Tensor u = F::unfold(x, {2, 3}, {2, 1}, {1, 1}, {1, 2});
  const Tensor c = soma::randn(u.shape(), soma::kFloat64);
  const Tensor f = F::fold(c, {5, 6}, {2, 3}, {2, 1}, {1, 1}, {1, 2});
  EXPECT_NEAR((u * c).sum().item<double>(), (x * f).sum().item<double>(), 1e-10);
}

}  // namespace

namespace {

// permute/movedim of a 0-d tensor: a new view (like any other rank), not the input's handle,
// so requires_grad_ or retain_grad on the result cannot change the input.
TEST(ToolkitShapeZeroDim, PermuteAndMovedimReturnNewViews) {
  Tensor x = soma::full({}, 2.0, soma::kFloat64);
  Tensor p = soma::permute(x, {});
  Tensor m = soma::movedim(x, soma::Shape{}, soma::Shape{});
  EXPECT_NE(p.impl(), x.impl());
  EXPECT_NE(m.impl(), x.impl());
  EXPECT_EQ(p.data<double>(), x.data<double>());
  p.requires_grad_();
  EXPECT_FALSE(x.requires_grad());
}

}  // namespace
