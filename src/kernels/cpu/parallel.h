// Threads (internal): the one place that starts parallel regions. Every kernel that runs on
// more than one thread goes through parallel_for, which asks soma's process-wide setting
// (soma::set_num_threads) for its team size, so the setting holds on every thread that runs
// soma ops, not only the one that set it. OpenBLAS (its OpenMP build) follows the calling
// thread's OpenMP setting, which sync_blas_threads() aligns with soma's before a BLAS call.
//
//   kernels::cpu::parallel_for(n, kParallelGrain, [&](int64_t begin, int64_t end) { ... });
//
// No OpenMP in this header: callers above kernels/ never see omp.h.
#pragma once

#include <cstdint>

#include "kernels/cpu/function_ref.h"

namespace soma::kernels::cpu {

/// Below this many elements a loop runs on the calling thread.
inline constexpr int64_t kParallelGrain = 32768;

/// The same for elementwise loops whose work per element is a load, an add or a compare and a
/// store (relu and its gradient, add, sub, mul): they are bound by memory, and a second thread
/// pays for its ~3 us region start only past ~128k elements (relu over 32k: 3.0 us on one
/// thread, 4.1 on two; over 128k: 27 on one, 8 on two, on this project's 2-core machines).
inline constexpr int64_t kCheapGrain = 131072;

/// The team size a parallel region started on this thread gets now: soma's setting, capped by
/// a ThreadLimit on this thread, and 1 inside a parallel region.
int num_threads();

/// Calls f(begin, end) over [0, n) split into one contiguous share per thread (thread t gets
/// [n t / T, n (t + 1) / T)), or f(0, n) on the calling thread when n < grain or one thread is
/// set. `align` rounds the interior split points down to a multiple of it (whole vectors).
void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> f,
                  int64_t align = 1);

/// Calls f(t, T) once on each of T threads (T = num_threads(), or 1 when `parallel` is false):
/// for kernels that split work themselves (GEMM along C's longer side, dropout by chunks).
void parallel_team(bool parallel, FunctionRef<void(int64_t, int64_t)> f);

/// Calls f(t, T) once on each of T threads, like parallel_team, but through soma's own small
/// team of helper threads that spin for a while (~100 us) after each task before they sleep,
/// instead of an OpenMP region: for work of a few microseconds (batch-1 Linear layers,
/// kernels/cpu/small_gemm.h), where starting an OpenMP region costs about as much as the work
/// (3 us per region on this project's 2-core VM against ~0.5 us here). T is num_threads(),
/// capped by max_threads and by the CPUs the process had when soma loaded (the helpers run on
/// those, whatever CPU a caller pinned itself to). One caller at a time: a call made while the
/// team is busy (another thread's, or one from inside f) runs f(0, 1) on the calling thread, as
/// does one from inside an OpenMP region. The team starts on first use and is rebuilt in a
/// forked child (a fork from inside f is not supported). An exception from f on any thread is
/// rethrown here after every thread has finished.
void spin_team(FunctionRef<void(int64_t, int64_t)> f, int64_t max_threads = int64_t{1} << 30);

/// Makes the calling thread's OpenMP setting and OpenBLAS's thread count equal num_threads()
/// before a BLAS call (BLAS wrappers call it first; cheap when nothing changed). OpenBLAS keeps
/// one count for the whole process: a thread under a ThreadLimit leaves it alone (changing it
/// while another thread is in a threaded BLAS call is a race), so BLAS calls from a capped
/// thread run with the process's count.
void sync_blas_threads();

/// The team size of the last parallel region this thread started through parallel_for or
/// parallel_team (1 when it ran on the calling thread): for tests and benchmarks.
int last_team_size();

/// Caps the number of threads the calling thread's soma ops use while it lives (a data-loader
/// worker runs its transforms on one thread so that it never competes with the compute pool).
class ThreadLimit {
 public:
  explicit ThreadLimit(int max_threads);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int previous_;
};

}  // namespace soma::kernels::cpu
