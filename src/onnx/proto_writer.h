// The protobuf wire format, write side: what soma::onnx needs to serialise an ONNX ModelProto
// (varints, length-delimited fields, fixed32 floats, packed int64s), without libprotobuf.
// Field numbers are onnx.proto's (onnx 1.12, IR version 8); docs/interop.md says why soma
// writes the format itself.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace soma::onnx::pb {

enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

class Writer {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, Wire wire) { varint((uint64_t{field} << 3) | wire); }
  /// int64 / int32 / enum fields (negative values take ten bytes, as protobuf writes them).
  void i64(uint32_t field, int64_t v) {
    tag(field, kVarint);
    varint(static_cast<uint64_t>(v));
  }
  void bytes(uint32_t field, std::string_view s) {
    tag(field, kLen);
    varint(s.size());
    buf_.append(s);
  }
  void message(uint32_t field, const Writer& m) { bytes(field, m.buf_); }
  void f32(uint32_t field, float v) {
    tag(field, kFixed32);
    char b[4];
    std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64)
    buf_.append(b, 4);
  }
  void packed_i64(uint32_t field, const std::vector<int64_t>& values) {
    Writer p;
    for (int64_t v : values) p.varint(static_cast<uint64_t>(v));
    bytes(field, p.buf_);
  }
  const std::string& str() const { return buf_; }

 private:
  std::string buf_;
};

// onnx.proto field numbers.
namespace model {
constexpr uint32_t kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kDocString = 6,
                   kGraph = 7, kOpsetImport = 8, kMetadataProps = 14;
}
namespace opset_id {
constexpr uint32_t kDomain = 1, kVersion = 2;
}
namespace entry {  // StringStringEntryProto
constexpr uint32_t kKey = 1, kValue = 2;
}
namespace graph {
constexpr uint32_t kNode = 1, kName = 2, kInitializer = 5, kInput = 11, kOutput = 12;
}
namespace node {
constexpr uint32_t kInput = 1, kOutput = 2, kName = 3, kOpType = 4, kAttribute = 5;
}
namespace attr {
constexpr uint32_t kName = 1, kF = 2, kI = 3, kT = 5, kInts = 8, kType = 20;
enum Type : int64_t { kFloat = 1, kInt = 2, kTensor = 4, kIntsType = 7 };
}  // namespace attr
namespace tensor {
constexpr uint32_t kDims = 1, kDataType = 2, kName = 8, kRawData = 9;
enum DataType : int64_t {
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kBFloat16 = 16
};
}  // namespace tensor
namespace value_info {
constexpr uint32_t kName = 1, kType = 2;
}
namespace type {  // TypeProto, TypeProto.Tensor, TensorShapeProto(.Dimension)
constexpr uint32_t kTensorType = 1, kElemType = 1, kShape = 2, kDim = 1, kDimValue = 1,
                   kDimParam = 2;
}

}  // namespace soma::onnx::pb
