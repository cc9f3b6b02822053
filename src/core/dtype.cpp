// DType names and sizes, type promotion (promote_types, can_cast) and printing of Scalars.
#include "soma/core/dtype.h"

#include <ostream>

#include "soma/core/scalar.h"

namespace soma {

size_t element_size(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return 4;
    case kFloat64:
    case kInt64:
      return 8;
    case kInt32:
      return 4;
    case kBFloat16:
    case kFloat16:
      return 2;
    case kBool:
    case kUInt8:
    case kInt8:
      return 1;
  }
  return 1;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return "float32";
    case kFloat64:
      return "float64";
    case kInt64:
      return "int64";
    case kBool:
      return "bool";
    case kUInt8:
      return "uint8";
    case kInt8:
      return "int8";
    case kInt32:
      return "int32";
    case kBFloat16:
      return "bfloat16";
    case kFloat16:
      return "float16";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, DType dtype) {
  return os << dtype_name(dtype);
}

namespace {

// Width order within a kind: integers int8/uint8 < int32 < int64; floats bfloat16/float16 <
// float32 < float64.
int width_rank(DType d) {
  switch (d) {
    case kInt32:
    case kFloat32:
      return 1;
    case kInt64:
    case kFloat64:
      return 2;
    default:
      return 0;
  }
}

}  // namespace

// torch.promote_types for soma's nine dtypes (checked against torch's table by
// tests/ops/promotion_test.cpp). It is not a total order: uint8 with int8 needs a wider
// integer (torch: int16, soma: int32, the narrowest soma dtype that holds both), and bfloat16
// with float16 gives float32.
DType promote_types(DType a, DType b) {
  if (a == b || b == kBool) return a;
  if (a == kBool) return b;
  const bool fa = is_floating(a), fb = is_floating(b);
  if (fa != fb) return fa ? a : b;  // an integer with a float: the float
  if (fa && is_reduced_floating(a) && is_reduced_floating(b)) return kFloat32;
  if (!fa && width_rank(a) == 0 && width_rank(b) == 0) return kInt32;  // uint8 with int8
  return width_rank(a) >= width_rank(b) ? a : b;
}

bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != kBool && to == kBool) return false;
  return true;
}

std::ostream& operator<<(std::ostream& os, const Scalar& s) {
  switch (s.kind()) {
    case Scalar::Kind::Bool:
      return os << (s.to_bool() ? "true" : "false");
    case Scalar::Kind::Int:
      return os << s.to_long();
    case Scalar::Kind::Float:
      break;
  }
  return os << s.to_double();
}

}  // namespace soma
