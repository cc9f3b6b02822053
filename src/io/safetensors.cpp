// safetensors writer and validating reader. The reader checks, in order: the length prefix,
// the header's size, nesting, JSON syntax and shape, every entry's dtype, shape and offsets,
// and that the data ranges tile the data section exactly; only then does it allocate tensors.
#include "soma/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "core/dispatch.h"
#include "soma/core/error.h"
#include "soma/io/file.h"

namespace soma::io {
namespace {

using json = nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "soma's safetensors reader and writer assume a little-endian host");

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the safetensors package's limit
constexpr int kMaxJsonDepth = 4;                   // root > entry > shape is 3

const char* st_dtype_name(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return "F32";
    case kFloat64:
      return "F64";
    case kInt64:
      return "I64";
    case kBool:
      return "BOOL";
    case kUInt8:
      return "U8";
    case kInt8:
      return "I8";
    case kInt32:
      return "I32";
    case kBFloat16:
      return "BF16";
    case kFloat16:
      return "F16";
  }
  return "?";
}

bool st_dtype_from_name(const std::string& name, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", kFloat32}, {"F64", kFloat64}, {"I64", kInt64},     {"BOOL", kBool},  {"U8", kUInt8},
      {"I8", kInt8},     {"I32", kInt32},   {"BF16", kBFloat16}, {"F16", kFloat16}};
  for (auto& [n, d] : table)
    if (name == n) {
      out = d;
      return true;
    }
  return false;
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

// Deepest nesting of {} and [] outside strings (the header is checked before parsing so a
// hostile file cannot make the parser build a deep tree).
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > kMaxJsonDepth) return max_depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

// A non-negative JSON integer that fits in int64.
bool as_index(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
  } else {
    return false;
  }
  return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

std::string range_str(uint64_t b, uint64_t e) {
  std::string s(1, '[');  // (not "[" + ...: GCC 12 warns falsely about that pattern)
  s += std::to_string(b);
  s += ", ";
  s += std::to_string(e);
  s += ']';
  return s;
}

struct Entry {
  std::string name;
  DType dtype = kFloat32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

}  // namespace

std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata) {
  json header = json::object();
  std::vector<Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    SOMA_CHECK(name != "__metadata__",
               "save_safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    SOMA_CHECK(t.defined(), "save_safetensors: tensor \"", name, "\" is undefined");
    Tensor c = t.detach().contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * element_size(c.dtype());
    header[name] = {{"dtype", st_dtype_name(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(std::move(c));
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    detail::fail("save_safetensors: a tensor name or metadata entry is not valid UTF-8 (", e.what(),
                 ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  for (const Tensor& c : contiguous) {
    const size_t nbytes = static_cast<size_t>(c.numel()) * element_size(c.dtype());
    if (nbytes == 0) continue;
    // Every dtype but bool is its little-endian bytes (the host's, asserted above); bool is
    // one byte 0 or 1, as soma stores it.
    const char* p = detail::dispatch_all(
        c.dtype(), [&]<typename T>() { return reinterpret_cast<const char*>(c.data<T>()); });
    out.append(p, nbytes);
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  atomic_write(path, serialize_safetensors(tensors, metadata));
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name_for_errors) {
  const std::string where = "safetensors: " + name_for_errors + ": ";

  // ---- length prefix and header -------------------------------------------------------
  SOMA_CHECK(bytes.size() >= 8, where, "file is shorter than 8 bytes (", bytes.size(),
             " bytes), not a safetensors file");
  const uint64_t header_len = read_u64_le(bytes.data());
  const uint64_t rest = bytes.size() - 8;
  SOMA_CHECK(header_len <= kMaxHeaderBytes, where, "bad header length ", header_len, " (more than ",
             kMaxHeaderBytes, " bytes)");
  SOMA_CHECK(header_len <= rest, where, "bad header length ", header_len, " (only ", rest,
             " bytes follow the length)");
  const std::string_view header_text = bytes.substr(8, header_len);
  const std::string_view data = bytes.substr(8 + header_len);

  SOMA_CHECK(json_depth(header_text) <= kMaxJsonDepth, where, "JSON header is nested deeper than ",
             kMaxJsonDepth, " levels");
  std::string duplicate;
  std::set<std::string> seen;
  auto note_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(header_text, note_duplicates);
  } catch (const json::exception& e) {
    detail::fail(where, "JSON header cannot be parsed: ", e.what());
  }
  SOMA_CHECK(header.is_object(), where, "JSON header is not an object");
  SOMA_CHECK(duplicate.empty(), where, "JSON header names \"", duplicate, "\" twice");

  // ---- entries ----------------------------------------------------------------------------
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      SOMA_CHECK(value.is_object(), where, "__metadata__ is not an object");
      for (const auto& [key, v] : value.items()) {
        SOMA_CHECK(v.is_string(), where, "__metadata__ value of \"", key, "\" is not a string");
        out.metadata[key] = v.get<std::string>();
      }
      continue;
    }
    const std::string tw = where + "tensor \"" + name + "\": ";
    SOMA_CHECK(value.is_object(), tw, "entry is not an object");
    Entry e;
    e.name = name;

    auto dt = value.find("dtype");
    SOMA_CHECK(dt != value.end() && dt->is_string(), tw, "dtype is missing or not a string");
    SOMA_CHECK(st_dtype_from_name(dt->get<std::string>(), e.dtype), tw, "unknown dtype \"",
               dt->get<std::string>(), "\" (soma reads F32, F64, I64, BOOL, U8)");

    auto sh = value.find("shape");
    bool shape_ok = sh != value.end() && sh->is_array();
    // numel, and the product of the non-zero dims (must fit int64 for the tensor's strides).
    uint64_t numel = 1, nonzero_product = 1;
    bool too_large = false;
    if (shape_ok) {
      for (const json& d : *sh) {
        uint64_t n = 0;
        if (!as_index(d, n)) {
          shape_ok = false;
          break;
        }
        e.shape.push_back(static_cast<int64_t>(n));
        numel *= n;  // cannot overflow once a dim is 0; checked through nonzero_product
        if (n != 0 &&
            (__builtin_mul_overflow(nonzero_product, n, &nonzero_product) ||
             nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
          too_large = true;
      }
    }
    SOMA_CHECK(shape_ok, tw, "shape is not a list of non-negative integers");

    auto off = value.find("data_offsets");
    SOMA_CHECK(off != value.end() && off->is_array() && off->size() == 2 &&
                   as_index((*off)[0], e.begin) && as_index((*off)[1], e.end) && e.begin <= e.end,
               tw, "data_offsets is not [begin, end] with 0 <= begin <= end");
    SOMA_CHECK(e.end <= data.size(), tw, "offset past end: data_offsets ",
               range_str(e.begin, e.end), " but the data section has ", data.size(), " bytes");
    uint64_t expected = 0;
    SOMA_CHECK(!too_large && !__builtin_mul_overflow(numel, element_size(e.dtype), &expected), tw,
               "shape ", e.shape, " has too many elements");
    SOMA_CHECK(e.end - e.begin == expected, tw, "byte length ", e.end - e.begin, " (data_offsets ",
               range_str(e.begin, e.end), ") does not match shape ", e.shape, " of ",
               dt->get<std::string>(), " (", expected, " bytes)");
    entries.push_back(std::move(e));
  }

  // ---- the ranges tile the data section: no overlap, no gap, nothing after ------------------
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : by_offset) {
    SOMA_CHECK(e->begin >= cursor, where, "tensors \"", prev ? prev->name : "", "\" ",
               range_str(prev ? prev->begin : 0, cursor), " and \"", e->name, "\" ",
               range_str(e->begin, e->end), " overlap");
    SOMA_CHECK(e->begin == cursor, where, "gap of ", e->begin - cursor, " bytes before tensor \"",
               e->name, "\" (data must be contiguous)");
    cursor = e->end;
    prev = e;
  }
  SOMA_CHECK(cursor == data.size(), where, data.size() - cursor,
             " bytes after the last tensor's data (data must be contiguous)");

  // ---- copy into fresh tensors ------------------------------------------------------------
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    const char* src = data.data() + e.begin;
    const size_t n = static_cast<size_t>(e.end - e.begin);
    if (n > 0) {
      if (e.dtype == kBool) {
        bool* dst = t.data<bool>();  // any non-zero byte is true (never an invalid bool)
        for (size_t i = 0; i < n; ++i) dst[i] = src[i] != 0;
      } else {
        detail::dispatch_all(e.dtype, [&]<typename T>() {
          std::memcpy(t.data<T>(), src, n);  // little-endian bytes, any other dtype
        });
      }
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path), path);
}

}  // namespace soma::io
