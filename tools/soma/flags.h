// The `soma` command line (CLI11): its subcommands and their flags, and --config FILE, which is
// read first so that flags override it.
#pragma once

#include <set>
#include <string>

#include "commands.h"
#include "config.h"

namespace soma::cli {

struct CommandLine {
  std::string command;          // "train", "eval", "predict", "summary", "export" or "bench"
  TrainConfig config;           // train: defaults, then the config file, then the flags
  std::set<std::string> given;  // train: options set by the file or a flag (normalized_key)
  std::string model;            // eval, predict, summary: model.safetensors
  DataArgs data;                // eval, predict
  ExportArgs export_args;       // export
  BenchArgs bench_args;         // bench
  QuantizeArgs quantize_args;   // quantize
};

/// Parses the arguments into `line`. Returns -1 when line.command is to run, else the exit
/// status after printing the help (0) or a usage error (2, printed by rank 0). Invalid option
/// values throw soma::Error.
int parse_command_line(int argc, char** argv, CommandLine& line);

}  // namespace soma::cli
