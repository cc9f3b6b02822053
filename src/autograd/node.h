// The autograd graph (internal). Every differentiable op that sees an input requiring grad
// gives its output a Node: the op's name, one edge per input (the input's own Node, an
// AccumulateGrad node for a leaf, or null when that input needs no gradient), and the
// backward closure, written next to the forward in the op's source file.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor_impl.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/tensor.h"

namespace soma::autograd {

/// Gradient w.r.t. each input (undefined where an input needs none).
using Grads = std::vector<Tensor>;
/// Maps the gradient of the op's output to the gradients of its inputs.
using BackwardFn = std::function<Grads(const Tensor& grad_output)>;

struct Node {
  const char* name = "";
  std::vector<std::shared_ptr<Node>> next;  // one per input; null: no gradient needed
  BackwardFn backward;                      // emptied once the graph is freed
  bool released = false;
  // Storage versions of the tensors the closure saved, checked before it runs.
  std::vector<std::pair<std::shared_ptr<Storage>, uint64_t>> saved;
  // Set only on AccumulateGrad nodes: the leaf whose .grad receives the gradient.
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // shape of the output (checked against incoming gradients)
  DType dtype = kFloat32;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  /// Frees the chain of nodes behind this one iteratively, so a graph of a million ops does
  /// not overflow the stack with nested destructors.
  ~Node();
};

/// True when grad mode is on and any of `inputs` requires grad.
template <typename... Ts>
bool needs_grad(const Ts&... inputs) {
  return is_grad_enabled() && ((inputs.defined() && inputs.requires_grad()) || ...);
}
bool needs_grad(const std::vector<Tensor>& inputs);

/// Makes `out` the output of op `name` with the given inputs and backward closure. `saved` lists
/// the tensors the closure captured, so an in-place change to them is caught in backward.
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward,
            const std::vector<Tensor>& saved = {});

/// The edge for `t` in a new node: its grad_fn, its AccumulateGrad node, or null.
std::shared_ptr<Node> edge_of(const Tensor& t);

/// Runs backward from `root` with `grad` (engine.cpp).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace soma::autograd
