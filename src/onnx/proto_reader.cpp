// The protobuf wire-format reader behind soma::onnx::load (see proto_reader.h).
#include "onnx/proto_reader.h"

#include <cstring>
#include <utility>

#include "onnx/proto_writer.h"
#include "soma/core/error.h"

namespace soma::onnx::pb {

namespace {

constexpr uint32_t kStartGroup = 3, kEndGroup = 4;  // groups: not in ONNX, refused

const char* wire_name(uint32_t w) {
  switch (w) {
    case kVarint:
      return "varint";
    case kFixed64:
      return "fixed64";
    case kLen:
      return "length-delimited";
    case kStartGroup:
      return "start-group";
    case kEndGroup:
      return "end-group";
    case kFixed32:
      return "fixed32";
  }
  return "invalid";
}

// One message's bytes. `base` is the offset of `data` in the whole file (for errors), `path`
// the message's place in the model.
class Cursor {
 public:
  Cursor(std::string_view data, size_t base, std::string path, const std::string& origin)
      : data_(data), base_(base), path_(std::move(path)), origin_(origin) {}

  bool done() const { return pos_ >= data_.size(); }
  size_t pos() const { return pos_; }
  std::string_view data() const { return data_; }
  size_t left() const { return data_.size() - pos_; }
  const std::string& path() const { return path_; }
  size_t offset() const { return base_ + pos_; }

  template <typename... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    detail::fail("onnx::load: ", origin_, ": ", path_, " (byte ", offset(), "): ", parts...);
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (done()) fail("truncated varint");
      const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) fail("corrupt varint (more than 64 bits)");
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail("corrupt varint (more than 10 bytes)");
  }

  // The next field's number and wire type.
  std::pair<uint32_t, uint32_t> tag() {
    const uint64_t t = varint();
    const uint64_t field = t >> 3;
    const uint32_t wire = static_cast<uint32_t>(t & 7);
    if (field == 0 || field > 536870911) fail("invalid field number ", field);
    if (wire == kStartGroup || wire == kEndGroup)
      fail("field ", field, " uses the ", wire_name(wire), " wire type (groups are not ONNX)");
    if (wire != kVarint && wire != kFixed64 && wire != kLen && wire != kFixed32)
      fail("field ", field, " has invalid wire type ", wire);
    last_field_ = static_cast<uint32_t>(field);
    last_wire_ = wire;
    return {static_cast<uint32_t>(field), wire};
  }

  void expect(uint32_t wire, const char* what) const {
    if (last_wire_ != wire)
      fail("field ", last_field_, " (", what, ") has wire type ", wire_name(last_wire_),
           ", expected ", wire_name(wire));
  }

  // Fails when a repeated field already holds `max` elements (checked before adding one).
  void cap(size_t count, size_t max, const char* what) const {
    if (count >= max) fail("more than ", max, " ", what, " (the reader's limit)");
  }

  // A length-delimited payload: its length is checked against the bytes left.
  std::string_view len_bytes() {
    const size_t at = offset();
    const uint64_t n = varint();
    if (n > left())
      detail::fail("onnx::load: ", origin_, ": ", path_, " (byte ", at, "): field ", last_field_,
                   " claims ", n, " bytes but only ", left(), " remain");
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  // The payload as a sub-cursor (for a nested message).
  Cursor sub(const std::string& path) {
    const size_t start_after_len = [&] {
      const size_t save = pos_;
      varint();
      const size_t p = pos_;
      pos_ = save;
      return p;
    }();
    std::string_view bytes = len_bytes();
    return Cursor(bytes, base_ + start_after_len, path, origin_);
  }
  uint32_t fixed32() {
    if (left() < 4) fail("truncated fixed32");
    uint32_t v;
    std::memcpy(&v, data_.data() + pos_, 4);  // little-endian hosts only (x86-64, aarch64)
    pos_ += 4;
    return v;
  }
  uint64_t fixed64() {
    if (left() < 8) fail("truncated fixed64");
    uint64_t v;
    std::memcpy(&v, data_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  void skip() {
    switch (last_wire_) {
      case kVarint:
        varint();
        return;
      case kFixed64:
        fixed64();
        return;
      case kFixed32:
        fixed32();
        return;
      case kLen:
        len_bytes();
        return;
    }
    fail("cannot skip wire type ", last_wire_);
  }

  // Scalars with their wire type checked.
  int64_t int64(const char* what) {
    expect(kVarint, what);
    return static_cast<int64_t>(varint());
  }
  std::string string(const char* what) {
    expect(kLen, what);
    return std::string(len_bytes());
  }
  float float32(const char* what) {
    expect(kFixed32, what);
    const uint32_t bits = fixed32();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }

  // Repeated int64 (varint): packed (one length-delimited run) or one element per field.
  void ints(std::vector<int64_t>& out, const char* what) {
    if (last_wire_ == kVarint) {
      out.push_back(static_cast<int64_t>(varint()));
      return;
    }
    expect(kLen, what);
    Cursor run = sub(path_);
    // Each varint takes at least one byte: the run's length bounds the count. Reserved for the
    // first run only: reserving exactly per run would copy the vector once per run (a file of
    // many one-byte runs would take quadratic time); later runs grow it geometrically.
    if (out.empty()) out.reserve(run.left());
    while (!run.done()) out.push_back(static_cast<int64_t>(run.varint()));
  }
  void int32s(std::vector<int32_t>& out, const char* what) {
    std::vector<int64_t> tmp;
    ints(tmp, what);
    for (int64_t v : tmp) out.push_back(static_cast<int32_t>(v));
  }
  // Repeated float (fixed32): packed or one per field.
  void floats(std::vector<float>& out, const char* what) {
    if (last_wire_ == kFixed32) {
      out.push_back(float32(what));
      return;
    }
    expect(kLen, what);
    std::string_view run = len_bytes();
    if (run.size() % 4 != 0)
      fail("packed ", what, " of ", run.size(), " bytes (not a multiple of 4)");
    const size_t n = run.size() / 4;
    const size_t old = out.size();
    out.resize(old + n);
    if (n > 0) std::memcpy(out.data() + old, run.data(), n * 4);
  }
  // Counts the elements of a repeated field soma does not keep (strings, doubles, uint64s).
  size_t count_repeated() {
    if (last_wire_ == kLen) {
      len_bytes();
      return 1;  // a string, or a packed run (counted once: its values are not used)
    }
    skip();
    return 1;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  size_t base_;
  std::string path_;
  const std::string& origin_;
  uint32_t last_field_ = 0, last_wire_ = 0;
};

std::string at(const std::string& path, const char* field, size_t index) {
  return path + "." + field + "[" + std::to_string(index) + "]";
}

TensorMsg parse_tensor(Cursor c) {
  TensorMsg t;
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    switch (field) {
      case 1:
        c.ints(t.dims, "dims");
        c.cap(t.dims.size(), kMaxRank + 1, "dims");
        break;
      case 2:
        t.data_type = c.int64("data_type");
        break;
      case 3:
        t.segmented = true;
        c.skip();
        break;
      case 4:
        c.floats(t.float_data, "float_data");
        break;
      case 5:
        c.int32s(t.int32_data, "int32_data");
        break;
      case 6:
      case 10:
      case 11:
        t.other_data += c.count_repeated();
        break;
      case 7:
        c.ints(t.int64_data, "int64_data");
        break;
      case 8:
        t.name = c.string("name");
        break;
      case 9:
        c.expect(kLen, "raw_data");
        t.raw_data = c.len_bytes();
        t.has_raw = true;
        break;
      case 13:
        t.external = true;
        c.skip();
        break;
      case 14:
        if (c.int64("data_location") == 1) t.external = true;
        break;
      default:
        c.skip();
    }
  }
  return t;
}

AttributeMsg parse_attribute(Cursor c) {
  AttributeMsg a;
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    switch (field) {
      case 1:
        a.name = c.string("name");
        break;
      case 2:
        a.f = c.float32("f");
        break;
      case 3:
        a.i = c.int64("i");
        break;
      case 4:
        c.expect(kLen, "s");
        a.s = c.len_bytes();
        break;
      case 5:
        c.expect(kLen, "t");
        a.t = parse_tensor(c.sub(c.path() + ".t"));
        a.has_t = true;
        break;
      case 6:
      case 11:
        c.fail("attribute '", a.name, "' holds a subgraph (", field == 6 ? "g" : "graphs",
               "): control flow (If, Loop, Scan) is not supported");
      case 7:
        c.floats(a.floats, "floats");
        break;
      case 8:
        c.ints(a.ints, "ints");
        break;
      case 9:
        c.expect(kLen, "strings");
        c.len_bytes();
        ++a.strings;
        break;
      case 10:
        c.expect(kLen, "tensors");
        c.len_bytes();
        ++a.tensors;
        break;
      case 20:
        a.type = c.int64("type");
        break;
      case 21:
        c.string("ref_attr_name");
        a.ref_attr = true;
        break;
      default:
        c.skip();
    }
  }
  return a;
}

NodeMsg parse_node(Cursor c) {
  NodeMsg n;
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    switch (field) {
      case 1:
        c.cap(n.input.size(), kMaxNodeValues, "node inputs");
        n.input.push_back(c.string("input"));
        break;
      case 2:
        c.cap(n.output.size(), kMaxNodeValues, "node outputs");
        n.output.push_back(c.string("output"));
        break;
      case 3:
        n.name = c.string("name");
        break;
      case 4:
        n.op_type = c.string("op_type");
        break;
      case 5:
        c.expect(kLen, "attribute");
        c.cap(n.attribute.size(), kMaxAttributes, "attributes");
        n.attribute.push_back(
            parse_attribute(c.sub(at(c.path(), "attribute", n.attribute.size()))));
        break;
      case 7:
        n.domain = c.string("domain");
        break;
      default:
        c.skip();
    }
  }
  return n;
}

// TensorShapeProto.Dimension
void parse_dim(Cursor c, ValueInfoMsg& v) {
  int64_t value = -1;
  std::string param;
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    if (field == 1) {
      value = c.int64("dim_value");
      if (value < 0) c.fail("negative dim_value ", value);
    } else if (field == 2) {
      param = c.string("dim_param");
    } else {
      c.skip();
    }
  }
  v.dims.push_back(value);
  v.dim_params.push_back(param);
}

// TypeProto: only tensor_type is read; the recursive kinds are skipped unread.
void parse_type(Cursor c, ValueInfoMsg& v) {
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    if (field != 1) {
      c.skip();
      continue;
    }
    c.expect(kLen, "tensor_type");
    v.is_tensor = true;
    Cursor tt = c.sub(c.path() + ".tensor_type");
    while (!tt.done()) {
      const auto [f2, w2] = tt.tag();
      if (f2 == 1) {
        v.elem_type = tt.int64("elem_type");
      } else if (f2 == 2) {
        tt.expect(kLen, "shape");
        v.has_shape = true;
        v.dims.clear();
        v.dim_params.clear();
        Cursor shape = tt.sub(tt.path() + ".shape");
        while (!shape.done()) {
          const auto [f3, w3] = shape.tag();
          if (f3 == 1) {
            shape.expect(kLen, "dim");
            shape.cap(v.dims.size(), kMaxRank, "dims");
            parse_dim(shape.sub(at(shape.path(), "dim", v.dims.size())), v);
          } else {
            shape.skip();
          }
        }
      } else {
        tt.skip();
      }
    }
  }
}

ValueInfoMsg parse_value_info(Cursor c) {
  ValueInfoMsg v;
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    if (field == 1) {
      v.name = c.string("name");
    } else if (field == 2) {
      c.expect(kLen, "type");
      parse_type(c.sub(c.path() + ".type"), v);
    } else {
      c.skip();
    }
  }
  return v;
}

GraphMsg parse_graph(Cursor c) {
  GraphMsg g;
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    switch (field) {
      case 1:
        c.expect(kLen, "node");
        c.cap(g.node.size(), kMaxNodes, "nodes");
        g.node.push_back(parse_node(c.sub(at(c.path(), "node", g.node.size()))));
        break;
      case 2:
        g.name = c.string("name");
        break;
      case 5:
        c.expect(kLen, "initializer");
        c.cap(g.initializer.size(), kMaxInitializers, "initializers");
        g.initializer.push_back(
            parse_tensor(c.sub(at(c.path(), "initializer", g.initializer.size()))));
        break;
      case 11:
        c.expect(kLen, "input");
        c.cap(g.input.size(), kMaxGraphValues, "graph inputs");
        g.input.push_back(parse_value_info(c.sub(at(c.path(), "input", g.input.size()))));
        break;
      case 12:
        c.expect(kLen, "output");
        c.cap(g.output.size(), kMaxGraphValues, "graph outputs");
        g.output.push_back(parse_value_info(c.sub(at(c.path(), "output", g.output.size()))));
        break;
      case 15:
        c.expect(kLen, "sparse_initializer");
        c.len_bytes();
        ++g.sparse_initializers;
        break;
      default:
        c.skip();  // value_info, doc_string, quantization annotations
    }
  }
  return g;
}

}  // namespace

ModelMsg parse_model(std::string_view bytes, const std::string& origin) {
  ModelMsg m;
  Cursor c(bytes, 0, "model", origin);
  if (bytes.empty()) c.fail("empty file (not an ONNX model)");
  while (!c.done()) {
    const auto [field, wire] = c.tag();
    switch (field) {
      case 1:
        m.ir_version = c.int64("ir_version");
        break;
      case 2:
        m.producer_name = c.string("producer_name");
        break;
      case 3:
        m.producer_version = c.string("producer_version");
        break;
      case 7:
        c.expect(kLen, "graph");
        if (m.has_graph) c.fail("a second graph");
        m.graph = parse_graph(c.sub("graph"));
        m.has_graph = true;
        break;
      case 8: {
        c.expect(kLen, "opset_import");
        c.cap(m.opset_import.size(), kMaxEntries, "opset imports");
        Cursor o = c.sub(at("model", "opset_import", m.opset_import.size()));
        OpsetMsg op;
        while (!o.done()) {
          const auto [f, w] = o.tag();
          if (f == 1)
            op.domain = o.string("domain");
          else if (f == 2)
            op.version = o.int64("version");
          else
            o.skip();
        }
        m.opset_import.push_back(op);
        break;
      }
      case 14: {
        c.expect(kLen, "metadata_props");
        c.cap(m.metadata.size(), kMaxEntries, "metadata entries");
        Cursor e = c.sub(at("model", "metadata_props", m.metadata.size()));
        std::pair<std::string, std::string> kv;
        while (!e.done()) {
          const auto [f, w] = e.tag();
          if (f == 1)
            kv.first = e.string("key");
          else if (f == 2)
            kv.second = e.string("value");
          else
            e.skip();
        }
        m.metadata.push_back(std::move(kv));
        break;
      }
      case 25:
        c.expect(kLen, "functions");
        c.len_bytes();
        ++m.functions;
        break;
      default:
        c.skip();
    }
  }
  return m;
}

std::string rewrite_initializers(
    std::string_view bytes, const std::string& origin,
    const std::function<std::optional<std::string>(const std::string& name)>& replace) {
  std::string out;
  Cursor c(bytes, 0, "model", origin);
  while (!c.done()) {
    const size_t start = c.pos();
    const auto [field, wire] = c.tag();
    if (field != 7 || wire != kLen) {
      c.skip();
      out.append(bytes.substr(start, c.pos() - start));
      continue;
    }
    Cursor g = c.sub("graph");
    std::string graph;
    while (!g.done()) {
      const size_t gstart = g.pos();
      const auto [gf, gw] = g.tag();
      if (gf == 5 && gw == kLen) {
        Cursor t = g.sub("graph.initializer");
        const TensorMsg msg = parse_tensor(t);
        if (std::optional<std::string> fresh = replace(msg.name)) {
          Writer w;
          w.bytes(5, *fresh);
          graph += w.str();
          continue;
        }
      } else {
        g.skip();
      }
      graph.append(g.data().substr(gstart, g.pos() - gstart));
    }
    Writer w;
    w.bytes(7, graph);
    out += w.str();
  }
  return out;
}

}  // namespace soma::onnx::pb
