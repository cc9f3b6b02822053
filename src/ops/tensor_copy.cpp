// Tensor methods that copy through the copy kernel: contiguous(), clone(), to(dtype). Each is
// differentiable (the gradient flows back converted to the source dtype).
#include "autograd/node.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "ops/trace.h"
#include "soma/core/error.h"
#include "soma/core/tensor.h"

namespace soma {
using detail::impl_of;

namespace {

// A contiguous copy of `src` with `dtype`, recorded as op `name` (gradient flows back converted
// to the source dtype).
Tensor copy_as(const Tensor& src, DType dtype, const char* name) {
  Tensor out = detail::make_tensor(src.shape(), dtype);
  kernels::call<kernels::Copy>(out, src);
  if (is_floating(dtype) && autograd::needs_grad(src)) {
    const DType src_dtype = src.dtype();
    autograd::record(out, name, {src},
                     [src_dtype](const Tensor& g) -> autograd::Grads { return {g.to(src_dtype)}; });
  }
  return out;
}

}  // namespace

Tensor Tensor::contiguous() const {
  if (impl_of(*this, "contiguous").contiguous) return *this;
  trace::Scope ts;
  Tensor out = copy_as(*this, dtype(), "contiguous");
  if (ts) ts.record("contiguous", {*this}, out);
  return out;
}

Tensor Tensor::clone() const {
  impl_of(*this, "clone");
  return copy_as(*this, dtype(), "clone");
}

Tensor Tensor::to(DType dtype) const {
  if (impl_of(*this, "to").dtype == dtype) return *this;
  return copy_as(*this, dtype, "to");
}

}  // namespace soma
