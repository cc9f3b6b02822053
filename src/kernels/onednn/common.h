// What the oneDNN kernels share (kernels/onednn/conv.cpp, fused.cpp): the CPU engine, the
// OpenMP thread setting for a call, and scratch buffers from soma's caching allocator.
// Built only with SOMA_ONEDNN.
#pragma once

#include <omp.h>

#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <utility>

#include "core/allocator.h"
#include "kernels/cpu/parallel.h"

namespace soma::kernels::onednn {

/// SOMA_MAX_CPU_ISA caps oneDNN's kernels too (unless ONEDNN_MAX_CPU_ISA is set, which
/// oneDNN reads itself): oneDNN takes the cap only before it generates its first kernel, so
/// engine() applies it once, first.
inline void apply_isa_cap() {
  const char* cap = std::getenv("SOMA_MAX_CPU_ISA");
  if (!cap || std::getenv("ONEDNN_MAX_CPU_ISA") || std::getenv("DNNL_MAX_CPU_ISA")) return;
  std::string v = cap;  // case-insensitive, as the kernel registry reads it
  for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  using isa = dnnl::cpu_isa;
  const isa level = v == "sse41"              ? isa::sse41
                    : v == "avx2"             ? isa::avx2
                    : v == "avx512_core"      ? isa::avx512_core
                    : v == "avx512_core_vnni" ? isa::avx512_core_vnni
                    : v == "avx512_core_bf16" ? isa::avx512_core_bf16
                                              : isa::all;  // "all"; an unknown name fails elsewhere
  try {
    dnnl::set_max_cpu_isa(level);
  } catch (const dnnl::error&) {  // a kernel was generated already: the cap cannot change now
  }
}

/// The process's oneDNN CPU engine.
inline const dnnl::engine& engine() {
  static const dnnl::engine e = [] {
    apply_isa_cap();
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return e;
}

/// oneDNN's OpenMP runtime sizes its teams from the calling thread's omp_get_max_threads() (at
/// primitive creation: the blocking; at execution: the team). For the object's lifetime that is
/// soma's thread setting; the thread's own value comes back afterwards.
class OmpThreads {
 public:
  OmpThreads() : OmpThreads(cpu::num_threads()) {}
  /// n threads instead of soma's setting (a product too small to share).
  explicit OmpThreads(int n) : n_(n), previous_(omp_get_max_threads()) {
    if (previous_ != n_) omp_set_num_threads(n_);
  }
  ~OmpThreads() {
    if (previous_ != n_) omp_set_num_threads(previous_);
  }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;
  int n() const { return n_; }

 private:
  int n_, previous_;
};

/// A scratch buffer from soma's caching allocator (recycled between steps).
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes)
      : bytes_(bytes), p_(bytes ? soma::detail::allocate(bytes) : nullptr) {}
  ~Buffer() {
    if (p_) soma::detail::deallocate(p_, bytes_);
  }
  Buffer(Buffer&& o) noexcept
      : bytes_(std::exchange(o.bytes_, 0)), p_(std::exchange(o.p_, nullptr)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(bytes_, o.bytes_);
    std::swap(p_, o.p_);
    return *this;
  }
  void* get() const { return p_; }

 private:
  size_t bytes_ = 0;
  void* p_ = nullptr;
};

}  // namespace soma::kernels::onednn
