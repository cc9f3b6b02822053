// libFuzzer target: the safetensors parser on arbitrary bytes; whatever it accepts must
// serialise again and parse back to the same names, shapes and dtypes.
#include "fuzz_util.h"
#include "soma/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  soma::fuzz::expect_ok_or_error([&] {
    const soma::io::SafetensorsFile f = soma::io::parse_safetensors(bytes, "fuzz input");
    const std::string again = soma::io::serialize_safetensors(f.tensors, f.metadata);
    const soma::io::SafetensorsFile g = soma::io::parse_safetensors(again, "round trip");
    if (g.tensors.size() != f.tensors.size()) __builtin_trap();
    for (const auto& [name, t] : f.tensors) {
      auto it = g.tensors.find(name);
      if (it == g.tensors.end() || it->second.shape() != t.shape() ||
          it->second.dtype() != t.dtype())
        __builtin_trap();
    }
  });
  return 0;
}
