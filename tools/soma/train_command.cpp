// soma train / eval / predict / summary.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <future>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "commands.h"
#include "model_file.h"
#include "report.h"
#include "soma/data/csv.h"
#include "soma/data/dataloader.h"
#include "soma/data/idx.h"
#include "soma/io/checkpoint.h"
#include "soma/io/file.h"
#include "soma/soma.h"
#include "soma/train/callbacks.h"
#include "soma/train/fit.h"
#include "soma/train/metrics.h"

namespace soma::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

struct Data {
  Tensor x;          // [N, F] uint8 (images) or float32 (CSV)
  Tensor y;          // [N] int64
  int64_t side = 0;  // image side (28) or 0
};

Data load_data(const std::string& dir, const std::string& csv, const std::string& label_column,
               const std::string& split) {
  Data d;
  if (!csv.empty()) {
    data::CsvOptions o;
    o.label_column = label_column;
    data::CsvData c = data::read_csv(csv, o);
    d.x = c.features;
    d.y = c.labels;
    return d;
  }
  data::MnistSplit m = data::load_mnist(dir, split);
  SOMA_CHECK(m.images.dim() == 3 && m.images.size(1) == m.images.size(2), "data: ", dir,
             ": expected square images, got shape ", m.images.shape());
  d.side = m.images.size(1);
  d.x = m.images.reshape({m.images.size(0), -1});
  d.y = m.labels;
  return d;
}

data::transforms::Transform normalizer(const data::Normalization& norm) {
  return norm.transform();
}

// A DataLoader worker thread helps only when the compute pool leaves a core free; with
// every core busy it competes with the pool (-5 % samples/s on 2 cores, docs/PERFORMANCE.md).
// Under mpirun the ranks on a node share its cores.
bool spare_core() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency()) / dist::local_size();
  return get_num_threads() < cores;
}

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

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, std::vector<Tensor> params) {
  const bool wd_set = c.weight_decay >= 0;
  if (c.optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        params, optim::SGDOptions{.lr = c.lr,
                                  .momentum = c.momentum,
                                  .dampening = 0.0,
                                  .weight_decay = wd_set ? c.weight_decay : 0.0,
                                  .nesterov = c.nesterov});
  if (c.optimizer == "adam" || c.optimizer == "adamw") {
    optim::AdamOptions o{.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2};
    if (wd_set) o.weight_decay = c.weight_decay;
    if (c.optimizer == "adam") return std::make_unique<optim::Adam>(params, o);
    return std::make_unique<optim::AdamW>(params, o);
  }
  if (c.optimizer == "rmsprop")
    return std::make_unique<optim::RMSprop>(
        params,
        optim::RMSpropOptions{
            .lr = c.lr, .weight_decay = wd_set ? c.weight_decay : 0.0, .momentum = c.momentum});
  if (c.optimizer == "adagrad")
    return std::make_unique<optim::Adagrad>(
        params, optim::AdagradOptions{.lr = c.lr, .weight_decay = wd_set ? c.weight_decay : 0.0});
  return std::make_unique<optim::Adadelta>(
      params, optim::AdadeltaOptions{.lr = c.lr, .weight_decay = wd_set ? c.weight_decay : 0.0});
}

std::unique_ptr<optim::LRScheduler> make_scheduler(const TrainConfig& c, optim::Optimizer& opt) {
  if (c.schedule == "step")
    return std::make_unique<optim::StepLR>(
        opt, optim::StepLROptions{.step_size = std::max<int64_t>(1, c.epochs / 3), .gamma = 0.1});
  if (c.schedule == "exponential")
    return std::make_unique<optim::ExponentialLR>(opt, optim::ExponentialLROptions{.gamma = 0.9});
  if (c.schedule == "cosine")
    return std::make_unique<optim::CosineAnnealingLR>(
        opt, optim::CosineAnnealingLROptions{.T_max = c.epochs, .eta_min = 0.0});
  return nullptr;
}

// Per-epoch logs kept by the tool itself (restored on --resume), and the per-epoch checkpoint.
// The state that lives outside the model and the optimizer, saved in the checkpoint under
// "state.": the scheduler's ("scheduler."), ReduceLROnPlateau's ("plateau.") and early
// stopping's ("early_stopping.", with the best weights).
struct RunState {
  optim::LRScheduler* scheduler = nullptr;
  optim::ReduceLROnPlateau* plateau = nullptr;
  soma::train::EarlyStopping* early = nullptr;

  std::map<std::string, Tensor> state_dict() const {
    std::map<std::string, Tensor> s;
    auto put = [&s](const std::string& prefix, const std::map<std::string, Tensor>& part) {
      for (const auto& [k, t] : part) s.emplace(prefix + k, t);
    };
    if (scheduler) put("scheduler.", scheduler->state_dict());
    if (plateau) put("plateau.", plateau->state_dict());
    if (early) put("early_stopping.", early->state_dict());
    return s;
  }
};

// The entries of `state` under `prefix`, without it.
std::map<std::string, Tensor> part(const std::map<std::string, Tensor>& state,
                                   const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [k, t] : state)
    if (k.starts_with(prefix)) out.emplace(k.substr(prefix.size()), t);
  return out;
}

class RunRecorder : public soma::train::Callback {
 public:
  RunRecorder(std::string out, const TrainConfig& config, json history, RunState run_state)
      : out_(std::move(out)),
        config_json_(to_json(config)),
        history_(std::move(history)),
        run_state_(run_state) {}

  void on_epoch_end(soma::train::TrainState& state, int64_t epoch,
                    const soma::train::Logs& logs) override {
    json row = {{"epoch", epoch + 1}};
    for (const auto& [k, v] : logs) row[k] = v;
    history_.push_back(row);
    // history.csv
    std::ostringstream csv;
    csv << "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n" << std::setprecision(8);
    for (const json& r : history_) {
      csv << r.value("epoch", 0);
      for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"})
        csv << ',' << r.value(k, std::nan(""));
      csv << '\n';
    }
    io::atomic_write((fs::path(out_) / "history.csv").string(), csv.str());
    // checkpoint: weights, optimizer, epoch, generator, history, config
    io::Checkpoint ckpt;
    ckpt.model = state.model.state_dict();
    ckpt.optimizer = state.optimizer.state_dict();
    ckpt.epoch = epoch + 1;
    ckpt.rng_state = get_rng_state();
    ckpt.state = run_state_.state_dict();
    ckpt.extra = {{"history", history_.dump()}, {"config", config_json_}};
    io::save_checkpoint((fs::path(out_) / "checkpoint.safetensors").string(), ckpt);
  }

  const json& history() const { return history_; }

 private:
  std::string out_, config_json_;
  json history_;
  RunState run_state_;
};

std::vector<double> column(const json& history, const char* key) {
  std::vector<double> v;
  for (const json& r : history) v.push_back(r.value(key, std::nan("")));
  return v;
}

// Recorded options that change what a run computes: on --resume a different value is an
// error unless --override is given. (--epochs, --threads, --quiet and --detect-anomaly may
// change freely; --epochs follows the extension rules in docs/cli.md.)
const std::vector<std::string> kComputationOptions = {
    "hidden",   "activation",   "dropout", "optimizer", "lr",           "momentum",
    "nesterov", "weight_decay", "beta1",   "beta2",     "schedule",     "batch_size",
    "patience", "seed",         "data",    "csv",       "label_column", "validation"};
const std::set<std::string> kOptimizerOptions = {"optimizer",    "momentum", "nesterov",
                                                 "weight_decay", "beta1",    "beta2"};

// An option's value as the user writes it: 256,128 / relu / 0.001.
std::string shown_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const json& e : v) {
      if (!out.empty()) out += ',';
      out += e.dump();
    }
    return out;
  }
  return v.dump();
}

// What --resume found in the checkpoint and decided.
struct Resume {
  io::Checkpoint ckpt;
  int64_t done = 0;                        // epochs completed
  bool replan = false;                     // re-plan the schedule over a new horizon or base rate
  bool reopen = false;                     // a run that stopped early continues
  bool finished = false;                   // nothing left to train: write the outputs only
  bool lr_changed = false;                 // --override of --lr
  bool optimizer_changed = false;          // --override of --optimizer: its state starts afresh
  bool optimizer_options_changed = false;  // --override of momentum, betas, weight decay, ...
  bool has_state = false;                  // the checkpoint has "state." entries (soma >= 0.3)
};

bool stopped_early_in(const io::Checkpoint& ckpt) {
  auto it = ckpt.state.find("early_stopping.stopped_epoch");
  return it != ckpt.state.end() && it->second.dim() == 0 && it->second.dtype() == kInt64 &&
         it->second.item<int64_t>() >= 0;
}

// Reads the checkpoint in c.out and merges its recorded configuration into `c`: options the
// user did not give take their recorded values; given ones that change the computation must
// equal the recorded ones unless --override. Notices go to stderr (rank 0).
Resume prepare_resume(TrainConfig& c, const std::set<std::string>& given,
                      const std::string& ckpt_path, bool main_rank) {
  Resume r;
  // Rank 0 reads the checkpoint and sends its bytes: the other ranks need no shared disk.
  std::string bytes;
  if (main_rank) bytes = io::read_file(ckpt_path);
  dist::broadcast_bytes(bytes);
  r.ckpt = io::parse_checkpoint(bytes, ckpt_path);
  r.done = r.ckpt.epoch;
  r.has_state = !r.ckpt.state.empty();
  auto note = [&](const std::string& line) {
    if (main_rank) std::cerr << "soma train: " << line << "\n";
  };
  int64_t planned = c.epochs;
  if (auto it = r.ckpt.extra.find("config"); it != r.ckpt.extra.end()) {
    TrainConfig recorded;
    load_config_json(it->second, recorded, ckpt_path + " (recorded configuration)");
    const json now = json::parse(to_json(c)), then = json::parse(to_json(recorded));
    std::vector<std::string> differ;
    for (const std::string& k : kComputationOptions) {
      if (!given.count(k) || now.at(k) == then.at(k)) continue;
      std::string flag = "--" + k;
      std::replace(flag.begin(), flag.end(), '_', '-');
      differ.push_back(flag + " " + shown_value(now.at(k)) + " differs from the recorded " +
                       shown_value(then.at(k)));
      if (k == "lr") r.lr_changed = true;
      if (k == "lr" || k == "schedule") r.replan = true;
      if (k == "optimizer") r.optimizer_changed = true;
      if (kOptimizerOptions.count(k)) r.optimizer_options_changed = true;
    }
    if (!differ.empty()) {
      std::string all;
      for (const std::string& d : differ) {
        if (!all.empty()) all += "; ";
        all += d;
      }
      SOMA_CHECK(c.override_recorded, "train: --resume ", c.out, ": ", all,
                 " (give --override to apply it)");
      note("--override: " + all + "; applying the new value");
    }
    // Options not given take the recorded values (the output directory is the one given).
    json keep = json::object();
    for (auto& item : then.items())
      if (!given.count(item.key()) && item.key() != "out") keep[item.key()] = item.value();
    load_config_json(keep.dump(), c, ckpt_path + " (recorded configuration)");
    planned = recorded.epochs;
  }
  const int64_t target = given.count("epochs") ? c.epochs : planned;
  SOMA_CHECK(target >= r.done, "train: --epochs ", target, " is less than the ", r.done,
             " epochs the run in ", c.out, " has done");
  const bool stopped = stopped_early_in(r.ckpt);
  r.reopen = stopped && given.count("epochs") && target > r.done;
  r.finished = r.done >= target || (stopped && !r.reopen);
  c.epochs = target;
  if (target != planned && !r.finished) {
    r.replan = true;
    note(std::string(target > planned ? "extending" : "shortening") + " " + c.out + " from " +
         std::to_string(planned) + " to " + std::to_string(target) + " epochs" +
         (c.schedule == "cosine" || c.schedule == "step"
              ? "; the " + c.schedule + " schedule is re-planned over " + std::to_string(target) +
                    " epochs from epoch " + std::to_string(r.done + 1)
              : ""));
  }
  if (r.reopen)
    note("re-opening " + c.out + ", which stopped early after epoch " + std::to_string(r.done) +
         ": early stopping's patience counter starts again");
  if (r.finished)
    note("the run in " + c.out + " already finished (" + std::to_string(r.done) + " epochs" +
         (stopped ? ", stopped early" : "") + "); writing its outputs. --epochs N with N > " +
         std::to_string(r.done) + " continues it");
  return r;
}

// Restores the model, optimizer, schedule, early stopping and RNG from the checkpoint.
void apply_resume(Resume& r, nn::Module& model, optim::Optimizer& optimizer,
                  optim::LRScheduler* scheduler, optim::ReduceLROnPlateau* plateau,
                  soma::train::EarlyStopping* early, const TrainConfig& c) {
  const io::Checkpoint& ck = r.ckpt;
  model.load_state_dict(ck.model);
  optim::OptimizerState ostate = ck.optimizer;
  if (r.optimizer_options_changed && !r.optimizer_changed) {
    // The overridden hyper-parameters come from the fresh optimizer; rates and buffers from
    // the checkpoint.
    for (const auto& [k, t] : optimizer.state_dict())
      if (k.starts_with("param_groups.") && !k.ends_with(".lr") && !k.ends_with(".size"))
        ostate[k] = t;
  }
  auto load_optimizer = [&] {
    if (!r.optimizer_changed) optimizer.load_state_dict(ostate);
  };
  const auto sched_state = part(ck.state, "scheduler.");
  if (scheduler && !r.replan && !sched_state.empty()) {
    scheduler->load_state_dict(sched_state);
    load_optimizer();  // holds the rate the schedule reached
  } else if (scheduler) {
    // Re-planned (or a checkpoint without scheduler state): the schedule over the current
    // horizon and base rate, stepped through the epochs done.
    for (int64_t e = 0; e < r.done; ++e) scheduler->step();
    std::vector<double> lrs;
    for (size_t g = 0; g < optimizer.num_param_groups(); ++g) lrs.push_back(optimizer.group_lr(g));
    load_optimizer();
    if (r.replan)
      for (size_t g = 0; g < lrs.size(); ++g) optimizer.set_group_lr(g, lrs[g]);
  } else {
    load_optimizer();
    if (r.lr_changed || r.optimizer_changed) optimizer.set_lr(c.lr);
  }
  if (plateau) {
    if (const auto p = part(ck.state, "plateau."); !p.empty()) plateau->load_state_dict(p);
  }
  if (early) {
    auto e = part(ck.state, "early_stopping.");
    if (!e.empty()) {
      if (r.reopen) {
        e["wait"] = zeros({}, kInt64);
        Tensor none = zeros({}, kInt64);
        none.data<int64_t>()[0] = -1;
        e["stopped_epoch"] = none;
      }
      early->load_state_dict(e);
      if (r.finished && early->options().restore_best_weights) {
        // What the finished run's on_train_end did: its best weights are the model.
        const auto best = part(e, "best_weights.");
        if (!best.empty()) model.load_state_dict(best);
      }
    }
  }
  set_rng_state(ck.rng_state);
}

}  // namespace

std::string train(TrainConfig c, const std::set<std::string>& given) {
  if (c.resume) {
    SOMA_CHECK(!c.out.empty(), "train: --resume needs --out DIR (the run to continue)");
  }
  const std::string ckpt_path = (fs::path(c.out) / "checkpoint.safetensors").string();
  std::optional<Resume> resume;
  if (c.resume) resume = prepare_resume(c, given, ckpt_path, dist::rank() == 0);
  validate(c);
  if (c.threads > 0) set_num_threads(c.threads);
  autograd::set_detect_anomaly(c.detect_anomaly);
  // Data-parallel under mpirun: every rank trains on its shard; rank 0 alone prints and
  // writes (the output directory, checkpoints, metrics, report).
  const int world = dist::world_size(), rank = dist::rank();
  const bool main_rank = rank == 0;
  if (!main_rank) c.quiet = true;
  if (c.out.empty()) c.out = "runs/" + timestamp();
  dist::broadcast_bytes(c.out);  // rank 0's timestamp
  if (main_rank) {
    make_dirs(c.out);
    io::remove_stale_temporaries(c.out);  // left by a run killed mid-write
  }
  manual_seed(c.seed);

  // Data: a seeded validation split of the training set; normalisation from the training part.
  const auto t_load = std::chrono::steady_clock::now();
  // The test split decompresses on a second thread while the training split does on this one.
  std::future<Data> test_future;
  if (c.csv.empty())
    test_future =
        std::async(std::launch::async, [&c] { return load_data(c.data, "", "", "test"); });
  Data all = load_data(c.data, c.csv, c.label_column, "train");
  Data test = test_future.valid() ? test_future.get() : Data{};
  auto [train_set, val_set] =
      data::train_val_split(data::TensorDataset(all.x, all.y), c.validation, c.seed);
  if (!c.csv.empty()) test = Data{val_set.x(), val_set.y(), 0};  // CSV: the held-out part
  // Images: one mean/std for all pixels; CSV columns: one per feature (their scales differ).
  const data::Normalization norm = c.csv.empty()
                                       ? data::Normalization::fit(train_set.x())
                                       : data::Normalization::fit_per_feature(train_set.x());
  const int64_t max_label = all.y.max().item<int64_t>();
  constexpr int64_t kMaxClasses = int64_t{1} << 20;
  SOMA_CHECK(max_label < kMaxClasses, "train: label ", max_label, " means ", max_label + 1,
             " classes; labels are class ids 0..N-1 with N at most ", kMaxClasses);
  const int64_t classes = std::max<int64_t>(2, max_label + 1);
  data::DataLoader train_loader(train_set, {.batch_size = c.batch_size,
                                            .shuffle = true,
                                            .seed = c.seed,
                                            .drop_last = false,
                                            .num_workers = spare_core() ? 1 : 0,
                                            .transform = normalizer(norm),
                                            .num_replicas = world,
                                            .rank = rank});
  data::DataLoader val_loader(
      val_set,
      {.batch_size = 1024, .transform = normalizer(norm), .num_replicas = world, .rank = rank});
  data::DataLoader test_loader(data::TensorDataset(test.x, test.y),
                               {.batch_size = 1024, .transform = normalizer(norm)});
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

  Architecture arch{all.x.size(1), c.hidden, classes, c.activation, c.dropout};
  std::shared_ptr<nn::Sequential> model = build_mlp(arch);
  std::unique_ptr<optim::Optimizer> optimizer = make_optimizer(c, model->parameters());
  std::unique_ptr<optim::LRScheduler> scheduler = make_scheduler(c, *optimizer);
  std::unique_ptr<optim::ReduceLROnPlateau> plateau;
  if (c.schedule == "plateau")
    plateau = std::make_unique<optim::ReduceLROnPlateau>(
        *optimizer, optim::ReduceLROnPlateauOptions{.factor = 0.5, .patience = 2});

  std::shared_ptr<soma::train::EarlyStopping> early;
  if (c.patience > 0) {
    soma::train::EarlyStoppingOptions eo;
    eo.monitor = "val_loss";
    eo.patience = c.patience;
    eo.restore_best_weights = true;
    early = std::make_shared<soma::train::EarlyStopping>(eo);
  }

  int64_t initial_epoch = 0;
  json history = json::array();
  if (resume) {
    apply_resume(*resume, *model, *optimizer, scheduler.get(), plateau.get(), early.get(), c);
    initial_epoch = resume->done;
    if (auto it = resume->ckpt.extra.find("history"); it != resume->ckpt.extra.end()) {
      try {
        history = json::parse(it->second);
      } catch (const json::exception&) {
        detail::fail("train: ", ckpt_path, ": corrupt history in the checkpoint");
      }
      bool rows = history.is_array();
      for (const json& row : history) {
        rows = rows && row.is_object();
        if (rows)
          for (const auto& item : row.items()) rows = rows && item.value().is_number();
      }
      SOMA_CHECK(rows, "train: ", ckpt_path,
                 ": corrupt history in the checkpoint (expected a list of epoch rows)");
    }
    if (!c.quiet && !resume->finished)
      std::cout << "resuming " << c.out << " after epoch " << initial_epoch << "\n";
  }

  auto recorder = std::make_shared<RunRecorder>(
      c.out, c, history, RunState{scheduler.get(), plateau.get(), early.get()});
  soma::train::FitOptions fit_options;
  fit_options.epochs = c.epochs;
  fit_options.validation = &val_loader;
  fit_options.scheduler = scheduler.get();
  fit_options.plateau = plateau.get();
  fit_options.initial_epoch = initial_epoch;
  if (early) fit_options.callbacks.push_back(early);
  if (main_rank) fit_options.callbacks.push_back(recorder);
  soma::train::ProgressBarOptions po;
  po.enabled = !c.quiet;
  auto progress = std::make_shared<soma::train::ProgressBar>(po);
  if (main_rank) fit_options.callbacks.push_back(progress);

  if (!c.quiet)
    std::cout << "soma train: " << train_set.size() << " training / " << val_set.size()
              << " validation / " << test.y.numel() << " test samples, MLP " << arch.in_features;
  if (!c.quiet) {
    for (int64_t w : arch.hidden) std::cout << '-' << w;
    std::cout << '-' << classes << ", " << c.optimizer << " lr " << c.lr << ", batch "
              << c.batch_size;
    if (world > 1)
      std::cout << " per rank x " << world << " ranks (global batch " << c.batch_size * world
                << ")";
    std::cout << "\n";
  }
  auto loss_fn = [](const Tensor& out, const Tensor& y) {
    return nn::functional::cross_entropy(out, y);
  };
  const auto t0 = std::chrono::steady_clock::now();
  if (!resume || !resume->finished)
    soma::train::fit(*model, *optimizer, loss_fn, train_loader, fit_options);
  const double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!main_rank) return c.out;  // rank 0 tests the model and writes the outputs

  // Test set: loss, accuracy, confusion matrix, misclassified examples.
  model->eval();
  soma::train::EvalResult test_result = soma::train::evaluate(*model, test_loader, loss_fn);
  soma::train::ConfusionMatrix cm(classes);
  std::vector<Misclassified> wrong;
  {
    NoGradGuard no_grad;
    const int64_t n = test.y.numel();
    for (int64_t start = 0; start < n; start += 4096) {
      const int64_t len = std::min<int64_t>(4096, n - start);
      const Tensor xb = test.x.narrow(0, start, len), yb = test.y.narrow(0, start, len);
      const Tensor pred = argmax(model->forward(norm.transform()(xb)), 1);
      cm.update(pred, yb);
      if (test.side > 0 && wrong.size() < 36) {
        const std::vector<int64_t> p = pred.to_vector<int64_t>(), t = yb.to_vector<int64_t>();
        for (int64_t i = 0; i < len && wrong.size() < 36; ++i) {
          if (p[i] == t[i]) continue;
          wrong.push_back({xb.narrow(0, i, 1).to_vector<uint8_t>(), t[i], p[i]});
        }
      }
    }
  }

  const json& hist = recorder->history();
  const int64_t epochs_run = static_cast<int64_t>(hist.size());
  int64_t best_epoch = epochs_run;
  double best_val = INFINITY;
  for (int64_t e = 0; e < epochs_run; ++e) {
    const double v = hist[e].value("val_loss", INFINITY);
    if (v < best_val) best_val = v, best_epoch = e + 1;
  }
  const bool stopped_early = epochs_run < c.epochs;
  int64_t samples_trained = (epochs_run - initial_epoch) * train_set.size();
  json metrics = {{"test_accuracy", test_result.accuracy},
                  {"test_loss", test_result.loss},
                  {"epochs_run", epochs_run},
                  {"best_epoch", best_epoch},
                  {"best_val_loss", best_val},
                  {"stopped_early", stopped_early},
                  {"train_seconds", train_seconds},
                  {"data_seconds", load_seconds},
                  {"samples_per_second", train_seconds > 0 ? samples_trained / train_seconds : 0.0},
                  {"per_class_accuracy", cm.per_class_accuracy()},
                  {"threads", get_num_threads()},
                  {"ranks", world}};
  if (world > 1) metrics["allreduce_seconds"] = dist::comm_stats().seconds;
  save_model((fs::path(c.out) / "model.safetensors").string(), *model, arch, norm);
  io::atomic_write((fs::path(c.out) / "metrics.json").string(), metrics.dump(2) + "\n");

  ReportData report;
  report.title = "soma train: " + (c.csv.empty() ? c.data : c.csv);
  for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy"})
    report.history[k] = column(hist, k);
  report.best_epoch = best_epoch;
  report.stopped_epoch = stopped_early ? epochs_run : -1;
  report.confusion = cm.counts();
  report.classes = classes;
  if (c.csv.empty() && classes == 10) report.class_names = kFashionNames;
  report.misclassified = wrong;
  report.image_side = test.side;
  report.summary = model->summary({1, arch.in_features});
  report.config_json = to_json(c);
  report.metrics_json = metrics.dump(2);
  const std::string report_path = (fs::path(c.out) / "report.html").string();
  io::atomic_write(report_path, render_report(report));

  if (!c.quiet) {
    std::cout << std::fixed << std::setprecision(4) << "test accuracy " << test_result.accuracy
              << "  test loss " << test_result.loss << "  (" << epochs_run << " epochs, best "
              << best_epoch << ", " << std::setprecision(1) << train_seconds << " s)\n"
              << "wrote " << c.out << "/{model.safetensors, checkpoint.safetensors, history.csv, "
              << "metrics.json, report.html}\nreport: " << fs::absolute(report_path).string()
              << "\n";
  }
  return c.out;
}

namespace {

struct Loaded {
  ModelFile model;
  Data data;
};

Loaded load_for_inference(const std::string& model_path, const DataArgs& args) {
  Loaded l{load_model(model_path), {}};
  l.data = load_data(args.data.empty() ? "/usr/share/datasets/fashion-mnist" : args.data, args.csv,
                     args.label_column, args.split);
  SOMA_CHECK(l.data.x.size(1) == l.model.arch.in_features, "data has ", l.data.x.size(1),
             " features per sample, the model in ", model_path, " expects ",
             l.model.arch.in_features);
  return l;
}

}  // namespace

void eval(const std::string& model_path, const DataArgs& args) {
  Loaded l = load_for_inference(model_path, args);
  const int64_t max_label = l.data.y.max().item<int64_t>();
  SOMA_CHECK(max_label < l.model.arch.classes, "eval: label ", max_label,
             " is out of range for the ", l.model.arch.classes, " classes of ", model_path);
  data::DataLoader loader(data::TensorDataset(l.data.x, l.data.y),
                          {.batch_size = 1024, .transform = normalizer(l.model.normalization)});
  auto loss_fn = [](const Tensor& out, const Tensor& y) {
    return nn::functional::cross_entropy(out, y);
  };
  soma::train::EvalResult r = soma::train::evaluate(*l.model.model, loader, loss_fn);
  std::cout << std::fixed << std::setprecision(4) << "loss " << r.loss << "  accuracy "
            << r.accuracy << "  samples " << r.samples << "\n";
}

void predict(const std::string& model_path, const DataArgs& args) {
  Loaded l = load_for_inference(model_path, args);
  NoGradGuard no_grad;
  std::ostringstream out;
  const int64_t n = l.data.x.size(0);
  for (int64_t start = 0; start < n; start += 4096) {
    const int64_t len = std::min<int64_t>(4096, n - start);
    const Tensor logits =
        l.model.model->forward(l.model.normalization.transform()(l.data.x.narrow(0, start, len)));
    for (int64_t p : argmax(logits, 1).to_vector<int64_t>()) out << p << '\n';
  }
  std::cout << out.str();
}

void summary(const std::string& model_path) {
  ModelFile m = load_model(model_path);
  std::cout << m.model->summary({1, m.arch.in_features});
}

}  // namespace soma::cli
