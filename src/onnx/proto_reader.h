// The protobuf wire format, read side: the parts of an ONNX ModelProto that soma::onnx::load
// needs (onnx.proto's field numbers, as proto_writer.h), without libprotobuf.
//
// The reader is for hostile files: every length and count is checked against the bytes left
// before anything is allocated, strings and raw_data are views into the caller's buffer (no
// copy), and each message type has its own parse function, so the nesting depth is the
// schema's, never the file's: attributes holding subgraphs (GRAPH, GRAPHS: If, Loop, Scan)
// are refused, TypeProto's recursive sequence/map/optional types are skipped unread. Unknown
// fields are skipped by their wire type; groups (wire types 3, 4) are refused.
// Every failure is a soma::Error that names the message path ("graph.node[3].attribute[1]")
// and the byte offset.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace soma::onnx::pb {

/// Caps on repeated fields, checked before each element is added: an element parsed from a
/// few bytes (an empty node is 2) takes a few hundred bytes of memory, so without them a file
/// could make the reader allocate hundreds of times its size. Each is far above what a model
/// soma can run has (torch's ResNet-50 export: ~120 nodes, ~320 initializers).
inline constexpr size_t kMaxNodes = size_t{1} << 18;         // per graph
inline constexpr size_t kMaxInitializers = size_t{1} << 18;  // per graph
inline constexpr size_t kMaxGraphValues = size_t{1} << 16;   // graph inputs, outputs
inline constexpr size_t kMaxNodeValues = size_t{1} << 12;    // a node's inputs, outputs
inline constexpr size_t kMaxAttributes = 1024;               // per node
inline constexpr size_t kMaxRank = 64;                       // dims of a tensor or value
inline constexpr size_t kMaxEntries = size_t{1} << 12;       // opset imports, metadata

/// TensorProto. Exactly one of the data fields is expected to hold the values.
struct TensorMsg {
  std::string name;
  std::vector<int64_t> dims;
  int64_t data_type = 0;
  bool has_raw = false;
  std::string_view raw_data;        // a view into the file's bytes
  std::vector<float> float_data;    // field 4 (packed or not)
  std::vector<int64_t> int64_data;  // field 7
  std::vector<int32_t> int32_data;  // field 5 (int32, int8, uint8, bool, float16 ...)
  size_t other_data = 0;            // elements in string/double/uint64 data (unsupported types)
  bool external = false;            // data_location EXTERNAL or external_data entries
  bool segmented = false;           // segment field
};

/// AttributeProto (the kinds soma reads; type is AttributeType).
struct AttributeMsg {
  std::string name;
  int64_t type = 0;
  float f = 0;
  int64_t i = 0;
  std::string_view s;
  bool has_t = false;
  TensorMsg t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  size_t strings = 0, tensors = 0;  // counted, not kept
  bool ref_attr = false;            // ref_attr_name (function bodies only)
};

struct NodeMsg {
  std::vector<std::string> input, output;
  std::string name, op_type, domain;
  std::vector<AttributeMsg> attribute;
};

/// ValueInfoProto with a TypeProto.Tensor; dims: dim_value, or -1 for a dim_param / unknown.
struct ValueInfoMsg {
  std::string name;
  bool is_tensor = false;  // the type is a tensor type
  int64_t elem_type = 0;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;  // per dim, "" when static
};

struct GraphMsg {
  std::string name;
  std::vector<NodeMsg> node;
  std::vector<TensorMsg> initializer;
  std::vector<ValueInfoMsg> input, output;
  size_t sparse_initializers = 0;
};

struct OpsetMsg {
  std::string domain;
  int64_t version = 0;
};

struct ModelMsg {
  int64_t ir_version = 0;
  std::string producer_name, producer_version;
  bool has_graph = false;
  GraphMsg graph;
  std::vector<OpsetMsg> opset_import;
  std::vector<std::pair<std::string, std::string>> metadata;
  size_t functions = 0;
};

/// Parses a serialized ModelProto. `origin` names the file in errors.
ModelMsg parse_model(std::string_view bytes, const std::string& origin);

/// The serialized model with each graph initializer for which `replace(name)` returns bytes
/// replaced by them (a serialized TensorProto); every other field is copied byte for byte.
std::string rewrite_initializers(
    std::string_view bytes, const std::string& origin,
    const std::function<std::optional<std::string>(const std::string& name)>& replace);

}  // namespace soma::onnx::pb
