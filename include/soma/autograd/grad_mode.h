// Grad mode: whether differentiable ops record the graph. On by default, per thread.
//
//   { soma::NoGradGuard no_grad; y = model(x); }   // inference: no graph, no saved tensors
#pragma once

namespace soma {

namespace autograd {
/// Whether ops on this thread record the graph.
bool is_grad_enabled();
void set_grad_enabled(bool enabled);
}  // namespace autograd

/// Disables graph recording on this thread for its lifetime (like torch.no_grad()). In-place
/// updates of leaves that require grad (a hand-written gradient-descent step) need it.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(autograd::is_grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace soma
