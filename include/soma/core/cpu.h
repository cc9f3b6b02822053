// The CPU as soma's kernels see it: the instruction-set level they dispatch on.
//
// soma's kernels pick their implementation at run time from cpuid (the int8 and bfloat16 kernels
// are compiled for AVX-512 VNNI / BF16 with target attributes, whatever the build's -march), and
// the environment variable SOMA_MAX_CPU_ISA caps what they may use, as oneDNN's
// ONEDNN_MAX_CPU_ISA does. cpu_isa() names the level in force after that cap, so a benchmark or
// a log line says what actually ran. Implemented in kernels/ (src/kernels/registry.cpp).
#pragma once

#include <string>
#include <vector>

namespace soma {

/// The highest instruction-set level soma's kernels use on this CPU, after the SOMA_MAX_CPU_ISA
/// cap: "avx512_core_bf16", "avx512_core_vnni", "avx512_core" (AVX-512 F/BW/VL), "avx2" (AVX2 +
/// FMA) or "sse41" (less). Throws soma::Error naming the value and the accepted ones if
/// SOMA_MAX_CPU_ISA is set to an unknown level.
std::string cpu_isa();
/// The values SOMA_MAX_CPU_ISA accepts, lowest first, ending with "all" (no cap).
std::vector<std::string> cpu_isa_levels();

}  // namespace soma
