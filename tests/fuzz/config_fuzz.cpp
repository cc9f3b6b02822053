// libFuzzer target: the `soma train --config` reader (.json or .toml) and the validation of
// what it read.
#include "config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path =
      soma::fuzz::scratch_file(data + 1, size - 1, data[0] & 1 ? ".toml" : ".json");
  soma::fuzz::expect_ok_or_error([&] {
    soma::cli::TrainConfig config;
    soma::cli::load_config_file(path, config);
    soma::cli::validate(config);
    (void)soma::cli::to_json(config);
  });
  return 0;
}
