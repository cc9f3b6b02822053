#include "soma/core/dtype.h"

#include <ostream>

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

}  // namespace soma
