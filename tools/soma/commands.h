// The subcommands of the `soma` tool. Each throws soma::Error on bad input; main() turns that
// into a one-line message and a non-zero exit.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "config.h"

namespace soma::cli {

/// Trains, evaluates on the test split and writes model.safetensors, checkpoint.safetensors,
/// history.csv, metrics.json and report.html into config.out. Returns the output directory.
/// `given` names the options the user set (flags or config file; normalized_key names): with
/// config.resume the others come from the checkpoint's recorded configuration.
std::string train(TrainConfig config, const std::set<std::string>& given = {});

struct DataArgs {
  std::string data;          // IDX directory (default: Fashion-MNIST)
  std::string csv;           // or a CSV file
  std::string label_column;  // its label column
  std::string split = "test";
};

/// Prints "loss <x>  accuracy <y>  samples <n>" for the model on the data.
void eval(const std::string& model_path, const DataArgs& data);
/// Prints one predicted class per input row.
void predict(const std::string& model_path, const DataArgs& data);
/// Prints the model's layer table.
void summary(const std::string& model_path);

struct ExportArgs {
  std::string model;                     // model.safetensors written by soma train
  std::string out;                       // the .onnx file to write
  int64_t opset = 17;                    // 13 to 17
  bool preprocessing = true;             // the input normalisation as the graph's first nodes
  std::vector<std::string> class_names;  // empty: Fashion-MNIST's (IDX data, 10 classes) or ids
};
/// Writes the model as ONNX (tools/soma/export_command.cpp).
void export_onnx(const ExportArgs& args);

struct BenchArgs {
  std::string model;           // model.safetensors or .onnx
  int64_t batch_size = 1;      // samples per timed run
  int threads = 0;             // with threads_given; else soma's default (every core)
  bool threads_given = false;  // --threads on the command line
  std::string precision = "fp32";
  bool train = false;  // training steps instead of inference
  int64_t warmup = 10;
  int64_t iterations = 100;  // timed runs, unless seconds_given
  double seconds = 0;        // with seconds_given: time runs for this long instead
  bool seconds_given = false;
  bool json = false;  // one JSON object on stdout
};
/// Times the model on random inputs and prints throughput and latency percentiles
/// (tools/soma/bench_command.cpp).
void bench(const BenchArgs& args);
struct QuantizeArgs {
  std::string model;       // model.safetensors written by soma train
  std::string out;         // the quantized model.safetensors to write
  bool static_ = false;    // static: calibrated input scales, Conv2d too, BatchNorm folded
  int64_t calibrate = 32;  // static: batches of kEvalBatch training images
  std::string observer = "histogram";  // static: histogram or minmax
  DataArgs data;                       // static: the calibration data (split "train")
};
/// Writes an int8 copy of the model that eval, predict, summary and bench read like any model
/// file: dynamic (soma::quantization::quantize_dynamic: every Linear) or static (prepare,
/// calibrate on the training data, convert).
void quantize(const QuantizeArgs& args);

}  // namespace soma::cli
