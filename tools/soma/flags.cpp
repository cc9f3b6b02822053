#include "flags.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "soma/core/error.h"
#include "soma/dist/dist.h"

namespace soma::cli {
namespace {

// --config is read before the other flags so that flags override the file.
// The names of the options it sets go into `given`.
void preload_config(int argc, char** argv, TrainConfig& config, std::set<std::string>& given) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config") {
      SOMA_CHECK(i + 1 < argc, "--config needs a file name");
      load_config_file(argv[i + 1], config, &given);
    } else if (a.rfind("--config=", 0) == 0) {
      load_config_file(a.substr(9), config, &given);
    }
  }
}

// The options of `soma train`; --hidden goes to `hidden` (parsed after the command line).
CLI::App* add_train_command(CLI::App& app, TrainConfig& config, std::string& config_file,
                            std::string& hidden, std::string& input_shape, std::string& augment) {
  CLI::App* train = app.add_subcommand("train",
                                       "train a network; writes model, checkpoint, "
                                       "history, metrics and report.html to --out");
  train->add_option("--config", config_file,
                    "a .json or .toml file with these options (flags win)");
  train->add_option("--arch", config.arch,
                    "mlp (--hidden, --activation, --dropout), cnn, or a FILE.json layer list");
  train->add_option("--init", config.init,
                    "an ONNX model (.onnx) to fine-tune instead of a new network; writes "
                    "model.onnx");
  train->add_option("--input-shape", input_shape,
                    "the shape of one sample, e.g. 3,32,32 (CSV data for a convolutional model)");
  train->add_option("--augment", augment,
                    "training-set augmentation: crop, flip or crop,flip (images)");
  train->add_option("--hidden", hidden, "hidden layer widths, e.g. 256,128 (\"\" for none)");
  train->add_option("--activation", config.activation, "relu, tanh, sigmoid, gelu or leaky_relu");
  train->add_option("--dropout", config.dropout, "dropout probability after each hidden layer");
  train->add_option(
      "--label-smoothing", config.label_smoothing,
      "label smoothing of the training loss, in [0, 1) (validation and test: plain cross-entropy)");
  train->add_option("--precision", config.precision,
                    "fp32, or bf16: the training steps' matrix products in bfloat16 with float32 "
                    "accumulation and float32 weights (soma::autocast)");
  train->add_option("--optimizer", config.optimizer,
                    "sgd, adam, adamw, rmsprop, adagrad or adadelta");
  train->add_option("--lr", config.lr, "learning rate");
  train->add_option("--momentum", config.momentum, "momentum (sgd, rmsprop)");
  train->add_flag("--nesterov", config.nesterov, "Nesterov momentum (sgd)");
  train->add_option("--weight-decay", config.weight_decay,
                    "weight decay (default: the optimizer's)");
  train->add_option("--beta1", config.beta1, "Adam beta1");
  train->add_option("--beta2", config.beta2, "Adam beta2");
  train->add_option("--schedule", config.schedule, "none, step, exponential, cosine or plateau");
  train->add_option("--batch-size", config.batch_size,
                    "mini-batch size (per rank under mpirun: the global batch is ranks times it)");
  train->add_option("--epochs", config.epochs, "maximum number of epochs");
  train->add_option("--patience", config.patience, "early-stopping patience in epochs (0: off)");
  train->add_option("--seed", config.seed, "seed of every random choice");
  train->add_option("--threads", config.threads,
                    "threads (0: all cores; under mpirun, per rank: 0 is its share of the node)");
  train->add_option("--data", config.data, "directory with IDX files");
  train->add_option("--csv", config.csv, "CSV file instead of IDX files");
  train->add_option("--label-column", config.label_column, "label column of the CSV");
  train->add_option("--validation", config.validation, "held-out fraction for validation");
  train->add_option("--out", config.out, "output directory (default: runs/<timestamp>)");
  train->add_flag("--resume", config.resume,
                  "continue the run in --out from its checkpoint, with its recorded options");
  train->add_flag("--override", config.override_recorded,
                  "with --resume: apply options that differ from the recorded ones");
  train->add_flag("--quiet", config.quiet, "no progress output");
  train->add_flag("--detect-anomaly", config.detect_anomaly,
                  "stop at the first op whose output or gradient is NaN or infinite, naming it "
                  "(slower)");
  return train;
}

void add_data_options(CLI::App* cmd, DataArgs& d) {
  cmd->add_option("--data", d.data, "directory with IDX files (default: Fashion-MNIST)");
  cmd->add_option("--csv", d.csv, "CSV file with a header row");
  cmd->add_option("--label-column", d.label_column, "label column of the CSV (default: last)");
  cmd->add_option("--split", d.split, "IDX split: train or test")
      ->check(CLI::IsMember({"train", "test"}));
}

CLI::App* add_bench_command(CLI::App& app, BenchArgs& b) {
  CLI::App* bench = app.add_subcommand(
      "bench", "time a model on random inputs: throughput and latency percentiles");
  bench
      ->add_option("--model", b.model,
                   "model.safetensors written by soma train, or an ONNX model (.onnx)")
      ->required();
  bench->add_option("--batch-size", b.batch_size, "samples per timed run")->capture_default_str();
  bench->add_option("--threads", b.threads, "threads (default: every available core)");
  bench->add_option("--precision", b.precision, "fp32, bf16 or int8")->capture_default_str();
  bench->add_flag("--train", b.train,
                  "time training steps (forward, cross-entropy, backward, Adam) on random labels");
  bench->add_option("--warmup", b.warmup, "untimed runs first")->capture_default_str();
  CLI::Option* iterations =
      bench->add_option("--iterations", b.iterations, "timed runs")->capture_default_str();
  bench->add_option("--seconds", b.seconds, "time runs for this long instead of --iterations")
      ->excludes(iterations);
  bench->add_flag("--json", b.json, "print one JSON object instead of the table");
  return bench;
}

}  // namespace

int parse_command_line(int argc, char** argv, CommandLine& line) {
  CLI::App app{"soma: train and run neural networks on IDX or CSV data"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every subcommand");

  std::string config_file, hidden, input_shape, augment;
  CLI::App* train = add_train_command(app, line.config, config_file, hidden, input_shape, augment);
  CLI::App* eval = app.add_subcommand("eval", "print loss and accuracy of a model on a data set");
  eval->add_option("--model", line.model,
                   "model.safetensors written by soma train, or an ONNX model (.onnx)")
      ->required();
  add_data_options(eval, line.data);
  CLI::App* predict = app.add_subcommand("predict", "print one predicted class per input row");
  predict
      ->add_option("--model", line.model,
                   "model.safetensors written by soma train, or an ONNX model (.onnx)")
      ->required();
  add_data_options(predict, line.data);
  CLI::App* summary = app.add_subcommand("summary", "print a model's layer table");
  summary
      ->add_option("--model", line.model,
                   "model.safetensors written by soma train, or an ONNX model (.onnx)")
      ->required();
  CLI::App* exp = app.add_subcommand("export", "write a model as ONNX (docs/cli.md)");
  exp->add_option("--model", line.export_args.model, "model.safetensors written by soma train")
      ->required();
  exp->add_option("--out", line.export_args.out, "the ONNX file to write")->required();
  exp->add_option("--opset", line.export_args.opset, "ONNX opset, 13 to 17")->capture_default_str();
  bool no_pre = false;
  exp->add_flag("--no-preprocessing", no_pre,
                "leave the input normalisation out (the model takes normalised inputs)");
  exp->add_option("--class-names", line.export_args.class_names,
                  "class names for the metadata, comma-separated (default: Fashion-MNIST's for "
                  "image models with 10 classes, else the class ids)")
      ->delimiter(',');

  CLI::App* bench = add_bench_command(app, line.bench_args);
  CLI::App* quant = app.add_subcommand(
      "quantize", "write an int8 copy of a model (dynamic, or --static; docs/cli.md)");
  quant->add_option("--model", line.quantize_args.model, "model.safetensors written by soma train")
      ->required();
  quant->add_option("--out", line.quantize_args.out, "the quantized model file to write")
      ->required();
  quant->add_flag("--static", line.quantize_args.static_,
                  "static quantization: Conv2d and Linear with calibrated input scales, "
                  "BatchNorm folded, ReLU fused (default: dynamic, Linear layers only)");
  quant
      ->add_option("--calibrate", line.quantize_args.calibrate,
                   "--static: calibration batches of 256 training images")
      ->capture_default_str();
  quant->add_option("--observer", line.quantize_args.observer, "--static: histogram or minmax")
      ->capture_default_str();
  quant->add_option("--data", line.quantize_args.data.data,
                    "--static: IDX directory of the calibration data (default: Fashion-MNIST)");
  quant->add_option("--csv", line.quantize_args.data.csv, "--static: calibrate on a CSV file");
  quant->add_option("--label-column", line.quantize_args.data.label_column,
                    "--static: the CSV's label column");

  preload_config(argc, argv, line.config, line.given);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // The same on every rank under mpirun: rank 0 says it.
    if (dist::rank() == 0) std::cerr << "soma: error: " << e.what() << " (see soma --help)\n";
    return 2;
  }
  if (train->parsed()) {
    if (train->count("--hidden")) {
      const std::optional<std::vector<int64_t>> widths = parse_widths(hidden);
      SOMA_CHECK(widths, "invalid --hidden '", hidden, "' (expected widths like 256,128)");
      line.config.hidden = *widths;
    }
    if (train->count("--input-shape")) {
      const std::optional<std::vector<int64_t>> dims = parse_widths(input_shape);
      SOMA_CHECK(dims && !dims->empty(), "invalid --input-shape '", input_shape,
                 "' (expected sizes like 1,28,28)");
      line.config.input_shape = *dims;
    }
    if (train->count("--augment")) line.config.augment = parse_names(augment);
    for (const CLI::Option* opt : train->get_options())
      if (opt->count() > 0 && opt->get_name() != "--config")
        line.given.insert(normalized_key(opt->get_name()));
  }
  line.export_args.preprocessing = !no_pre;
  line.bench_args.threads_given = bench->count("--threads") > 0;
  line.bench_args.seconds_given = bench->count("--seconds") > 0;
  for (const CLI::App* cmd : {train, eval, predict, summary, exp, bench, quant})
    if (cmd->parsed()) line.command = cmd->get_name();
  return -1;
}

}  // namespace soma::cli
