// Convolutions against PyTorch (tests/reference/toolkit_conv.py): conv1d/conv2d (strides,
// paddings incl. "same"/"valid", dilations, groups, depthwise, unbatched, non-contiguous input),
// conv_transpose1d/2d with output_padding, reflect/replicate/circular padding through F::pad:
// outputs, gradients, gradcheck and gradgradcheck; plus the errors torch has no golden for.
#include <gtest/gtest.h>

#include "ops/toolkit_driver.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;
namespace F = soma::nn::functional;

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"conv2d", {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2]); })}},
      {"conv2d_nobias", {one([](const Inputs& x) { return F::conv2d(x[0], x[1]); })}},
      {"conv2d_s2_p1",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {2}, {1}); })}},
      {"conv2d_s12_p21", {one([](const Inputs& x) {
         return F::conv2d(x[0], x[1], x[2], {1, 2}, {2, 1});
       })}},
      {"conv2d_s23_p10", {one([](const Inputs& x) {
         return F::conv2d(x[0], x[1], x[2], {2, 3}, {1, 0});
       })}},
      {"conv2d_d2_p1",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, {1}, {2}); })}},
      {"conv2d_d12_s2", {one([](const Inputs& x) {
         return F::conv2d(x[0], x[1], x[2], {2}, {0}, {1, 2});
       })}},
      {"conv2d_g2",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, {0}, {1}, 2); })}},
      {"conv2d_g2_p1",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, {1}, {1}, 2); })}},
      {"conv2d_g3_p1",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, {1}, {1}, 3); })}},
      {"conv2d_g2_s2",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {2}, {0}, {1}, 2); })}},
      {"conv2d_p1", {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, {1}); })}},
      {"conv2d_same",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, "same"); })}},
      {"conv2d_same_d2",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, "same", {2}); })}},
      {"conv2d_valid",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], x[2], {1}, "valid"); })}},
      {"conv2d_permuted", {one([](const Inputs& x) {
         return F::conv2d(soma::permute(x[0], {0, 3, 1, 2}), x[1], x[2], {1}, {1});
       })}},
      {"conv2d_transposed_hw", {one([](const Inputs& x) {
         return F::conv2d(soma::transpose(x[0], 2, 3), x[1], x[2], {2});
       })}},
      {"conv2d_reflect", {one([](const Inputs& x) {
         return F::conv2d(F::pad(x[0], {1, 1, 2, 1}, "reflect"), x[1], x[2]);
       })}},
      {"conv2d_replicate", {one([](const Inputs& x) {
         return F::conv2d(F::pad(x[0], {1, 1, 1, 1}, "replicate"), x[1], x[2]);
       })}},
      {"conv2d_circular", {one([](const Inputs& x) {
         return F::conv2d(F::pad(x[0], {1, 1, 1, 1}, "circular"), x[1], x[2]);
       })}},
      {"conv2d_stride0", {one([](const Inputs& x) { return F::conv2d(x[0], x[1], {}, {0}); })}},
      {"conv2d_pad_neg",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], {}, {1}, {-1}); })}},
      {"conv2d_dil0",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], {}, {1}, {0}, {0}); })}},
      {"conv2d_same_s2",
       {one([](const Inputs& x) { return F::conv2d(x[0], x[1], {}, {2}, "same"); })}},
      {"conv1d", {one([](const Inputs& x) { return F::conv1d(x[0], x[1], x[2]); })}},
      {"conv1d_s2_p1_d2",
       {one([](const Inputs& x) { return F::conv1d(x[0], x[1], x[2], {2}, {1}, {2}); })}},
      {"conv1d_g2",
       {one([](const Inputs& x) { return F::conv1d(x[0], x[1], x[2], {1}, {0}, {1}, 2); })}},
      {"conv1d_same",
       {one([](const Inputs& x) { return F::conv1d(x[0], x[1], x[2], {1}, "same"); })}},
      {"conv1d_circular", {one([](const Inputs& x) {
         return F::conv1d(F::pad(x[0], {2, 1}, "circular"), x[1], x[2]);
       })}},
      {"conv_t2d", {one([](const Inputs& x) { return F::conv_transpose2d(x[0], x[1], x[2]); })}},
      {"conv_t2d_s2_p1_op1",
       {one([](const Inputs& x) { return F::conv_transpose2d(x[0], x[1], x[2], {2}, {1}, {1}); })}},
      {"conv_t2d_s21_op10", {one([](const Inputs& x) {
         return F::conv_transpose2d(x[0], x[1], x[2], {2, 1}, {0}, {1, 0});
       })}},
      {"conv_t2d_g2_d2", {one([](const Inputs& x) {
         return F::conv_transpose2d(x[0], x[1], x[2], {1}, {0}, {0}, 2, {2});
       })}},
      {"conv_t2d_d2_op1", {one([](const Inputs& x) {
         return F::conv_transpose2d(x[0], x[1], x[2], {1}, {0}, {1}, 1, {2});
       })}},
      {"conv_t2d_op_big",
       {one([](const Inputs& x) { return F::conv_transpose2d(x[0], x[1], {}, {1}, {0}, {1}); })}},
      {"conv_t1d_s2_op1",
       {one([](const Inputs& x) { return F::conv_transpose1d(x[0], x[1], x[2], {2}, {0}, {1}); })}},
      {"conv_t1d_p1_g2", {one([](const Inputs& x) {
         return F::conv_transpose1d(x[0], x[1], x[2], {1}, {1}, {0}, 2);
       })}},
      {"pad_circular_1d", {one([](const Inputs& x) {
         return F::pad(x[0], {1, 2}, "circular");
       })}},
      {"pad_circular_2d", {one([](const Inputs& x) {
         return F::pad(x[0], {1, 2, 2, 0}, "circular");
       })}},
      {"pad_circular_crop", {one([](const Inputs& x) {
         return F::pad(x[0], {-1, 2}, "circular");
       })}},
      {"pad_circular_3d", {one([](const Inputs& x) {
         return F::pad(x[0], {1, 1, 0, 1, 1, 0}, "circular");
       })}},
  };
  return t;
}

}  // namespace

SOMA_TOOLKIT_SUITE(Conv, "toolkit_conv_reference.txt", table);

namespace {

// Errors torch has no golden for (it accepts integer convolutions) or that need mixed dtypes.
TEST(ToolkitConvErrors, DtypesAndMessages) {
  const Tensor xi = soma::ones({1, 1, 3, 3}, soma::kInt64),
               wi = soma::ones({1, 1, 1, 1}, soma::kInt64);
  EXPECT_THROW(F::conv2d(xi, wi), soma::Error);
  const Tensor x = soma::randn({2, 3, 5, 5}), w64 = soma::randn({4, 3, 3, 3}, soma::kFloat64);
  const std::string mixed = toolkit::error_message([&] { F::conv2d(x, w64); });
  EXPECT_NE(mixed.find("conv2d"), std::string::npos) << mixed;
  EXPECT_NE(mixed.find("float64"), std::string::npos) << mixed;
  const std::string ch = toolkit::error_message([&] { F::conv2d(x, soma::randn({4, 4, 3, 3})); });
  EXPECT_NE(ch.find("expected input[2, 3, 5, 5] to have 4 channels"), std::string::npos) << ch;
  // an MNIST batch without its channel dim: torch reads [N, 28, 28] as one [C, H, W] sample
  const std::string mn = toolkit::error_message([&] {
    F::conv2d(soma::randn({8, 28, 28}), soma::randn({32, 1, 3, 3}));
  });
  EXPECT_NE(mn.find("[8, 28, 28]"), std::string::npos) << mn;
  EXPECT_NE(mn.find("[32, 1, 3, 3]"), std::string::npos) << mn;
  EXPECT_NE(mn.find("unbatched"), std::string::npos) << mn;
  const std::string big = toolkit::error_message([&] {
    F::conv2d(soma::randn({1, 1, 3, 3}), soma::randn({1, 1, 5, 5}));
  });
  EXPECT_NE(big.find("Kernel size can't be greater"), std::string::npos) << big;
  const std::string op = toolkit::error_message([&] {
    F::conv_transpose2d(soma::randn({1, 2, 3, 3}), soma::randn({2, 2, 3, 3}), {}, {2}, {0}, {2});
  });
  EXPECT_NE(op.find("output padding must be smaller"), std::string::npos) << op;
  EXPECT_THROW(F::conv2d(x, soma::randn({4, 3, 3, 3}), {}, {1}, "full"), soma::Error);
  EXPECT_THROW(F::conv2d(x, soma::randn({4, 3, 3, 3}), {}, {1, 1, 1}), soma::Error);
  EXPECT_THROW(F::pad(soma::randn({1, 2, 3}), {1, 1}, "wrap"), soma::Error);
}

}  // namespace
