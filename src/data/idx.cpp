// IDX reader (plain or gzip via zlib) and the MNIST loader built on it.
#include "soma/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <new>
#include <vector>

#include "soma/core/error.h"

namespace soma::data {

namespace {

constexpr uint64_t kMaxDataBytes = uint64_t{1} << 34;  // 16 GiB: anything larger is corrupt

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Sequential reads from a plain or gzip file.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), gz_(ends_with(path, ".gz")) {
    if (gz_) {
      gz_file_ = gzopen(path.c_str(), "rb");
      SOMA_CHECK(gz_file_ != nullptr, "read_idx: cannot open ", path, ": ", std::strerror(errno));
    } else {
      file_ = std::fopen(path.c_str(), "rb");
      SOMA_CHECK(file_ != nullptr, "read_idx: cannot open ", path, ": ", std::strerror(errno));
    }
  }
  ~Reader() {
    if (gz_file_ != nullptr) gzclose(gz_file_);
    if (file_ != nullptr) std::fclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Reads up to n bytes; returns how many were read (fewer only at the end of the file).
  uint64_t read(void* dst, uint64_t n) {
    char* out = static_cast<char*>(dst);
    uint64_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<uint64_t>(n - done, 1u << 30));
      uint64_t got = 0;
      if (gz_) {
        const int r = gzread(gz_file_, out + done, chunk);
        if (r < 0) {
          int code = 0;
          const char* msg = gzerror(gz_file_, &code);
          soma::detail::fail("read_idx: ", path_, ": gzip error: ", msg);
        }
        got = static_cast<uint64_t>(r);
      } else {
        got = std::fread(out + done, 1, chunk, file_);
        SOMA_CHECK(!std::ferror(file_), "read_idx: ", path_,
                   ": read error: ", std::strerror(errno));
      }
      if (got == 0) break;
      done += got;
    }
    return done;
  }

  bool gzipped() const { return gz_; }
  // Size of the file on disk (compressed size for .gz).
  uint64_t disk_size() const {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path_, ec);
    return ec ? 0 : static_cast<uint64_t>(n);
  }

  // Counts the bytes left until the end of the file.
  uint64_t count_rest() {
    std::vector<char> buf(1 << 16);
    uint64_t total = 0;
    for (uint64_t got; (got = read(buf.data(), buf.size())) > 0;) total += got;
    return total;
  }

 private:
  std::string path_;
  bool gz_;
  gzFile gz_file_ = nullptr;
  std::FILE* file_ = nullptr;
};

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct TypeInfo {
  const char* name;  // the file's element type
  size_t bytes;      // its size in the file
  DType dtype;       // what it becomes in memory
};

bool type_info(unsigned char code, TypeInfo& info) {
  switch (code) {
    case 0x08:
      info = {"uint8", 1, kUInt8};
      return true;
    case 0x09:
      info = {"int8", 1, kInt64};
      return true;
    case 0x0B:
      info = {"int16", 2, kInt64};
      return true;
    case 0x0C:
      info = {"int32", 4, kInt64};
      return true;
    case 0x0D:
      info = {"float32", 4, kFloat32};
      return true;
    case 0x0E:
      info = {"float64", 8, kFloat64};
      return true;
    default:
      return false;
  }
}

std::string hex(unsigned v) {
  static const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[(v >> 4) & 0xF] + digits[v & 0xF];
}

// The big-endian unsigned integer in raw[0, bytes).
uint64_t be_uint(const unsigned char* raw, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v = (v << 8) | raw[i];
  return v;
}

}  // namespace

Tensor read_idx(const std::string& path) {
  Reader in(path);
  unsigned char magic[4];
  const uint64_t got_magic = in.read(magic, 4);
  SOMA_CHECK(got_magic == 4, "read_idx: ", path, ": file too short for an IDX header (", got_magic,
             " bytes, need at least 4)");
  SOMA_CHECK(magic[0] == 0 && magic[1] == 0, "read_idx: ", path,
             ": bad magic number: the first two bytes must be 0, got ", hex(magic[0]), " ",
             hex(magic[1]), " (not an IDX file?)");
  TypeInfo type{};
  SOMA_CHECK(type_info(magic[2], type), "read_idx: ", path, ": unknown type code ", hex(magic[2]),
             " (expected 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32 or "
             "0x0E float64)");
  const int rank = magic[3];
  SOMA_CHECK(rank >= 1 && rank <= 4, "read_idx: ", path, ": rank ", rank,
             " is not supported (expected 1 to 4)");

  unsigned char dims_raw[16];
  const uint64_t dims_bytes = 4 * static_cast<uint64_t>(rank);
  const uint64_t got_dims = in.read(dims_raw, dims_bytes);
  SOMA_CHECK(got_dims == dims_bytes, "read_idx: ", path, ": file too short for the header: rank ",
             rank, " needs ", 4 + dims_bytes, " bytes, got ", 4 + got_dims);
  Shape shape(static_cast<size_t>(rank));
  for (int d = 0; d < rank; ++d) shape[d] = be32(dims_raw + 4 * d);
  uint64_t nbytes = type.bytes;
  for (int d = 0; d < rank; ++d) {
    SOMA_CHECK(shape[d] > 0, "read_idx: ", path, ": dimension ", d, " is 0 (shape ", shape, ")");
    // dims are < 2^32 and nbytes <= 2^34 before the multiply: no overflow in 64 bits
    nbytes *= static_cast<uint64_t>(shape[d]);
    SOMA_CHECK(nbytes <= kMaxDataBytes, "read_idx: ", path, ": shape ", shape, " of ", type.name,
               " needs more than 2^34 bytes (16 GiB); refusing to allocate (corrupt header?)");
  }
  const uint64_t header_bytes = 4 + dims_bytes;
  // Nothing is allocated for data the file cannot hold: a plain file must have the bytes; a
  // gzip stream inflates at most ~1032:1 (deflate's limit), so its size bounds the data.
  const uint64_t disk = in.disk_size();
  if (!in.gzipped()) {
    SOMA_CHECK(header_bytes + nbytes <= disk, "read_idx: ", path, ": truncated data: shape ", shape,
               " of ", type.name, " needs ", nbytes, " bytes after the ", header_bytes,
               "-byte header, got ", disk > header_bytes ? disk - header_bytes : 0);
  } else {
    constexpr uint64_t kMaxInflate = 1032;
    SOMA_CHECK(header_bytes + nbytes <= kMaxInflate * disk + 1024, "read_idx: ", path,
               ": the header's shape ", shape, " of ", type.name, " needs ", nbytes,
               " bytes, more than a ", disk, "-byte gzip file can hold (corrupt header?)");
  }

  // Raw bytes: straight into the tensor for uint8, else into a buffer to convert.
  Tensor out = empty(shape, type.dtype);
  std::vector<unsigned char> buffer;
  unsigned char* raw = nullptr;
  if (type.dtype == kUInt8) {
    raw = out.data<uint8_t>();
  } else {
    try {
      buffer.resize(nbytes);
    } catch (const std::bad_alloc&) {
      soma::detail::fail("read_idx: ", path, ": out of memory allocating ", nbytes,
                         " bytes for shape ", shape, " of ", type.name);
    }
    raw = buffer.data();
  }
  const uint64_t got = in.read(raw, nbytes);
  SOMA_CHECK(got == nbytes, "read_idx: ", path, ": truncated data: shape ", shape, " of ",
             type.name, " needs ", nbytes, " bytes after the ", header_bytes, "-byte header, got ",
             got);
  const uint64_t extra = in.count_rest();
  SOMA_CHECK(extra == 0, "read_idx: ", path, ": ", extra, " trailing bytes after the data (shape ",
             shape, " of ", type.name, " needs ", nbytes, " bytes after the ", header_bytes,
             "-byte header)");

  const int64_t n = out.numel();
  switch (magic[2]) {
    case 0x09: {
      int64_t* p = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int8_t>(raw[i]);
      break;
    }
    case 0x0B: {
      int64_t* p = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int16_t>(be_uint(raw + 2 * i, 2));
      break;
    }
    case 0x0C: {
      int64_t* p = out.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(be_uint(raw + 4 * i, 4));
      break;
    }
    case 0x0D: {
      float* p = out.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        const auto bits = static_cast<uint32_t>(be_uint(raw + 4 * i, 4));
        std::memcpy(p + i, &bits, 4);
      }
      break;
    }
    case 0x0E: {
      double* p = out.data<double>();
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t bits = be_uint(raw + 8 * i, 8);
        std::memcpy(p + i, &bits, 8);
      }
      break;
    }
    default:
      break;  // uint8: already in place
  }
  return out;
}

MnistSplit load_mnist(const std::string& dir, const std::string& split) {
  SOMA_CHECK(split == "train" || split == "test",
             "load_mnist: split must be \"train\" or \"test\", got \"", split, "\"");
  const std::string prefix = split == "train" ? "train" : "t10k";
  namespace fs = std::filesystem;
  auto find = [&](const std::string& kind, const std::string& idx) {
    const std::vector<std::string> names = {
        prefix + "-" + kind + "-" + idx + "-ubyte", prefix + "-" + kind + "-" + idx + "-ubyte.gz",
        prefix + "-" + kind + "." + idx + "-ubyte", prefix + "-" + kind + "." + idx + "-ubyte.gz"};
    std::string tried;
    for (const std::string& name : names) {
      const fs::path p = fs::path(dir) / name;
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
      tried += (tried.empty() ? "" : ", ") + name;
    }
    soma::detail::fail("load_mnist: no ", split, " ", kind, " file in ", dir, " (looked for ",
                       tried, ")");
  };
  const std::string images_path = find("images", "idx3");
  const std::string labels_path = find("labels", "idx1");

  MnistSplit out;
  out.images = read_idx(images_path);
  SOMA_CHECK(out.images.dtype() == kUInt8 && out.images.dim() == 3, "load_mnist: ", images_path,
             ": expected uint8 images of rank 3 [N, rows, cols], got ", out.images.dtype(), " ",
             out.images.shape());
  const Tensor labels = read_idx(labels_path);
  SOMA_CHECK(labels.dtype() == kUInt8 && labels.dim() == 1, "load_mnist: ", labels_path,
             ": expected uint8 labels of rank 1 [N], got ", labels.dtype(), " ", labels.shape());
  SOMA_CHECK(labels.size(0) == out.images.size(0), "load_mnist: ", images_path, " has ",
             out.images.size(0), " images but ", labels_path, " has ", labels.size(0), " labels");
  out.labels = empty({labels.size(0)}, kInt64);
  const uint8_t* src = labels.data<uint8_t>();
  int64_t* dst = out.labels.data<int64_t>();
  for (int64_t i = 0; i < labels.size(0); ++i) {
    SOMA_CHECK(src[i] < 10, "load_mnist: ", labels_path, ": label ", int{src[i]}, " at index ", i,
               " is not a class id in 0..9");
    dst[i] = src[i];
  }
  return out;
}

}  // namespace soma::data
