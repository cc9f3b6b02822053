// The low-precision kernel slots (internal): one tag per kernel of kernels/cpu/lowp.h, as the
// slots of kernels/kernels.h. Callers use the lowp:: functions, which check their arguments and
// call through these; the implementations are registered in kernels/register.cpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/lowp.h"
#include "kernels/registry.h"

namespace soma::kernels {

struct LowpGemmU8S8S32 {
  using Fn = void(int64_t, const uint8_t*, int64_t, const lowp::PackedS8&, int32_t*, int64_t);
  static constexpr const char* name = "gemm_u8s8s32";
};
struct LowpGemmU8S8F32 {
  using Fn = void(int64_t, const uint8_t*, int64_t, const lowp::PackedS8&, int32_t, float,
                  const float*, const float*, float*, int64_t, bool);
  static constexpr const char* name = "gemm_u8s8_f32";
};
struct LowpQuantizeGemmU8S8F32 {
  using Fn = void(int64_t, const float*, int64_t, const lowp::PackedS8&, int32_t, float,
                  const float*, const float*, float*, int64_t, bool);
  static constexpr const char* name = "quantize_gemm_u8s8_f32";
};
struct LowpMinMax {
  using Fn = void(const float*, int64_t, float*, float*, bool*);
  static constexpr const char* name = "min_max";
};
struct LowpQuantizeU8 {
  using Fn = void(const float*, int64_t, float, int32_t, uint8_t*);
  static constexpr const char* name = "quantize_u8";
};
struct LowpFloatToBf16 {
  using Fn = void(const float*, uint16_t*, int64_t);
  static constexpr const char* name = "float_to_bf16";
};
struct LowpBf16ToFloat {
  using Fn = void(const uint16_t*, float*, int64_t);
  static constexpr const char* name = "bf16_to_float";
};
struct LowpFloatToF16 {
  using Fn = void(const float*, uint16_t*, int64_t);
  static constexpr const char* name = "float_to_f16";
};
struct LowpF16ToFloat {
  using Fn = void(const uint16_t*, float*, int64_t);
  static constexpr const char* name = "f16_to_float";
};
struct LowpGemmBf16 {
  using Fn = void(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                  int64_t, float, float*, int64_t);
  static constexpr const char* name = "gemm_bf16";
};

}  // namespace soma::kernels
