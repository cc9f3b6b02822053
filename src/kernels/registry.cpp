#include "kernels/registry.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "kernels/cpu_isa.h"
#include "soma/core/cpu.h"

namespace soma::kernels {

void register_kernels();  // kernels/register.cpp

namespace {

std::atomic<uint64_t> g_generation{1};
std::mutex g_mutex;  // guards g_preference and g_backends
std::string g_preference;
bool g_preference_read = false;
std::set<std::string>& backends() {
  static std::set<std::string> b;
  return b;
}

void read_env_locked() {
  if (g_preference_read) return;
  g_preference_read = true;
  if (const char* s = std::getenv("SOMA_KERNELS")) g_preference = s;
}

}  // namespace

namespace detail {

void register_once() {
  static std::once_flag once;
  std::call_once(once, [] { register_kernels(); });
}

void ensure_registered() {
  register_once();
  // Checked after registration, outside call_once: an error here leaves the registration done
  // (once), and repeats at every use until the preference is valid.
  std::lock_guard<std::mutex> lock(g_mutex);
  read_env_locked();
  {
    SOMA_CHECK(
        g_preference.empty() || backends().count(g_preference),
        "SOMA_KERNELS: no kernel is registered under '", g_preference, "' (registered backends: ",
        [] {
          std::string all;
          for (const std::string& b : backends()) all += (all.empty() ? "" : ", ") + b;
          return all;
        }(),
        ")");
  }
}

uint64_t generation() {
  return g_generation.load(std::memory_order_acquire);
}

void bump_generation() {
  g_generation.fetch_add(1, std::memory_order_acq_rel);
}

void note_backend(const char* name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  backends().insert(name);
}

std::string preference() {
  std::lock_guard<std::mutex> lock(g_mutex);
  read_env_locked();
  return g_preference;
}

}  // namespace detail

namespace {

// The ISA levels in order; a level implies the ones before it.
enum IsaLevel { kSse41, kAvx2, kAvx512Core, kAvx512Vnni, kAvx512Bf16, kAll };
const char* const kIsaNames[] = {
    "sse41", "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16", "all"};

// SOMA_MAX_CPU_ISA's level (kAll when unset or empty); throws for an unknown value.
IsaLevel isa_cap() {
  const char* s = std::getenv("SOMA_MAX_CPU_ISA");
  if (s == nullptr || *s == '\0') return kAll;
  std::string v(s);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
  for (int i = 0; i <= kAll; ++i)
    if (v == kIsaNames[i]) return static_cast<IsaLevel>(i);
  std::string all;
  for (const char* n : kIsaNames) all += (all.empty() ? "" : ", ") + std::string(n);
  throw Error("SOMA_MAX_CPU_ISA: unknown ISA '" + std::string(s) + "' (accepted values: " + all +
              ")");
}

}  // namespace

const CpuFeatures& cpu_features() {
  // A throwing initialiser leaves the static uninitialised: a bad SOMA_MAX_CPU_ISA is an
  // error at every call until it is fixed.
  static const CpuFeatures f = [] {
    const IsaLevel cap = isa_cap();
    CpuFeatures c;
    __builtin_cpu_init();
    if (cap >= kAvx2) {
      c.avx2 = __builtin_cpu_supports("avx2");
      c.fma = __builtin_cpu_supports("fma");
    }
    if (cap >= kAvx512Core) {
      c.avx512f = __builtin_cpu_supports("avx512f");
      c.avx512bw = __builtin_cpu_supports("avx512bw");
      c.avx512vl = __builtin_cpu_supports("avx512vl");
    }
    if (cap >= kAvx512Vnni) c.avx512_vnni = __builtin_cpu_supports("avx512vnni");
    if (cap >= kAvx512Bf16) c.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
    return c;
  }();
  return f;
}

std::string cpu_isa_name() {
  const CpuFeatures& c = cpu_features();
  const bool core = c.avx512f && c.avx512bw && c.avx512vl;
  if (core && c.avx512_vnni && c.avx512_bf16) return kIsaNames[kAvx512Bf16];
  if (core && c.avx512_vnni) return kIsaNames[kAvx512Vnni];
  if (core) return kIsaNames[kAvx512Core];
  if (c.avx2 && c.fma) return kIsaNames[kAvx2];
  return kIsaNames[kSse41];
}

const std::vector<std::string>& cpu_isa_levels() {
  static const std::vector<std::string> levels(std::begin(kIsaNames), std::end(kIsaNames));
  return levels;
}

void set_preferred_backend(const std::string& name) {
  detail::register_once();
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    read_env_locked();
    if (!name.empty() && !backends().count(name)) {
      std::string all;
      for (const std::string& b : backends()) all += (all.empty() ? "" : ", ") + b;
      throw Error("set_preferred_backend: no kernel is registered under '" + name +
                  "' (registered backends: " + all + ")");
    }
    g_preference = name;
  }
  detail::bump_generation();
}

std::string preferred_backend() {
  std::lock_guard<std::mutex> lock(g_mutex);
  read_env_locked();
  return g_preference;
}

std::vector<std::string> registered_backends() {
  detail::register_once();
  std::lock_guard<std::mutex> lock(g_mutex);
  return {backends().begin(), backends().end()};
}

}  // namespace soma::kernels

namespace soma {

std::string cpu_isa() {
  return kernels::cpu_isa_name();
}

std::vector<std::string> cpu_isa_levels() {
  return kernels::cpu_isa_levels();
}

}  // namespace soma
