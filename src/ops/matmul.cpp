// matmul: 2-D and batched 3-D products through BLAS, with its backward
//   dA = dC @ B^T,   dB = A^T @ dC   (transposes are views: BLAS gets transpose flags).
#include "soma/ops/matmul.h"

#include <algorithm>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

// How BLAS reads one matrix of a (possibly batched) operand.
struct Operand {
  Tensor t;            // the tensor whose storage is read (x itself, or a contiguous copy)
  bool trans = false;  // stored transposed
  int64_t ld = 1;      // leading dimension
  int64_t batch_stride = 0;
};

// Rows/cols are the last two dims; a 2-D operand in a batched product has batch stride 0.
Operand blas_operand(const Tensor& x) {
  const int64_t nd = x.dim(), rows = x.size(nd - 2), cols = x.size(nd - 1);
  const int64_t s0 = x.stride(nd - 2), s1 = x.stride(nd - 1);
  Operand op{x};
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(1, cols)) {
    op.ld = s0;
  } else if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(1, rows)) {
    op.trans = true;
    op.ld = s1;
  } else {
    op.t = x.contiguous();
    op.ld = std::max<int64_t>(1, cols);
  }
  if (nd == 3) op.batch_stride = op.t.stride(0);
  return op;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  SOMA_CHECK(a.defined() && b.defined(), "matmul: called with an undefined tensor");
  SOMA_CHECK(a.dtype() == b.dtype(), "matmul: dtypes ", a.dtype(), " and ", b.dtype(), " differ");
  SOMA_CHECK(a.dim() >= 1 && a.dim() <= 3 && b.dim() >= 1 && b.dim() <= 3,
             "matmul: supports 1-D, 2-D and 3-D tensors, got shapes ", a.shape(), " and ",
             b.shape());
  // Vectors are promoted to matrices and the added dimension removed afterwards (as PyTorch).
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), b.dim() == 1 ? -1 : -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);

  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  SOMA_CHECK(b.size(-2) == k, "matmul: shapes ", a.shape(), " and ", b.shape(),
             " cannot be multiplied (", k, " != ", b.size(-2), ")");
  const int64_t ba = a.dim() == 3 ? a.size(0) : 1, bb = b.dim() == 3 ? b.size(0) : 1;
  SOMA_CHECK(ba == bb || ba == 1 || bb == 1, "matmul: batch sizes of shapes ", a.shape(), " and ",
             b.shape(), " differ (", ba, " vs ", bb, ")");
  const int64_t batch = std::max(ba, bb);
  const bool batched = a.dim() == 3 || b.dim() == 3;
  Tensor out = detail::make_tensor(batched ? Shape{batch, m, n} : Shape{m, n}, a.dtype());

  detail::dispatch_float(a.dtype(), "matmul", [&]<typename T>() {
    T* c = out.data<T>();
    if (k == 0) {
      std::fill_n(c, out.numel(), T(0));
      return;
    }
    if (out.numel() == 0) return;
    const Operand A = blas_operand(a), B = blas_operand(b);
    const T* pa = reinterpret_cast<const T*>(A.t.impl()->bytes());
    const T* pb = reinterpret_cast<const T*>(B.t.impl()->bytes());
    const int64_t sa = ba == 1 ? 0 : A.batch_stride, sb = bb == 1 ? 0 : B.batch_stride;
    if (batch == 1)
      kernels::gemm<T>(A.trans, B.trans, m, n, k, T(1), pa, A.ld, pb, B.ld, T(0), c, n);
    else
      kernels::call<kernels::GemmBatched<T>>(A.trans, B.trans, batch, m, n, k, pa, sa, A.ld, pb, sb,
                                             B.ld, c);
  });

  if (needs_grad(a, b)) {
    record(out, "matmul", {a, b},
           [a = a.detach(), b = b.detach(), ra = a.requires_grad(),
            rb = b.requires_grad()](const Tensor& g) -> Grads {
             Tensor ga, gb;
             if (ra) ga = sum_to(matmul(g, transpose(b, -1, -2)), a.shape());
             if (rb) gb = sum_to(matmul(transpose(a, -1, -2), g), b.shape());
             return {ga, gb};
           },
           {a, b});
  }
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const {
  return soma::matmul(*this, other);
}

}  // namespace soma
