// Mixed precision: torch.autocast(device_type="cpu", dtype=torch.bfloat16) for soma.
//
//   {
//     soma::autocast guard;                 // bfloat16 until the end of the scope
//     Tensor loss = F::cross_entropy(model(x), y);
//     loss.backward();                      // the backward products use bf16 as the forward did
//   }
//   optimizer.step();                       // float32 master weights, as always
//
// While a guard is alive on a thread, the matrix products of float32 linear, matmul/mm/bmm and
// conv1d/conv2d round both operands to bfloat16 and accumulate in float32 (AVX512_BF16's
// vdpbf16ps where the CPU has it, an exact emulation otherwise; convolutions run oneDNN's
// bfloat16 primitives where oneDNN has them, soma's im2col + bf16 GEMM otherwise). The autograd
// records which precision each product ran in, and its backward products use the same one,
// whether or not a guard is alive when backward runs. Everything else stays float32: tensors,
// reductions, softmax, losses, normalisation, the optimizer and the weights. Unlike torch,
// results are float32 tensors (torch returns bfloat16 tensors from the products, so the
// numbers differ by the rounding of the product's output).
#pragma once

#include "soma/core/dtype.h"

namespace soma {

class autocast {
 public:
  /// Turns bf16 autocast on (enabled) or off for this thread until destroyed. Only
  /// bfloat16 is supported on the CPU; another dtype is a soma::Error.
  explicit autocast(DType dtype = kBFloat16, bool enabled = true);
  ~autocast();
  autocast(const autocast&) = delete;
  autocast& operator=(const autocast&) = delete;

 private:
  bool prev_enabled_;
};

/// Whether an autocast guard is on for this thread (torch.is_autocast_cpu_enabled()).
bool is_autocast_enabled();
/// Turns this thread's autocast on or off and returns the previous setting
/// (torch.set_autocast_cpu_enabled; the guard above is the usual way).
bool set_autocast_enabled(bool enabled);

namespace detail {
/// Sets this thread's autocast flag for its lifetime: a backward closure replays the
/// precision its forward ran in (internal).
class AutocastScope {
 public:
  explicit AutocastScope(bool on);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool prev_;
};
}  // namespace detail

}  // namespace soma
