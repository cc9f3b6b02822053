// u8 x s8 GEMM with AVX-512 VNNI (vpdpbusd: four u8 x s8 products per int32 lane, summed
// without saturation). Compiled for that ISA by function attributes whatever the build's -march;
// the registry runs it only where cpuid reports AVX-512 F/BW/VL/VNNI (lowp::vnni_available).
#define SOMA_LOWP_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define SOMA_LOWP_VNNI 1
#define SOMA_LOWP_NS(name) name##_vnni
#include "kernels/cpu/lowp_int8_impl.h"
