// Inverted dropout in one pass (internal): random draw, mask and output together.
//
// Element i draws u_i in [0, 1) from Philox4x32-10 (Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011), a counter-based generator: u_i is a pure function of (key, i),
// so the result does not depend on how the loop is split over threads. Blocks (counters)
// 16c .. 16c + 15 cover one chunk of 64 words: word r of block 16c + j is word 16r + j of
// chunk c. float32 element 64c + k takes word k of chunk c, float64 element 32c + k takes
// words k (high half) and 32 + k (low half):
//   float32: u = (r >> 8) * 2^-24          float64: u = (r_hi:r_lo >> 11) * 2^-53
// and then
//   keep_i = u_i >= p,   mask_i = keep_i ? 1 / (1 - p) : 0,   out_i = x_i * mask_i.
// x, out and mask are contiguous buffers of n elements.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

template <typename T>
void dropout(const T* x, T* out, T* mask, int64_t n, double p, uint64_t key);

/// The same masks element by element from philox4x32_reference (the "reference" backend).
template <typename T>
void dropout_reference(const T* x, T* out, T* mask, int64_t n, double p, uint64_t key);

/// Plain scalar Philox4x32-10 of any 128-bit counter and 64-bit key (the reference the
/// vectorised kernel is tested against). Block c of `dropout` under `key` is counter
/// {c_lo, c_hi, 0, 0} with key {key_lo, key_hi}.
void philox4x32_reference(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

}  // namespace soma::kernels::cpu
