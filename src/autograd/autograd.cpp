// autograd::grad and autograd::backward: the engine run from several roots, returning the
// gradients that reach chosen inputs instead of accumulating into .grad.
#include "soma/autograd/autograd.h"

#include "autograd/node.h"
#include "core/tensor_impl.h"
#include "soma/core/error.h"

namespace soma::autograd {
namespace {

// One seed per output: the given gradient (checked) or ones for a one-element output.
variable_list seeds(const char* op, const variable_list& outputs, const variable_list& given,
                    bool create_graph) {
  SOMA_CHECK(given.empty() || given.size() == outputs.size(), op, ": got ", outputs.size(),
             " outputs but ", given.size(), " grad_outputs");
  variable_list out;
  out.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    SOMA_CHECK(o.defined(), op, ": output ", i, " is an undefined tensor");
    SOMA_CHECK(o.requires_grad(), op, ": output ", i,
               " does not require grad and does not have a grad_fn");
    const Tensor g = given.empty() ? Tensor() : given[i];
    if (!g.defined()) {
      SOMA_CHECK(o.numel() == 1, op, ": grad can be implicitly created only for one-element ",
                 "outputs; output ", i, " has shape ", o.shape());
      out.push_back(ones(o.shape(), o.dtype()));
    } else {
      SOMA_CHECK(g.shape() == o.shape() && g.dtype() == o.dtype(), op, ": grad_outputs[", i,
                 "] has shape ", g.shape(), " and dtype ", g.dtype(), ", output ", i, " has ",
                 o.shape(), " and ", o.dtype());
      out.push_back(create_graph ? g : g.detach());
    }
  }
  return out;
}

}  // namespace

variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs, std::optional<bool> retain_graph,
                   bool create_graph, bool allow_unused) {
  SOMA_CHECK(!outputs.empty(), "grad: no outputs");
  SOMA_CHECK(!inputs.empty(), "grad: no inputs to differentiate with respect to");
  const variable_list s = seeds("grad", outputs, grad_outputs, create_graph);
  variable_list result =
      run_backward(outputs, s, retain_graph.value_or(create_graph), create_graph, &inputs);
  for (size_t i = 0; i < result.size(); ++i) {
    SOMA_CHECK(result[i].defined() || allow_unused, "grad: input ", i, " (shape ",
               inputs[i].shape(), ") was not used in the graph of the outputs; pass ",
               "allow_unused=true to get an undefined gradient for it");
    if (result[i].defined() && !create_graph) result[i] = result[i].detach();
  }
  return result;
}

void backward(const variable_list& tensors, const variable_list& grad_tensors,
              std::optional<bool> retain_graph, bool create_graph) {
  SOMA_CHECK(!tensors.empty(), "backward: no tensors");
  const variable_list s = seeds("backward", tensors, grad_tensors, create_graph);
  run_backward(tensors, s, retain_graph.value_or(create_graph), create_graph);
}

}  // namespace soma::autograd
