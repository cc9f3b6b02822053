// The autograd graph (internal). Every differentiable op that sees an input requiring grad
// gives its output a Node: the op's name, one edge per input (the input's own Node, an
// AccumulateGrad node for a leaf, or null when that input needs no gradient), and the
// backward closure, written next to the forward in the op's source file.
#pragma once

#include <functional>
#include <memory>
#include <span>
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

/// A tensor gradient hook: returns a replacement gradient, or an undefined tensor to keep it.
using Hook = std::function<Tensor(const Tensor&)>;

struct Node {
  const char* name = "";
  std::vector<std::shared_ptr<Node>> next;  // one per input; null: no gradient needed
  BackwardFn backward;                      // emptied once the graph is freed
  bool released = false;
  // Storage versions of the tensors the closure saved, checked before it runs.
  std::vector<std::pair<std::shared_ptr<Storage>, uint64_t>> saved;
  // Set only on AccumulateGrad nodes: the leaf whose .grad receives the gradient. Weak, so a
  // gradient kept with its graph (backward with create_graph) does not keep its leaf alive.
  bool accumulates = false;
  std::weak_ptr<TensorImpl> leaf;
  // Hooks on the gradient of this node's output (Tensor::register_hook on a non-leaf), run in
  // order on the summed incoming gradient; retain_grad() points `retains` at the output.
  std::vector<std::pair<unsigned, Hook>> pre_hooks;
  std::weak_ptr<TensorImpl> retains;
  Shape shape;  // shape of the output (checked against incoming gradients)
  DType dtype = kFloat32;

  Node();
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

/// Runs backward from `roots` seeded with `grads` (engine.cpp). With `create_graph` the
/// backward closures run with grad mode on, so the gradients they compute are themselves
/// differentiable. Without `inputs` the gradients accumulate into the leaves' .grad; with
/// `inputs` (autograd::grad) nothing accumulates and the gradient reaching each input is
/// returned (undefined for an input the roots do not depend on), and only the part of the
/// graph between the roots and the inputs runs.
std::vector<Tensor> run_backward(std::span<const Tensor> roots, std::span<const Tensor> grads,
                                 bool retain_graph, bool create_graph,
                                 const std::vector<Tensor>* inputs = nullptr);

/// In a backward closure: the op's output, captured detached as `y`, as a tensor of the graph
/// being recorded when the backward runs with create_graph (its grad_fn the running node), so a
/// gradient formula that uses the output (exp, tanh, sigmoid, softmax) stays differentiable.
/// Returns `y` itself otherwise.
Tensor attach_output(const Tensor& y);

/// Number of graph nodes alive in the process (for tests: a freed graph returns it to where it
/// was).
int64_t live_node_count();

/// The hook id counter shared by tensor hooks (Tensor::register_hook).
unsigned next_hook_id();

}  // namespace soma::autograd
