// nn::SyncBatchNorm: batch norm whose training statistics are summed over the MPI ranks (it is
// declared with the other normalisation modules in soma/nn/normalization.h and implemented
// here, in dist/, because it calls the collectives).
#include "nn/functional/normalization_internal.h"
#include "soma/core/error.h"
#include "soma/dist/dist.h"
#include "soma/nn/normalization.h"

namespace soma::nn {

void SyncBatchNorm::check_input(const Tensor& input) const {
  SOMA_CHECK(input.dim() >= 2, "SyncBatchNorm: expected at least 2D input (got ", input.dim(),
             "D input of shape ", input.shape(), ")");
}

Tensor SyncBatchNorm::normalize(const Tensor& input, bool use_batch_stats, double factor) {
  if (!use_batch_stats || dist::world_size() == 1)
    return BatchNormBase::normalize(input, use_batch_stats, factor);
  SOMA_CHECK(input.dtype() == kFloat32 || input.dtype() == kFloat64,
             "SyncBatchNorm: expected a floating-point input (float32 or float64), got ",
             input.dtype());
  SOMA_CHECK(!weight.defined() || weight.dtype() == input.dtype(), "SyncBatchNorm: input dtype ",
             input.dtype(), " differs from weight dtype ", weight.dtype());
  const detail::StatsReduce reduce = [](std::vector<double>& v) { dist::allreduce_sum(v); };
  return detail::batch_norm_train(input, running_mean, running_var, weight, bias, factor,
                                  options.eps(), &reduce, "SyncBatchNorm");
}

SyncBatchNorm::SyncBatchNorm(const BatchNormBase& other) : Cloneable(other.options) {
  register_all(other.weight, other.bias, other.running_mean, other.running_var,
               other.num_batches_tracked);
  train(other.is_training());
}

std::shared_ptr<Module> SyncBatchNorm::convert_sync_batchnorm(std::shared_ptr<Module> module) {
  SOMA_CHECK(module != nullptr, "SyncBatchNorm::convert_sync_batchnorm: module is null");
  auto bn = std::dynamic_pointer_cast<BatchNormBase>(module);
  if (bn && !std::dynamic_pointer_cast<SyncBatchNorm>(module))
    return std::make_shared<SyncBatchNorm>(*bn);
  // Children are replaced in place (torch's add_module under the same name): the registration
  // list is the module's own, reached through named_children().
  using Children = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;
  for (auto& [name, child] : const_cast<Children&>(module->named_children()))
    child = convert_sync_batchnorm(child);
  return module;
}

}  // namespace soma::nn
