// libFuzzer target: read_idx on arbitrary bytes, as a plain file or through zlib (.gz).
#include "fuzz_util.h"
#include "soma/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: bit 0 chooses the .gz path (zlib reads non-gzip bytes as they are).
  const std::string path =
      soma::fuzz::scratch_file(data + 1, size - 1, data[0] & 1 ? ".idx.gz" : ".idx");
  soma::fuzz::expect_ok_or_error([&] {
    const soma::Tensor t = soma::data::read_idx(path);
    (void)t.numel();
  });
  return 0;
}
