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
    case kBool:
    case kUInt8:
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
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, DType dtype) {
  return os << dtype_name(dtype);
}

namespace {

// Position in the promotion order bool < uint8 < int64 < float32 < float64. For these five
// dtypes torch's promotion table is this total order (no int8/complex, whose rows differ).
int promotion_rank(DType d) {
  switch (d) {
    case kBool:
      return 0;
    case kUInt8:
      return 1;
    case kInt64:
      return 2;
    case kFloat32:
      return 3;
    case kFloat64:
      return 4;
  }
  return 4;
}

}  // namespace

DType promote_types(DType a, DType b) {
  return promotion_rank(a) >= promotion_rank(b) ? a : b;
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
