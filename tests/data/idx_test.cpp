// read_idx on IDX files written here (plain and gzip), every malformed case, and load_mnist on
// the real Fashion-MNIST files.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "core/allocator.h"
#include "data/data_test_util.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using soma_test::expect_error;
using soma_test::ScratchDir;

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

// Header: 0, 0, type, rank, then the big-endian dims.
std::string header(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string h = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) h += be32(d);
  return h;
}

// zlib's gzopen/gzwrite/gzclose, looked up at run time: libsoma links zlib privately, so the
// test executable has no -lz of its own, but libz.so.1 is already loaded with libsoma.
struct Zlib {
  decltype(&gzopen) open = nullptr;
  decltype(&gzwrite) write = nullptr;
  decltype(&gzclose) close = nullptr;
  Zlib() {
    void* lib = dlopen("libz.so.1", RTLD_NOW);
    if (lib == nullptr) return;
    open = reinterpret_cast<decltype(open)>(dlsym(lib, "gzopen"));
    write = reinterpret_cast<decltype(write)>(dlsym(lib, "gzwrite"));
    close = reinterpret_cast<decltype(close)>(dlsym(lib, "gzclose"));
  }
};

void write_gz(const std::string& path, const std::string& bytes) {
  static const Zlib z;
  ASSERT_TRUE(z.open && z.write && z.close) << "libz.so.1 not found: " << dlerror();
  gzFile f = z.open(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(z.write(f, bytes.data(), static_cast<unsigned>(bytes.size())), int(bytes.size()));
  ASSERT_EQ(z.close(f), Z_OK);
}

TEST(IdxTest, ReadsUint8PlainAndGzip) {
  ScratchDir dir;
  std::string data;
  for (int i = 0; i < 24; ++i) data += char(i * 10);
  const std::string bytes = header(0x08, {2, 3, 4}) + data;
  const std::string plain = dir.write("a-idx3-ubyte", bytes);
  const std::string gz = dir.file("a-idx3-ubyte.gz");
  write_gz(gz, bytes);
  for (const std::string& path : {plain, gz}) {
    const Tensor t = soma::data::read_idx(path);
    EXPECT_EQ(t.dtype(), soma::kUInt8) << path;
    EXPECT_EQ(t.shape(), (soma::Shape{2, 3, 4}));
    const auto v = t.to_vector<int64_t>();
    for (int i = 0; i < 24; ++i) EXPECT_EQ(v[i], (i * 10) % 256);
  }
}

TEST(IdxTest, ReadsEveryTypeBigEndian) {
  ScratchDir dir;
  // int8: 0xFF = -1, 0x7F = 127
  Tensor t =
      soma::data::read_idx(dir.write("i8", header(0x09, {3}) + std::string{char(0xFF), 0x7F, 0}));
  EXPECT_EQ(t.dtype(), soma::kInt64);
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{-1, 127, 0}));
  // int16: 0x0102 = 258, 0xFFFE = -2
  t = soma::data::read_idx(
      dir.write("i16", header(0x0B, {2}) + std::string{1, 2, char(0xFF), char(0xFE)}));
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{258, -2}));
  // int32, rank 4: 0x01020304, -5
  t = soma::data::read_idx(
      dir.write("i32", header(0x0C, {1, 1, 1, 2}) + be32(0x01020304) + be32(uint32_t(-5))));
  EXPECT_EQ(t.shape(), (soma::Shape{1, 1, 1, 2}));
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{0x01020304, -5}));
  // float32 1.5 = 0x3FC00000, -2 = 0xC0000000
  t = soma::data::read_idx(
      dir.write("f32", header(0x0D, {2}) + be32(0x3FC00000) + be32(0xC0000000)));
  EXPECT_EQ(t.dtype(), soma::kFloat32);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));
  // float64 0.1 = 0x3FB999999999999A
  t = soma::data::read_idx(
      dir.write("f64", header(0x0E, {1}) + be32(0x3FB99999) + be32(0x9999999A)));
  EXPECT_EQ(t.dtype(), soma::kFloat64);
  EXPECT_EQ(t.item<double>(), 0.1);
}

TEST(IdxTest, EveryMalformedFileIsAnError) {
  ScratchDir dir;
  struct Case {
    const char* name;
    std::string bytes;
    std::vector<std::string> parts;
  };
  const std::string ok = header(0x08, {2, 2});
  const std::vector<Case> cases = {
      {"empty", "", {"too short", "0 bytes"}},
      {"short", std::string{0, 0, 8}, {"too short", "3 bytes"}},
      {"magic", std::string{0x12, 0x34, 8, 1} + be32(1) + "x", {"magic", "0x12 0x34"}},
      {"magic2", std::string{0, 1, 8, 1} + be32(1) + "x", {"magic", "0x00 0x01"}},
      {"type", header(0x0A, {1}) + "x", {"unknown type code 0x0A"}},
      {"rank0", std::string{0, 0, 8, 0}, {"rank 0", "1 to 4"}},
      {"rank5", header(0x08, {1, 1, 1, 1, 1}) + "x", {"rank 5", "1 to 4"}},
      {"dims",
       std::string{0, 0, 8, 3} + be32(2) + be32(2),
       {"too short", "rank 3", "16 bytes", "got 12"}},
      {"zero", header(0x08, {2, 0, 3}), {"dimension 1 is 0", "[2, 0, 3]"}},
      {"truncated", ok + "abc", {"truncated", "[2, 2]", "needs 4 bytes", "got 3"}},
      {"truncated32",
       header(0x0C, {2}) + be32(1) + "ab",
       {"truncated", "int32", "needs 8 bytes", "got 6"}},
      {"trailing", ok + "abcdef", {"2 trailing bytes", "[2, 2]"}},
      {"huge", header(0x08, {65536, 65536, 65536}), {"2^34", "[65536, 65536, 65536]"}},
      {"huge4",
       header(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}),
       {"2^34", "float64"}},
      {"huge_exact", header(0x0C, {1u << 31, 4}), {"2^34", "int32"}},  // 2^35 bytes
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (bool gz : {false, true}) {
      const std::string path = dir.file(std::string(c.name) + (gz ? ".gz" : ""));
      if (gz)
        write_gz(path, c.bytes);
      else
        dir.write(c.name, c.bytes);
      std::vector<std::string> parts = c.parts;
      parts.push_back("read_idx");
      parts.push_back(path);
      expect_error([&] { soma::data::read_idx(path); }, parts);
    }
  }
  expect_error([&] { soma::data::read_idx(dir.file("missing")); },
               {"read_idx", "cannot open", "missing"});
}

// A header that claims far more data than the file holds (3 GiB of uint8, 12 GiB of float32,
// both under the 16 GiB cap) is rejected before the tensor is allocated: from the plain file's
// size, or from the most a gzip file of that size can inflate to. (Found by the idx fuzzer as
// an out-of-memory.)
TEST(IdxTest, ClaimBeyondTheFileIsRejectedBeforeAllocating) {
  ScratchDir dir;
  for (const auto& [name, bytes] :
       {std::pair<std::string, std::string>{"u8", header(0x08, {1024, 1024, 3072}) + "abcd"},
        {"f32", header(0x0D, {1024, 1024, 3072}) + "abcd"}}) {
    for (bool gz : {false, true}) {
      SCOPED_TRACE(name + (gz ? ".gz" : ""));
      const std::string path = dir.file(name + (gz ? ".gz" : ""));
      if (gz)
        write_gz(path, bytes);
      else
        dir.write(name, bytes);
      const size_t allocations = soma::detail::system_allocations();
      expect_error(
          [&] { soma::data::read_idx(path); },
          gz ? std::vector<std::string>{"read_idx", "[1024, 1024, 3072]", "gzip file can hold"}
             : std::vector<std::string>{"read_idx", "truncated", "[1024, 1024, 3072]", "got 4"});
      EXPECT_EQ(soma::detail::system_allocations(), allocations);
    }
  }
}

TEST(IdxMnistTest, FashionMnistTrainAndTest) {
  if (!std::filesystem::exists(kFashionDir)) GTEST_SKIP() << kFashionDir << " not found";
  const auto train = soma::data::load_mnist(kFashionDir, "train");
  EXPECT_EQ(train.images.shape(), (soma::Shape{60000, 28, 28}));
  EXPECT_EQ(train.images.dtype(), soma::kUInt8);
  EXPECT_EQ(train.labels.shape(), (soma::Shape{60000}));
  EXPECT_EQ(train.labels.dtype(), soma::kInt64);
  const auto labels = train.labels.to_vector<int64_t>();
  // The well-known start of Fashion-MNIST's training labels (9 = ankle boot).
  EXPECT_EQ(std::vector<int64_t>(labels.begin(), labels.begin() + 10),
            (std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  std::vector<int64_t> counts(10, 0);
  for (int64_t y : labels) {
    ASSERT_GE(y, 0);
    ASSERT_LT(y, 10);
    ++counts[y];
  }
  EXPECT_EQ(counts, std::vector<int64_t>(10, 6000));  // balanced classes
  int64_t first_image_sum = 0;
  for (int i = 0; i < 784; ++i) first_image_sum += train.images.data<uint8_t>()[i];
  EXPECT_EQ(first_image_sum, 76247);  // from the file, via Python's gzip

  // Normalisation statistics of the training images (Python, exact integer sums).
  const auto norm = soma::data::Normalization::fit(train.images);
  EXPECT_NEAR(norm.mean, 0.2860405969887955, 1e-15);
  EXPECT_NEAR(norm.std, 0.3530242445149226, 1e-15);

  const auto test = soma::data::load_mnist(kFashionDir, "test");
  EXPECT_EQ(test.images.shape(), (soma::Shape{10000, 28, 28}));
  EXPECT_EQ(test.labels.shape(), (soma::Shape{10000}));
  const auto tl = test.labels.to_vector<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(tl.begin(), tl.begin() + 5),
            (std::vector<int64_t>{9, 2, 1, 1, 6}));
}

TEST(IdxMnistTest, Errors) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  expect_error([&] { soma::data::load_mnist(d, "valid"); }, {"load_mnist", "\"valid\""});
  expect_error([&] { soma::data::load_mnist(d, "train"); },
               {"load_mnist", d, "train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"});

  std::string pixels(3 * 2 * 2, char(7));
  dir.write("t10k-images-idx3-ubyte", header(0x08, {3, 2, 2}) + pixels);
  expect_error([&] { soma::data::load_mnist(d, "test"); },
               {"load_mnist", "t10k-labels-idx1-ubyte"});
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), header(0x08, {2}) + std::string{1, 2});
  expect_error([&] { soma::data::load_mnist(d, "test"); }, {"load_mnist", "3 images", "2 labels"});
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), header(0x08, {3}) + std::string{1, 2, 12});
  expect_error([&] { soma::data::load_mnist(d, "test"); },
               {"load_mnist", "label 12", "index 2", "t10k-labels-idx1-ubyte.gz"});
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), header(0x08, {3}) + std::string{1, 2, 9});
  const auto ok = soma::data::load_mnist(d, "test");
  EXPECT_EQ(ok.labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 9}));
  EXPECT_EQ(ok.images.shape(), (soma::Shape{3, 2, 2}));
  dir.write("t10k-images-idx3-ubyte", header(0x08, {12}) + pixels);
  expect_error([&] { soma::data::load_mnist(d, "test"); }, {"load_mnist", "rank 3", "[12]"});
}

}  // namespace
