// TrainConfig: everything `soma train` needs, from defaults, a config file (.json or .toml)
// and flags (flags win). Validation names the option and the value.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace soma::cli {

struct TrainConfig {
  // model
  std::string arch = "mlp";  // "mlp" (--hidden, --activation, --dropout), "cnn" or FILE.json
  std::string init;          // --init X.onnx: fine-tune an imported ONNX model instead
  std::vector<int64_t> input_shape;       // per-sample shape the model sees; empty: from the data
  std::vector<std::string> augment;       // training-loader augmentation: "crop", "flip"
  std::vector<int64_t> hidden{256, 128};  // hidden layer widths
  std::string activation = "relu";        // relu, tanh, sigmoid, gelu, leaky_relu
  double dropout = 0.2;                   // after every hidden layer; 0 disables
  double label_smoothing = 0.0;           // of the training loss (cross-entropy), in [0, 1)
  std::string precision = "fp32";         // fp32, or bf16: training steps under soma::autocast
  // optimisation
  std::string optimizer = "adam";  // sgd, adam, adamw, rmsprop, adagrad, adadelta
  double lr = 1e-3;
  double momentum = 0.0;              // sgd, rmsprop
  bool nesterov = false;              // sgd
  double weight_decay = -1.0;         // < 0: the optimizer's default
  double beta1 = 0.9, beta2 = 0.999;  // adam, adamw
  std::string schedule = "cosine";    // none, step, exponential, cosine, plateau
  int64_t batch_size = 128;
  int64_t epochs = 20;
  int64_t patience = 5;  // early stopping on validation loss; 0 disables
  uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  // data
  std::string data = "/usr/share/datasets/fashion-mnist";  // directory with IDX files
  std::string csv;                                         // or a CSV file
  std::string label_column;                                // its label column (default: the last)
  double validation = 0.1;                                 // held-out fraction of the training data
  // output
  std::string out;  // default runs/<timestamp>
  bool resume = false;
  bool override_recorded = false;  // --override: resume with changed recorded options
  bool quiet = false;
  bool detect_anomaly = false;  // check every op's output and gradient for NaN / inf
};

/// Hidden layer widths written "256,128" ("" for none): the one parser of --hidden, as a flag
/// and as a config file's string. Nothing unless every part is a decimal integer.
std::optional<std::vector<int64_t>> parse_widths(const std::string& text);
/// A comma-separated list ("crop,flip"; "" for none): --augment as a flag and as a config
/// file's string.
std::vector<std::string> parse_names(const std::string& text);
/// "--batch-size", "batch-size" and "batch_size" all name the option "batch_size".
std::string normalized_key(std::string key);
/// Loads a .json or .toml file (keys named like the flags, with '-' or '_'); adds the
/// normalized name of every option it sets to `keys`.
void load_config_file(const std::string& path, TrainConfig& config,
                      std::set<std::string>* keys = nullptr);
/// Applies a JSON object of options (to_json's output, e.g. recorded in a checkpoint).
void load_config_json(const std::string& text, TrainConfig& config, const std::string& origin);
/// Throws soma::Error for invalid values.
void validate(const TrainConfig& config);
/// The configuration as JSON text (saved in checkpoints, metrics and the report).
std::string to_json(const TrainConfig& config);

}  // namespace soma::cli
