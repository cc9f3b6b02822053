// Finite-difference check of autograd gradients (like torch.autograd.gradcheck).
//
// For every input that requires grad and every element j of it, compares the analytic
// Jacobian column (one backward pass per output element) with the central difference
//   (f(x + eps e_j) - f(x - eps e_j)) / (2 eps)
// and passes when |analytic - numeric| <= atol + rtol * |numeric| everywhere. Inputs must be
// float64.
//
//   auto f = [](const std::vector<soma::Tensor>& in) { return soma::tanh(in[0]) * in[1]; };
//   soma::autograd::gradcheck(f, {soma::randn({3}, soma::kFloat64).requires_grad_(),
//                                 soma::randn({3}, soma::kFloat64).requires_grad_()});
#pragma once

#include <functional>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // absolute tolerance
  double rtol = 1e-3;  // relative tolerance
  bool raise = true;   // throw soma::Error on failure (else return false)
};

/// Returns true when every gradient matches. On failure throws (or returns false) with a
/// message naming the input, the output and input element index, and both values.
bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

/// Second derivatives by finite differences (like torch.autograd.gradgradcheck): with fixed
/// random grad_outputs v (drawn from a generator seeded with options' `seed`, or the given
/// ones), runs gradcheck on inputs -> autograd::grad(fn(inputs), inputs, v, create_graph=true),
/// i.e. compares the derivatives of the vector-Jacobian product with central differences. An
/// op whose backward is not differentiable makes it fail (or its backward raises soma::Error
/// naming the op).
bool gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                   const std::vector<Tensor>& inputs, const std::vector<Tensor>& grad_outputs = {},
                   const GradcheckOptions& options = {});

}  // namespace soma::autograd
