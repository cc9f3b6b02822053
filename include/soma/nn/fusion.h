// Conv + BatchNorm folding (torch.nn.utils.fusion) and the switch of soma's transparent
// inference fusion.
//
//   nn::Conv2d fused = nn::utils::fuse_conv_bn_eval(conv, bn);   // conv and bn in eval mode
//
// Inference fusion (DESIGN.md, "Inference fusion"): a Sequential run with grad mode off
// (NoGradGuard) whose modules are in eval mode executes each run of
// Conv2d [BatchNorm2d] [ReLU] [MaxPool2d] (repeated) as oneDNN primitives, the BatchNorm folded
// into the convolution, the ReLU a post-op, the activations in oneDNN's blocked layout inside
// the run and NCHW outside it. float32 only; anything else runs module by module. It is on by
// default (SOMA_INFERENCE_FUSION=0 in the environment turns it off at start-up).
#pragma once

#include <utility>

#include "soma/core/tensor.h"
#include "soma/nn/conv.h"
#include "soma/nn/normalization.h"

namespace soma::nn::utils {

/// torch.nn.utils.fusion.fuse_conv_bn_weights: the weight and bias of a convolution followed
/// by a batch normalisation with these statistics and affine parameters (conv_b, bn_w, bn_b may
/// be undefined: zeros, ones, zeros), computed in the tensors' dtype as torch does:
///   w' = conv_w * (bn_w / sqrt(bn_rv + eps)) per output channel
///   b' = (conv_b - bn_rm) / sqrt(bn_rv + eps) * bn_w + bn_b
/// transpose: conv_w is a transposed convolution's [in, out / groups, ...] (scales dim 1).
/// Both results are new leaves that require grad (torch returns Parameters).
std::pair<Tensor, Tensor> fuse_conv_bn_weights(const Tensor& conv_w, const Tensor& conv_b,
                                               const Tensor& bn_rm, const Tensor& bn_rv,
                                               double bn_eps, const Tensor& bn_w,
                                               const Tensor& bn_b, bool transpose = false);

/// torch.nn.utils.fusion.fuse_conv_bn_eval: a new Conv2d (a deep copy of conv, in eval mode)
/// whose weight and bias are fuse_conv_bn_weights of conv's and bn's; it always has a bias.
/// conv and bn must be in eval mode, and bn must track running statistics (soma::Error
/// otherwise).
Conv2d fuse_conv_bn_eval(const Conv2d& conv, const BatchNorm2d& bn);

}  // namespace soma::nn::utils

namespace soma::nn {

/// Whether Sequential's inference fusion is on (process-wide; default on unless
/// SOMA_INFERENCE_FUSION=0 at start-up).
bool is_inference_fusion_enabled();
void set_inference_fusion_enabled(bool enabled);

/// Turns inference fusion on or off while it lives (tests, benchmarks), then restores it.
class InferenceFusionGuard {
 public:
  explicit InferenceFusionGuard(bool enabled) : prev_(is_inference_fusion_enabled()) {
    set_inference_fusion_enabled(enabled);
  }
  ~InferenceFusionGuard() { set_inference_fusion_enabled(prev_); }
  InferenceFusionGuard(const InferenceFusionGuard&) = delete;
  InferenceFusionGuard& operator=(const InferenceFusionGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace soma::nn
