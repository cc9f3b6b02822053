// Normalisation against PyTorch (tests/reference/toolkit_norm.py): batch_norm in training and
// eval (2-D to 4-D, with and without affine, non-contiguous inputs), the running statistics
// after one or several training calls (momentum and the cumulative average), layer_norm over one
// or two trailing dims, group_norm with 1..C groups; outputs, gradients, gradcheck and
// gradgradcheck, and torch's errors.
#include <gtest/gtest.h>

#include <optional>

#include "ops/toolkit_driver.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;
using toolkit::Outputs;
namespace F = soma::nn::functional;
namespace nn = soma::nn;

Outputs stats(const Inputs& x, int steps, double momentum) {
  Tensor rm = x[1].detach().clone(), rv = x[2].detach().clone();
  for (int k = 0; k < steps; ++k)
    F::batch_norm(x[0].detach() * (1.0 + k) + k, rm, rv, {}, {}, true, momentum);
  return {rm, rv};
}

Outputs module_cma(const Inputs& x, int steps) {
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(x[0].size(1)).momentum(std::nullopt).affine(false));
  bn.to(x[0].dtype());
  for (int k = 0; k < steps; ++k) bn(x[0].detach() * (1.0 + k) + k);
  return {bn.running_mean, bn.running_var};
}

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"bn_train",
       {one([](const Inputs& x) { return F::batch_norm(x[0], {}, {}, x[1], x[2], true); })}},
      {"bn_train_noaffine",
       {one([](const Inputs& x) { return F::batch_norm(x[0], {}, {}, {}, {}, true); })}},
      {"bn_train_weight_only",
       {one([](const Inputs& x) { return F::batch_norm(x[0], {}, {}, x[1], {}, true); })}},
      {"bn_train_eps", {one([](const Inputs& x) {
         return F::batch_norm(x[0], {}, {}, x[1], x[2], true, 0.1, 1e-2);
       })}},
      {"bn_train_t", {one([](const Inputs& x) {
         return F::batch_norm(x[0].transpose(0, 1), {}, {}, x[1], x[2], true);
       })}},
      {"bn_train_running", {one([](const Inputs& x) {
         return F::batch_norm(x[0], x[1].detach().clone(), x[2].detach().clone(), x[3], x[4], true,
                              0.3);
       })}},
      {"bn_eval",
       {one([](const Inputs& x) { return F::batch_norm(x[0], x[1], x[2], x[3], x[4]); })}},
      {"bn_eval_noaffine", {one([](const Inputs& x) {
         return F::batch_norm(x[0], x[1], x[2], {}, {}, false, 0.1, 1e-3);
       })}},
      {"bn_eval_t", {one([](const Inputs& x) {
         return F::batch_norm(x[0].permute({0, 3, 1, 2}), x[1], x[2], x[3], x[4]);
       })}},
      {"bn_stats", {[](const Inputs& x) { return stats(x, 1, 0.1); }}},
      {"bn_stats3_m0p3", {[](const Inputs& x) { return stats(x, 3, 0.3); }}},
      {"bn_stats_cma3", {[](const Inputs& x) { return module_cma(x, 3); }}},
      {"layer_norm",
       {one([](const Inputs& x) { return F::layer_norm(x[0], x[1].shape(), x[1], x[2]); })}},
      {"layer_norm_eps",
       {one([](const Inputs& x) { return F::layer_norm(x[0], x[1].shape(), x[1], x[2], 1e-2); })}},
      {"layer_norm_noaffine1",
       {one([](const Inputs& x) { return F::layer_norm(x[0], {x[0].size(-1)}); })}},
      {"layer_norm_noaffine2", {one([](const Inputs& x) {
         return F::layer_norm(x[0], {x[0].size(-2), x[0].size(-1)});
       })}},
      {"layer_norm_t",
       {one([](const Inputs& x) { return F::layer_norm(x[0].t(), x[1].shape(), x[1], x[2]); })}},
      {"group_norm_1", {one([](const Inputs& x) { return F::group_norm(x[0], 1, x[1], x[2]); })}},
      {"group_norm_2", {one([](const Inputs& x) { return F::group_norm(x[0], 2, x[1], x[2]); })}},
      {"group_norm_4", {one([](const Inputs& x) { return F::group_norm(x[0], 4, x[1], x[2]); })}},
      {"group_norm_2_noaffine", {one([](const Inputs& x) { return F::group_norm(x[0], 2); })}},
      {"group_norm_2_t", {one([](const Inputs& x) {
         return F::group_norm(x[0].transpose(0, 1), 2, x[1], x[2], 1e-3);
       })}},
  };
  return t;
}

}  // namespace

SOMA_TOOLKIT_SUITE(Norm, "toolkit_norm_reference.txt", table);
