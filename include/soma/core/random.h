// soma's random number generator.
//
// One global generator, a 32-bit Mersenne Twister (std::mt19937, the same engine as PyTorch's
// CPU generator). Tensors are filled serially in row-major order, so results depend only on the
// seed and the sequence of calls, never on the number of threads.
//   uniform float32:  (u32 >> 8) * 2^-24          in [0, 1)  (default seed 5489)
//   uniform float64:  (u64 >> 11) * 2^-53         in [0, 1), u64 from two u32 draws
//   normal:           Box-Muller on two uniform float64 draws
#pragma once

#include <cstdint>
#include <string>

namespace soma {

/// Seeds the global generator (like torch.manual_seed).
void manual_seed(uint64_t seed);
/// The generator's full state as text (checkpoints store it so a resumed run draws the same
/// numbers), and its inverse; a malformed state is an error.
std::string get_rng_state();
void set_rng_state(const std::string& state);

namespace detail {
/// Next raw 32-bit draw of the global generator.
uint32_t random_u32();
/// Uniform double in [0, 1).
double random_uniform();
/// Standard normal double.
double random_normal();
}  // namespace detail

}  // namespace soma
