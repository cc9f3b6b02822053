// libFuzzer target: read_csv on arbitrary bytes, with the default options and with a named
// label column.
#include "fuzz_util.h"
#include "soma/data/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path = soma::fuzz::scratch_file(data + 1, size - 1, ".csv");
  soma::data::CsvOptions options;
  if (data[0] & 1) options.label_column = "label";
  soma::fuzz::expect_ok_or_error([&] {
    const soma::data::CsvData d = soma::data::read_csv(path, options);
    (void)d.features.numel();
  });
  return 0;
}
