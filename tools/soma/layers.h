// The JSON layer list of `soma train --arch FILE.json` (and of the model file): a JSON array of
// layers named like PyTorch, each an object {"type": "<torch.nn class name>", <torch argument
// names>...}, e.g.
//   [{"type": "Conv2d", "in_channels": 1, "out_channels": 32, "kernel_size": 3, "padding": 1},
//    {"type": "ReLU"}, {"type": "Flatten"}, {"type": "Linear", "in_features": 25088,
//    "out_features": 10}]
// becomes the nn::Sequential of those modules, children "0", "1", ... as torch.nn.Sequential
// numbers them. The layer types are the entries of layer_registry() (layers.cpp): adding a type
// is adding one entry there.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "soma/nn/module.h"

namespace soma::cli {

/// The arguments of one layer of the list, read by its registry entry. Every getter names the
/// argument it reads (so that arguments no getter asked for are reported as unknown, with the
/// list of the ones the type takes) and throws soma::Error "arch: layer 3 (Conv2d): 'stride'
/// must be ..., got ..." for a value of the wrong type. A missing argument or a JSON null takes
/// the default (torch's None); a required one without a default is an error that finish()
/// reports (the getter returns 1s meanwhile, so that the entry reads all its arguments).
class LayerArgs {
 public:
  /// `label` replaces "arch: layer <index> (<type>)" at the start of messages when not empty
  /// (the Python bindings build single layers: "nn.Conv2d").
  LayerArgs(const nlohmann::json& spec, size_t index, std::string type, std::string label = "");

  /// An integer (a JSON number with no fraction).
  int64_t integer(const std::string& name);
  int64_t integer(const std::string& name, int64_t fallback);
  /// A number.
  double number(const std::string& name, double fallback);
  /// true or false.
  bool boolean(const std::string& name, bool fallback);
  /// A string, one of `allowed` (when given).
  std::string choice(const std::string& name, const std::string& fallback,
                     std::initializer_list<const char*> allowed = {});
  /// An integer or a list of `n` integers (kernel_size=3 or [3, 5]), as n integers.
  std::vector<int64_t> ints(const std::string& name, size_t n);
  std::vector<int64_t> ints(const std::string& name, size_t n, std::vector<int64_t> fallback);
  /// An integer or a list of any length (normalized_shape, unflattened_size).
  std::vector<int64_t> int_list(const std::string& name);
  std::vector<int64_t> int_list(const std::string& name, std::vector<int64_t> fallback);
  /// Integers (as ints()) or one of the strings `words` (padding: 1, [1, 2], "same", "valid").
  struct IntsOrWord {
    std::vector<int64_t> ints;  // empty when word is set
    std::string word;
  };
  IntsOrWord ints_or_word(const std::string& name, size_t n, std::vector<int64_t> fallback,
                          std::initializer_list<const char*> words);
  /// Whether the argument is given (not missing, not null); it counts as known.
  bool has(const std::string& name);
  /// The argument's JSON value (null when missing), for entries that read it themselves.
  const nlohmann::json& raw(const std::string& name);

  /// "arch: layer 3 (Conv2d)", the start of every message about this layer.
  std::string where() const;
  /// Throws "arch: layer 3 (Conv2d): '<name>' must be <expected>, got <value>".
  [[noreturn]] void bad(const std::string& name, const std::string& expected) const;
  /// Throws for an argument no getter read (after the entry built the layer), then for a
  /// missing required one.
  void finish() const;

 private:
  const nlohmann::json& spec_;
  size_t index_;
  std::string type_, label_;
  std::vector<std::string> known_, missing_;
  void missing(const std::string& name);
  const nlohmann::json* get(const std::string& name);  // null when missing or JSON null
};

/// Builds one layer from its arguments.
using LayerFactory = std::function<std::shared_ptr<nn::Module>(LayerArgs&)>;
/// Every layer type the JSON list may name, by torch class name.
const std::map<std::string, LayerFactory>& layer_registry();

/// The Sequential of the layer list (a non-empty JSON array of objects with a "type"). Unknown
/// types and bad arguments are soma::Error naming the layer index and type.
std::shared_ptr<nn::Sequential> build_sequential(const nlohmann::json& layers);

/// Runs `model` layer by layer on zeros of shape [1, input_shape...] (eval mode, no grad; the
/// model's training flag is restored): a layer that refuses its input is a soma::Error
/// "arch: layer 3 (Linear): input [1, 3136]: <what the layer said>", and the last output must
/// be [1, classes]. `hint` is appended to the message of a failure at layer 0.
void check_chain(nn::Sequential& model, const nlohmann::json& layers, const Shape& input_shape,
                 int64_t classes, const std::string& hint = "");

}  // namespace soma::cli
