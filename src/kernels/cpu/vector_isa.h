// soma's own hot loops (pooling, the optimizers' updates, the dropout RNG, normalisation, the
// int8 layers' im2col and requantisation), compiled for three vector levels in one binary and
// chosen at run time, so a build for any x86-64 (-DSOMA_NATIVE=OFF) runs them with AVX-512 or
// AVX2 + FMA where the CPU has them.
//
//   with_vector_isa([&]() SOMA_VECTOR_BODY { for (...) ...; });
//
// runs the lambda's body compiled for AVX-512 (F/BW/VL + AVX2/FMA), for AVX2 + FMA, or for the
// build's baseline, by the level cpu_features() reports: cpuid, capped by SOMA_MAX_CPU_ISA (so
// SOMA_MAX_CPU_ISA=sse41 runs the baseline copy on this machine, avx2 the AVX2 one). The body is
// forced inline into one target-attributed function per level (GCC compiles an inlined body for
// its caller's ISA); GCC inlines a baseline callee into such a function only when both have the
// same -march, so the levels add ISA extensions and never change the arch. Loops in the body
// vectorise as they would under -march (use `#pragma omp simd` where aliasing is unclear: the
// lambda's captures hide restrict). Keep the body to one thread's share: the dispatch belongs
// inside parallel_for's chunk, since an OpenMP region's body is outlined into its own function.
//
// The files that use it are compiled with -ffp-contract=off (CMakeLists.txt,
// SOMA_VECTOR_ISA_SOURCES): GCC would otherwise fuse a*b+c into an FMA in the AVX2/AVX-512
// copies only, and the copies would give different last bits. Add a new such file there.
//
// Where the build already targets AVX-512 (-march=native on this CPU) or the compiler is not
// GCC (the clang fuzz build), with_vector_isa calls the body directly: one copy, as before.
#pragma once

#include "kernels/registry.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX512F__)
#define SOMA_VECTOR_ISA_CLONES 1
#else
#define SOMA_VECTOR_ISA_CLONES 0
#endif

// The attribute a with_vector_isa body carries (after the lambda's parameter list).
// ... and a function such a body calls, so that it is compiled into each copy too.
#if SOMA_VECTOR_ISA_CLONES
#define SOMA_VECTOR_BODY __attribute__((always_inline))
#define SOMA_VECTOR_INLINE __attribute__((always_inline)) inline
#else
#define SOMA_VECTOR_BODY
#define SOMA_VECTOR_INLINE inline
#endif

// The two levels' target attributes: also for hand-written kernels (intrinsics) that a caller
// runs only where vector_level() says (scripts/check_portable_isa.py knows these names).
#if defined(__GNUC__) && defined(__x86_64__)
#define SOMA_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define SOMA_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define SOMA_HAVE_TARGET_AVX512 1
#else
#define SOMA_HAVE_TARGET_AVX512 0
#endif

namespace soma::kernels::cpu {

/// 0: the build's baseline, 1: AVX2 + FMA, 2: AVX-512 F/BW/VL (after SOMA_MAX_CPU_ISA).
inline int vector_level() {
  static const int level = [] {
    const CpuFeatures& c = cpu_features();
    if (c.avx512f && c.avx512bw && c.avx512vl && c.avx2 && c.fma) return 2;
    if (c.avx2 && c.fma) return 1;
    return 0;
  }();
  return level;
}

#if SOMA_VECTOR_ISA_CLONES
namespace vector_isa_detail {
template <typename F>
SOMA_TARGET_AVX512 __attribute__((noinline)) void run_avx512(F& f) {
  f();
}
template <typename F>
SOMA_TARGET_AVX2 __attribute__((noinline)) void run_avx2(F& f) {
  f();
}
}  // namespace vector_isa_detail
#endif

/// Runs f() compiled for the highest vector level this CPU (and SOMA_MAX_CPU_ISA) allows.
template <typename F>
inline void with_vector_isa(F&& f) {
#if SOMA_VECTOR_ISA_CLONES
  switch (vector_level()) {
    case 2:
      return vector_isa_detail::run_avx512(f);
    case 1:
      return vector_isa_detail::run_avx2(f);
    default:
      return f();
  }
#else
  f();
#endif
}

}  // namespace soma::kernels::cpu
