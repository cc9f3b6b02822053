// Every kernel implementation, registered under its backend (see kernels/registry.h). Adding
// an implementation is a new file under kernels/<backend>/ plus one line here, for example
//   Kernel<Gemm<float>>::add("onednn", 200, &onednn::gemm<float>, &onednn::available);
// Backends today:
//   openblas / cpu  the fast kernels (OpenBLAS GEMM; soma's vectorised, threaded loops)
//   onednn / tuned  float32 convolutions on oneDNN (SOMA_ONEDNN builds); "tuned" (the default)
//                   picks oneDNN or cpu per shape (kernels/onednn/conv.h)
//   vnni / avx512 / avx512_bf16
//                   the low-precision kernels (kernels/cpu/lowp.h) by CPU feature: AVX-512
//                   VNNI int8, AVX-512BW int8 and conversions, AVX-512 BF16 GEMM; registered
//                   with an availability test on kernels::cpu_features() (SOMA_MAX_CPU_ISA)
//   reference       naive loops on one thread (long double accumulation where it matters):
//                   `SOMA_KERNELS=reference` runs any program, and the op test table in ctest
//                   (kernels.reference_backend), on them.
#include "kernels/cpu/copy.h"
#include "kernels/cpu/data.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/fold.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loop.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/shape.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/sort.h"
#include "kernels/cpu/vector.h"
#include "kernels/kernels.h"
#include "kernels/kernels_lowp.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/conv.h"
#include "kernels/onednn/gemm.h"
#endif

namespace soma::kernels {

namespace {

template <typename T>
void register_float() {
  Kernel<Gemm<T>>::add("openblas", 100, &cpu::gemm<T>);
  Kernel<Gemm<T>>::add("reference", 0, &cpu::gemm_reference<T>);
  Kernel<GemmBatched<T>>::add("cpu", 100, &cpu::gemm_batched<T>);
  Kernel<GemmBatched<T>>::add("reference", 0, &cpu::gemm_batched_reference<T>);
  Kernel<SoftmaxForward<T>>::add("cpu", 100, &cpu::softmax_forward<T>);
  Kernel<SoftmaxForward<T>>::add("reference", 0, &cpu::softmax_reference<T>);
  Kernel<SoftmaxBackward<T>>::add("cpu", 100, &cpu::softmax_backward<T>);
  Kernel<SoftmaxBackward<T>>::add("reference", 0, &cpu::softmax_backward_reference<T>);
  Kernel<Dropout<T>>::add("cpu", 100, &cpu::dropout<T>);
  Kernel<Dropout<T>>::add("reference", 0, &cpu::dropout_reference<T>);
  Kernel<SgdUpdate<T>>::add("cpu", 100, &cpu::sgd_update<T>);
  Kernel<SgdUpdate<T>>::add("reference", 0, &cpu::sgd_update_reference<T>);
  Kernel<AdamUpdate<T>>::add("cpu", 100, &cpu::adam_update<T>);
  Kernel<AdamUpdate<T>>::add("reference", 0, &cpu::adam_update_reference<T>);
  Kernel<RmspropUpdate<T>>::add("cpu", 100, &cpu::rmsprop_update<T>);
  Kernel<RmspropUpdate<T>>::add("reference", 0, &cpu::rmsprop_update_reference<T>);
  Kernel<AdagradUpdate<T>>::add("cpu", 100, &cpu::adagrad_update<T>);
  Kernel<AdagradUpdate<T>>::add("reference", 0, &cpu::adagrad_update_reference<T>);
  Kernel<AdadeltaUpdate<T>>::add("cpu", 100, &cpu::adadelta_update<T>);
  Kernel<AdadeltaUpdate<T>>::add("reference", 0, &cpu::adadelta_update_reference<T>);
  Kernel<ScaledCopy<T>>::add("cpu", 100, &cpu::scaled_copy<T>);
  Kernel<ScaledCopy<T>>::add("reference", 0, &cpu::scaled_copy_reference<T>);
  Kernel<AddInto<T>>::add("cpu", 100, &cpu::add_into<T>);
  Kernel<AddInto<T>>::add("reference", 0, &cpu::add_into_reference<T>);
  Kernel<AllFinite<T>>::add("cpu", 100, &cpu::all_finite<T>);
  Kernel<AllFinite<T>>::add("reference", 0, &cpu::all_finite_reference<T>);
}

template <typename T>
void register_reductions() {
  Kernel<SumDim<T>>::add("cpu", 100, &cpu::sum_dim<T>);
  Kernel<SumDim<T>>::add("reference", 0, &cpu::sum_dim_reference<T>);
  Kernel<ExtremumDim<T>>::add("cpu", 100, &cpu::extremum_dim<T>);
  Kernel<ExtremumDim<T>>::add("reference", 0, &cpu::extremum_dim_reference<T>);
}

template <typename T>
void register_normalize() {
  Kernel<Normalize<T>>::add("cpu", 100, &cpu::normalize<T>);
  Kernel<Normalize<T>>::add("reference", 0, &cpu::normalize_reference<T>);
}

}  // namespace

void register_kernels() {
  register_normalize<float>();
  register_normalize<double>();
  register_normalize<int64_t>();
  register_normalize<bool>();
  register_normalize<uint8_t>();
  Kernel<PadCrop>::add("cpu", 100, &cpu::pad_crop);
  Kernel<PadCrop>::add("reference", 0, &cpu::pad_crop_reference);
  Kernel<HFlip>::add("cpu", 100, &cpu::hflip);
  Kernel<HFlip>::add("reference", 0, &cpu::hflip_reference);
  register_float<float>();
  register_float<double>();
  register_reductions<float>();
  register_reductions<double>();
  register_reductions<int64_t>();
  Kernel<RowLoop<1>>::add("cpu", 100, &cpu::for_each_row<1>);
  Kernel<RowLoop<1>>::add("reference", 0, &cpu::for_each_element<1>);
  Kernel<RowLoop<2>>::add("cpu", 100, &cpu::for_each_row<2>);
  Kernel<RowLoop<2>>::add("reference", 0, &cpu::for_each_element<2>);
  Kernel<RowLoop<3>>::add("cpu", 100, &cpu::for_each_row<3>);
  Kernel<RowLoop<3>>::add("reference", 0, &cpu::for_each_element<3>);
  Kernel<RowLoop<4>>::add("cpu", 100, &cpu::for_each_row<4>);
  Kernel<RowLoop<4>>::add("reference", 0, &cpu::for_each_element<4>);
  Kernel<Copy>::add("cpu", 100, &cpu::copy);
  Kernel<Copy>::add("reference", 0, &cpu::copy_reference);
  Kernel<GatherRows>::add("cpu", 100, &cpu::gather_rows);
  Kernel<GatherRows>::add("reference", 0, &cpu::gather_rows_reference);
  // toolkit: shape and copy
  Kernel<Im2Col<float>>::add("cpu", 100, &cpu::im2col<float>);
  Kernel<Im2Col<float>>::add("reference", 0, &cpu::im2col_reference<float>);
  Kernel<Im2Col<double>>::add("cpu", 100, &cpu::im2col<double>);
  Kernel<Im2Col<double>>::add("reference", 0, &cpu::im2col_reference<double>);
  Kernel<Col2Im<float>>::add("cpu", 100, &cpu::col2im<float>);
  Kernel<Col2Im<float>>::add("reference", 0, &cpu::col2im_reference<float>);
  Kernel<Col2Im<double>>::add("cpu", 100, &cpu::col2im<double>);
  Kernel<Col2Im<double>>::add("reference", 0, &cpu::col2im_reference<double>);
  Kernel<IndexAddRows<float>>::add("cpu", 100, &cpu::index_add_rows<float>);
  Kernel<IndexAddRows<float>>::add("reference", 0, &cpu::index_add_rows_reference<float>);
  Kernel<IndexAddRows<double>>::add("cpu", 100, &cpu::index_add_rows<double>);
  Kernel<IndexAddRows<double>>::add("reference", 0, &cpu::index_add_rows_reference<double>);

  // toolkit: indexing
  const auto indexing_kernels = []<typename T>() {
    Kernel<TakeFlat<T>>::add("cpu", 100, &cpu::take_flat<T>);
    Kernel<TakeFlat<T>>::add("reference", 0, &cpu::take_flat_reference<T>);
    Kernel<PutFlat<T>>::add("cpu", 100, &cpu::put_flat<T>);
    Kernel<PutFlat<T>>::add("reference", 0, &cpu::put_flat_reference<T>);
  };
  indexing_kernels.template operator()<float>();
  indexing_kernels.template operator()<double>();
  indexing_kernels.template operator()<int64_t>();
  indexing_kernels.template operator()<bool>();
  indexing_kernels.template operator()<uint8_t>();
  indexing_kernels.template operator()<int8_t>();
  indexing_kernels.template operator()<int32_t>();
  indexing_kernels.template operator()<BFloat16>();
  indexing_kernels.template operator()<Half>();

  // toolkit: reductions, sorting
  Kernel<ScanDim<float>>::add("cpu", 100, &cpu::scan_dim<float>);
  Kernel<ScanDim<float>>::add("reference", 0, &cpu::scan_dim_reference<float>);
  Kernel<ScanDim<double>>::add("cpu", 100, &cpu::scan_dim<double>);
  Kernel<ScanDim<double>>::add("reference", 0, &cpu::scan_dim_reference<double>);
  Kernel<ScanDim<int64_t>>::add("cpu", 100, &cpu::scan_dim<int64_t>);
  Kernel<ScanDim<int64_t>>::add("reference", 0, &cpu::scan_dim_reference<int64_t>);
  Kernel<SortDim<float>>::add("cpu", 100, &cpu::sort_dim<float>);
  Kernel<SortDim<float>>::add("reference", 0, &cpu::sort_dim_reference<float>);
  Kernel<SortDim<double>>::add("cpu", 100, &cpu::sort_dim<double>);
  Kernel<SortDim<double>>::add("reference", 0, &cpu::sort_dim_reference<double>);
  Kernel<SortDim<int64_t>>::add("cpu", 100, &cpu::sort_dim<int64_t>);
  Kernel<SortDim<int64_t>>::add("reference", 0, &cpu::sort_dim_reference<int64_t>);
  Kernel<SortDim<bool>>::add("cpu", 100, &cpu::sort_dim<bool>);
  Kernel<SortDim<bool>>::add("reference", 0, &cpu::sort_dim_reference<bool>);
  Kernel<SortDim<uint8_t>>::add("cpu", 100, &cpu::sort_dim<uint8_t>);
  Kernel<SortDim<uint8_t>>::add("reference", 0, &cpu::sort_dim_reference<uint8_t>);

  // toolkit: math

  // toolkit: activations, factories

  // cnn: convolution
  Kernel<ConvForward<float>>::add("cpu", 100, &cpu::conv_forward<float>);
  Kernel<ConvForward<float>>::add("reference", 0, &cpu::conv_forward_reference<float>);
  Kernel<ConvForward<double>>::add("cpu", 100, &cpu::conv_forward<double>);
  Kernel<ConvForward<double>>::add("reference", 0, &cpu::conv_forward_reference<double>);
  Kernel<ConvBackwardInput<float>>::add("cpu", 100, &cpu::conv_backward_input<float>);
  Kernel<ConvBackwardInput<float>>::add("reference", 0, &cpu::conv_backward_input_reference<float>);
  Kernel<ConvBackwardInput<double>>::add("cpu", 100, &cpu::conv_backward_input<double>);
  Kernel<ConvBackwardInput<double>>::add("reference", 0,
                                         &cpu::conv_backward_input_reference<double>);
  Kernel<ConvBackwardWeight<float>>::add("cpu", 100, &cpu::conv_backward_weight<float>);
  Kernel<ConvBackwardWeight<float>>::add("reference", 0,
                                         &cpu::conv_backward_weight_reference<float>);
  Kernel<ConvBackwardWeight<double>>::add("cpu", 100, &cpu::conv_backward_weight<double>);
  Kernel<ConvBackwardWeight<double>>::add("reference", 0,
                                          &cpu::conv_backward_weight_reference<double>);
#ifdef SOMA_ONEDNN
  // float32 GEMM: oneDNN's sgemm where the CPU has AVX-512 (kernels/onednn/gemm.h), above
  // OpenBLAS; SOMA_KERNELS=openblas (or SOMA_MAX_CPU_ISA below avx512_core) picks OpenBLAS.
  Kernel<Gemm<float>>::add("onednn", 150, &onednn::gemm, &onednn::gemm_available);
  // Convolutions (float32 only): "onednn" alone (below "cpu"), and "tuned", the
  // default: oneDNN or "cpu" per shape, by the rule measured with bench/conv_bench
  // (kernels/onednn/conv.h prefer_onednn; docs/PERFORMANCE.md, "Convolutions (issue 18)").
  Kernel<ConvForward<float>>::add("onednn", 50, &onednn::conv_forward, &onednn::available);
  Kernel<ConvBackwardInput<float>>::add("onednn", 50, &onednn::conv_backward_input,
                                        &onednn::available);
  Kernel<ConvBackwardWeight<float>>::add("onednn", 50, &onednn::conv_backward_weight,
                                         &onednn::available);
  Kernel<ConvForward<float>>::add("tuned", 150, &onednn::tuned_conv_forward, &onednn::available);
  Kernel<ConvBackwardInput<float>>::add("tuned", 150, &onednn::tuned_conv_backward_input,
                                        &onednn::available);
  Kernel<ConvBackwardWeight<float>>::add("tuned", 150, &onednn::tuned_conv_backward_weight,
                                         &onednn::available);
#endif

  // cnn: pooling, upsampling
  const auto pool_kernels = []<typename T>() {
    Kernel<MaxPoolForward<T>>::add("cpu", 100, &cpu::max_pool_forward<T>);
    Kernel<MaxPoolForward<T>>::add("reference", 0, &cpu::max_pool_forward_reference<T>);
    Kernel<MaxPoolBackward<T>>::add("cpu", 100, &cpu::max_pool_backward<T>);
    Kernel<MaxPoolBackward<T>>::add("reference", 0, &cpu::max_pool_backward_reference<T>);
    Kernel<AvgPoolForward<T>>::add("cpu", 100, &cpu::avg_pool_forward<T>);
    Kernel<AvgPoolForward<T>>::add("reference", 0, &cpu::avg_pool_forward_reference<T>);
    Kernel<AvgPoolBackward<T>>::add("cpu", 100, &cpu::avg_pool_backward<T>);
    Kernel<AvgPoolBackward<T>>::add("reference", 0, &cpu::avg_pool_backward_reference<T>);
    Kernel<AdaptiveMaxPoolForward<T>>::add("cpu", 100, &cpu::adaptive_max_pool_forward<T>);
    Kernel<AdaptiveMaxPoolForward<T>>::add("reference", 0,
                                           &cpu::adaptive_max_pool_forward_reference<T>);
  };
  pool_kernels.template operator()<float>();
  pool_kernels.template operator()<double>();

  // cnn: normalisation
  const auto norm_kernels = []<typename T>() {
    Kernel<NormStats<T>>::add("cpu", 100, &cpu::norm_stats<T>);
    Kernel<NormStats<T>>::add("reference", 0, &cpu::norm_stats_reference<T>);
    Kernel<NormAffine<T>>::add("cpu", 100, &cpu::norm_affine<T>);
    Kernel<NormAffine<T>>::add("reference", 0, &cpu::norm_affine_reference<T>);
    Kernel<LayerNormApply<T>>::add("cpu", 100, &cpu::layer_norm_apply<T>);
    Kernel<LayerNormApply<T>>::add("reference", 0, &cpu::layer_norm_apply_reference<T>);
    Kernel<NormBackwardReduce<T>>::add("cpu", 100, &cpu::norm_backward_reduce<T>);
    Kernel<NormBackwardReduce<T>>::add("reference", 0, &cpu::norm_backward_reduce_reference<T>);
    Kernel<NormBackwardApply<T>>::add("cpu", 100, &cpu::norm_backward_apply<T>);
    Kernel<NormBackwardApply<T>>::add("reference", 0, &cpu::norm_backward_apply_reference<T>);
  };
  norm_kernels.template operator()<float>();
  norm_kernels.template operator()<double>();

  // Linear's small-batch float32 inference (kernels/cpu/small_gemm.h): the packed AVX-512
  // kernel where the CPU has it; "openblas" declines, so Linear runs its GEMM (OpenBLAS's GEMV).
  Kernel<LinearSmallF32>::add("avx512", 150, &cpu::linear_small_f32_avx512,
                              &cpu::small_gemm_avx512_available);
  Kernel<LinearSmallF32>::add("openblas", 100, &cpu::linear_small_f32_decline);
  Kernel<LinearSmallF32>::add("reference", 0, &cpu::linear_small_f32_reference);

  // low precision (kernels/cpu/lowp.h): the fastest available by CPU feature, else the scalar
  // reference (the int8 GEMM's AVX-512BW fallback stays exact, as the reference)
  namespace lp = lowp;
  Kernel<LowpGemmU8S8S32>::add("vnni", 200, &lp::gemm_u8s8s32_vnni, &lp::vnni_available);
  Kernel<LowpGemmU8S8S32>::add("avx512", 100, &lp::gemm_u8s8s32_avx512, &lp::avx512_available);
  Kernel<LowpGemmU8S8S32>::add("reference", 0, &lp::gemm_u8s8s32_reference);
  Kernel<LowpGemmU8S8F32>::add("vnni", 200, &lp::gemm_u8s8_f32_vnni, &lp::vnni_available);
  Kernel<LowpGemmU8S8F32>::add("avx512", 100, &lp::gemm_u8s8_f32_avx512, &lp::avx512_available);
  Kernel<LowpGemmU8S8F32>::add("reference", 0, &lp::gemm_u8s8_f32_reference);
  Kernel<LowpQuantizeGemmU8S8F32>::add("vnni", 200, &lp::quantize_gemm_u8s8_f32_vnni,
                                       &lp::vnni_available);
  Kernel<LowpQuantizeGemmU8S8F32>::add("avx512", 100, &lp::quantize_gemm_u8s8_f32_avx512,
                                       &lp::avx512_available);
  Kernel<LowpQuantizeGemmU8S8F32>::add("reference", 0, &lp::quantize_gemm_u8s8_f32_reference);
  Kernel<LowpMinMax>::add("avx512", 100, &lp::min_max_avx512, &lp::avx512_available);
  Kernel<LowpMinMax>::add("reference", 0, &lp::min_max_reference);
  Kernel<LowpQuantizeU8>::add("avx512", 100, &lp::quantize_u8_avx512, &lp::avx512_available);
  Kernel<LowpQuantizeU8>::add("reference", 0, &lp::quantize_u8_reference);
  Kernel<LowpFloatToBf16>::add("avx512", 100, &lp::float_to_bf16_avx512, &lp::avx512_available);
  Kernel<LowpFloatToBf16>::add("reference", 0, &lp::float_to_bf16_reference);
  Kernel<LowpBf16ToFloat>::add("avx512", 100, &lp::bf16_to_float_avx512, &lp::avx512_available);
  Kernel<LowpBf16ToFloat>::add("reference", 0, &lp::bf16_to_float_reference);
  Kernel<LowpFloatToF16>::add("avx512", 100, &lp::float_to_f16_avx512, &lp::avx512_available);
  Kernel<LowpFloatToF16>::add("reference", 0, &lp::float_to_f16_reference);
  Kernel<LowpF16ToFloat>::add("avx512", 100, &lp::f16_to_float_avx512, &lp::avx512_available);
  Kernel<LowpF16ToFloat>::add("reference", 0, &lp::f16_to_float_reference);
  Kernel<LowpGemmBf16>::add("avx512_bf16", 200, &lp::gemm_bf16_avx512_bf16, &lp::bf16_available);
  Kernel<LowpGemmBf16>::add("cpu", 100, &lp::gemm_bf16_cpu);
  Kernel<LowpGemmBf16>::add("reference", 0, &lp::gemm_bf16_reference);
}

}  // namespace soma::kernels
