#include "ops/trace.h"

#include "soma/core/error.h"

namespace soma::trace {

namespace detail {
thread_local Tracer* t_tracer = nullptr;
thread_local int t_depth = 0;
}  // namespace detail

TracerGuard::TracerGuard(Tracer* tracer) {
  SOMA_CHECK(detail::t_tracer == nullptr, "trace: a trace is already running on this thread");
  detail::t_tracer = tracer;
  detail::t_depth = 0;
}

TracerGuard::~TracerGuard() {
  detail::t_tracer = nullptr;
  detail::t_depth = 0;
}

void Scope::record(const char* op, std::vector<Tensor> inputs, const Tensor& output, Attrs attrs) {
  if (!outer_) return;
  // The tracer may throw (an op it cannot export); the depth is restored by the destructor.
  detail::t_tracer->on_op(Call{op, std::move(inputs), output, std::move(attrs)});
}

}  // namespace soma::trace
