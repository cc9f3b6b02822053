// The standard callbacks: History, EarlyStopping, ModelCheckpoint, CSVLogger, ProgressBar.
#include "soma/train/callbacks.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "soma/core/clock.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/io/checkpoint.h"
#include "soma/io/file.h"
#include "soma/nn/serialize.h"

namespace soma::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using soma::detail::now_seconds;

// The value of `key` in `logs`; a missing key is an error naming `who` and the keys present.
double require(const Logs& logs, const std::string& key, const char* who) {
  auto it = logs.find(key);
  if (it != logs.end()) return it->second;
  std::string have;
  for (auto& [k, v] : logs) have += (have.empty() ? "" : ", ") + k;
  soma::detail::fail(who, ": monitored metric \"", key, "\" is not in the logs (they have: ", have,
                     ")", key.rfind("val_", 0) == 0 ? "; pass FitOptions::validation" : "");
}

// Keras's column order for the standard keys, then the rest alphabetically.
const std::vector<std::string>& standard_keys() {
  static const std::vector<std::string> keys = {
      "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_second"};
  return keys;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

namespace detail {

std::string thousands(double value) {
  if (!std::isfinite(value)) return shortest(value);
  const long long v = std::llround(std::abs(value));
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (value < 0 && v != 0 ? "-" : "") + out;
}

std::string shortest(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

bool minimize(Mode mode, const std::string& monitor) {
  if (mode == Mode::Auto) return monitor.find("acc") == std::string::npos;
  return mode == Mode::Min;
}

}  // namespace detail

Callback::~Callback() = default;

// ---- LambdaCallback -----------------------------------------------------------------------
void LambdaCallback::on_train_begin(TrainState& s) {
  if (fns_.on_train_begin) fns_.on_train_begin(s);
}
void LambdaCallback::on_epoch_begin(TrainState& s, int64_t epoch) {
  if (fns_.on_epoch_begin) fns_.on_epoch_begin(s, epoch);
}
void LambdaCallback::on_batch_end(TrainState& s, int64_t batch, double loss) {
  if (fns_.on_batch_end) fns_.on_batch_end(s, batch, loss);
}
void LambdaCallback::on_epoch_end(TrainState& s, int64_t epoch, const Logs& logs) {
  if (fns_.on_epoch_end) fns_.on_epoch_end(s, epoch, logs);
}
void LambdaCallback::on_train_end(TrainState& s) {
  if (fns_.on_train_end) fns_.on_train_end(s);
}

// ---- History ------------------------------------------------------------------------------
void History::on_epoch_end(TrainState&, int64_t epoch, const Logs& logs) {
  record(epoch, logs);
}

void History::record(int64_t epoch, const Logs& logs) {
  const size_t n = epochs_.size();
  for (auto& [key, value] : logs) {
    auto [it, inserted] = values_.try_emplace(key, std::vector<double>(n, kNaN));
    it->second.push_back(value);
  }
  epochs_.push_back(epoch);
  for (auto& [key, values] : values_)
    if (values.size() == n) values.push_back(kNaN);  // a key this epoch did not log
}

const std::vector<double>& History::operator[](const std::string& key) const {
  auto it = values_.find(key);
  if (it != values_.end()) return it->second;
  std::string have;
  for (const std::string& k : keys()) have += (have.empty() ? "" : ", ") + k;
  soma::detail::fail("History: no metric \"", key, "\" (it has: ", have, ")");
}

std::vector<std::string> History::keys() const {
  std::vector<std::string> out;
  for (const std::string& k : standard_keys())
    if (values_.count(k)) out.push_back(k);
  for (auto& [k, v] : values_)
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  return out;
}

std::string History::to_csv() const {
  const std::vector<std::string> cols = keys();
  std::string s = "epoch";
  for (const std::string& k : cols) s += "," + k;
  s += '\n';
  for (size_t i = 0; i < epochs_.size(); ++i) {
    s += std::to_string(epochs_[i]);
    for (const std::string& k : cols) {
      const double v = values_.at(k)[i];
      s += ',';
      if (!std::isnan(v)) s += detail::shortest(v);
    }
    s += '\n';
  }
  return s;
}

std::string History::to_json() const {
  // Built by hand to keep keys in column order (nlohmann::json sorts them) and NaN as null.
  auto number = [](double v) { return std::isfinite(v) ? detail::shortest(v) : "null"; };
  std::string s = "{\"epoch\": [";
  for (size_t i = 0; i < epochs_.size(); ++i) s += (i ? ", " : "") + std::to_string(epochs_[i]);
  s += "]";
  for (const std::string& k : keys()) {
    s += ", " + nlohmann::json(k).dump() + ": [";
    const std::vector<double>& v = values_.at(k);
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number(v[i]);
    s += "]";
  }
  return s + "}";
}

History History::from_csv(const std::string& text) {
  History h;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> cols;
  int64_t line_no = 0;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string cell;
    std::istringstream ls(l);
    while (std::getline(ls, cell, ',')) out.push_back(cell);
    if (!l.empty() && l.back() == ',') out.push_back("");
    return out;
  };
  auto parse = [&](const std::string& cell, double& out) {
    if (cell.empty()) return out = kNaN, true;
    if (cell == "nan") return out = kNaN, true;
    if (cell == "inf" || cell == "-inf") return out = cell[0] == '-' ? -HUGE_VAL : HUGE_VAL, true;
    auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), out);
    return ec == std::errc() && end == cell.data() + cell.size();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells = split(line);
    if (cols.empty()) {
      SOMA_CHECK(!cells.empty() && cells[0] == "epoch", "History::from_csv: line ", line_no,
                 ": the header must start with \"epoch\", got \"", line, "\"");
      cols.assign(cells.begin() + 1, cells.end());
      continue;
    }
    SOMA_CHECK(cells.size() == cols.size() + 1, "History::from_csv: line ", line_no, " has ",
               cells.size(), " fields, the header has ", cols.size() + 1);
    double epoch = 0;
    SOMA_CHECK(parse(cells[0], epoch) && std::isfinite(epoch), "History::from_csv: line ", line_no,
               ": bad epoch \"", cells[0], "\"");
    Logs logs;
    for (size_t c = 0; c < cols.size(); ++c) {
      double v = 0;
      SOMA_CHECK(parse(cells[c + 1], v), "History::from_csv: line ", line_no, ": bad number \"",
                 cells[c + 1], "\" for \"", cols[c], "\"");
      logs[cols[c]] = v;
    }
    h.record(static_cast<int64_t>(epoch), logs);
  }
  return h;
}

// ---- EarlyStopping ------------------------------------------------------------------------
EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(std::move(options)) {
  SOMA_CHECK(!options_.monitor.empty(), "EarlyStopping: monitor must name a metric");
  SOMA_CHECK(options_.patience >= 0, "EarlyStopping: patience must be >= 0, got ",
             options_.patience);
  SOMA_CHECK(std::isfinite(options_.min_delta), "EarlyStopping: min_delta must be finite, got ",
             options_.min_delta);
  options_.min_delta = std::abs(options_.min_delta);
  minimize_ = detail::minimize(options_.mode, options_.monitor);
}

bool EarlyStopping::improves(double value, double reference) const {
  return minimize_ ? value + options_.min_delta < reference
                   : value - options_.min_delta > reference;
}

void EarlyStopping::on_train_begin(TrainState&) {
  if (restored_) {  // a resumed run: continue with the loaded state
    restored_ = false;
    return;
  }
  wait_ = 0;
  stopped_epoch_ = -1;
  best_epoch_ = -1;
  best_ = minimize_ ? HUGE_VAL : -HUGE_VAL;
  best_weights_.clear();
}

static nn::StateDict snapshot(const nn::Module& model) {
  nn::StateDict copy;
  for (auto& [name, t] : model.state_dict()) copy.emplace(name, t.detach().clone());
  return copy;
}

void EarlyStopping::on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) {
  const double current = require(logs, options_.monitor, "EarlyStopping");
  if (epoch < options_.start_from_epoch) return;
  if (options_.restore_best_weights && best_weights_.empty()) {
    best_weights_ = snapshot(state.model);  // until something improves, these are the best
    best_epoch_ = epoch;
  }
  ++wait_;
  if (improves(current, best_)) {
    best_ = current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) best_weights_ = snapshot(state.model);
    // The wait restarts only when the metric beats both the previous best and the baseline.
    if (!options_.baseline || improves(current, *options_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    state.stop_training = true;
  }
}

nn::StateDict EarlyStopping::state_dict() const {
  nn::StateDict s;
  s["best"] = full({}, best_, kFloat64);
  auto i64 = [](int64_t v) {
    Tensor t = zeros({}, kInt64);
    t.data<int64_t>()[0] = v;
    return t;
  };
  s["best_epoch"] = i64(best_epoch_);
  s["wait"] = i64(wait_);
  s["stopped_epoch"] = i64(stopped_epoch_);
  for (const auto& [name, t] : best_weights_) s["best_weights." + name] = t;
  return s;
}

void EarlyStopping::load_state_dict(const nn::StateDict& s) {
  auto get = [&](const std::string& key, DType dtype) -> const Tensor& {
    auto it = s.find(key);
    SOMA_CHECK(it != s.end(), "EarlyStopping::load_state_dict: missing key \"", key, "\"");
    SOMA_CHECK(it->second.defined() && it->second.dim() == 0 && it->second.dtype() == dtype,
               "EarlyStopping::load_state_dict: \"", key, "\" must be a 0-d ", dtype_name(dtype),
               " tensor");
    return it->second;
  };
  const double best = get("best", kFloat64).item<double>();
  const int64_t best_epoch = get("best_epoch", kInt64).item<int64_t>();
  const int64_t wait = get("wait", kInt64).item<int64_t>();
  const int64_t stopped = get("stopped_epoch", kInt64).item<int64_t>();
  SOMA_CHECK(!std::isnan(best) && best_epoch >= -1 && wait >= 0 && stopped >= -1,
             "EarlyStopping::load_state_dict: invalid state (best ", best, ", best_epoch ",
             best_epoch, ", wait ", wait, ", stopped_epoch ", stopped, ")");
  nn::StateDict weights;
  const std::string prefix = "best_weights.";
  for (const auto& [key, t] : s)
    if (key.starts_with(prefix)) weights.emplace(key.substr(prefix.size()), t.detach().clone());
  best_ = best;
  best_epoch_ = best_epoch;
  wait_ = wait;
  stopped_epoch_ = stopped;
  best_weights_ = std::move(weights);
  restored_ = true;
}

void EarlyStopping::on_train_end(TrainState& state) {
  if (options_.restore_best_weights && !best_weights_.empty())
    state.model.load_state_dict(best_weights_);
}

// ---- ModelCheckpoint ----------------------------------------------------------------------
ModelCheckpoint::ModelCheckpoint(ModelCheckpointOptions options) : options_(std::move(options)) {
  SOMA_CHECK(!options_.path.empty(), "ModelCheckpoint: path is empty");
  SOMA_CHECK(!options_.save_best_only || !options_.monitor.empty(),
             "ModelCheckpoint: save_best_only needs a monitor");
  minimize_ = detail::minimize(options_.mode, options_.monitor);
  best_ = minimize_ ? HUGE_VAL : -HUGE_VAL;
}

void ModelCheckpoint::on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) {
  if (options_.save_best_only) {
    const double current = require(logs, options_.monitor, "ModelCheckpoint");
    const bool better = minimize_ ? current < best_ : current > best_;
    if (!better) return;
    best_ = current;
  }
  const std::string path = replace_all(options_.path, "{epoch}", std::to_string(epoch + 1));
  // Both writers go through io::atomic_write: a reader never sees a torn file.
  if (options_.full_checkpoint) {
    io::Checkpoint ckpt;
    ckpt.model = state.model.state_dict();
    ckpt.optimizer = state.optimizer.state_dict();
    ckpt.epoch = epoch + 1;
    ckpt.rng_state = get_rng_state();
    for (auto& [k, v] : logs) ckpt.extra["logs." + k] = detail::shortest(v);
    io::save_checkpoint(path, ckpt);
  } else {
    soma::save(state.model, path);
  }
  ++saves_;
  last_saved_epoch_ = epoch;
  last_path_ = path;
}

// ---- CSVLogger ----------------------------------------------------------------------------
CSVLogger::CSVLogger(CSVLoggerOptions options) : options_(std::move(options)) {
  SOMA_CHECK(!options_.path.empty(), "CSVLogger: path is empty");
}

void CSVLogger::on_train_begin(TrainState&) {
  history_ = History();
  if (!options_.append) return;
  std::error_code ec;
  const bool exists = std::filesystem::exists(options_.path, ec);
  SOMA_CHECK(!ec, "CSVLogger: cannot check whether \"", options_.path,
             "\" exists to append to it: ", ec.message());
  if (exists) history_ = History::from_csv(io::read_file(options_.path));
}

void CSVLogger::on_epoch_end(TrainState&, int64_t epoch, const Logs& logs) {
  history_.record(epoch, logs);
  io::atomic_write(options_.path, history_.to_csv());
}

// ---- ProgressBar --------------------------------------------------------------------------
ProgressBar::ProgressBar(ProgressBarOptions options) : options_(options) {
  SOMA_CHECK(!options_.enabled || options_.out != nullptr, "ProgressBar: out is null");
  SOMA_CHECK(options_.width >= 0, "ProgressBar: width must be >= 0, got ", options_.width);
}

void ProgressBar::on_train_begin(TrainState&) {
  if (options_.redraw) {
    redraw_ = *options_.redraw;
  } else {
    redraw_ = (options_.out == &std::cout && isatty(STDOUT_FILENO)) ||
              ((options_.out == &std::cerr || options_.out == &std::clog) && isatty(STDERR_FILENO));
  }
}

void ProgressBar::on_epoch_begin(TrainState&, int64_t) {
  epoch_start_ = now_seconds();
  last_draw_ = -HUGE_VAL;
  last_len_ = 0;
}

namespace {

std::string fixed4(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

std::string duration(double s) {
  char buf[64];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                  static_cast<int>(s) % 3600 / 60);
  return buf;
}

}  // namespace

void ProgressBar::on_batch_end(TrainState& state, int64_t batch, double) {
  if (!options_.enabled || !redraw_) return;
  const double t = now_seconds();
  const int64_t done = batch + 1, total = state.batches_per_epoch;
  const bool last = done >= total;
  if (!last && t - last_draw_ < options_.redraw_interval_s) return;
  last_draw_ = t;
  const double elapsed = t - epoch_start_;
  std::string line =
      "Epoch " + std::to_string(state.epoch + 1) + "/" + std::to_string(state.epochs) + " [";
  const int64_t w = options_.width;
  const int64_t filled = total > 0 ? std::min(w, w * done / total) : w;
  for (int64_t i = 0; i < w; ++i)
    line += i < filled - 1 || (last && i < filled) ? '=' : i == filled - 1 ? '>' : ' ';
  line += "] " + std::to_string(done) + "/" + std::to_string(total);
  line += "  loss " + fixed4(state.running_loss);
  if (!std::isnan(state.running_accuracy)) line += "  acc " + fixed4(state.running_accuracy);
  if (elapsed > 0)
    line +=
        "  " + detail::thousands(static_cast<double>(state.samples_seen) / elapsed) + " samples/s";
  if (!last) line += "  ETA " + duration(elapsed / done * static_cast<double>(total - done));
  const size_t len = line.size();
  if (len < last_len_) line += std::string(last_len_ - len, ' ');  // erase the longer old line
  last_len_ = len;
  *options_.out << '\r' << line << std::flush;
}

void ProgressBar::on_epoch_end(TrainState& state, int64_t epoch, const Logs& logs) {
  if (!options_.enabled) return;
  auto get = [&](const char* key) {
    auto it = logs.find(key);
    return it == logs.end() ? kNaN : it->second;
  };
  const double elapsed = now_seconds() - epoch_start_;
  std::string line = "Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(state.epochs);
  line +=
      " " + std::to_string(state.batches_per_epoch) + "/" + std::to_string(state.batches_per_epoch);
  const std::pair<const char*, const char*> fields[] = {
      {"loss", "loss"}, {"accuracy", "acc"}, {"val_loss", "val_loss"}, {"val_accuracy", "val_acc"}};
  for (auto [key, label] : fields)
    if (logs.count(key)) line += std::string("  ") + label + " " + fixed4(get(key));
  if (double sps = get("samples_per_second"); !std::isnan(sps))
    line += "  " + detail::thousands(sps) + " samples/s";
  const double seconds = logs.count("seconds") ? get("seconds") : elapsed;
  char buf[32];
  if (seconds < 1)
    std::snprintf(buf, sizeof buf, "  %.0fms", seconds * 1e3);
  else
    std::snprintf(buf, sizeof buf, "  %.1fs", seconds);
  line += buf;
  if (redraw_) {
    const size_t len = line.size();
    if (len < last_len_) line += std::string(last_len_ - len, ' ');
    *options_.out << '\r' << line << '\n' << std::flush;
  } else {
    *options_.out << line << '\n' << std::flush;
  }
}

}  // namespace soma::train
