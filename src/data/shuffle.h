// Portable seeded permutations for the data layer (internal).
#pragma once

#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

namespace soma::data::detail {

/// Uniform integer in [0, bound) from raw 64-bit draws: draws below 2^64 mod bound are
/// rejected so that the remaining range is a multiple of bound (no modulo bias). Unlike
/// std::uniform_int_distribution, the result is the same with every standard library.
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

/// Fisher-Yates: for i = n-1 down to 1, swap p[i] with p[j], j uniform in [0, i].
inline void shuffle(std::vector<int64_t>& p, std::mt19937_64& rng) {
  for (size_t i = p.size(); i > 1; --i) {
    const uint64_t j = uniform_below(rng, i);
    std::swap(p[i - 1], p[j]);
  }
}

/// A permutation of 0..n-1 drawn from std::mt19937_64(seed).
inline std::vector<int64_t> random_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  shuffle(p, rng);
  return p;
}

}  // namespace soma::data::detail
