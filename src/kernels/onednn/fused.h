// Inference chains on oneDNN (internal; float32, SOMA_ONEDNN builds): a run of
// convolution (+ ReLU) (+ max pooling) stages executed as oneDNN primitives, with the
// activations kept in oneDNN's preferred (blocked, e.g. nChw16c) layout from the first
// convolution to the end of the chain, reordered from NCHW once at the start and to NCHW once at
// the end. ReLU is the convolution's eltwise post-op. The weights are given once (already folded
// with a BatchNorm by the caller, nn/fusion.cpp) and reordered to the primitives' format once
// per geometry; primitives are created once per geometry and thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu/conv.h"

namespace soma::kernels::onednn {

/// A max pooling window on a stage's convolution output (torch's max_pool2d arguments; oh/ow
/// the output size the caller computed, ceil_mode included).
struct MaxPoolGeometry {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t oh = 0, ow = 0;
};

/// One stage's fixed part: the convolution's weights [c_out, c_in / groups, kh, kw] (plain,
/// contiguous) and bias [c_out] (empty: none), and whether a ReLU follows.
struct ChainStage {
  std::vector<float> weight, bias;
  bool relu = false;
};

/// One stage's geometry for a given input: the convolution's, and the pooling after it.
struct ChainGeometry {
  cpu::ConvGeometry conv;
  bool pool = false;
  MaxPoolGeometry pool_g;
};

class FusedChain {
 public:
  explicit FusedChain(std::vector<ChainStage> stages);
  ~FusedChain();
  FusedChain(const FusedChain&) = delete;
  FusedChain& operator=(const FusedChain&) = delete;

  /// y = the chain applied to x. x: contiguous NCHW [g[0].conv.n, c_in, h, w]; y: contiguous
  /// NCHW, the last stage's output (its pooling's when it has one). `g` has one entry per
  /// stage, consistent with each other (each stage's input is the previous one's output).
  /// Safe to call from several threads at once.
  void run(const float* x, float* y, const std::vector<ChainGeometry>& g) const;

  /// oneDNN's implementation names of the stages' primitives for this geometry (tests,
  /// benchmarks), e.g. "jit:avx512_core".
  std::vector<std::string> implementations(const std::vector<ChainGeometry>& g) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace soma::kernels::onednn
