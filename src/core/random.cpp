#include "soma/core/random.h"

#include <cmath>
#include <iomanip>
#include <mutex>
#include <numbers>
#include <random>
#include <sstream>

#include "core/random_fill.h"
#include "soma/core/error.h"

namespace soma {
namespace {

struct Generator {
  std::mutex mutex;
  std::mt19937 engine{5489u};
  bool has_spare_normal = false;
  double spare_normal = 0.0;

  double uniform() {
    const uint64_t hi = engine(), lo = engine();
    return static_cast<double>(((hi << 32) | lo) >> 11) * 0x1.0p-53;
  }
  float uniform_float() { return static_cast<float>(engine() >> 8) * 0x1.0p-24f; }
  double normal() {
    if (has_spare_normal) {
      has_spare_normal = false;
      return spare_normal;
    }
    // Box-Muller; u1 in (0, 1] keeps the log finite.
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * std::numbers::pi * u2;
    spare_normal = r * std::sin(theta);
    has_spare_normal = true;
    return r * std::cos(theta);
  }
};

Generator& generator() {
  static Generator g;
  return g;
}

}  // namespace

void manual_seed(uint64_t seed) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  g.engine.seed(static_cast<std::mt19937::result_type>(seed));
  g.has_spare_normal = false;
}

std::string get_rng_state() {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  std::ostringstream os;
  os << std::setprecision(17) << g.engine << ' ' << g.has_spare_normal << ' ' << g.spare_normal;
  return os.str();
}

void set_rng_state(const std::string& state) {
  std::istringstream is(state);
  std::mt19937 engine;
  bool has_spare = false;
  double spare = 0;
  is >> engine >> has_spare >> spare;
  SOMA_CHECK(!is.fail(), "set_rng_state: malformed generator state (", state.size(), " bytes)");
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  g.engine = engine;
  g.has_spare_normal = has_spare;
  g.spare_normal = spare;
}

namespace detail {

uint32_t random_u32() {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  return static_cast<uint32_t>(g.engine());
}

double random_uniform() {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  return g.uniform();
}

double random_normal() {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  return g.normal();
}

void fill_uniform(float* p, int64_t n) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  for (int64_t i = 0; i < n; ++i) p[i] = g.uniform_float();
}

void fill_uniform(double* p, int64_t n) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  for (int64_t i = 0; i < n; ++i) p[i] = g.uniform();
}

void fill_normal(float* p, int64_t n) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(g.normal());
}

void fill_normal(double* p, int64_t n) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  for (int64_t i = 0; i < n; ++i) p[i] = g.normal();
}

void fill_randint(int64_t* p, int64_t n, int64_t low, int64_t high) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  const double range = static_cast<double>(high - low);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = low + static_cast<int64_t>(g.uniform() * range);
    p[i] = v < high ? v : high - 1;
  }
}

}  // namespace detail
}  // namespace soma
