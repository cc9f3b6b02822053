// Functional autograd, as libtorch's torch::autograd::grad and torch::autograd::backward.
//
//   // GradientTape style: gradients returned, nothing accumulated into .grad
//   auto grads = soma::autograd::grad({loss}, {w, b});
//   // a second derivative: d/dx (d tanh(x) / dx)
//   auto [dy] = soma::autograd::grad({soma::tanh(x).sum()}, {x}, {}, true, true);
//   auto d2 = soma::autograd::grad({dy.sum()}, {x});
#pragma once

#include <optional>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::autograd {

using variable_list = std::vector<Tensor>;

/// The gradients of `outputs` with respect to `inputs`: sum_i d(outputs[i] . grad_outputs[i]) /
/// d inputs. grad_outputs may be empty (every output then must have one element; its gradient
/// is 1) or hold one tensor per output (an undefined entry means ones for a one-element
/// output). Nothing accumulates into .grad, and only the graph between outputs and inputs
/// runs. retain_graph defaults to create_graph; with create_graph the returned gradients are
/// differentiable. An input the outputs do not depend on is an error unless allow_unused, in
/// which case its gradient is an undefined tensor.
variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs = {},
                   std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                   bool allow_unused = false);

/// Accumulates into the leaves' .grad the gradients of sum_i outputs[i] . grad_tensors[i]
/// (torch::autograd::backward): several roots in one pass.
void backward(const variable_list& tensors, const variable_list& grad_tensors = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

}  // namespace soma::autograd
