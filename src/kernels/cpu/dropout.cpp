#include "kernels/cpu/dropout.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"

namespace soma::kernels::cpu {
namespace {

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // Philox multipliers
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
constexpr int kLanes = 16;                                // counter blocks per chunk
constexpr int64_t kChunk = 4 * kLanes;                    // 32-bit words per chunk
// A draw costs ~10x an add, so the loop goes parallel sooner than kParallelGrain.
constexpr int64_t kGrain = 4096;

// The words of blocks first .. first + kLanes - 1, word-major: w[r * kLanes + j] is word r of
// block first + j. One lane per block; the ten rounds vectorise across the lanes.
SOMA_VECTOR_INLINE void philox_chunk(uint64_t first, uint64_t key, uint32_t* __restrict w) {
  const uint32_t key0 = static_cast<uint32_t>(key), key1 = static_cast<uint32_t>(key >> 32);
#pragma omp simd
  for (int j = 0; j < kLanes; ++j) {
    const uint64_t c = first + static_cast<uint64_t>(j);
    uint32_t c0 = static_cast<uint32_t>(c), c1 = static_cast<uint32_t>(c >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = key0, k1 = key1;
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
      const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
      k0 += kW0;
      k1 += kW1;
    }
    w[j] = c0;
    w[kLanes + j] = c1;
    w[2 * kLanes + j] = c2;
    w[3 * kLanes + j] = c3;
  }
}

// Elements [begin, end) of the tensor, begin a multiple of the chunk's element count.
template <typename T>
SOMA_VECTOR_INLINE void dropout_range(const T* __restrict x, T* __restrict out, T* __restrict mask,
                                      int64_t begin, int64_t end, T p, T scale, uint64_t key) {
  // float32 takes one word per element, float64 two: a chunk covers kChunk or kChunk / 2.
  constexpr int64_t kPer = sizeof(T) == 4 ? 1 : 2;
  constexpr int64_t kElems = kChunk / kPer;
  alignas(64) uint32_t w[kChunk];
  alignas(64) T u[kElems];
  for (int64_t i0 = begin; i0 < end; i0 += kElems) {
    philox_chunk(static_cast<uint64_t>(i0 / kElems * kLanes), key, w);
    const int64_t m = std::min(kElems, end - i0);
    if constexpr (sizeof(T) == 4) {
      for (int64_t i = 0; i < kElems; ++i) u[i] = static_cast<float>(w[i] >> 8) * 0x1.0p-24f;
    } else {
      for (int64_t i = 0; i < kElems; ++i) {
        const uint64_t r = (static_cast<uint64_t>(w[i]) << 32) | w[kElems + i];
        u[i] = static_cast<double>(r >> 11) * 0x1.0p-53;
      }
    }
    const T* xi = x + i0;
    T* oi = out + i0;
    T* mi = mask + i0;
    for (int64_t i = 0; i < m; ++i) {
      const T k = u[i] >= p ? scale : T(0);
      mi[i] = k;
      oi[i] = xi[i] * k;
    }
  }
}

}  // namespace

void philox4x32_reference(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0], p1 = static_cast<uint64_t>(kM1) * c[2];
    const uint32_t next[4] = {
        static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<uint32_t>(p1),
        static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<uint32_t>(p0)};
    std::copy_n(next, 4, c);
    k0 += kW0;
    k1 += kW1;
  }
  std::copy_n(c, 4, out);
}

template <typename T>
void dropout(const T* x, T* out, T* mask, int64_t n, double p, uint64_t key) {
  const T pt = static_cast<T>(p), scale = static_cast<T>(1.0 / (1.0 - p));
  constexpr int64_t kElems = sizeof(T) == 4 ? kChunk : kChunk / 2;
  const int64_t chunks = (n + kElems - 1) / kElems;
  parallel_team(n >= kGrain, [&](int64_t t, int64_t nt) {
    const int64_t b = chunks * t / nt * kElems, e = std::min(n, chunks * (t + 1) / nt * kElems);
    if (e > b)
      with_vector_isa(
          [&]() SOMA_VECTOR_BODY { dropout_range<T>(x, out, mask, b, e, pt, scale, key); });
  });
}

template <typename T>
void dropout_reference(const T* x, T* out, T* mask, int64_t n, double p, uint64_t key) {
  const T pt = static_cast<T>(p), scale = static_cast<T>(1.0 / (1.0 - p));
  const uint32_t k[2] = {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)};
  // Word w of chunk c is word w / 16 of counter block 16 c + w % 16.
  auto word = [&](uint64_t c, int64_t w) {
    const uint64_t block = 16 * c + static_cast<uint64_t>(w % 16);
    const uint32_t ctr[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0,
                             0};
    uint32_t out4[4];
    philox4x32_reference(ctr, k, out4);
    return out4[w / 16];
  };
  for (int64_t i = 0; i < n; ++i) {
    T u;
    if constexpr (sizeof(T) == 4) {
      u = static_cast<float>(word(i / 64, i % 64) >> 8) * 0x1.0p-24f;
    } else {
      const uint64_t c = static_cast<uint64_t>(i / 32);
      const uint64_t r = (static_cast<uint64_t>(word(c, i % 32)) << 32) | word(c, 32 + i % 32);
      u = static_cast<double>(r >> 11) * 0x1.0p-53;
    }
    const T keep = u >= pt ? scale : T(0);
    mask[i] = keep;
    out[i] = x[i] * keep;
  }
}

template void dropout_reference<float>(const float*, float*, float*, int64_t, double, uint64_t);
template void dropout_reference<double>(const double*, double*, double*, int64_t, double, uint64_t);
template void dropout<float>(const float*, float*, float*, int64_t, double, uint64_t);
template void dropout<double>(const double*, double*, double*, int64_t, double, uint64_t);

}  // namespace soma::kernels::cpu
