// What the dynamic and static quantized layers share (internal): torch's per-channel
// symmetric int8 weights, and the packed-weight cache keyed by the weight's storage version.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "core/tensor_impl.h"
#include "kernels/cpu/lowp.h"
#include "soma/core/error.h"
#include "soma/core/tensor.h"

namespace soma::quantization::internal {

/// Registers the int8 chain fuser (quantization/fusion.cpp) with Sequential's inference fusion,
/// once; QuantizedConv2d's constructor calls it.
void register_int8_fusion();

/// Per-output-channel symmetric int8 of a float [out, k] matrix (torch's
/// default_per_channel_weight_observer): scale = max(|min|, |max|) / 127.5 (with 0 in the
/// range), at least float32's epsilon; q = clamp(nearbyint(w * (1 / scale)), -128, 127).
/// soma::Error "<who> weight[o, i] is nan" for a non-finite weight.
inline void quantize_rows(const Tensor& w, int64_t out, int64_t k, int8_t* q, float* scales,
                          const std::string& who) {
  const Tensor c = w.detach().to(kFloat32).contiguous();
  const float* p = c.data<float>();
  for (int64_t o = 0; o < out; ++o) {
    const float* row = p + o * k;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < k; ++i) {
      SOMA_CHECK(std::isfinite(row[i]), who, " weight[", o, ", ", i, "] is ", row[i]);
      lo = std::min(lo, row[i]);
      hi = std::max(hi, row[i]);
    }
    const float scale = std::max(std::max(-lo, hi) / 127.5f, std::numeric_limits<float>::epsilon());
    scales[o] = scale;
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < k; ++i)
      q[o * k + i] = static_cast<int8_t>(std::clamp(std::nearbyint(row[i] * inv), -128.0f, 127.0f));
  }
}

/// A layer's int8 weight packed for the u8 x s8 kernels, with what it was packed from.
struct PackedWeight {
  const Storage* storage = nullptr;  // the weight's storage, its version and offset
  uint64_t version = 0;
  int64_t offset = 0;
  kernels::lowp::PackedS8 w;
};

/// The cached pack of `weight` ([n, k] int8), repacked when its storage, version (in-place
/// writes, load_state_dict) or offset changed. P: a layer's Packed (derived from PackedWeight).
template <typename P>
std::shared_ptr<const P> cached_pack(std::shared_ptr<const P>& slot, const Tensor& weight,
                                     int64_t n, int64_t k) {
  const TensorImpl& impl = *weight.impl();
  auto p = std::atomic_load(&slot);
  if (p && p->storage == impl.storage.get() && p->version == impl.storage->version &&
      p->offset == impl.offset)
    return p;
  auto fresh = std::make_shared<P>();
  fresh->storage = impl.storage.get();
  fresh->version = impl.storage->version;
  fresh->offset = impl.offset;
  const Tensor c = weight.contiguous();
  fresh->w = kernels::lowp::pack_s8(c.data<int8_t>(), n, k);
  std::shared_ptr<const P> result = fresh;
  std::atomic_store(&slot, result);
  return result;
}

}  // namespace soma::quantization::internal
