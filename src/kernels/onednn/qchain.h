// int8 inference chains on oneDNN (internal; SOMA_ONEDNN builds): a run of statically quantized
// convolution (+ ReLU) (+ max pooling) stages (quantization/static.cpp's QuantizedConv2d)
// executed as oneDNN int8 primitives, the activations kept as uint8 in oneDNN's preferred
// layout from the first convolution to the end of the chain.
//
// Each stage's convolution reads uint8 quantized with its own input qparams, multiplies by its
// int8 per-channel weights in int32, and writes its output already quantized with the next
// stage's input qparams (the output scale in_scale * weight_scale[o] / next_scale, the next
// zero point, the ReLU a post-op). Max pooling runs on those uint8 values: quantization is
// monotonic, so max(q(y)) = q(max(y)) and the result equals pooling the float output first and
// quantizing after, as the module-by-module path does. The chain's output is either
//   - the last stage's float32 output (out_scale == 0), or
//   - its quantization with (out_scale, out_zero_point), returned dequantized: what the next
//     quantized layer (whose input qparams those are) reads back unchanged.
// Inputs: float32 NCHW, quantized with the first stage's qparams exactly as
// kernels::lowp::quantize_u8 does; outputs: float32 NCHW.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/onednn/fused.h"

namespace soma::kernels::onednn {

/// Whether oneDNN's int8 convolutions sum u8 x s8 products exactly in int32 here: true when the
/// implementation it picks for a probe convolution is a VNNI (or AMX) one. Below VNNI its
/// kernels add product pairs in saturating 16-bit sums (vpmaddubsw), which full-range int8
/// weights overflow; that holds whatever capped it (the CPU, SOMA_MAX_CPU_ISA,
/// ONEDNN_MAX_CPU_ISA). Checked once per process.
bool int8_exact();

/// One stage's fixed part: int8 weights [c_out, c_in, kh, kw] (groups 1), per-channel weight
/// scales and float bias [c_out], the input's qparams, and whether a ReLU follows.
struct QuantStage {
  std::vector<int8_t> weight;
  std::vector<float> weight_scale, bias;
  float in_scale = 1.0f;
  int32_t in_zero_point = 0;
  bool relu = false;
};

class QuantChain {
 public:
  QuantChain(std::vector<QuantStage> stages, float out_scale, int32_t out_zero_point);
  ~QuantChain();
  QuantChain(const QuantChain&) = delete;
  QuantChain& operator=(const QuantChain&) = delete;

  /// y = the chain applied to x (see the file comment). x: contiguous NCHW
  /// [g[0].conv.n, c_in, h, w]; y: contiguous NCHW, the last stage's output (its pooling's
  /// when it has one). `g`: one entry per stage (groups 1, dilation 1). Thread-safe.
  /// soma::Error when oneDNN cannot create the primitives for this geometry.
  void run(const float* x, float* y, const std::vector<ChainGeometry>& g) const;

  /// oneDNN's implementation names of the stages' primitives for this geometry (tests:
  /// e.g. "jit_int8:avx512_core_vnni", never a reference implementation).
  std::vector<std::string> implementations(const std::vector<ChainGeometry>& g) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace soma::kernels::onednn
