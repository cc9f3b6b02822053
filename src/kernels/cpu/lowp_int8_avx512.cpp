// u8 x s8 GEMM with AVX-512BW only (the fallback without VNNI): weights widened to int16 and
// multiplied with vpmaddwd, exact. Compiled for AVX-512 F/BW/VL by function attributes; the
// registry runs it only where cpuid reports them (lowp::avx512_available).
#define SOMA_LOWP_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define SOMA_LOWP_VNNI 0
#define SOMA_LOWP_NS(name) name##_avx512
#include "kernels/cpu/lowp_int8_impl.h"
