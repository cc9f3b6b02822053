#include "resume.h"

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <vector>

#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/dist/dist.h"
#include "soma/io/file.h"

namespace soma::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The state that lives outside the model and the optimizer, saved in the checkpoint under
// "state.": the scheduler's ("scheduler."), ReduceLROnPlateau's ("plateau.") and early
// stopping's ("early_stopping.", with the best weights).
std::map<std::string, Tensor> run_state_dict(const Optimization& opt) {
  std::map<std::string, Tensor> s;
  auto put = [&s](const std::string& prefix, const std::map<std::string, Tensor>& part) {
    for (const auto& [k, t] : part) s.emplace(prefix + k, t);
  };
  if (opt.scheduler) put("scheduler.", opt.scheduler->state_dict());
  if (opt.plateau) put("plateau.", opt.plateau->state_dict());
  if (opt.early) put("early_stopping.", opt.early->state_dict());
  return s;
}

// The entries of `state` under `prefix`, without it.
std::map<std::string, Tensor> part(const std::map<std::string, Tensor>& state,
                                   const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [k, t] : state)
    if (k.starts_with(prefix)) out.emplace(k.substr(prefix.size()), t);
  return out;
}

// Recorded options that change what a run computes: on --resume a different value is an
// error unless --override is given. (--epochs, --threads, --quiet and --detect-anomaly may
// change freely; --epochs follows the extension rules in docs/cli.md.)
const std::vector<std::string> kComputationOptions = {
    "arch",     "input_shape",     "augment",      "hidden",    "activation",
    "dropout",  "label_smoothing", "precision",    "optimizer", "lr",
    "momentum", "nesterov",        "weight_decay", "beta1",     "beta2",
    "schedule", "batch_size",      "patience",     "seed",      "data",
    "csv",      "label_column",    "validation"};
const std::set<std::string> kOptimizerOptions = {"optimizer",    "momentum", "nesterov",
                                                 "weight_decay", "beta1",    "beta2"};

// An option's value as the user writes it: 256,128 / relu / 0.001.
std::string shown_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    if (v.empty()) return "\"\"";
    std::string out;
    for (const json& e : v) {
      if (!out.empty()) out += ',';
      out += e.is_string() ? e.get<std::string>() : e.dump();
    }
    return out;
  }
  return v.dump();
}

bool stopped_early_in(const io::Checkpoint& ckpt) {
  auto it = ckpt.state.find("early_stopping.stopped_epoch");
  return it != ckpt.state.end() && it->second.dim() == 0 && it->second.dtype() == kInt64 &&
         it->second.item<int64_t>() >= 0;
}

std::string checkpoint_path(const TrainConfig& c) {
  return (fs::path(c.out) / "checkpoint.safetensors").string();
}

// Reads the checkpoint and merges its recorded configuration into `c` (see prepare_resume).
Resume read_checkpoint(TrainConfig& c, const std::set<std::string>& given,
                       const std::string& ckpt_path, bool main_rank) {
  Resume r;
  // Rank 0 reads the checkpoint and sends its bytes: the other ranks need no shared disk.
  std::string bytes;
  if (main_rank) bytes = io::read_file(ckpt_path);
  dist::broadcast_bytes(bytes);
  r.ckpt = io::parse_checkpoint(bytes, ckpt_path);
  r.done = r.ckpt.epoch;
  r.has_state = !r.ckpt.state.empty();
  bool arch_changed = false;
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
      if (k == "arch") arch_changed = true;
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
  if (auto it = r.ckpt.extra.find("model"); it != r.ckpt.extra.end() && !arch_changed) {
    json model;
    try {
      model = json::parse(it->second);
    } catch (const json::exception&) {
      detail::fail("train: ", ckpt_path, ": corrupt model description in the checkpoint");
    }
    SOMA_CHECK(model.is_object(), "train: ", ckpt_path,
               ": corrupt model description in the checkpoint");
    if (c.arch != "mlp") r.recorded_layers = model.value("layers", json());
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

// The history recorded in the checkpoint, checked to be a list of epoch rows.
json recorded_history(const Resume& r, const std::string& ckpt_path) {
  json history = json::array();
  if (auto it = r.ckpt.extra.find("history"); it != r.ckpt.extra.end()) {
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
  return history;
}

}  // namespace

std::optional<Resume> prepare_resume(TrainConfig& c, const std::set<std::string>& given) {
  if (!c.resume) return std::nullopt;
  SOMA_CHECK(!c.out.empty(), "train: --resume needs --out DIR (the run to continue)");
  return read_checkpoint(c, given, checkpoint_path(c), dist::rank() == 0);
}

json apply_resume(Resume& r, nn::Module& model, Optimization& opt, const TrainConfig& c) {
  optim::Optimizer& optimizer = *opt.optimizer;
  optim::LRScheduler* scheduler = opt.scheduler.get();
  optim::ReduceLROnPlateau* plateau = opt.plateau.get();
  soma::train::EarlyStopping* early = opt.early.get();
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
  return recorded_history(r, checkpoint_path(c));
}

RunRecorder::RunRecorder(std::string out, const TrainConfig& config, const Architecture& arch,
                         json history, const Optimization& opt)
    : out_(std::move(out)),
      config_json_(to_json(config)),
      model_json_(json{{"arch", arch.name},
                       {"layers", arch.layers},
                       {"input_shape", arch.input_shape},
                       {"classes", arch.classes}}
                      .dump()),
      history_(std::move(history)),
      opt_(opt) {}

void RunRecorder::on_epoch_end(soma::train::TrainState& state, int64_t epoch,
                               const soma::train::Logs& logs) {
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
  ckpt.state = run_state_dict(opt_);
  ckpt.extra = {{"history", history_.dump()}, {"config", config_json_}, {"model", model_json_}};
  io::save_checkpoint((fs::path(out_) / "checkpoint.safetensors").string(), ckpt);
}

}  // namespace soma::cli
