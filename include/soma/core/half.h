// soma::BFloat16 and soma::Half: the 2-byte element types of kBFloat16 and kFloat16, like
// c10::BFloat16 and c10::Half. Each holds its IEEE bits in a uint16_t, is constructible from
// float (round to nearest, ties to even; NaN stays NaN; float16 overflow gives inf; float16
// subnormals are exact) and converts implicitly to float (exactly), so arithmetic on them runs
// in float and rounds once when the result is stored back:
//
//   soma::BFloat16 a = 1.5f, b = 2.0f;
//   soma::BFloat16 c = a * b;   // float multiply, then one rounding to bfloat16
//
// A double converts through float (double -> float -> half rounds twice), as c10 does, so
// soma's casts from float64 give PyTorch's results.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

namespace soma {

namespace detail {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// float -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN with its sign.
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_float(uint16_t b) {
  return bits_float(static_cast<uint32_t>(b) << 16);
}

/// float -> IEEE binary16 bits, round to nearest even: NaN stays a quiet NaN, magnitudes that
/// round above 65504 become inf, values below 2^-14 become subnormals (or zero) exactly.
inline uint16_t float_to_half_bits(float f) {
  uint32_t x = float_bits(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: inf
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): adding 0.5 puts the half subnormal's last bit
    // at float's last bit, and the float addition rounds to nearest even.
    const float a = bits_float(x) + 0.5f;
    return static_cast<uint16_t>(sign | (float_bits(a) - 0x3f000000u));
  }
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000fffu + odd;  // rebias the exponent (127 -> 15) and round the 13 dropped bits
  return static_cast<uint16_t>(sign | (x >> 13));
}
inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    const float m = static_cast<float>(mant) * 0x1p-24f;  // exact
    return bits_float(sign | float_bits(m));
  }
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

}  // namespace detail

/// bfloat16: 1 sign, 8 exponent and 7 mantissa bits (float32's range, 3 significant digits).
struct BFloat16 {
  uint16_t x;

  BFloat16() = default;
  BFloat16(float f) : x(detail::float_to_bf16_bits(f)) {}           // NOLINT: implicit, like c10
  operator float() const { return detail::bf16_bits_to_float(x); }  // NOLINT
  static BFloat16 from_bits(uint16_t bits) {
    BFloat16 b;
    b.x = bits;
    return b;
  }

  BFloat16& operator+=(float o) { return *this = BFloat16(float(*this) + o); }
  BFloat16& operator-=(float o) { return *this = BFloat16(float(*this) - o); }
  BFloat16& operator*=(float o) { return *this = BFloat16(float(*this) * o); }
  BFloat16& operator/=(float o) { return *this = BFloat16(float(*this) / o); }
};

/// float16 (IEEE binary16): 1 sign, 5 exponent and 10 mantissa bits (max 65504).
struct Half {
  uint16_t x;

  Half() = default;
  Half(float f) : x(detail::float_to_half_bits(f)) {}               // NOLINT: implicit, like c10
  operator float() const { return detail::half_bits_to_float(x); }  // NOLINT
  static Half from_bits(uint16_t bits) {
    Half h;
    h.x = bits;
    return h;
  }

  Half& operator+=(float o) { return *this = Half(float(*this) + o); }
  Half& operator-=(float o) { return *this = Half(float(*this) - o); }
  Half& operator*=(float o) { return *this = Half(float(*this) * o); }
  Half& operator/=(float o) { return *this = Half(float(*this) / o); }
};

static_assert(sizeof(BFloat16) == 2 && sizeof(Half) == 2);

/// Whether T is soma::BFloat16 or soma::Half (floating, but not std::is_floating_point).
template <typename T>
inline constexpr bool is_reduced_float_v = false;
template <>
inline constexpr bool is_reduced_float_v<BFloat16> = true;
template <>
inline constexpr bool is_reduced_float_v<Half> = true;

}  // namespace soma

namespace std {

template <>
class numeric_limits<soma::BFloat16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr bool is_exact = false;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 8;
  static constexpr int radix = 2;
  static soma::BFloat16 min() { return soma::BFloat16::from_bits(0x0080); }
  static soma::BFloat16 max() { return soma::BFloat16::from_bits(0x7f7f); }
  static soma::BFloat16 lowest() { return soma::BFloat16::from_bits(0xff7f); }
  static soma::BFloat16 epsilon() { return soma::BFloat16::from_bits(0x3c00); }
  static soma::BFloat16 infinity() { return soma::BFloat16::from_bits(0x7f80); }
  static soma::BFloat16 quiet_NaN() { return soma::BFloat16::from_bits(0x7fc0); }
  static soma::BFloat16 denorm_min() { return soma::BFloat16::from_bits(0x0001); }
};

template <>
class numeric_limits<soma::Half> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr bool is_exact = false;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 11;
  static constexpr int radix = 2;
  static soma::Half min() { return soma::Half::from_bits(0x0400); }
  static soma::Half max() { return soma::Half::from_bits(0x7bff); }
  static soma::Half lowest() { return soma::Half::from_bits(0xfbff); }
  static soma::Half epsilon() { return soma::Half::from_bits(0x1400); }
  static soma::Half infinity() { return soma::Half::from_bits(0x7c00); }
  static soma::Half quiet_NaN() { return soma::Half::from_bits(0x7e00); }
  static soma::Half denorm_min() { return soma::Half::from_bits(0x0001); }
};

}  // namespace std
