// matmul (torch.matmul: vectors, batch broadcasting), bmm, addmm, outer and dot: products
// through BLAS, with the backward dA = dC @ B^T, dB = A^T @ dC (transposes are views: BLAS gets
// transpose flags), written with the product itself so it is differentiable again.
#include "soma/ops/matmul.h"

#include <algorithm>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "ops/trace.h"
#include "soma/core/autocast.h"
#include "soma/ops/elementwise.h"
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

// The BLAS product of two 2-D or 3-D operands of one floating dtype (a 2-D operand, or a 3-D one
// of batch 1, is broadcast over the other's batch). Records `name` with a backward made of
// mm_core itself on the captured inputs, so it is differentiable again.
Tensor mm_core(const Tensor& a, const Tensor& b, const char* name) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  SOMA_CHECK(b.size(-2) == k, name, ": shapes ", a.shape(), " and ", b.shape(),
             " cannot be multiplied (", k, " != ", b.size(-2), ")");
  const int64_t ba = a.dim() == 3 ? a.size(0) : 1, bb = b.dim() == 3 ? b.size(0) : 1;
  SOMA_CHECK(ba == bb || ba == 1 || bb == 1, name, ": batch sizes of shapes ", a.shape(), " and ",
             b.shape(), " differ (", ba, " vs ", bb, ")");
  const int64_t batch = std::max(ba, bb);
  const bool batched = a.dim() == 3 || b.dim() == 3;
  const Shape shape = batched ? Shape{batch, m, n} : Shape{m, n};
  if (!is_floating(a.dtype())) {
    // integer products (no BLAS, no gradient): sum over k of the broadcast products (int64;
    // int8/int32 operands get their promoted dtype back, wrapping as torch's int8/int32 matmul)
    const Tensor r = sum(unsqueeze(a, -1) * unsqueeze(b, -3), -2);
    const DType ab = promote_types(a.dtype(), b.dtype());
    return ab == kInt8 || ab == kInt32 ? r.to(ab) : r;
  }
  Tensor out = detail::make_tensor(shape, a.dtype());
  // soma::autocast: float32 products in bfloat16; the backward replays the same choice
  const bool bf16 = a.dtype() == kFloat32 && is_autocast_enabled();

  detail::dispatch_float(a.dtype(), name, [&]<typename T>() {
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
      kernels::gemm_precision<T>(bf16, A.trans, B.trans, m, n, k, T(1), pa, A.ld, pb, B.ld, T(0), c,
                                 n);
    else if (bf16)
      for (int64_t i = 0; i < batch; ++i)
        kernels::gemm_precision<T>(true, A.trans, B.trans, m, n, k, T(1), pa + i * sa, A.ld,
                                   pb + i * sb, B.ld, T(0), c + i * m * n, n);
    else
      kernels::call<kernels::GemmBatched<T>>(A.trans, B.trans, batch, m, n, k, pa, sa, A.ld, pb, sb,
                                             B.ld, c);
  });

  if (needs_grad(a, b)) {
    record(out, name, {a, b},
           [a, b, ra = a.requires_grad(), rb = b.requires_grad(), name,
            bf16](const Tensor& g) -> Grads {
             const detail::AutocastScope precision(bf16);
             Tensor ga, gb;
             if (ra) ga = sum_to(mm_core(g, transpose(b, -1, -2), name), a.shape());
             if (rb) gb = sum_to(mm_core(transpose(a, -1, -2), g, name), b.shape());
             return {ga, gb};
           },
           {a, b});
  }
  return out;
}

void check_pair(const Tensor& a, const Tensor& b, const char* name) {
  SOMA_CHECK(a.defined() && b.defined(), name, ": called with an undefined tensor");
  SOMA_CHECK(a.dtype() == b.dtype(), name, ": expected both operands to have the same dtype, got ",
             a.dtype(), " and ", b.dtype(), " (shapes ", a.shape(), " and ", b.shape(), ")");
}

}  // namespace

static Tensor matmul_untraced(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "matmul");
  SOMA_CHECK(a.dim() >= 1 && b.dim() >= 1,
             "matmul: both arguments need at least 1 dimension, got shapes ", a.shape(), " and ",
             b.shape());
  if (a.dim() == 1 && b.dim() == 1) return dot(a, b);
  // Vectors are promoted to matrices and the added dimension removed afterwards (as PyTorch).
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  if (a.dim() <= 3 && b.dim() <= 3 && (a.dim() == 2 || b.dim() == 2 || a.size(0) == b.size(0)))
    return mm_core(a, b, "matmul");
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  SOMA_CHECK(b.size(-2) == k, "matmul: shapes ", a.shape(), " and ", b.shape(),
             " cannot be multiplied (", k, " != ", b.size(-2), ")");
  if (b.dim() == 2) {
    // [..., M, K] @ [K, N]: one [(...) M, K] @ [K, N] product
    Shape s(a.shape().begin(), a.shape().end() - 1);
    s.push_back(n);
    return reshape(mm_core(reshape(a, {-1, k}), b, "matmul"), s);
  }
  const Shape sa(a.shape().begin(), a.shape().end() - 2),
      sb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(sa, sb, "matmul");
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {m, k});
  eb.insert(eb.end(), {k, n});
  const Tensor a3 = reshape(expand(a, ea), {nb, m, k});
  const Tensor b3 = reshape(expand(b, eb), {nb, k, n});
  batch.insert(batch.end(), {m, n});
  return reshape(mm_core(a3, b3, "matmul"), batch);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  trace::Scope ts;
  Tensor out = matmul_untraced(a, b);
  if (ts) ts.record("matmul", {a, b}, out);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "bmm");
  SOMA_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-D tensors, got shapes ", a.shape(),
             " and ", b.shape());
  SOMA_CHECK(a.size(0) == b.size(0), "bmm: batch sizes of shapes ", a.shape(), " and ", b.shape(),
             " differ (", a.size(0), " vs ", b.size(0), ")");
  return mm_core(a, b, "bmm");
}

static Tensor addmm_untraced(const Tensor& input, const Tensor& mat1, const Tensor& mat2,
                             const Scalar& beta, const Scalar& alpha) {
  SOMA_CHECK(input.defined(), "addmm: called with an undefined input");
  check_pair(mat1, mat2, "addmm");
  SOMA_CHECK(input.dtype() == mat1.dtype(), "addmm: expected input of dtype ", mat1.dtype(),
             ", got ", input.dtype());
  SOMA_CHECK(mat1.dim() == 2 && mat2.dim() == 2, "addmm: expected 2-D matrices, got shapes ",
             mat1.shape(), " and ", mat2.shape());
  const Shape shape{mat1.size(0), mat2.size(1)};
  SOMA_CHECK(broadcast_shapes(input.shape(), shape, "addmm") == shape, "addmm: input of shape ",
             input.shape(), " cannot be broadcast to the product's shape ", shape);
  Tensor r = mm_core(mat1, mat2, "addmm");
  if (alpha.to_double() != 1.0) r = r * alpha;
  if (beta.to_double() == 0.0) {
    // the input is ignored (its NaNs too), as PyTorch; it still gets a (zero) gradient
    if (!needs_grad(input)) return r;
    return where(ones({}, kBool), r, input);
  }
  return r + (beta.to_double() == 1.0 ? input : input * beta);
}

Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Scalar& beta,
             const Scalar& alpha) {
  trace::Scope ts;
  Tensor out = addmm_untraced(input, mat1, mat2, beta, alpha);
  if (ts)
    ts.record("addmm", {input, mat1, mat2}, out,
              {{"beta", beta.to_double()}, {"alpha", alpha.to_double()}});
  return out;
}

Tensor outer(const Tensor& a, const Tensor& b) {
  SOMA_CHECK(a.defined() && b.defined(), "outer: called with an undefined tensor");
  SOMA_CHECK(a.dim() == 1 && b.dim() == 1, "outer: expected 1-D arguments, got shapes ", a.shape(),
             " and ", b.shape());
  return unsqueeze(a, 1) * b;
}

Tensor dot(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "dot");
  SOMA_CHECK(a.dim() == 1 && b.dim() == 1, "dot: expected 1-D tensors, got shapes ", a.shape(),
             " and ", b.shape());
  SOMA_CHECK(a.size(0) == b.size(0), "dot: inconsistent tensor size, expected tensor [", a.size(0),
             "] and src [", b.size(0), "] to have the same number of elements");
  if (!is_floating(a.dtype())) return sum(a * b);
  return reshape(mm_core(unsqueeze(a, 0), unsqueeze(b, 1), "dot"), {});
}

Tensor Tensor::bmm(const Tensor& other) const {
  return soma::bmm(*this, other);
}
Tensor Tensor::addmm(const Tensor& mat1, const Tensor& mat2, const Scalar& beta,
                     const Scalar& alpha) const {
  return soma::addmm(*this, mat1, mat2, beta, alpha);
}
Tensor Tensor::outer(const Tensor& other) const {
  return soma::outer(*this, other);
}
Tensor Tensor::dot(const Tensor& other) const {
  return soma::dot(*this, other);
}

Tensor Tensor::matmul(const Tensor& other) const {
  return soma::matmul(*this, other);
}

}  // namespace soma
