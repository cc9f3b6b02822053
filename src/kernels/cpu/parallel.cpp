#include "kernels/cpu/parallel.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/cpu/vector_isa.h"
#include "soma/core/error.h"
#include "soma/core/threading.h"

namespace soma {
namespace {

constexpr int kMaxThreads = 4096;

// A positive integer in [1, kMaxThreads], or -1. OMP_NUM_THREADS may be a nesting list
// ("4,2"): its first entry is the outer level's count, as OpenMP reads it.
int parse_count(const char* s, bool list) {
  std::string v(s);
  if (list) v = v.substr(0, v.find(','));
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(v.begin());
  if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  const long n = std::strtol(v.c_str(), nullptr, 10);
  return n >= 1 && n <= kMaxThreads ? static_cast<int>(n) : -1;
}

}  // namespace

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

namespace {

// 0 until the first use reads the environment; then the process-wide setting.
std::atomic<int> g_threads{0};
std::once_flag g_init;
std::string g_env_error;  // set once (under g_init) when SOMA_NUM_THREADS is malformed
std::atomic<bool> g_explicit{
    false};  // set_num_threads was called: the environment no longer counts

// SOMA_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs in this process's affinity mask (what
// `taskset` and mpirun's binding leave it), read once. A malformed SOMA_NUM_THREADS is an error
// at every use (it is soma's own variable); a malformed OMP_NUM_THREADS is ignored, as
// OpenMP's runtime ignores it.
void init() {
  std::call_once(g_init, [] {
    int n = -1;
    if (const char* s = std::getenv("SOMA_NUM_THREADS")) {
      n = parse_count(s, false);
      if (n < 0)
        g_env_error = std::string("SOMA_NUM_THREADS: expected a whole number of threads in [1, ") +
                      std::to_string(kMaxThreads) + "], got '" + s + "'";
    } else if (const char* o = std::getenv("OMP_NUM_THREADS")) {
      n = parse_count(o, true);
    }
    if (n < 0) n = available_cpus();
    int expected = 0;
    g_threads.compare_exchange_strong(expected, n);
  });
}

int setting() {
  init();
  if (!g_env_error.empty() && !g_explicit.load(std::memory_order_relaxed)) throw Error(g_env_error);
  return g_threads.load(std::memory_order_relaxed);
}

thread_local int t_cap = 0;      // ThreadLimit on this thread (0: none)
thread_local int t_applied = 0;  // what omp_set_num_threads was last given on this thread
thread_local int t_last_team = 1;
thread_local bool t_in_spin_team = false;  // a spin_team thread (helper, or the caller in a run)

}  // namespace

void set_num_threads(int n) {
  SOMA_CHECK(n >= 1 && n <= kMaxThreads, "set_num_threads: the number of threads must be in [1, ",
             kMaxThreads, "], got ", n);
  init();  // the environment is read first, so a later first use cannot override n
  g_threads.store(n, std::memory_order_relaxed);
  g_explicit.store(true, std::memory_order_relaxed);
}

int get_num_threads() {
  return setting();
}

namespace kernels::cpu {

int num_threads() {
  if (omp_in_parallel() || t_in_spin_team) return 1;
  const int n = setting();
  return t_cap > 0 ? std::min(n, t_cap) : n;
}

void sync_blas_threads() {
  // OpenBLAS runs single-threaded inside a parallel region; a spin_team thread leaves the
  // process-wide count alone (as a capped thread does, below).
  if (omp_in_parallel() || t_in_spin_team) return;
  const int n = num_threads();
  // A capped thread (a loader worker) leaves OpenBLAS's process-wide count alone: changing it
  // while another thread is inside a threaded BLAS call would resize buffers in use.
  if (t_cap > 0 && n < setting()) return;
  t_last_team = n;  // what a BLAS call that soma does not split itself runs on
  if (n != t_applied) {
    omp_set_num_threads(n);  // this thread's OpenMP setting, which OpenBLAS's OpenMP build uses
    t_applied = n;
  }
  // OpenBLAS keeps one process-wide count (set from the CPU count when it loads, whatever the
  // affinity mask): align it with soma's before each call.
  if (openblas_get_num_threads() != n) openblas_set_num_threads(n);
}

namespace {

// A region's body may ask for the vector level (with_vector_isa), whose first call reads
// SOMA_MAX_CPU_ISA and throws soma::Error on an unknown value. An exception leaving an OpenMP
// region terminates the process, so the level is settled here, on the calling thread, where
// that error reaches the caller (cheap after the first call: a static's guard).
void settle_vector_level() {
  (void)vector_level();
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> f, int64_t align) {
  if (n <= 0) return;
  const int threads = n < grain ? 1 : num_threads();
  if (threads <= 1) {
    t_last_team = 1;
    f(0, n);
    return;
  }
  settle_vector_level();
  int team = 1;
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (t == 0) team = static_cast<int>(nt);
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (align > 1) {
      b = t == 0 ? 0 : b / align * align;
      e = t + 1 == nt ? n : e / align * align;
    }
    if (e > b) f(b, e);
  }
  t_last_team = team;
}

void parallel_team(bool parallel, FunctionRef<void(int64_t, int64_t)> f) {
  const int threads = parallel ? num_threads() : 1;
  if (threads <= 1) {
    t_last_team = 1;
    f(0, 1);
    return;
  }
  settle_vector_level();
  int team = 1;
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (t == 0) team = static_cast<int>(nt);
    f(t, nt);
  }
  t_last_team = team;
}

// ---- spin_team ---------------------------------------------------------------------------
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The CPUs the process may use, as the thread that loaded soma saw them: helpers run on these
// (not on whatever a later caller pinned itself to), and a team never has more threads than
// there are (a process under `taskset -c 0` must not spin two threads on one CPU). Empty when
// the mask cannot be read (more CPUs than cpu_set_t holds): helpers then keep their own.
const cpu_set_t& start_mask() {
  static const cpu_set_t mask = [] {
    cpu_set_t m;
    CPU_ZERO(&m);
    if (sched_getaffinity(0, sizeof(m), &m) != 0) CPU_ZERO(&m);
    return m;
  }();
  return mask;
}
int start_cpus() {
  static const int n = [] {
    const int c = CPU_COUNT(&start_mask());
    return c > 0 ? c : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return n;
}
[[maybe_unused]] const int g_start_cpus_at_load = start_cpus();  // read while soma loads

// The helpers of spin_team. One 64-bit word carries a run's number and its team size (the low
// 8 bits), so a helper learns both from one load: a helper outside a run's team never reads the
// task, and one inside it reads the task only while the caller waits for it. A helper that has
// spun kSpin since its last task of its own sleeps on its own 32-bit counter (a futex), which a
// run advances only for the sleeping helpers in its team.
class SpinTeam {
 public:
  static constexpr int kMaxTeam = 64;
  static constexpr auto kSpin = std::chrono::microseconds(100);
  SpinTeam* forked_from = nullptr;  // the parent process's team, in a forked child

  // f on up to `threads` threads (2..kMaxTeam); the team size it ran with, or 0 without running
  // anything when busy or when no helper thread could be started.
  int run(int threads, FunctionRef<void(int64_t, int64_t)> f) {
    std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) return 0;
    threads = std::min(threads, max_team_);
    try {
      while (static_cast<int>(helpers_.size()) < threads - 1) {
        const int index = static_cast<int>(helpers_.size()) + 1;
        helpers_.emplace_back([this, index, seen = word_.load()] { work(index, seen); });
      }
    } catch (...) {  // std::system_error: no more threads; from now on, the ones there are
      max_team_ = static_cast<int>(helpers_.size()) + 1;
      threads = max_team_;
    }
    if (threads < 2) return 0;
    task_ = &f;
    error_ = nullptr;
    pending_.store(threads - 1, std::memory_order_relaxed);
    const uint64_t next =
        ((word_.load(std::memory_order_relaxed) >> 8) + 1) << 8 | static_cast<uint64_t>(threads);
    word_.store(next, std::memory_order_seq_cst);
    for (int i = 1; i < threads; ++i) {
      Slot& slot = slots_[static_cast<size_t>(i)];
      if (slot.asleep.load(std::memory_order_seq_cst)) {
        slot.wake.fetch_add(1, std::memory_order_seq_cst);
        slot.wake.notify_one();
      }
    }
    t_in_spin_team = true;
    try {
      f(0, threads);
    } catch (...) {
      std::lock_guard<std::mutex> g(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_spin_team = false;
    for (int spins = 0; pending_.load(std::memory_order_acquire) > 0; ++spins) {
      cpu_relax();
      if (spins > 4096) std::this_thread::yield();  // a helper lost its core for a while
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return threads;
  }

 private:
  struct alignas(64) Slot {
    std::atomic<uint32_t> wake{0};  // advanced by a run that needs this helper asleep
    std::atomic<bool> asleep{false};
  };

  void work(int index, uint64_t seen) {
    t_in_spin_team = true;
    const cpu_set_t& mask = start_mask();
    if (CPU_COUNT(&mask) > 0) pthread_setaffinity_np(pthread_self(), sizeof(mask), &mask);
    Slot& slot = slots_[static_cast<size_t>(index)];
    auto last_task = std::chrono::steady_clock::now();
    for (;;) {
      uint64_t w = word_.load(std::memory_order_acquire);
      for (int spins = 1; w == seen; ++spins) {
        cpu_relax();
        if (spins % 64 == 0 && std::chrono::steady_clock::now() - last_task > kSpin) {
          slot.asleep.store(true, std::memory_order_seq_cst);
          const uint32_t ticket = slot.wake.load(std::memory_order_seq_cst);
          if (word_.load(std::memory_order_seq_cst) == seen) slot.wake.wait(ticket);
          slot.asleep.store(false, std::memory_order_relaxed);
        }
        w = word_.load(std::memory_order_acquire);
      }
      seen = w;
      const int team = static_cast<int>(w & 0xFF);
      if (index >= team) continue;  // not this run's: back to spinning out its time, or sleep
      try {
        (*task_)(index, team);
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      last_task = std::chrono::steady_clock::now();
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::mutex busy_;                   // held by the caller of a run
  std::vector<std::thread> helpers_;  // never joined: the team lives as long as the process
  int max_team_ = kMaxTeam;           // lowered when a helper thread could not be started
  std::atomic<uint64_t> word_{0};     // run number << 8 | team size
  std::array<Slot, kMaxTeam> slots_{};
  std::atomic<int> pending_{0};  // helpers of the current run not yet done
  const FunctionRef<void(int64_t, int64_t)>* task_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

std::atomic<SpinTeam*> g_spin_team{nullptr};
std::atomic<SpinTeam*> g_forked_from{nullptr};  // in a forked child: the parent's team

SpinTeam& spin_team_instance() {
  if (SpinTeam* t = g_spin_team.load(std::memory_order_acquire)) return *t;
  static std::once_flag at_fork;
  // A forked child has none of the helpers: it starts a team of its own on first use (the
  // parent's is leaked there, as its threads are gone).
  std::call_once(at_fork, [] {
    pthread_atfork(nullptr, nullptr, [] {
      g_forked_from.store(g_spin_team.exchange(nullptr, std::memory_order_relaxed),
                          std::memory_order_relaxed);
    });
  });
  // Never deleted once published: helpers may still spin on it while the process exits. A
  // team that loses the race has no helpers yet (they start in run()) and is deleted.
  auto* fresh = new SpinTeam;
  SpinTeam* expected = nullptr;
  if (g_spin_team.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
    fresh->forked_from = g_forked_from.exchange(nullptr);  // kept reachable, never used
    return *fresh;
  }
  delete fresh;
  return *expected;
}

}  // namespace

void spin_team(FunctionRef<void(int64_t, int64_t)> f, int64_t max_threads) {
  const int64_t cap = std::min<int64_t>({max_threads, SpinTeam::kMaxTeam, start_cpus()});
  const int threads = static_cast<int>(
      std::min<int64_t>(t_in_spin_team ? 1 : num_threads(), std::max<int64_t>(cap, 1)));
  if (threads > 1) {
    settle_vector_level();
    if (const int team = spin_team_instance().run(threads, f); team > 0) {
      t_last_team = team;
      return;
    }
  }
  t_last_team = 1;
  f(0, 1);
}

int last_team_size() {
  return t_last_team;
}

ThreadLimit::ThreadLimit(int max_threads) : previous_(t_cap) {
  SOMA_CHECK(max_threads >= 1, "ThreadLimit: the number of threads must be >= 1, got ",
             max_threads);
  t_cap = previous_ > 0 ? std::min(previous_, max_threads) : max_threads;
}

ThreadLimit::~ThreadLimit() {
  t_cap = previous_;
}

}  // namespace kernels::cpu
}  // namespace soma
