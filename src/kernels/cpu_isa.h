// The CPU's instruction-set level as the kernels see it (internal; defined in
// kernels/registry.cpp beside cpu_features()), for benchmarks, summaries and tests.
#pragma once

#include <string>
#include <vector>

namespace soma::kernels {

/// The highest ISA level cpu_features() reports (after the SOMA_MAX_CPU_ISA cap), in that
/// variable's names: "avx512_core_bf16", "avx512_core_vnni", "avx512_core" (AVX-512 F/BW/VL),
/// "avx2" (AVX2 + FMA) or "sse41" (less).
std::string cpu_isa_name();
/// The values SOMA_MAX_CPU_ISA accepts, lowest first, ending with "all" (no cap).
const std::vector<std::string>& cpu_isa_levels();

}  // namespace soma::kernels
