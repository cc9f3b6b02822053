// The convolution kernels on oneDNN (internal; float32 only, built with SOMA_ONEDNN): the same
// three slots as kernels/cpu/conv.h (NCHW contiguous buffers, zero padding), run by oneDNN's
// primitives. A geometry with bf16 (soma::autocast) runs oneDNN's bfloat16 primitives: the
// float32 operands are reordered to bfloat16 (round to nearest even), the result and the bias
// gradient are float32 (float32 accumulation). Where oneDNN has only its reference loops for
// bfloat16 (a CPU without AVX-512, or ONEDNN_MAX_CPU_ISA below it) the "cpu" kernels (im2col
// + soma's bf16 GEMM) run instead. Primitives are created once per geometry (and thread count) and
// kept in a small LRU cache shared by all threads; each call wraps the caller's buffers and
// executes.
//
// Layout: what oneDNN is told about the tensors' formats.
//   plain    x / y in nchw, w in oihw (goihw): no reorder; oneDNN picks a kernel for those.
//   weights  x / y in nchw, w in the format oneDNN prefers (a reorder of the small weight).
//   blocked  every tensor in oneDNN's preferred format (nChw16c...): reorders in and out.
// conv_forward etc. use layout_for(kind, g): the measured best one (docs/PERFORMANCE.md).
#pragma once

#include <cstdint>
#include <string>

#include "kernels/cpu/conv.h"

namespace soma::kernels::onednn {

enum class Layout { plain, weights, blocked };
enum class ConvKind { forward, backward_input, backward_weight };

/// True when oneDNN can create a CPU engine here (checked once).
bool available();

void conv_forward(const float* x, const float* w, const float* bias, float* y,
                  const cpu::ConvGeometry& g);
void conv_backward_input(const float* gy, const float* w, float* gx, const cpu::ConvGeometry& g);
void conv_backward_weight(const float* x, const float* gy, float* gw, float* gb,
                          const cpu::ConvGeometry& g);

/// The same with an explicit layout (benchmarks, tests).
void conv_forward(Layout layout, const float* x, const float* w, const float* bias, float* y,
                  const cpu::ConvGeometry& g);
void conv_backward_input(Layout layout, const float* gy, const float* w, float* gx,
                         const cpu::ConvGeometry& g);
void conv_backward_weight(Layout layout, const float* x, const float* gy, float* gw, float* gb,
                          const cpu::ConvGeometry& g);

/// The layout conv_forward etc. use for this kind and geometry.
Layout layout_for(ConvKind kind, const cpu::ConvGeometry& g);

/// oneDNN's name for the implementation it picked (e.g. "jit:avx512_core"), for benchmarks.
std::string implementation(ConvKind kind, Layout layout, const cpu::ConvGeometry& g,
                           bool bias = true);

/// Whether oneDNN runs this geometry's bfloat16 convolution on a fast (jit or gemm) kernel,
/// rather than its reference loops, where the "cpu" kernels take over (tests).
bool bf16_native(ConvKind kind, Layout layout, const cpu::ConvGeometry& g, bool bias = true);
/// How many bfloat16 convolutions oneDNN has executed in this process (tests).
int64_t bf16_executions();

/// The per-shape choice between this backend and "cpu" (registered as backend "tuned", above
/// both): oneDNN unless the convolution is too small for its per-call overhead to pay
/// (fewer than kTinyFlop flop, where im2col + GEMM ties or wins and no primitive is created),
/// or no "cpu" convolution is registered.
inline constexpr double kTinyFlop = 5e5;
bool prefer_onednn(ConvKind kind, const cpu::ConvGeometry& g);
void tuned_conv_forward(const float* x, const float* w, const float* bias, float* y,
                        const cpu::ConvGeometry& g);
void tuned_conv_backward_input(const float* gy, const float* w, float* gx,
                               const cpu::ConvGeometry& g);
void tuned_conv_backward_weight(const float* x, const float* gy, float* gw, float* gb,
                                const cpu::ConvGeometry& g);

/// Drops every cached primitive (tests).
void clear_cache();

}  // namespace soma::kernels::onednn
