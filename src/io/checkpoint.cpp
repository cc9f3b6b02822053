// Checkpoints: a safetensors file with "model." / "optimizer." tensors and string metadata.
#include "soma/io/checkpoint.h"

#include <charconv>

#include "soma/core/error.h"
#include "soma/io/file.h"

namespace soma::io {
namespace {

constexpr std::string_view kModelPrefix = "model.";
constexpr std::string_view kOptimizerPrefix = "optimizer.";
constexpr std::string_view kStatePrefix = "state.";

bool is_reserved(const std::string& key) {
  return key == "format" || key == "epoch" || key == "rng_state";
}

// The checkpoint in a parsed safetensors file; errors name `path`.
Checkpoint from_file(SafetensorsFile file, const std::string& path) {
  const std::string where = "load_checkpoint: " + path + ": ";
  auto format = file.metadata.find("format");
  SOMA_CHECK(format != file.metadata.end(), where,
             "not a soma checkpoint (no \"format\" metadata entry; weights saved with "
             "soma::save load with soma::load)");
  SOMA_CHECK(format->second == kCheckpointFormat, where, "not a soma checkpoint (format \"",
             format->second, "\", expected \"", kCheckpointFormat, "\")");

  Checkpoint ckpt;
  auto epoch = file.metadata.find("epoch");
  SOMA_CHECK(epoch != file.metadata.end(), where, "bad epoch: the \"epoch\" entry is missing");
  const std::string& e = epoch->second;
  auto [end, ec] = std::from_chars(e.data(), e.data() + e.size(), ckpt.epoch);
  SOMA_CHECK(!e.empty() && ec == std::errc() && end == e.data() + e.size() && ckpt.epoch >= 0,
             where, "bad epoch \"", e, "\" (expected a non-negative integer)");
  auto rng = file.metadata.find("rng_state");
  if (rng != file.metadata.end()) ckpt.rng_state = rng->second;

  for (auto& [key, value] : file.metadata)
    if (!is_reserved(key)) ckpt.extra.emplace(key, value);
  for (auto& [name, t] : file.tensors) {
    if (name.starts_with(kModelPrefix)) {
      ckpt.model.emplace(name.substr(kModelPrefix.size()), t);
    } else if (name.starts_with(kOptimizerPrefix)) {
      ckpt.optimizer.emplace(name.substr(kOptimizerPrefix.size()), t);
    } else if (name.starts_with(kStatePrefix)) {
      ckpt.state.emplace(name.substr(kStatePrefix.size()), t);
    } else {
      detail::fail(where, "unexpected tensor \"", name,
                   "\" (names start with \"model.\", \"optimizer.\" or \"state.\")");
    }
  }
  return ckpt;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  SOMA_CHECK(ckpt.epoch >= 0, "save_checkpoint: ", path, ": epoch must be >= 0, got ", ckpt.epoch);
  TensorMap tensors;
  for (const auto& [key, t] : ckpt.model) tensors.emplace(std::string(kModelPrefix) + key, t);
  for (const auto& [key, t] : ckpt.optimizer)
    tensors.emplace(std::string(kOptimizerPrefix) + key, t);
  for (const auto& [key, t] : ckpt.state) tensors.emplace(std::string(kStatePrefix) + key, t);
  Metadata metadata;
  for (const auto& [key, value] : ckpt.extra) {
    SOMA_CHECK(!is_reserved(key), "save_checkpoint: ", path, ": extra entry \"", key,
               "\" is reserved (format, epoch, rng_state)");
    metadata[key] = value;
  }
  metadata["format"] = kCheckpointFormat;
  metadata["epoch"] = std::to_string(ckpt.epoch);
  metadata["rng_state"] = ckpt.rng_state;
  try {
    save_safetensors(path, tensors, metadata);
  } catch (const Error& e) {
    detail::fail("save_checkpoint: ", e.what());
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  return from_file(load_safetensors(path), path);
}

Checkpoint parse_checkpoint(std::string_view bytes, const std::string& name_for_errors) {
  return from_file(parse_safetensors(bytes, name_for_errors), name_for_errors);
}

}  // namespace soma::io
