// The kernel registry (internal): how ops reach kernels, and how a second implementation of a
// kernel (oneDNN, a bf16 or int8 variant, a future CUDA one) plugs in.
//
// A kernel is a slot named by a tag type that fixes its signature and its dtype:
//
//   template <typename T> struct Gemm { using Fn = void(bool, bool, ...); static constexpr
//                                       const char* name = "gemm"; };        // kernels/kernels.h
//
// Implementations register under a backend name with a priority and an optional availability
// test (CPU features, a library found at run time), all in kernels/register.cpp:
//
//   Kernel<Gemm<float>>::add("openblas", 100, &cpu::gemm<float>);
//   Kernel<Gemm<float>>::add("reference", 0, &cpu::gemm_reference<float>);
//
// Kernel<Tag>::get() returns the implementation to call: the preferred backend's when it has
// one that is available (set_preferred_backend, or SOMA_KERNELS=<name> in the environment),
// else the available one with the highest priority. The choice is cached; changing the
// preference or adding an implementation invalidates every cache at once. Not to be confused
// with core/dispatch.h, which turns a runtime dtype into a C++ type.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "soma/core/error.h"

namespace soma::kernels {

/// CPU features the kernels may ask about (read once with cpuid), capped by the environment
/// variable SOMA_MAX_CPU_ISA (oneDNN's names: sse41, avx2, avx512_core, avx512_core_vnni,
/// avx512_core_bf16, all): a feature above the cap reads false, so tests run the fallback kernels
/// on a machine that has more. An unknown value is a soma::Error (naming it and the accepted
/// values) from every call until the variable is fixed.
struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false,
       avx512_vnni = false, avx512_bf16 = false;
};
const CpuFeatures& cpu_features();
// cpu_isa_name(), the level cpu_features() reports, is in kernels/cpu_isa.h.

/// The backend every kernel uses when it has an available implementation under that name
/// ("" = each kernel's highest-priority one). Throws soma::Error for a name no kernel has.
void set_preferred_backend(const std::string& name);
/// The current preference: set_preferred_backend's, else SOMA_KERNELS's (read once), else "".
std::string preferred_backend();
/// Every backend name some kernel is registered under, sorted.
std::vector<std::string> registered_backends();

/// Sets the preferred backend while it lives (tests).
class BackendGuard {
 public:
  explicit BackendGuard(const std::string& name) : previous_(preferred_backend()) {
    set_preferred_backend(name);
  }
  ~BackendGuard() { set_preferred_backend(previous_); }
  BackendGuard(const BackendGuard&) = delete;
  BackendGuard& operator=(const BackendGuard&) = delete;

 private:
  std::string previous_;
};

namespace detail {
void register_once();      // runs register_kernels() once
void ensure_registered();  // register_once, then checks SOMA_KERNELS names a backend
uint64_t generation();     // changes whenever a cached choice may be stale
void bump_generation();
void note_backend(const char* name);
std::string preference();
}  // namespace detail

template <typename Tag>
class Kernel {
 public:
  using Fn = typename Tag::Fn;

  struct Impl {
    const char* backend;
    int priority;
    Fn* fn;
    bool (*available)();  // nullptr: always
  };

  /// Registers an implementation (kernels/register.cpp, or a test).
  static void add(const char* backend, int priority, Fn* fn, bool (*available)() = nullptr) {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().impls.push_back({backend, priority, fn, available});
    detail::note_backend(backend);
    detail::bump_generation();
  }

  /// The implementation to call now.
  static Fn* get() {
    State& s = state();
    const uint64_t gen = detail::generation();
    if (s.cached_gen.load(std::memory_order_acquire) == gen)
      return s.cached.load(std::memory_order_relaxed);
    return select(gen);
  }

  /// The named backend's implementation when registered and available, else nullptr.
  static Fn* get(const std::string& backend) {
    detail::ensure_registered();
    std::lock_guard<std::mutex> lock(state().mutex);
    for (const Impl& i : state().impls)
      if (backend == i.backend && (!i.available || i.available())) return i.fn;
    return nullptr;
  }

  /// The backend get() would choose now.
  static std::string selected_backend() {
    Fn* fn = get();
    std::lock_guard<std::mutex> lock(state().mutex);
    for (const Impl& i : state().impls)
      if (i.fn == fn) return i.backend;
    return {};
  }

 private:
  struct State {
    std::mutex mutex;
    std::vector<Impl> impls;
    std::atomic<Fn*> cached{nullptr};
    std::atomic<uint64_t> cached_gen{0};  // generations start at 1
  };
  static State& state() {
    static State s;
    return s;
  }

  static Fn* select(uint64_t gen) {
    detail::ensure_registered();
    gen = detail::generation();  // read before the preference: a later change re-selects
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    const std::string want = detail::preference();
    const Impl* best = nullptr;
    for (const Impl& i : s.impls) {
      if (i.available && !i.available()) continue;
      if (!want.empty() && want == i.backend) {
        best = &i;
        break;
      }
      if (!best || i.priority > best->priority) best = &i;
    }
    SOMA_CHECK(best != nullptr, "kernel '", Tag::name, "': no implementation is available");
    // Only a newer choice replaces the cached one (a select that read an older generation and
    // got the lock last must not publish its stale pointer under the newer generation).
    if (gen >= s.cached_gen.load(std::memory_order_relaxed)) {
      s.cached_gen.store(0, std::memory_order_release);  // readers re-select while it changes
      s.cached.store(best->fn, std::memory_order_release);
      s.cached_gen.store(gen, std::memory_order_release);
    }
    return best->fn;
  }
};

}  // namespace soma::kernels
