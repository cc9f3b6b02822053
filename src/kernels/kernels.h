// The kernels ops call (internal): one entry per kernel, each routed through the registry
// (kernels/registry.h), which picks the implementation by dtype (one slot per element type),
// CPU features and the preferred backend. The implementations live in kernels/<backend>/ and
// are registered in kernels/register.cpp. Callers pass buffers, shapes and strides.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/fold.h"
#include "kernels/cpu/loop.h"
#include "kernels/cpu/lowp.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/shape.h"
#include "kernels/cpu/small_gemm.h"
#include "kernels/registry.h"
#include "soma/core/tensor.h"

namespace soma::kernels {

using cpu::AdadeltaArgs;
using cpu::AdagradArgs;
using cpu::AdamArgs;
using cpu::AdamMode;
using cpu::RmspropArgs;
using cpu::SgdArgs;

// ---- the slots: a tag per kernel (and element type) fixing the signature -----------------
#define SOMA_KERNEL_SLOT(Tag, kname, ...)      \
  template <typename T>                        \
  struct Tag {                                 \
    using Fn = void(__VA_ARGS__);              \
    static constexpr const char* name = kname; \
  };

/// C = alpha op(A) op(B) + beta C, row-major (see kernels/cpu/gemm.h).
SOMA_KERNEL_SLOT(Gemm, "gemm", bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,
                 const T*, int64_t, T, T*, int64_t)
/// C_i = op(A_i) op(B_i) for i < batch, C_i at c + i m n (contiguous), A_i at a + i sa, B_i at
/// b + i sb (a stride of 0 broadcasts one matrix).
SOMA_KERNEL_SLOT(GemmBatched, "gemm_batched", bool, bool, int64_t, int64_t, int64_t, int64_t,
                 const T*, int64_t, int64_t, const T*, int64_t, int64_t, T*)
/// out[o, i] = sum_k x[o, k, i] over a contiguous [outer, n, inner] buffer.
SOMA_KERNEL_SLOT(SumDim, "sum_dim", const T*, T*, int64_t, int64_t, int64_t)
/// Max (or min) and the first index attaining it along k of [outer, n, inner]; NaN wins.
SOMA_KERNEL_SLOT(ExtremumDim, "extremum_dim", const T*, T*, int64_t*, int64_t, int64_t, int64_t,
                 bool)
SOMA_KERNEL_SLOT(SoftmaxForward, "softmax_forward", const T*, T*, int64_t, int64_t, int64_t, bool)
SOMA_KERNEL_SLOT(SoftmaxBackward, "softmax_backward", const T*, const T*, T*, int64_t, int64_t,
                 int64_t, bool)
/// Inverted dropout with Philox draws (see kernels/cpu/dropout.h).
SOMA_KERNEL_SLOT(Dropout, "dropout", const T*, T*, T*, int64_t, double, uint64_t)
SOMA_KERNEL_SLOT(SgdUpdate, "sgd_update", int64_t, T*, const T*, T*, const SgdArgs<T>&)
SOMA_KERNEL_SLOT(AdamUpdate, "adam_update", int64_t, T*, const T*, T*, T*, T*, const AdamArgs<T>&)
SOMA_KERNEL_SLOT(RmspropUpdate, "rmsprop_update", int64_t, T*, const T*, T*, T*, T*,
                 const RmspropArgs<T>&)
SOMA_KERNEL_SLOT(AdagradUpdate, "adagrad_update", int64_t, T*, const T*, T*, const AdagradArgs<T>&)
SOMA_KERNEL_SLOT(AdadeltaUpdate, "adadelta_update", int64_t, T*, const T*, T*, T*,
                 const AdadeltaArgs<T>&)
/// The data transforms' loops (kernels/cpu/data.h): per-channel normalise to float32.
SOMA_KERNEL_SLOT(Normalize, "normalize", const T*, float*, int64_t, int64_t, int64_t, double,
                 const double*, const double*)
/// dst = scale * src, dst += src, and whether a buffer is all finite (contiguous, n elements).
SOMA_KERNEL_SLOT(ScaledCopy, "scaled_copy", T*, const T*, int64_t, T)
SOMA_KERNEL_SLOT(AddInto, "add_into", T*, const T*, int64_t)
SOMA_KERNEL_SLOT(AllFinite, "all_finite", const T*, int64_t, bool*)
// toolkit: shape and copy
/// nn::functional::unfold / fold (kernels/cpu/fold.h); col2im accumulates into a zeroed image.
SOMA_KERNEL_SLOT(Im2Col, "im2col", const T*, T*, const cpu::FoldGeometry&)
SOMA_KERNEL_SLOT(Col2Im, "col2im", const T*, T*, const cpu::FoldGeometry&)
/// dst[o, idx[j], :] += src[o, j, :] (kernels/cpu/shape.h): index_select's adjoint.
SOMA_KERNEL_SLOT(IndexAddRows, "index_add_rows", const T*, T*, int64_t, int64_t, const int64_t*,
                 int64_t, int64_t)

// toolkit: indexing
/// out[i] = x[lin[i]] and out[lin[i]] = v[i] (+= with accumulate, in the order i = 0..n-1, so
/// a repeated position keeps the last value or the sum in index order) over contiguous buffers
/// (ops/indexing.cpp: every indexing op's take and put; kernels/cpu/indexing.cpp).
SOMA_KERNEL_SLOT(TakeFlat, "take_flat", const T*, const int64_t*, T*, int64_t)
SOMA_KERNEL_SLOT(PutFlat, "put_flat", T*, const int64_t*, const T*, int64_t, bool)
namespace cpu {
template <typename T>
void take_flat(const T* x, const int64_t* lin, T* out, int64_t n);
template <typename T>
void take_flat_reference(const T* x, const int64_t* lin, T* out, int64_t n);
template <typename T>
void put_flat(T* out, const int64_t* lin, const T* v, int64_t n, bool accumulate);
template <typename T>
void put_flat_reference(T* out, const int64_t* lin, const T* v, int64_t n, bool accumulate);
}  // namespace cpu

// toolkit: reductions, sorting
/// Running sum / product along k of [outer, n, inner] (reverse: from the end), see cpu/sort.h.
SOMA_KERNEL_SLOT(ScanDim, "scan_dim", const T*, T*, int64_t, int64_t, int64_t, bool, bool)
/// Stable sorting order (int64 indices) along k of [outer, n, inner]; NaN is the largest value.
SOMA_KERNEL_SLOT(SortDim, "sort_dim", const T*, int64_t*, int64_t, int64_t, int64_t, bool)

// toolkit: math

// toolkit: activations, factories

// cnn: convolution (kernels/cpu/conv.h)
SOMA_KERNEL_SLOT(ConvForward, "conv_forward", const T*, const T*, const T*, T*,
                 const cpu::ConvGeometry&)
SOMA_KERNEL_SLOT(ConvBackwardInput, "conv_backward_input", const T*, const T*, T*,
                 const cpu::ConvGeometry&)
SOMA_KERNEL_SLOT(ConvBackwardWeight, "conv_backward_weight", const T*, const T*, T*, T*,
                 const cpu::ConvGeometry&)

// cnn: pooling, upsampling (kernels/cpu/pool.h)
/// Max pooling with flat int64 indices into each plane, and the scatter-add of gy at them.
SOMA_KERNEL_SLOT(MaxPoolForward, "max_pool_forward", const T*, T*, int64_t*,
                 const cpu::PoolGeometry&)
SOMA_KERNEL_SLOT(MaxPoolBackward, "max_pool_backward", const T*, const int64_t*, T*,
                 const cpu::PoolGeometry&)
/// Average pooling and its adjoint (gx zero-filled by the kernel).
SOMA_KERNEL_SLOT(AvgPoolForward, "avg_pool_forward", const T*, T*, const cpu::PoolGeometry&)
SOMA_KERNEL_SLOT(AvgPoolBackward, "avg_pool_backward", const T*, T*, const cpu::PoolGeometry&)
SOMA_KERNEL_SLOT(AdaptiveMaxPoolForward, "adaptive_max_pool_forward", const T*, T*, int64_t*,
                 const cpu::PoolGeometry&)

// cnn: normalisation (kernels/cpu/norm.h; x viewed as [A, C, B], statistics per c)
SOMA_KERNEL_SLOT(NormStats, "norm_stats", const T*, int64_t, int64_t, int64_t, T*, T*)
SOMA_KERNEL_SLOT(NormAffine, "norm_affine", const T*, T*, int64_t, int64_t, int64_t, const T*,
                 const T*, const T*)
SOMA_KERNEL_SLOT(LayerNormApply, "layer_norm_apply", const T*, T*, int64_t, int64_t, const T*,
                 const T*, const T*, const T*)
SOMA_KERNEL_SLOT(NormBackwardReduce, "norm_backward_reduce", const T*, const T*, int64_t, int64_t,
                 int64_t, const T*, T*, T*)
SOMA_KERNEL_SLOT(NormBackwardApply, "norm_backward_apply", const T*, const T*, T*, int64_t, int64_t,
                 int64_t, const T*, const T*, const T*, const T*)

#undef SOMA_KERNEL_SLOT

/// dst[i] = convert(src[i]) over equal shapes, any strides and dtypes.
struct Copy {
  using Fn = void(Tensor&, const Tensor&);
  static constexpr const char* name = "copy";
};
/// Gathers rows: out[o, j, :] = x[o, idx[j], :] for a contiguous x viewed as
/// [outer, size, row_bytes] bytes; out is [outer, m, row_bytes].
struct GatherRows {
  using Fn = void(const char*, char*, int64_t, int64_t, const int64_t*, int64_t, int64_t);
  static constexpr const char* name = "gather_rows";
};

/// Zero-padded crop and per-sample horizontal flip, on elements of any size (kernels/cpu/data.h).
struct PadCrop {
  using Fn = void(const void*, void*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                  int64_t, const int64_t*, const int64_t*);
  static constexpr const char* name = "pad_crop";
};
struct HFlip {
  using Fn = void(const void*, void*, int64_t, int64_t, int64_t, int64_t, const uint8_t*);
  static constexpr const char* name = "hflip";
};

/// nn::Linear's float32 inference at batch 1 to cpu::kSmallGemmMaxRows against its weight packed
/// once (kernels/cpu/small_gemm.h); returns false when declined (the caller then uses Gemm).
struct LinearSmallF32 {
  using Fn = bool(int64_t, const float*, int64_t, const cpu::PackedF32&, const float*, float*,
                  int64_t);
  static constexpr const char* name = "linear_small_f32";
};

// The low-precision slots (LowpGemmU8S8S32, LowpGemmBf16, ...) are in kernels/kernels_lowp.h.

/// The strided n-d loop under every elementwise op (kernels/cpu/loop.h): calls f for each
/// innermost row; the reference visits one element at a time on one thread.
template <int K>
struct RowLoop {
  using Fn = void(const cpu::StridedLoop<K>&, cpu::RowFn);
  static constexpr const char* name = "strided_loop";
};

// ---- what ops call -------------------------------------------------------------------------
template <typename Tag, typename... Args>
inline void call(Args&&... args) {
  Kernel<Tag>::get()(std::forward<Args>(args)...);
}

template <int K, typename F>
inline void for_each_row(const cpu::StridedLoop<K>& loop, F&& f) {
  Kernel<RowLoop<K>>::get()(loop, cpu::RowFn(f));
}

template <typename T>
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  call<Gemm<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// gemm<T>, or for float32 with `bf16` the bfloat16 product with float32 accumulation
/// (lowp::gemm_bf16): what soma::autocast turns the float32 products into.
template <typename T>
inline void gemm_precision(bool bf16, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha,
                           const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                           int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) {
      lowp::gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
  gemm<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace soma::kernels
