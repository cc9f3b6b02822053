#include "kernels/registry.h"

#include <algorithm>
#include <cstdlib>
#include <set>

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

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512_vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
    return c;
  }();
  return f;
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
