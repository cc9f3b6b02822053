// Grad mode: whether differentiable ops record the graph. On by default, per thread.
//
//   { soma::NoGradGuard no_grad; y = model(x); }   // inference: no graph, no saved tensors
#pragma once

namespace soma {

namespace autograd {
/// Whether ops on this thread record the graph.
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

/// Anomaly detection, like torch.autograd.set_detect_anomaly: while on (all threads), every op
/// that records the graph checks its forward output, and backward checks every gradient an op
/// returns, for NaN and infinity. The first one found throws soma::Error naming the op, e.g.
///   detect_anomaly: the backward of sqrt returned inf in the gradient for input 0 (shape [2])
/// Off by default: it costs one pass over every recorded output and gradient.
bool is_anomaly_enabled();
void set_detect_anomaly(bool enabled);
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

/// Turns anomaly detection on for its lifetime (like `with torch.autograd.detect_anomaly():`).
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : prev_(autograd::is_anomaly_enabled()) {
    autograd::set_detect_anomaly(true);
  }
  ~DetectAnomalyGuard() { autograd::set_detect_anomaly(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace soma
