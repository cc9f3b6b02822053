// soma: train, evaluate and inspect networks from the command line.
//   soma train [--hidden 256,128 --optimizer adam --lr 1e-3 --epochs 20 ...]
//   soma eval --model runs/X/model.safetensors
//   soma predict --model runs/X/model.safetensors --csv rows.csv --label-column label
//   soma summary --model runs/X/model.safetensors
//   soma export --model runs/X/model.safetensors --out model.onnx
//   soma bench --model runs/X/model.safetensors --batch-size 32 [--train] [--json]
//   soma quantize --model runs/X/model.safetensors --out model-int8.safetensors
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "commands.h"
#include "flags.h"
#include "soma/dist/dist.h"

namespace {

int run(int argc, char** argv) {
  soma::cli::CommandLine line;
  if (const int status = soma::cli::parse_command_line(argc, argv, line); status >= 0)
    return status;
  if (line.command == "train")
    soma::cli::train(line.config, line.given);
  else if (line.command == "eval")
    soma::cli::eval(line.model, line.data);
  else if (line.command == "predict")
    soma::cli::predict(line.model, line.data);
  else if (line.command == "summary")
    soma::cli::summary(line.model);
  else if (line.command == "export")
    soma::cli::export_onnx(line.export_args);
  else if (line.command == "bench")
    soma::cli::bench(line.bench_args);
  else if (line.command == "quantize")
    soma::cli::quantize(line.quantize_args);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Under mpirun every rank runs this; MPI starts only then (a plain run never loads it).
  std::optional<soma::dist::Environment> mpi;
  try {
    if (soma::dist::launched_by_mpirun()) mpi.emplace(argc, argv);
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    const int world = soma::dist::world_size(), rank = soma::dist::rank();
    if (world == 1) {
      std::cerr << "soma: error: " << msg << "\n";
      return 1;
    }
    // The other ranks may be waiting in a collective for this one: end the whole job. Most
    // errors (bad flags, a missing file, a diverged loss) strike every rank alike; ranks other
    // than 0 wait a second first, so that then rank 0's abort ends them and the message is
    // printed once. An error of one rank alone is still printed, a second later.
    if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    std::cerr << "soma: error: " << (rank != 0 ? "rank " + std::to_string(rank) + ": " : "") << msg
              << "\n";
    soma::dist::abort(1);
  }
}
