// soma's one clock for timings (epoch seconds, allreduce seconds, the CLI's data and training
// times): the steady clock, in seconds as a double.
#pragma once

#include <chrono>

namespace soma::detail {

/// Seconds on the steady clock since an unspecified start: only differences mean anything.
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Seconds since construction (or the last restart()).
class Stopwatch {
 public:
  Stopwatch() : start_(now_seconds()) {}
  void restart() { start_ = now_seconds(); }
  double seconds() const { return now_seconds() - start_; }

 private:
  double start_;
};

}  // namespace soma::detail
