// The op layer's recording mode (soma::onnx::export_model traces a forward with it).
//
// While a Tracer is active on a thread, each op that has an ONNX mapping opens a trace::Scope
// on entry and, when it is the outermost recording op (ops it calls internally are not
// recorded again), hands the tracer one Call: its name, tensor inputs, output and attributes.
// autograd::record reports every other differentiable op reached outside a recording op, so
// an op without a mapping is an error rather than a silently constant result.
//
//   Tensor relu(const Tensor& x) {
//     trace::Scope ts;
//     Tensor out = ...;
//     if (ts) ts.record("relu", {x}, out);
//     return out;
//   }
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::trace {

/// An attribute value: an integer, a number or a list of integers.
using AttrValue = std::variant<int64_t, double, std::vector<int64_t>>;
using Attrs = std::vector<std::pair<std::string, AttrValue>>;

/// One recorded op. Undefined inputs are optional inputs left out (a conv without bias).
struct Call {
  std::string op;
  std::vector<Tensor> inputs;
  Tensor output;
  Attrs attrs;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  /// An op with a mapping ran (outermost).
  virtual void on_op(Call call) = 0;
  /// A differentiable op without a mapping ran outside a recording op (autograd::record's
  /// name for it and its inputs); throws soma::Error when an input is a traced value.
  virtual void on_unmapped(const char* op, const std::vector<Tensor>& inputs) = 0;
};

namespace detail {
extern thread_local Tracer* t_tracer;
extern thread_local int t_depth;
}  // namespace detail

/// The tracer active on this thread (nullptr: not tracing).
inline Tracer* active() {
  return detail::t_tracer;
}

/// Makes `tracer` active on this thread for the guard's lifetime (nesting is refused).
class TracerGuard {
 public:
  explicit TracerGuard(Tracer* tracer);
  ~TracerGuard();
  TracerGuard(const TracerGuard&) = delete;
  TracerGuard& operator=(const TracerGuard&) = delete;
};

/// Opened at the entry of an op with a mapping; true when this op is to be recorded.
class Scope {
 public:
  Scope() : counted_(detail::t_tracer != nullptr) {
    if (counted_) outer_ = detail::t_depth++ == 0;
  }
  ~Scope() {
    if (counted_) --detail::t_depth;
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  explicit operator bool() const { return outer_; }
  /// Hands the call to the tracer (only when operator bool is true).
  void record(const char* op, std::vector<Tensor> inputs, const Tensor& output, Attrs attrs = {});

 private:
  bool counted_ = false;
  bool outer_ = false;
};

/// Called by autograd::record: reports an op recorded outside any recording op while tracing.
inline void on_autograd_record(const char* name, const std::vector<Tensor>& inputs) {
  if (detail::t_tracer != nullptr && detail::t_depth == 0)
    detail::t_tracer->on_unmapped(name, inputs);
}

}  // namespace soma::trace
