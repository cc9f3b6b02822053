// io::safetensors: round trips of every dtype, the exact byte layout, a hand-written file, and
// every kind of corrupt or truncated input rejected with its own message (never a crash or a
// huge allocation).
#include "soma/io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "soma/soma.h"

namespace {

using iotest::error_of;
using iotest::same_tensor;
using soma::Tensor;
namespace io = soma::io;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// A file with `header` as JSON (length prefix computed unless given) followed by `data`.
std::string craft(const std::string& header, const std::string& data = "",
                  uint64_t header_len = UINT64_MAX) {
  return le64(header_len == UINT64_MAX ? header.size() : header_len) + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

Tensor bools(const std::vector<int>& v) {
  Tensor t = soma::empty({static_cast<int64_t>(v.size())}, soma::kBool);
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i] != 0;
  return t;
}

Tensor bytes_u8(const std::vector<uint8_t>& v, const soma::Shape& shape) {
  Tensor t = soma::empty(shape, soma::kUInt8);
  std::memcpy(t.data<uint8_t>(), v.data(), v.size());
  return t;
}

// A bfloat16 or float16 tensor holding exactly these bit patterns (NaN, inf, subnormals).
Tensor bits16(soma::DType dtype, const std::vector<uint16_t>& bits) {
  Tensor t = soma::empty({static_cast<int64_t>(bits.size())}, dtype);
  if (dtype == soma::kBFloat16)
    std::memcpy(t.data<soma::BFloat16>(), bits.data(), bits.size() * 2);
  else
    std::memcpy(t.data<soma::Half>(), bits.data(), bits.size() * 2);
  return t;
}

io::TensorMap every_dtype() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {
      {"f32", soma::tensor({1.5f, -0.0f, 3e38f, -1e-45f, 7.f, 8.f}, {2, 3})},
      {"f64_scalar", soma::tensor(std::vector<double>{3.141592653589793}, {})},
      {"f64_nan", soma::tensor(std::vector<double>{nan, -nan, 1e-308}, {3})},
      {"i64", soma::tensor(std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0,
                                                std::numeric_limits<int64_t>::max()},
                           {2, 1, 2})},
      {"bool", bools({1, 0, 0, 1, 1})},
      {"u8", bytes_u8({0, 1, 127, 128, 254, 255}, {3, 2})},
      {"empty_f32", soma::zeros({0, 3})},
      {"empty_i64", soma::zeros({0}, soma::kInt64)},
      {"empty_bool", soma::zeros({2, 0}, soma::kBool)},
      {"i64_scalar", soma::tensor(std::vector<int64_t>{42}, {})},
      {"i8", soma::tensor(std::vector<int64_t>{-128, -1, 0, 1, 127, 5}, {3, 2}).to(soma::kInt8)},
      {"i32",
       soma::tensor(std::vector<int64_t>{INT32_MIN, -1, 0, INT32_MAX}, {4}).to(soma::kInt32)},
      {"bf16",
       bits16(soma::kBFloat16, {0x0000, 0x8000, 0x3f80, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x7f7f})},
      {"f16", bits16(soma::kFloat16,
                     {0x0000, 0x8000, 0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x7bff, 0x03ff})},
      {"empty_bf16", soma::zeros({0, 2}, soma::kBFloat16)},
      {"f16_scalar", soma::full({}, -2.5, soma::kFloat16)},
  };
}

TEST(Safetensors, RoundTripEveryDtypeInMemory) {
  const io::TensorMap in = every_dtype();
  const io::Metadata meta{
      {"format", "pt"}, {"empty", ""}, {"unicode", "héllo ✓"}, {"json", R"({"a": [1, 2]})"}};
  io::SafetensorsFile out = io::parse_safetensors(io::serialize_safetensors(in, meta), "mem");
  EXPECT_EQ(out.metadata, meta);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(out.tensors.count(name)) << name;
    EXPECT_TRUE(same_tensor(out.tensors.at(name), t)) << name;
    EXPECT_FALSE(out.tensors.at(name).requires_grad()) << name;
  }
}

TEST(Safetensors, NewDtypesHaveTheirNamesAndBytes) {
  const io::TensorMap in = {{"a", bits16(soma::kBFloat16, {0x3f80, 0xc020})},
                            {"b", bits16(soma::kFloat16, {0x3c00})},
                            {"c", soma::full({2}, -2, soma::kInt8)},
                            {"d", soma::full({1}, 0x01020304, soma::kInt32)}};
  const std::string file = io::serialize_safetensors(in);
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  const std::string header = file.substr(8, n), data = file.substr(8 + n);
  for (const char* want : {R"("a":{"data_offsets":[0,4],"dtype":"BF16","shape":[2]})",
                           R"("b":{"data_offsets":[4,6],"dtype":"F16","shape":[1]})",
                           R"("c":{"data_offsets":[6,8],"dtype":"I8","shape":[2]})",
                           R"("d":{"data_offsets":[8,12],"dtype":"I32","shape":[1]})"})
    EXPECT_NE(header.find(want), std::string::npos) << want << " in " << header;
  EXPECT_EQ(data, std::string("\x80\x3f\x20\xc0\x00\x3c\xfe\xfe\x04\x03\x02\x01", 12));
}

// tests/interop/torch_lowp.safetensors was written from torch tensors by
// tests/interop/torch_safetensors.py make-lowp-fixture, which also wrote the values torch had
// (torch_lowp_expected.txt): soma reads every tensor with its dtype, shape and exact values.
TEST(Safetensors, ReadsTorchWrittenLowPrecisionFile) {
  const std::string dir = std::string(SOMA_TEST_DATA_DIR) + "/interop/";
  const io::SafetensorsFile f = io::load_safetensors(dir + "torch_lowp.safetensors");
  std::ifstream expected(dir + "torch_lowp_expected.txt");
  ASSERT_TRUE(expected);
  const std::map<std::string, soma::DType> dtypes = {
      {"F32", soma::kFloat32}, {"F64", soma::kFloat64},   {"I64", soma::kInt64},
      {"BOOL", soma::kBool},   {"U8", soma::kUInt8},      {"I8", soma::kInt8},
      {"I32", soma::kInt32},   {"BF16", soma::kBFloat16}, {"F16", soma::kFloat16}};
  std::string line;
  size_t checked = 0;
  std::set<soma::DType> seen;
  while (std::getline(expected, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name, dt;
    int64_t ndim = 0;
    ls >> name >> dt >> ndim;
    soma::Shape shape(static_cast<size_t>(ndim));
    for (auto& d : shape) ls >> d;
    std::vector<double> values;
    for (std::string tok; ls >> tok;) values.push_back(std::strtod(tok.c_str(), nullptr));
    ASSERT_TRUE(f.tensors.count(name)) << name;
    const Tensor& t = f.tensors.at(name);
    EXPECT_EQ(t.dtype(), dtypes.at(dt)) << name;
    EXPECT_EQ(t.shape(), shape) << name;
    const std::vector<double> got = t.to_vector<double>();
    // float32/bfloat16/float16 values are written with %.9g, which round-trips through float
    if (dt == "F32" || dt == "BF16" || dt == "F16")
      for (double& v : values) v = static_cast<float>(v);
    ASSERT_EQ(got.size(), values.size()) << name;
    for (size_t i = 0; i < got.size(); ++i) {
      const bool same = (std::isnan(got[i]) && std::isnan(values[i])) ||
                        (got[i] == values[i] && std::signbit(got[i]) == std::signbit(values[i]));
      EXPECT_TRUE(same) << name << "[" << i << "]: " << got[i] << " vs torch " << values[i];
    }
    seen.insert(t.dtype());
    ++checked;
  }
  EXPECT_EQ(checked, f.tensors.size());
  EXPECT_EQ(seen.size(), 9u);  // every soma dtype
}

TEST(Safetensors, RoundTripThroughFile) {
  iotest::TempDir dir;
  const std::string path = dir.file("all.safetensors");
  io::save_safetensors(path, every_dtype(), {{"k", "v"}});
  io::SafetensorsFile out = io::load_safetensors(path);
  EXPECT_EQ(out.metadata, (io::Metadata{{"k", "v"}}));
  for (const auto& [name, t] : every_dtype()) EXPECT_TRUE(same_tensor(out.tensors.at(name), t));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"all.safetensors"});
  // No tensors and no metadata is a valid file too.
  io::save_safetensors(path, {});
  EXPECT_TRUE(io::load_safetensors(path).tensors.empty());
}

TEST(Safetensors, WritesViewsAndTensorsThatRequireGrad) {
  Tensor base = soma::arange(0, 6, 1, soma::kFloat32).reshape({2, 3});
  Tensor transposed = base.t();  // non-contiguous view [3, 2]
  Tensor w = soma::randn({2, 2}).requires_grad_(true);
  auto out = io::parse_safetensors(io::serialize_safetensors({{"t", transposed}, {"w", w}}), "m");
  EXPECT_EQ(out.tensors.at("t").to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(out.tensors.at("t").shape(), (soma::Shape{3, 2}));
  EXPECT_TRUE(same_tensor(out.tensors.at("w"), w));
}

TEST(Safetensors, LoadedTensorsAreFreshCopies) {
  Tensor a = soma::ones({3});
  auto out = io::parse_safetensors(io::serialize_safetensors({{"a", a}}), "m");
  a.fill_(5);
  EXPECT_EQ(out.tensors.at("a").to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

// Our own output, read byte by byte as the spec describes it.
TEST(Safetensors, ByteLayoutMatchesSpec) {
  const std::string bytes = io::serialize_safetensors(
      {{"b", soma::tensor({1.f, 2.f})}, {"a", soma::tensor(std::vector<int64_t>{7}, {1, 1})}},
      {{"k", "v"}});
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(bytes[i]);  // little-endian
  EXPECT_EQ(n % 8, 0u) << "header padded to a multiple of 8";
  ASSERT_EQ(bytes.size(), 8 + n + 16) << "8 + header + 8 bytes of I64 + 8 bytes of F32";
  std::string header = bytes.substr(8, n);
  const std::string json = R"({"__metadata__":{"k":"v"},)"
                           R"("a":{"data_offsets":[0,8],"dtype":"I64","shape":[1,1]},)"
                           R"("b":{"data_offsets":[8,16],"dtype":"F32","shape":[2]}})";
  ASSERT_GE(header.size(), json.size());
  EXPECT_EQ(header.substr(0, json.size()), json);
  EXPECT_EQ(header.substr(json.size()), std::string(header.size() - json.size(), ' '));
  EXPECT_LT(header.size() - json.size(), 8u);
  // Data: tensors in sorted name order, raw little-endian.
  const std::string data = bytes.substr(8 + n);
  int64_t a = 0;
  float b[2] = {};
  std::memcpy(&a, data.data(), 8);
  std::memcpy(b, data.data() + 8, 8);
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b[0], 1.f);
  EXPECT_EQ(b[1], 2.f);
  // Without metadata there is no "__metadata__" key.
  const std::string plain = io::serialize_safetensors({{"x", soma::ones({1})}});
  EXPECT_EQ(plain.find("__metadata__"), std::string::npos);
}

// A file as another writer might lay it out: keys in another order, whitespace, __metadata__
// last, data not in name order, a bool byte other than 0/1.
TEST(Safetensors, ReadsAnotherWritersLayout) {
  const std::string header = R"(  { "z" : {"shape":[2],"dtype":"F64","data_offsets":[0,16]},
    "a": {"dtype": "BOOL", "data_offsets": [16, 19], "shape": [3]},
    "__metadata__": {"format": "pt"}}   )";
  const std::string data = raw(std::vector<double>{0.25, -2}) + std::string("\x00\x01\x02", 3);
  io::SafetensorsFile f = io::parse_safetensors(craft(header, data), "other");
  EXPECT_EQ(f.tensors.at("z").to_vector<double>(), (std::vector<double>{0.25, -2}));
  const bool* a = f.tensors.at("a").data<bool>();
  EXPECT_EQ(std::vector<int>(a, a + 3), (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(f.metadata.at("format"), "pt");
}

TEST(Safetensors, WriteErrors) {
  EXPECT_NE(error_of([] {
              io::serialize_safetensors({{"a", Tensor()}});
            }).find("tensor \"a\" is undefined"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              io::serialize_safetensors({{"__metadata__", soma::ones({1})}});
            }).find("reserved"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              io::serialize_safetensors({{"bad\xff", soma::ones({1})}});
            }).find("not valid UTF-8"),
            std::string::npos);
  iotest::TempDir dir;
  const std::string path = dir.file("no_such_dir/w.safetensors");
  EXPECT_NE(error_of([&] {
              io::save_safetensors(path, {{"a", soma::ones({1})}});
            }).find(path),
            std::string::npos);
}

TEST(Safetensors, MissingFileAndDirectoryNameThePath) {
  iotest::TempDir dir;
  const std::string missing = dir.file("missing.safetensors");
  std::string e = error_of([&] { io::load_safetensors(missing); });
  EXPECT_NE(e.find(missing), std::string::npos) << e;
  EXPECT_NE(e.find("No such file"), std::string::npos) << e;
  e = error_of([&] { io::load_safetensors(dir.path()); });
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
}

struct CorruptCase {
  const char* label;
  std::string bytes;
  const char* message;  // a substring of the expected error
};

std::vector<CorruptCase> corrupt_cases() {
  const std::string f32x2 = raw(std::vector<float>{1, 2});  // 8 bytes
  const std::string f32x3 = raw(std::vector<float>{1, 2, 3});
  auto one = [](const std::string& entry) { return R"({"a": )" + entry + "}"; };
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  return {
      {"empty file", "", "shorter than 8 bytes"},
      {"7 bytes", "\x01\x00\x00\x00\x00\x00\x00", "shorter than 8 bytes"},
      {"length past end", craft("{}", "", 1000), "bad header length 1000"},
      {"length 2^64-2", craft("{}", "", UINT64_MAX - 1), "bad header length"},
      {"length > 100 MB", craft("{}", "", 200'000'000), "more than 100000000"},
      {"not JSON", craft(R"({"a": )"), "cannot be parsed"},
      {"trailing garbage", craft(R"({} x)"), "cannot be parsed"},
      {"invalid UTF-8", craft("{\"\xff\": 1}"), "cannot be parsed"},
      {"array", craft("[1, 2]"), "not an object"},
      {"string", craft(R"("hi")"), "not an object"},
      {"5 levels", craft(R"({"__metadata__": {"a": [[[1]]]}})"), "nested deeper than 4"},
      {"100000 levels", craft(deep), "nested deeper than 4"},
      {"duplicate name",
       craft(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a": {"dtype":"F32",)"
                 R"("shape":[1],"data_offsets":[4,8]})"),
             f32x2),
       "names \"a\" twice"},
      {"entry not object", craft(one("5")), "entry is not an object"},
      {"unknown dtype", craft(one(R"({"dtype":"I16","shape":[1],"data_offsets":[0,2]})"), "xx"),
       "unknown dtype \"I16\""},
      {"dtype missing", craft(one(R"({"shape":[1],"data_offsets":[0,4]})"), "xxxx"),
       "dtype is missing"},
      {"dtype number", craft(one(R"({"dtype":1,"shape":[1],"data_offsets":[0,4]})"), "xxxx"),
       "dtype is missing or not a string"},
      {"shape negative", craft(one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})")),
       "shape is not a list of non-negative integers"},
      {"shape float", craft(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})")),
       "shape is not a list"},
      {"shape string", craft(one(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})")),
       "shape is not a list"},
      {"shape missing", craft(one(R"({"dtype":"F32","data_offsets":[0,8]})")),
       "shape is not a list"},
      {"shape 2^64",
       craft(one(R"({"dtype":"F32","shape":[18446744073709551615],)"
                 R"("data_offsets":[0,4]})")),
       "shape is not a list"},
      {"offsets reversed", craft(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), f32x2),
       "data_offsets is not [begin, end]"},
      {"offsets one number", craft(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8]})"), f32x2),
       "data_offsets is not"},
      {"offsets three", craft(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,8]})"), f32x2),
       "data_offsets is not"},
      {"offsets negative", craft(one(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})")),
       "data_offsets is not"},
      {"offsets strings", craft(one(R"({"dtype":"F32","shape":[2],"data_offsets":["0","8"]})")),
       "data_offsets is not"},
      {"offsets missing", craft(one(R"({"dtype":"F32","shape":[2]})"), f32x2),
       "data_offsets is not"},
      {"offset past end", craft(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,12]})"), f32x2),
       "offset past end"},
      {"length != numel * size",
       craft(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), f32x2),
       "byte length 8 (data_offsets [0, 8]) does not match shape [3] of F32 (12 bytes)"},
      {"2^40 elements, offsets to match",
       craft(one(R"({"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]})"),
             f32x2),
       "offset past end"},
      {"2^40 elements, small offsets",
       craft(one(R"({"dtype":"F32","shape":[1099511627776],"data_offsets":[0,8]})"), f32x2),
       "does not match shape [1099511627776]"},
      {"numel overflows",
       craft(one(R"({"dtype":"F64","shape":[4294967296,4294967296],)"
                 R"("data_offsets":[0,8]})"),
             f32x2),
       "has too many elements"},
      {"zero dim hides huge dims",
       craft(one(R"({"dtype":"F32","shape":[0,9223372036854775807,9223372036854775807],)"
                 R"("data_offsets":[0,0]})")),
       "has too many elements"},
      {"overlap",
       craft(R"({"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
             R"( "b": {"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
             f32x3),
       "tensors \"a\" [0, 8] and \"b\" [4, 12] overlap"},
      {"same range twice",
       craft(R"({"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
             R"( "b": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
             f32x2),
       "overlap"},
      {"gap",
       craft(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
             R"( "b": {"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
             f32x3),
       "gap of 4 bytes before tensor \"b\""},
      {"gap at start", craft(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), f32x2),
       "gap of 4 bytes before tensor \"a\""},
      {"trailing bytes", craft(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), f32x2),
       "4 bytes after the last tensor"},
      {"metadata value number", craft(R"({"__metadata__": {"k": 1}})"),
       "__metadata__ value of \"k\" is not a string"},
      {"metadata value null", craft(R"({"__metadata__": {"k": null}})"), "is not a string"},
      {"metadata not object", craft(R"({"__metadata__": "x"})"), "__metadata__ is not an object"},
  };
}

TEST(Safetensors, RejectsEveryCorruptCaseWithItsMessage) {
  for (const CorruptCase& c : corrupt_cases()) {
    const std::string e = error_of([&] { io::parse_safetensors(c.bytes, "bad.safetensors"); });
    EXPECT_NE(e.find(c.message), std::string::npos)
        << c.label << ": expected \"" << c.message << "\" in: " << e;
    EXPECT_EQ(e.rfind("safetensors: bad.safetensors: ", 0), 0u) << c.label << ": " << e;
  }
}

TEST(Safetensors, CorruptFileOnDiskNamesThePath) {
  iotest::TempDir dir;
  const std::string path = dir.file("corrupt.safetensors");
  soma::io::atomic_write(path, craft("[1]"));
  const std::string e = error_of([&] { io::load_safetensors(path); });
  EXPECT_NE(e.find(path + ": JSON header is not an object"), std::string::npos) << e;
}

// Every prefix of a valid file is rejected cleanly (header cut, data cut).
TEST(Safetensors, TruncatedAtEveryCutPointIsRejected) {
  const std::string full = io::serialize_safetensors(every_dtype(), {{"k", "value"}});
  ASSERT_NO_THROW(io::parse_safetensors(full, "full"));
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const std::string e = error_of([&] { io::parse_safetensors(full.substr(0, cut), "cut"); });
    EXPECT_EQ(e.rfind("safetensors: cut: ", 0), 0u) << "cut at " << cut << ": " << e;
  }
  // And through the file system, at a few cut points.
  iotest::TempDir dir;
  const std::string path = dir.file("t.safetensors");
  for (size_t cut : {size_t{0}, size_t{5}, size_t{8}, size_t{40}, full.size() - 1}) {
    soma::io::atomic_write(path, std::string_view(full).substr(0, cut));
    EXPECT_NE(error_of([&] { io::load_safetensors(path); }).find(path), std::string::npos) << cut;
  }
}

// Flipping any single header byte gives either a valid file or a soma::Error, never a crash.
TEST(Safetensors, SingleByteCorruptionNeverCrashes) {
  const std::string full = io::serialize_safetensors(every_dtype(), {{"k", "value"}});
  uint64_t n = 0;
  std::memcpy(&n, full.data(), 8);
  for (size_t i = 0; i < 8 + n; ++i) {
    for (uint8_t x : {uint8_t{0x01}, uint8_t{0x20}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string bad = full;
      bad[i] = static_cast<char>(bad[i] ^ x);
      const std::string e = error_of([&] { io::parse_safetensors(bad, "flip"); });
      EXPECT_TRUE(e == "<no error>" || e.rfind("safetensors: flip: ", 0) == 0)
          << "byte " << i << " ^ " << int(x) << ": " << e;
    }
  }
}

}  // namespace
