// Sequential's inference fusion (internal; src/nn/fusion.cpp, called by Sequential::forward).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soma/nn/module.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/fused.h"
#endif

namespace soma::detail {

/// Whether Sequential::forward may try the fused path for this input: fusion on, grad mode
/// off, a non-empty float32 [N, C, H, W] input, oneDNN built and available, and no kernel
/// backend preferred other than "onednn" / "tuned".
bool fusion_applies(const Tensor& input);

/// Sequential's forward with each fusable run of children (hooked[i]: child i has forward
/// hooks, so it runs the plain way) on the fused path; the other children run the plain way.
Tensor fused_forward(
    const std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>& children,
    const std::vector<char>& hooked, FusionCache& cache, const Tensor& input);

/// A fuser for runs of modules this layer does not know (quantization/static.cpp registers one
/// for its int8 convolutions). fused_forward offers it every position first: given the children,
/// their hooked flags and a start index i, it returns 0 (no run of its own starts at i) or runs
/// children [i, i + k) on x, replaces x with their output and returns k. It may keep state per
/// Sequential in fusion_slot / set_fusion_slot, keyed by the run's first module.
using RunFuser =
    size_t (*)(const std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>& children,
               const std::vector<char>& hooked, size_t i, FusionCache& cache, Tensor& x);
void set_run_fuser(RunFuser fuser);
std::shared_ptr<void> fusion_slot(FusionCache& cache, const nn::Module* key);
void set_fusion_slot(FusionCache& cache, const nn::Module* key, std::shared_ptr<void> value);

#ifdef SOMA_ONEDNN
/// A MaxPool2d the fused path can run (torch's argument rules): its window in *p and its
/// ceil_mode; false for anything else.
bool max_pool_geometry(nn::Module& m, kernels::onednn::MaxPoolGeometry* p, bool* ceil_mode);
/// torch's pooling output size (ceil_mode: the last window starts inside the input or its left
/// padding); 0 when the window does not fit.
int64_t pool_output_size(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil_mode);
#endif

}  // namespace soma::detail

namespace soma::detail {

/// How many runs the fused path has executed in this process (tests: that a model did or did
/// not take it).
int64_t fused_run_count();

}  // namespace soma::detail

namespace soma::detail {

/// How many small-batch forwards nn::Linear has run through its packed kernel in this process
/// (tests: that a call did or did not take it).
int64_t small_linear_run_count();

}  // namespace soma::detail
