// nn::functional::linear (fused bias + GEMM), forward and backward side by side, and flatten,
// which shapes a linear layer's input.
#include <algorithm>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/trace.h"
#include "soma/core/autocast.h"
#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/ops/matmul.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma::nn::functional {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

// x [B, N] (leading dims flattened), weight [M, N], bias [M]:
//   y = x W^T + b          (bias rows written first, then GEMM with beta = 1)
//   dx = dy W,  dW = dy^T x,  db = sum_B dy   (fused GEMMs; matmul under create_graph)
static Tensor linear_untraced(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  SOMA_CHECK(x.defined() && weight.defined(), "linear: called with an undefined tensor");
  SOMA_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got shape ", weight.shape());
  SOMA_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input of shape ", x.shape(),
             " has ", x.dim() >= 1 ? x.size(-1) : 0, " features, weight of shape ", weight.shape(),
             " expects ", weight.size(1));
  SOMA_CHECK(x.dtype() == weight.dtype(), "linear: input dtype ", x.dtype(),
             " differs from weight dtype ", weight.dtype());
  const int64_t M = weight.size(0), N = weight.size(1);
  if (bias.defined()) {
    SOMA_CHECK(bias.shape() == Shape{M}, "linear: bias of shape ", bias.shape(),
               " does not match weight of shape ", weight.shape());
    SOMA_CHECK(bias.dtype() == x.dtype(), "linear: bias dtype ", bias.dtype(),
               " differs from input dtype ", x.dtype());
  }
  const Tensor x2 = reshape(x.detach(), {-1, N}).contiguous();
  const Tensor w = weight.detach().contiguous();
  const int64_t B = x2.size(0);
  Shape out_shape = x.shape();
  out_shape.back() = M;
  Tensor out = empty({B, M}, x.dtype());
  // soma::autocast: the products of float32 inputs in bfloat16 (forward and backward alike)
  const bool bf16 = x.dtype() == kFloat32 && is_autocast_enabled();
  detail::dispatch_float(x.dtype(), "linear", [&]<typename T>() {
    T* y = out.data<T>();
    T beta = T(0);
    if (bias.defined()) {
      const Tensor b = bias.detach().contiguous();
      const T* pb = b.data<T>();
      for (int64_t i = 0; i < B; ++i) std::copy(pb, pb + M, y + i * M);
      beta = T(1);
    }
    if (N == 0) {
      if (!bias.defined()) std::fill_n(y, B * M, T(0));
    } else if (B > 0 && M > 0) {
      kernels::gemm_precision<T>(bf16, false, true, B, M, N, T(1), x2.data<T>(), N, w.data<T>(), N,
                                 beta, y, M);
    }
  });
  out = out.view(out_shape);
  if (needs_grad(x, weight, bias)) {
    record(
        out, "linear", {x, weight, bias},
        [x, weight, x2, w, x_shape = x.shape(), rx = x.requires_grad(), rw = weight.requires_grad(),
         rb = bias.defined() && bias.requires_grad(), M, N, bf16](const Tensor& g) -> Grads {
          Tensor dx, dw, db;
          if (autograd::is_grad_enabled()) {
            const detail::AutocastScope precision(bf16);
            // create_graph: the same products from differentiable ops, on x and weight as-is
            const Tensor g2 = reshape(g, {-1, M});
            if (rx) dx = reshape(matmul(g2, weight), x_shape);
            if (rw) dw = matmul(t(g2), reshape(x, {-1, N}));
            if (rb) db = sum(g2, 0);
            return {dx, dw, db};
          }
          const Tensor g2 = reshape(g, {-1, M}).contiguous();
          const int64_t B = g2.size(0);
          detail::dispatch_float(g.dtype(), "linear backward", [&]<typename T>() {
            if (rx) {
              dx = empty({B, N}, g.dtype());
              kernels::gemm_precision<T>(bf16, false, false, B, N, M, T(1), g2.data<T>(), M,
                                         w.data<T>(), N, T(0), dx.data<T>(), N);
              dx = dx.view(x_shape);
            }
            if (rw) {
              dw = empty({M, N}, g.dtype());
              kernels::gemm_precision<T>(bf16, true, false, M, N, B, T(1), g2.data<T>(), M,
                                         x2.data<T>(), N, T(0), dw.data<T>(), N);
            }
          });
          if (rb) db = sum(g2, 0);
          return {dx, dw, db};
        },
        {x2, w});
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  trace::Scope ts;
  Tensor out = linear_untraced(x, weight, bias);
  if (ts) ts.record("linear", {x, weight, bias}, out);
  return out;
}

// ---- flatten -------------------------------------------------------------------------------
Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  return soma::flatten(x, start_dim, end_dim);
}

}  // namespace soma::nn::functional
