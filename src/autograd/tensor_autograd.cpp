// The autograd entry points of Tensor: requires_grad_, grad, backward, detach, grad_fn.
// (Tensor's storage and metadata are core/; these reach the graph and the engine.)
#include "autograd/node.h"
#include "core/tensor_impl.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/core/tensor.h"

namespace soma {
using detail::impl_of;

// ---- autograd ------------------------------------------------------------------------------
bool Tensor::requires_grad() const {
  return impl_of(*this, "requires_grad").requires_grad;
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  TensorImpl& impl = const_cast<TensorImpl&>(impl_of(*this, "requires_grad_"));
  SOMA_CHECK(!requires_grad || supports_autograd(impl.dtype),
             "requires_grad_: only float32 and float64 tensors can require gradients (soma's ",
             "autograd does not differentiate bfloat16/float16 or integer tensors), got ",
             impl.dtype);
  SOMA_CHECK(impl.grad_fn == nullptr || requires_grad,
             "requires_grad_: cannot turn off requires_grad on a non-leaf tensor (produced by ",
             impl.grad_fn ? impl.grad_fn->name : "", "); use detach()");
  impl.requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  return impl_of(*this, "grad").grad;
}

void Tensor::set_grad(const Tensor& grad) {
  TensorImpl& impl = const_cast<TensorImpl&>(impl_of(*this, "set_grad"));
  if (grad.defined())
    SOMA_CHECK(grad.shape() == impl.shape && grad.dtype() == impl.dtype, "set_grad: gradient of ",
               "shape ", grad.shape(), " and dtype ", grad.dtype(), " does not match tensor of ",
               "shape ", impl.shape, " and dtype ", impl.dtype);
  impl.grad = grad.defined() ? grad.detach() : Tensor();
}

void Tensor::zero_grad(bool set_to_none) {
  TensorImpl& impl = const_cast<TensorImpl&>(impl_of(*this, "zero_grad"));
  if (set_to_none || !impl.grad.defined()) {
    impl.grad = Tensor();
  } else {
    NoGradGuard no_grad;
    impl.grad.zero_();
  }
}

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph,
                      bool create_graph) const {
  const TensorImpl& impl = impl_of(*this, "backward");
  SOMA_CHECK(impl.requires_grad, "backward: the tensor does not require grad and has no grad_fn ",
             "(shape ", impl.shape, ")");
  Tensor g = gradient;
  if (!g.defined()) {
    SOMA_CHECK(impl.numel == 1, "backward: grad can be implicitly created only for a one-element ",
               "output, got shape ", impl.shape, "; pass a gradient");
    g = ones(impl.shape, impl.dtype);
  } else {
    SOMA_CHECK(g.shape() == impl.shape && g.dtype() == impl.dtype, "backward: gradient of shape ",
               g.shape(), " and dtype ", g.dtype(), " does not match the output's shape ",
               impl.shape, " and dtype ", impl.dtype);
    if (!create_graph) g = g.detach();
  }
  autograd::run_backward(std::span<const Tensor>(this, 1), std::span<const Tensor>(&g, 1),
                         retain_graph.value_or(create_graph), create_graph);
}

unsigned Tensor::register_hook_fn(std::function<Tensor(const Tensor&)> hook) {
  TensorImpl& impl = const_cast<TensorImpl&>(impl_of(*this, "register_hook"));
  SOMA_CHECK(impl.requires_grad, "register_hook: cannot register a hook on a tensor that does not ",
             "require grad (shape ", impl.shape, ")");
  const unsigned id = autograd::next_hook_id();
  if (impl.grad_fn)
    impl.grad_fn->pre_hooks.emplace_back(id, std::move(hook));
  else
    impl.hooks.emplace_back(id, std::move(hook));
  return id;
}

void Tensor::remove_hook(unsigned id) {
  TensorImpl& impl = const_cast<TensorImpl&>(impl_of(*this, "remove_hook"));
  auto erase = [id](auto& hooks) {
    const size_t before = hooks.size();
    std::erase_if(hooks, [id](const auto& h) { return h.first == id; });
    return hooks.size() != before;
  };
  const bool removed = impl.grad_fn ? erase(impl.grad_fn->pre_hooks) : erase(impl.hooks);
  SOMA_CHECK(removed, "remove_hook: no hook ", id, " on this tensor");
}

void Tensor::retain_grad() {
  TensorImpl& impl = const_cast<TensorImpl&>(impl_of(*this, "retain_grad"));
  SOMA_CHECK(impl.requires_grad, "retain_grad: cannot retain the gradient of a tensor that does ",
             "not require grad (shape ", impl.shape, ")");
  if (impl.grad_fn) impl.grad_fn->retains = impl_;
}

bool Tensor::retains_grad() const {
  const TensorImpl& impl = impl_of(*this, "retains_grad");
  return impl.grad_fn && impl.grad_fn->retains.lock().get() == &impl;
}

Tensor Tensor::detach() const {
  const TensorImpl& impl = impl_of(*this, "detach");
  return detail::make_view(*this, impl.shape, impl.strides, impl.offset);
}

bool Tensor::is_leaf() const {
  return impl_of(*this, "is_leaf").grad_fn == nullptr;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  return impl_of(*this, "grad_fn").grad_fn;
}

}  // namespace soma
