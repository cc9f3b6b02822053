// nn::functional: the stateless forms of layers and losses (namespace F = soma::nn::functional).
//
// Losses take (input, target, options) and reduce with Reduction::Mean by default, like
// torch.nn.functional. Shapes: N batch, C classes.
//   F::cross_entropy(logits [N, C], target int64 [N])       softmax + negative log-likelihood
//   F::cross_entropy(logits [N, C], target float [N, C])    probability (soft) targets
//   F::mse_loss(input, target)                               mean((input - target)^2)
// The lecture's MSE  J(W) = 1/(2N) sum (y - f(x))^2  is mse_loss(f(x), y) / 2 with one output
// per sample (mse_loss averages over all elements, N times the number of outputs).
#pragma once

#include <cstdint>

#include "soma/core/tensor.h"

namespace soma::nn {

enum class Reduction { None, Mean, Sum };

namespace functional {

/// x @ weight^T + bias with weight [out, in], bias [out] (or undefined); x [..., in].
/// One fused op: the bias is written into the output and BLAS accumulates onto it.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

/// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
/// 1/(1-p); identity when !training or p == 0. Draws from soma's generator (manual_seed).
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

Tensor flatten(const Tensor& x, int64_t start_dim = 1, int64_t end_dim = -1);

struct LossOptions {
  Reduction reduction = Reduction::Mean;
};
/// (input - target)^2, shapes equal.
Tensor mse_loss(const Tensor& input, const Tensor& target, LossOptions options = {});
/// |input - target|, shapes equal.
Tensor l1_loss(const Tensor& input, const Tensor& target, LossOptions options = {});

struct BCEOptions {
  Tensor weight{};  // rescales each element (broadcast to input)
  Reduction reduction = Reduction::Mean;
};
/// -(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1] and targets t in [0, 1];
/// each log is clamped at -100 like PyTorch, so p = 0 or 1 gives a finite loss.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, BCEOptions options = {});

struct BCEWithLogitsOptions {
  Tensor weight{};      // rescales each element (broadcast to input)
  Tensor pos_weight{};  // weight of positive examples, broadcast over the last dim
  Reduction reduction = Reduction::Mean;
};
/// Sigmoid + binary cross-entropy in one stable formula (logits of +-1000 are fine):
///   l = (1 - t) x + (1 + (pw - 1) t) (log(1 + e^-|x|) + max(-x, 0))
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        BCEWithLogitsOptions options = {});

struct CrossEntropyOptions {
  Tensor weight{};               // [C] class weights
  int64_t ignore_index = -100;   // targets equal to this contribute nothing
  double label_smoothing = 0.0;  // in [0, 1]: mixes the target with the uniform one
  Reduction reduction = Reduction::Mean;
};
/// log_softmax over dim 1 followed by the negative log-likelihood. input [N, C] or [C]; target
/// int64 class ids [N] (or []) in [0, C), or float probabilities of the input's shape. The
/// common case (no weight, no smoothing) is one fused op: backward is softmax - onehot.
Tensor cross_entropy(const Tensor& input, const Tensor& target, CrossEntropyOptions options = {});

struct NLLOptions {
  Tensor weight{};  // [C] class weights
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
};
/// -input[n, target[n]] (times weight[target[n]]), for log-probabilities input [N, C] or [C].
/// Mean divides by the sum of the weights of the non-ignored targets, like PyTorch.
Tensor nll_loss(const Tensor& input, const Tensor& target, NLLOptions options = {});

}  // namespace functional
}  // namespace soma::nn

// ---- toolkit: pad, unfold, fold ------------------------------------------------------------
namespace soma::nn::functional {

/// torch.nn.functional.pad. `pad` holds (left, right) pairs starting from the LAST dim:
/// {1, 2} pads the last dim with 1 before and 2 after, {1, 2, 3, 4} also the second-to-last
/// with 3 and 4. mode "constant" fills with `value` (any dim count, negative pads crop);
/// "reflect" mirrors without repeating the edge (each pad < that dim's size) and "replicate"
/// repeats the edge; those two pad the last 1, 2 or 3 dims of a 2-3, 3-4 or 4-5 dim input.
/// "circular" wraps around (each pad <= that dim's size) the last 1-3 dims of a 3-5 dim input.
/// Always a copy; differentiable twice.
Tensor pad(const Tensor& input, const std::vector<int64_t>& pad, std::string_view mode = "constant",
           double value = 0.0);

/// torch.nn.functional.unfold (im2col): every kernel_size block of input [N, C, H, W] (or
/// [C, H, W]) as a column: result [N, C * kh * kw, L], L = oh * ow block positions, with
/// oh = (H + 2 ph - dh (kh - 1) - 1) / sh + 1. Each option holds one value (both dims) or two.
Tensor unfold(const Tensor& input, const std::vector<int64_t>& kernel_size,
              const std::vector<int64_t>& dilation = {1}, const std::vector<int64_t>& padding = {0},
              const std::vector<int64_t>& stride = {1});
/// torch.nn.functional.fold (col2im), unfold's adjoint: sums the columns of input
/// [N, C * kh * kw, L] (or [C * kh * kw, L]) back into [N, C, output_size[0], output_size[1]];
/// overlapping block entries add up.
Tensor fold(const Tensor& input, const std::vector<int64_t>& output_size,
            const std::vector<int64_t>& kernel_size, const std::vector<int64_t>& dilation = {1},
            const std::vector<int64_t>& padding = {0}, const std::vector<int64_t>& stride = {1});

}  // namespace soma::nn::functional
