// soma train. The tool is split into units, each the one place for its concern:
//   main.cpp           the entry point: parse, dispatch, errors as a one-line message and exit
//   status flags.cpp          the command line (CLI11): subcommands, flags, --config; --hidden via
//   config config.cpp         TrainConfig: JSON/TOML config files, parse_widths, validate, to_json
//   data_select.cpp    which data (Fashion-MNIST, IDX, CSV), validation split, normalisation,
//   loaders, input shape, augmentation
//   model_builder.cpp  the network from the options (--arch: mlp, the cnn preset, FILE.json), the
//   loss; layers.cpp: the JSON layer list's layer types (the registry) and its chain check
//   optimization.cpp   optimizer, learning-rate schedule, early stopping
//   resume.cpp         the per-epoch checkpoint and history.csv, and --resume from them
//   outputs.cpp        test evaluation, model.safetensors, metrics.json, report.html (report.cpp)
//   model_file.cpp     model.safetensors; eval_commands.cpp: soma eval / predict / summary
// train() below reads as the run's sequence: config -> data -> model -> optimizer and schedule
// -> callbacks -> fit -> outputs. New options extend the unit they concern, not train().
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "commands.h"
#include "data_select.h"
#include "model_builder.h"
#include "onnx_model.h"
#include "optimization.h"
#include "outputs.h"
#include "resume.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/clock.h"
#include "soma/core/error.h"
#include "soma/core/memory.h"
#include "soma/core/random.h"
#include "soma/core/threading.h"
#include "soma/dist/dist.h"
#include "soma/io/file.h"
#include "soma/nn/functional.h"
#include "soma/nn/normalization.h"
#include "soma/onnx/import.h"
#include "soma/train/fit.h"

namespace soma::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream os;
  os << std::put_time(&tm, "%Y%m%d-%H%M%S");
  return os.str();
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SOMA_CHECK(!ec && fs::is_directory(dir), "train: cannot create output directory ", dir, " (",
             ec ? ec.message() : "not a directory", ")");
  // Probe that it is writable before spending minutes training.
  const std::string probe = (fs::path(dir) / ".soma-write-test").string();
  io::atomic_write(probe, "ok");
  fs::remove(probe, ec);
}

// The process settings of the run: validated options, threads, anomaly mode, and the output
// directory. Data-parallel under mpirun: every rank trains on its shard; rank 0 alone prints
// and writes (the output directory, checkpoints, metrics, report).
void start_run(TrainConfig& c) {
  validate(c);
  if (c.threads > 0) set_num_threads(c.threads);
  autograd::set_detect_anomaly(c.detect_anomaly);
  if (dist::rank() != 0) c.quiet = true;
  if (c.out.empty()) c.out = "runs/" + timestamp();
  dist::broadcast_bytes(c.out);  // rank 0's timestamp
  if (dist::rank() == 0) {
    make_dirs(c.out);
    io::remove_stale_temporaries(c.out);  // left by a run killed mid-write
  }
  manual_seed(c.seed);
}

// The fit loop's options and callbacks: early stopping; on rank 0 the recorder (history.csv,
// checkpoint) and the progress bar.
soma::train::FitOptions fit_options(const TrainConfig& c, TrainData& data, const Optimization& opt,
                                    int64_t initial_epoch, std::shared_ptr<RunRecorder> recorder) {
  soma::train::FitOptions fo;
  fo.epochs = c.epochs;
  fo.validation = &data.val_loader;
  fo.validation_loss = training_loss;  // plain cross-entropy, whatever --label-smoothing is
  fo.autocast = c.precision == "bf16" ? kBFloat16 : kFloat32;
  fo.scheduler = opt.scheduler.get();
  fo.plateau = opt.plateau.get();
  fo.initial_epoch = initial_epoch;
  if (opt.early) fo.callbacks.push_back(opt.early);
  if (dist::rank() == 0) fo.callbacks.push_back(std::move(recorder));
  soma::train::ProgressBarOptions po;
  po.enabled = !c.quiet;
  if (dist::rank() == 0) fo.callbacks.push_back(std::make_shared<soma::train::ProgressBar>(po));
  return fo;
}

// "soma train: 54000 training / 6000 validation / 10000 test samples, MLP 784-256-128-10, ..."
void print_header(const TrainConfig& c, const TrainData& data, const Architecture& arch) {
  const int world = dist::world_size();
  std::cout << "soma train: " << data.train_set.size() << " training / " << data.val_set.size()
            << " validation / " << data.test.y.numel() << " test samples, " << describe(arch)
            << ", " << c.optimizer << " lr " << c.lr << ", batch " << c.batch_size;
  if (world > 1)
    std::cout << " per rank x " << world << " ranks (global batch " << c.batch_size * world << ")";
  std::cout << "\n";
}

// Under mpirun the BatchNorm layers become SyncBatchNorm (statistics over the global batch),
// so N ranks train as one process does (DESIGN.md's rule). Every rank must then take part in
// each training batch: a last global batch smaller than the number of ranks would leave some
// rank without rows (and the others waiting for it), so that is refused before training.
void use_sync_batchnorm(nn::Sequential& model, const TrainConfig& c, const TrainData& data) {
  bool has_batchnorm = false;
  for (const auto& child : model.children())
    has_batchnorm = has_batchnorm || std::dynamic_pointer_cast<nn::BatchNormBase>(child);
  if (!has_batchnorm) return;
  const int64_t world = dist::world_size(), global = c.batch_size * world;
  const int64_t last = static_cast<int64_t>(data.train_set.size()) % global;
  SOMA_CHECK(last == 0 || last >= world,
             "train: BatchNorm under mpirun (SyncBatchNorm): the last "
             "global batch of ",
             last, " samples (", data.train_set.size(), " % ", global, ") leaves some of the ",
             world,
             " ranks without a sample; change --batch-size, "
             "--validation or the number of ranks");
  // The container is converted in place (a non-owning handle: the caller owns the model).
  nn::SyncBatchNorm::convert_sync_batchnorm(
      std::shared_ptr<nn::Module>(&model, [](nn::Module*) {}));
}

// The cnn preset's own recipe, for the options the user did not give (docs/cli.md): 15 epochs
// of the cosine schedule to its end and no early stopping (with a schedule that decays to 0 the
// last epoch is the one to keep). No augmentation: flips cost accuracy at 15 epochs. Measured
// in docs/PERFORMANCE.md.
void apply_preset_defaults(TrainConfig& c, const std::set<std::string>& given) {
  if (c.arch != "cnn") return;
  if (!given.count("epochs")) c.epochs = 15;
  if (!given.count("patience")) c.patience = 0;
}

// The training objective: cross-entropy, label-smoothed by --label-smoothing (validation and
// test report the plain cross-entropy).
soma::train::LossFn smoothed_loss(double label_smoothing) {
  if (label_smoothing == 0) return training_loss;
  return [label_smoothing](const Tensor& logits, const Tensor& labels) {
    return nn::functional::cross_entropy(logits, labels, {.label_smoothing = label_smoothing});
  };
}

// soma train --init X.onnx: fine-tunes an imported ONNX model (its float initializers) on the
// data, fed the raw values as float32 in the graph input's shape, as `soma eval` feeds it (the
// model carries its own preprocessing). Writes model.onnx (the file with the tuned
// initializers), history.csv and metrics.json. One process, no --resume, and the architecture
// options do not apply.
std::string train_from_onnx(TrainConfig c, const std::set<std::string>& given) {
  SOMA_CHECK(is_onnx_path(c.init), "train: --init ", c.init,
             " is not an ONNX model (a path ending in .onnx)");
  SOMA_CHECK(!c.resume, "train: --init and --resume cannot be combined");
  SOMA_CHECK(dist::world_size() == 1, "train: --init runs in one process (not under mpirun)");
  for (const char* k : {"arch", "hidden", "activation", "dropout", "input_shape", "augment"})
    SOMA_CHECK(!given.count(k), "train: --", k == std::string("input_shape") ? "input-shape" : k,
               " does not apply with --init (the ONNX model is the architecture)");
  start_run(c);
  OnnxCliModel m = load_onnx_model(c.init);
  nn::Module& model = *m.net;
  TrainData data = select_data(c, 1, 0, m.sample_shape.size() == 1);
  int64_t sample = 1;
  for (int64_t d : m.sample_shape) sample *= d;
  SOMA_CHECK(data.in_features == sample, "train: data has ", data.in_features,
             " features per sample, the ONNX model ", c.init, " takes inputs of shape ",
             m.model->inputs()[0].shape);
  SOMA_CHECK(m.classes < 0 || data.classes <= m.classes, "train: the data has ", data.classes,
             " classes, the ONNX model ", c.init, " outputs ", m.classes);
  const data::transforms::Transform input = onnx_input(m.sample_shape);
  data::DataLoader train_loader(
      data.train_set,
      {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed, .transform = input});
  data::DataLoader val_loader(data.val_set, {.batch_size = kEvalBatch, .transform = input});
  data::DataLoader test_loader(data::TensorDataset(data.test.x, data.test.y),
                               {.batch_size = kEvalBatch, .transform = input});
  Optimization opt = make_optimization(c, model);
  soma::train::FitOptions fo;
  fo.epochs = c.epochs;
  fo.validation = val_loader.size() > 0 ? &val_loader : nullptr;
  fo.validation_loss = training_loss;  // plain cross-entropy, whatever --label-smoothing is
  fo.autocast = c.precision == "bf16" ? kBFloat16 : kFloat32;
  fo.scheduler = opt.scheduler.get();
  fo.plateau = opt.plateau.get();
  if (opt.early) fo.callbacks.push_back(opt.early);
  soma::train::ProgressBarOptions po;
  po.enabled = !c.quiet;
  fo.callbacks.push_back(std::make_shared<soma::train::ProgressBar>(po));
  if (!c.quiet)
    std::cout << "soma train --init " << c.init << ": " << data.train_set.size() << " training / "
              << data.val_set.size() << " validation / " << data.test.y.numel() << " test samples, "
              << m.model->describe() << ", " << c.optimizer << " lr " << c.lr << ", batch "
              << c.batch_size << "\n";
  const detail::Stopwatch clock;
  const soma::train::History history =
      soma::train::fit(model, *opt.optimizer, smoothed_loss(c.label_smoothing), train_loader, fo);
  const double seconds = clock.seconds();
  model.eval();
  const soma::train::EvalResult test = soma::train::evaluate(model, test_loader, training_loss);
  const std::string onnx_path = (fs::path(c.out) / "model.onnx").string();
  onnx::save(*m.model, onnx_path);
  io::atomic_write((fs::path(c.out) / "history.csv").string(), history.to_csv());
  const json metrics = {{"test_accuracy", test.accuracy},
                        {"test_loss", test.loss},
                        {"epochs_run", static_cast<int64_t>(history.size())},
                        {"train_seconds", seconds},
                        {"init", c.init}};
  io::atomic_write((fs::path(c.out) / "metrics.json").string(), metrics.dump(2) + "\n");
  if (!c.quiet)
    std::cout << std::fixed << std::setprecision(4) << "test accuracy " << test.accuracy
              << "  test loss " << test.loss << "\nwrote " << c.out
              << "/{model.onnx, history.csv, metrics.json}\n";
  return c.out;
}

}  // namespace

std::string train(TrainConfig c, const std::set<std::string>& given) {
  if (!c.init.empty()) return train_from_onnx(std::move(c), given);
  apply_preset_defaults(c, given);  // before resume: recorded values win over them
  std::optional<Resume> resume = prepare_resume(c, given);  // recorded options into c
  start_run(c);
  // The layer list: --arch's, or on --resume the one the run recorded (a FILE.json may have
  // changed or moved since).
  json layers =
      resume && !resume->recorded_layers.is_null() ? resume->recorded_layers : arch_layers(c);
  TrainData data = select_data(c, dist::world_size(), dist::rank(), takes_flat_input(layers));
  // Loading's one-off blocks (the whole training split before the validation split, the
  // statistics' temporaries) go back to the system instead of staying cached for the run.
  soma::empty_cache();
  const Architecture arch = architecture(c, layers, data.input_shape, data.classes);
  std::shared_ptr<nn::Sequential> model = build_model(arch);
  if (dist::world_size() > 1) use_sync_batchnorm(*model, c, data);
  Optimization opt = make_optimization(c, *model);

  const int64_t initial_epoch = resume ? resume->done : 0;
  const json history = resume ? apply_resume(*resume, *model, opt, c) : json::array();
  if (resume && !c.quiet && !resume->finished)
    std::cout << "resuming " << c.out << " after epoch " << initial_epoch << "\n";
  auto recorder = std::make_shared<RunRecorder>(c.out, c, arch, history, opt);
  const soma::train::FitOptions options = fit_options(c, data, opt, initial_epoch, recorder);

  if (!c.quiet) print_header(c, data, arch);
  const detail::Stopwatch clock;
  if (!resume || !resume->finished)
    soma::train::fit(*model, *opt.optimizer, smoothed_loss(c.label_smoothing), data.train_loader,
                     options);
  const double train_seconds = clock.seconds();
  if (dist::rank() == 0)  // rank 0 tests the model and writes the outputs
    write_outputs(c, data, arch, *model, recorder->history(), initial_epoch, train_seconds,
                  dist::world_size());
  return c.out;
}

}  // namespace soma::cli
