// The safetensors format (https://github.com/huggingface/safetensors), soma's format for
// weights and checkpoints, readable by PyTorch, the `safetensors` package and a ten-line parser:
//
//   [8 bytes]  N, the header length, little-endian uint64
//   [N bytes]  JSON header, padded with spaces to a multiple of 8:
//              {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//               "__metadata__": {"<key>": "<string value>", ...}}
//   [rest]     raw little-endian data; offsets are relative to the first data byte
//
// dtypes: F32 float32, F64 float64, I64 int64, I32 int32, I8 int8, U8 uint8, BOOL bool (one
// byte), BF16 bfloat16, F16 float16; any other dtype is an error. soma writes the tensors
// contiguously in sorted name order, row-major. The reader trusts nothing: every header field,
// offset and length is validated (with a message naming the file) before any tensor is allocated,
// the data ranges must tile the data section exactly (no gaps, overlaps or trailing bytes), and the
// data is copied into fresh soma tensors.
//
//   soma::io::save_safetensors("w.safetensors", {{"w", soma::randn({2, 3})}}, {{"note", "x"}});
//   soma::io::SafetensorsFile f = soma::io::load_safetensors("w.safetensors");
//   soma::Tensor w = f.tensors.at("w");
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "soma/core/tensor.h"

namespace soma::io {

/// Tensors by name (sorted).
using TensorMap = std::map<std::string, Tensor>;
/// The header's "__metadata__": free-form string to string.
using Metadata = std::map<std::string, std::string>;

/// The contents of a safetensors file.
struct SafetensorsFile {
  TensorMap tensors;
  Metadata metadata;
};

/// Writes `tensors` (any layout; undefined tensors and the name "__metadata__" are errors) and
/// `metadata` to `path` with atomic_write.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const Metadata& metadata = {});

/// Reads and validates a safetensors file; errors name the file and what is wrong.
SafetensorsFile load_safetensors(const std::string& path);

/// The bytes save_safetensors would write.
std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata = {});

/// Parses in-memory bytes with the same validation as load_safetensors; `name_for_errors`
/// stands for the file in messages.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name_for_errors);

}  // namespace soma::io
