// Element types. float32 is the default; float64 is for gradcheck and precise work; int64 holds
// labels and indices; bool holds the masks that comparisons return; uint8 holds raw pixels
// (images stay uint8 in memory and become float32 per batch). int8 and int32 are the narrow
// integers; bfloat16 and float16 (soma::BFloat16, soma::Half in half.h) are 2-byte floats for
// storage, conversion and elementwise arithmetic (computed in float, rounded once per op).
// Autograd is float32/float64 only: a bfloat16/float16 tensor cannot require gradients.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string_view>

#include "soma/core/half.h"

namespace soma {

// New dtypes go at the end: the enum values are stable (checkpoints store dtype names, but keep
// the numbering anyway).
enum class DType : uint8_t { Float32, Float64, Int64, Bool, UInt8, Int8, Int32, BFloat16, Float16 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kBool = DType::Bool;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kInt8 = DType::Int8;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat16 = DType::Float16;

/// Every dtype, in enum order.
inline constexpr DType kAllDTypes[] = {kFloat32, kFloat64, kInt64,    kBool,   kUInt8,
                                       kInt8,    kInt32,   kBFloat16, kFloat16};

/// Bytes per element.
size_t element_size(DType dtype);
/// "float32", "float64", "int64", "bool", "uint8", "int8", "int32", "bfloat16", "float16"
/// (PyTorch's names without the "torch." prefix).
std::string_view dtype_name(DType dtype);
/// float32, float64, bfloat16 and float16 (torch.is_floating_point).
inline bool is_floating(DType dtype) {
  return dtype == kFloat32 || dtype == kFloat64 || dtype == kBFloat16 || dtype == kFloat16;
}
/// bfloat16 and float16: the 2-byte floats.
inline bool is_reduced_floating(DType dtype) {
  return dtype == kBFloat16 || dtype == kFloat16;
}
/// float32 and float64: the dtypes autograd differentiates (requires_grad, gradients).
inline bool supports_autograd(DType dtype) {
  return dtype == kFloat32 || dtype == kFloat64;
}
/// uint8, int8, int32 and int64, and bool when include_bool is true.
inline bool is_integral(DType dtype, bool include_bool) {
  return dtype == kInt64 || dtype == kUInt8 || dtype == kInt8 || dtype == kInt32 ||
         (include_bool && dtype == kBool);
}
/// The smallest dtype that holds values of both a and b: torch.promote_types, with one
/// exception: uint8 with int8 gives int32 (torch: int16, which soma lacks; int32 holds both).
/// Otherwise: bool < integers < floats; among integers the wider (int8 < int32 < int64, uint8
/// < int32 < int64); an integer with a float gives the float; bfloat16 with float16 gives
/// float32; bfloat16/float16 with float32/float64 give the latter.
DType promote_types(DType a, DType b);
/// Whether a result of dtype `from` may be written into a tensor of dtype `to` by an in-place
/// op (torch.can_cast): not floating into integral or bool, and not a number into bool.
bool can_cast(DType from, DType to);
std::ostream& operator<<(std::ostream& os, DType dtype);

/// The DType of a C++ element type: dtype_of<float>() == kFloat32.
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return kFloat64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return kInt64;
}
template <>
constexpr DType dtype_of<bool>() {
  return kBool;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return kUInt8;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return kInt8;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return kInt32;
}
template <>
constexpr DType dtype_of<BFloat16>() {
  return kBFloat16;
}
template <>
constexpr DType dtype_of<Half>() {
  return kFloat16;
}

}  // namespace soma
