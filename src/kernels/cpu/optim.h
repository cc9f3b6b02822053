// The optimizers' fused update loops (internal): one pass over a parameter's contiguous
// buffer per step, each element updated exactly as the rule in optim/optimizers.cpp says, with
// every scalar already rounded to T by the caller (as PyTorch's single-tensor path does).
// Elements are independent, so the result does not depend on the thread count.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

template <typename T>
struct SgdArgs {
  T wd, mu, damp, lr;
  bool weight_decay, nesterov, first;  // weight_decay: wd != 0; first: the buffer is new
};
/// b may be nullptr (no momentum).
template <typename T>
void sgd_update(int64_t n, T* p, const T* g, T* b, const SgdArgs<T>& a);

enum class AdamMode { Plain, L2, Decoupled };  // no weight decay | Adam's L2 | AdamW's
template <typename T>
struct AdamArgs {
  T b1, b2, one_b1, one_b2, decay, l2, bc2s, eps, neg_step;
  AdamMode mode;
};
/// vmax may be nullptr (no amsgrad).
template <typename T>
void adam_update(int64_t n, T* p, const T* g, T* m, T* v, T* vmax, const AdamArgs<T>& a);

template <typename T>
struct RmspropArgs {
  T a, one_a, wd, eps, mu, lr, neg_lr;
  bool weight_decay;
};
/// b (momentum) and gm (centered) may be nullptr.
template <typename T>
void rmsprop_update(int64_t n, T* p, const T* g, T* v, T* b, T* gm, const RmspropArgs<T>& a);

template <typename T>
struct AdagradArgs {
  T wd, eps, neg_clr;
  bool weight_decay;
};
template <typename T>
void adagrad_update(int64_t n, T* p, const T* g, T* sum, const AdagradArgs<T>& a);

template <typename T>
struct AdadeltaArgs {
  T rho, one_rho, wd, eps, neg_lr;
  bool weight_decay;
};
template <typename T>
void adadelta_update(int64_t n, T* p, const T* g, T* v, T* u, const AdadeltaArgs<T>& a);

/// The same updates as plain loops on the calling thread (the "reference" backend).
template <typename T>
void sgd_update_reference(int64_t n, T* p, const T* g, T* b, const SgdArgs<T>& a);
template <typename T>
void adam_update_reference(int64_t n, T* p, const T* g, T* m, T* v, T* vmax, const AdamArgs<T>& a);
template <typename T>
void rmsprop_update_reference(int64_t n, T* p, const T* g, T* v, T* b, T* gm,
                              const RmspropArgs<T>& a);
template <typename T>
void adagrad_update_reference(int64_t n, T* p, const T* g, T* sum, const AdagradArgs<T>& a);
template <typename T>
void adadelta_update_reference(int64_t n, T* p, const T* g, T* v, T* u, const AdadeltaArgs<T>& a);

}  // namespace soma::kernels::cpu
