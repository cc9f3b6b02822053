// Element types. float32 is the default; float64 is for gradcheck and precise work; int64 holds
// labels and indices; bool holds the masks that comparisons return; uint8 holds raw pixels
// (images stay uint8 in memory and become float32 per batch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace soma {

enum class DType : uint8_t { Float32, Float64, Int64, Bool, UInt8 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kBool = DType::Bool;
inline constexpr DType kUInt8 = DType::UInt8;

/// Bytes per element.
size_t element_size(DType dtype);
/// "float32", "float64", "int64", "bool", "uint8" (PyTorch's names without the "torch." prefix).
std::string_view dtype_name(DType dtype);
inline bool is_floating(DType dtype) {
  return dtype == kFloat32 || dtype == kFloat64;
}
/// uint8 and int64, and bool when include_bool is true.
inline bool is_integral(DType dtype, bool include_bool) {
  return dtype == kInt64 || dtype == kUInt8 || (include_bool && dtype == kBool);
}
/// The smallest dtype that holds values of both a and b (torch.promote_types): for soma's
/// dtypes, the later of bool < uint8 < int64 < float32 < float64.
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

}  // namespace soma
