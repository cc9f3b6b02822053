// The training batch norm with a hook to combine statistics over processes (internal): the
// functional batch_norm passes none, SyncBatchNorm (src/dist/sync_batchnorm.cpp) an MPI sum.
#pragma once

#include <functional>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::nn::detail {

/// Sums `values` element-wise over every process, in place.
using StatsReduce = std::function<void(std::vector<double>&)>;

/// Training-mode batch norm of input [N, C, *]: normalise with the batch's mean and biased
/// variance (over every process when `reduce` is given: forward reduces per-channel count, sum
/// and sum of squares, backward sum(dy) and sum(dy * (x - mean))), update the defined running
/// tensors in place with the unbiased variance. `op` names the caller in errors.
Tensor batch_norm_train(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                        const Tensor& weight, const Tensor& bias, double momentum, double eps,
                        const StatsReduce* reduce, const char* op);

}  // namespace soma::nn::detail
