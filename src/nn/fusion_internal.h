// Sequential's inference fusion (internal; src/nn/fusion.cpp, called by Sequential::forward).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soma/nn/module.h"

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

}  // namespace soma::detail

namespace soma::detail {

/// How many runs the fused path has executed in this process (tests: that a model did or did
/// not take it).
int64_t fused_run_count();

}  // namespace soma::detail
