// soma::cpu_isa() (include/soma/core/cpu.h): the instruction-set level the kernels dispatch on,
// after the SOMA_MAX_CPU_ISA cap. The expected level is computed here from cpuid and the
// variable, independently of kernels/registry.cpp. ctest runs these again under
// SOMA_MAX_CPU_ISA=avx2 and avx512_core (kernels.lowp_isa_*) and an unknown value.
#include "kernels/cpu_isa.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

const std::vector<std::string> kLevels = {"sse41", "avx2", "avx512_core", "avx512_core_vnni",
                                          "avx512_core_bf16"};

std::string isa_env() {
  const char* s = std::getenv("SOMA_MAX_CPU_ISA");
  return s == nullptr ? "" : s;
}

// The index in kLevels of the CPU's own level (cpuid), before any cap.
size_t cpuid_level() {
  __builtin_cpu_init();
  const bool core = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl");
  if (core) {
    if (!__builtin_cpu_supports("avx512vnni")) return 2;
    return __builtin_cpu_supports("avx512bf16") ? 4 : 3;
  }
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

TEST(CpuIsa, IsTheCpuidLevelCappedBySomaMaxCpuIsa) {
  const std::string cap = isa_env();
  size_t cap_index = kLevels.size();  // unset, empty or "all": no cap
  if (!cap.empty() && cap != "all") {
    const auto it = std::find(kLevels.begin(), kLevels.end(), cap);
    if (it == kLevels.end()) GTEST_SKIP() << "unknown SOMA_MAX_CPU_ISA=" << cap;
    cap_index = static_cast<size_t>(it - kLevels.begin());
  }
  const std::string expected = kLevels[std::min(cpuid_level(), cap_index)];
  EXPECT_EQ(soma::cpu_isa(), expected) << "SOMA_MAX_CPU_ISA=" << cap;
  EXPECT_EQ(soma::cpu_isa(), soma::kernels::cpu_isa_name());
}

TEST(CpuIsa, LevelsAreTheCapValues) {
  std::vector<std::string> want = kLevels;
  want.push_back("all");
  EXPECT_EQ(soma::cpu_isa_levels(), want);
}

// Under an unknown SOMA_MAX_CPU_ISA (ctest kernels.lowp_isa_unknown) every call is an error
// naming the value and the accepted ones.
TEST(CpuIsa, UnknownCapIsAnError) {
  const std::string cap = isa_env();
  if (cap.empty() || cap == "all" ||
      std::find(kLevels.begin(), kLevels.end(), cap) != kLevels.end())
    GTEST_SKIP() << "runs under an unknown SOMA_MAX_CPU_ISA (ctest kernels.lowp_isa_unknown)";
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      (void)soma::cpu_isa();
      FAIL() << "no error for SOMA_MAX_CPU_ISA=" << cap;
    } catch (const soma::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("SOMA_MAX_CPU_ISA"), std::string::npos) << what;
      EXPECT_NE(what.find("'" + cap + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("avx512_core_bf16"), std::string::npos) << what;
    }
  }
}

}  // namespace
