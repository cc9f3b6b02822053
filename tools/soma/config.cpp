#include "config.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "soma/core/error.h"
#include "soma/io/file.h"

namespace soma::cli {
namespace {

using nlohmann::json;

// A minimal TOML reader for flat files: `key = value` lines with strings, numbers, booleans
// and arrays of numbers; `#` comments. Anything else is an error naming the line.
json parse_toml(const std::string& text, const std::string& path) {
  json out = json::object();
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const size_t hash = line.find('#');
    if (hash != std::string::npos && line.find('"') == std::string::npos) line.resize(hash);
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const size_t eq = line.find('=');
    SOMA_CHECK(eq != std::string::npos, "config: ", path, ":", lineno, ": expected `key = value`");
    auto trim = [](std::string s) {
      const auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    SOMA_CHECK(!key.empty() && !value.empty(), "config: ", path, ":", lineno,
               ": expected `key = value`");
    try {
      // 'single-quoted' is a literal string; dump() also rejects bytes that are not UTF-8.
      const bool literal = value.size() >= 2 && value.front() == '\'' && value.back() == '\'';
      out[key] = json::parse(literal ? json(value.substr(1, value.size() - 2)).dump() : value);
    } catch (const json::exception&) {
      detail::fail("config: ", path, ":", lineno, ": cannot parse the value of '", key,
                   "': ", value);
    }
  }
  return out;
}

// For messages: never throws, even on strings that are not UTF-8.
std::string shown(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Applies a JSON object of options to `c`; `where` names the file in messages.
void apply_object(const json& j, TrainConfig& c, const std::string& path,
                  std::set<std::string>* keys) {
  SOMA_CHECK(j.is_object(), "config: ", path, ": expected an object of options");
  std::set<std::string> seen;
  for (auto& item : j.items()) {  // not a structured binding: clang 14 cannot capture one
    const std::string raw_key = item.key();
    const json& v = item.value();
    const std::string key = normalized_key(raw_key);
    SOMA_CHECK(!seen.count(key), "config: ", path, ": option '", raw_key, "' is given twice");
    seen.insert(key);
    auto num = [&]() {
      SOMA_CHECK(v.is_number(), "config: ", path, ": '", raw_key, "' must be a number, got ",
                 shown(v));
      return v.get<double>();
    };
    auto integer = [&]() {
      const double d = num();
      SOMA_CHECK(d == std::floor(d) && std::abs(d) < 0x1p62, "config: ", path, ": '", raw_key,
                 "' must be an integer, got ", shown(v));
      return static_cast<int64_t>(d);
    };
    auto str = [&]() {
      SOMA_CHECK(v.is_string(), "config: ", path, ": '", raw_key, "' must be a string, got ",
                 shown(v));
      return v.get<std::string>();
    };
    auto boolean = [&]() {
      SOMA_CHECK(v.is_boolean(), "config: ", path, ": '", raw_key, "' must be true or false, got ",
                 shown(v));
      return v.get<bool>();
    };
    if (key == "hidden") {
      c.hidden.clear();
      if (v.is_string()) {
        std::istringstream ss(v.get<std::string>());
        std::string part;
        while (std::getline(ss, part, ',')) {
          int64_t width = 0;
          const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), width);
          SOMA_CHECK(!part.empty() && ec == std::errc() && end == part.data() + part.size(),
                     "config: ", path, ": 'hidden' must be comma-separated widths, got \"",
                     shown(v), "\"");
          c.hidden.push_back(width);
        }
      } else {
        SOMA_CHECK(v.is_array(), "config: ", path, ": 'hidden' must be a list of widths");
        for (auto& w : v) {
          SOMA_CHECK(w.is_number_integer(), "config: ", path,
                     ": 'hidden' must be a list of widths");
          c.hidden.push_back(w.get<int64_t>());
        }
      }
    } else if (key == "activation")
      c.activation = str();
    else if (key == "dropout")
      c.dropout = num();
    else if (key == "optimizer")
      c.optimizer = str();
    else if (key == "lr")
      c.lr = num();
    else if (key == "momentum")
      c.momentum = num();
    else if (key == "nesterov")
      c.nesterov = boolean();
    else if (key == "weight_decay")
      c.weight_decay = num();
    else if (key == "beta1")
      c.beta1 = num();
    else if (key == "beta2")
      c.beta2 = num();
    else if (key == "schedule")
      c.schedule = str();
    else if (key == "batch_size")
      c.batch_size = integer();
    else if (key == "epochs")
      c.epochs = integer();
    else if (key == "patience")
      c.patience = integer();
    else if (key == "seed")
      c.seed = static_cast<uint64_t>(integer());
    else if (key == "threads") {
      const int64_t t = integer();
      SOMA_CHECK(t >= 0 && t <= 4096, "config: ", path, ": 'threads' must be in [0, 4096], got ",
                 t);
      c.threads = static_cast<int>(t);
    } else if (key == "data")
      c.data = str();
    else if (key == "csv")
      c.csv = str();
    else if (key == "label_column")
      c.label_column = str();
    else if (key == "validation")
      c.validation = num();
    else if (key == "out")
      c.out = str();
    else if (key == "quiet")
      c.quiet = boolean();
    else if (key == "detect_anomaly")
      c.detect_anomaly = boolean();
    else if (key == "override")
      c.override_recorded = boolean();
    else
      detail::fail("config: ", path, ": unknown option '", raw_key, "'");
    if (keys) keys->insert(key);
  }
}

}  // namespace

std::string normalized_key(std::string key) {
  if (key.starts_with("--")) key = key.substr(2);
  for (char& ch : key)
    if (ch == '-') ch = '_';
  return key;
}

void load_config_file(const std::string& path, TrainConfig& c, std::set<std::string>* keys) {
  const std::string text = io::read_file(path);
  json j;
  const bool is_json = path.size() >= 5 && path.substr(path.size() - 5) == ".json";
  const bool is_toml = path.size() >= 5 && path.substr(path.size() - 5) == ".toml";
  SOMA_CHECK(is_json || is_toml, "config: ", path, ": expected a .json or .toml file");
  if (is_json) {
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      detail::fail("config: ", path, ": invalid JSON (", e.what(), ")");
    }
  } else {
    j = parse_toml(text, path);
  }
  apply_object(j, c, path, keys);
}

void load_config_json(const std::string& text, TrainConfig& c, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    detail::fail("config: ", origin, ": invalid JSON (", e.what(), ")");
  }
  apply_object(j, c, origin, nullptr);
}

void validate(const TrainConfig& c) {
  static const std::set<std::string> activations{"relu", "tanh", "sigmoid", "gelu", "leaky_relu"};
  static const std::set<std::string> optimizers{"sgd",     "adam",    "adamw",
                                                "rmsprop", "adagrad", "adadelta"};
  static const std::set<std::string> schedules{"none", "step", "exponential", "cosine", "plateau"};
  for (int64_t w : c.hidden)
    SOMA_CHECK(w > 0 && w <= (1 << 20), "invalid --hidden: layer width ", w,
               " (must be 1..1048576)");
  SOMA_CHECK(activations.count(c.activation), "invalid --activation '", c.activation,
             "' (expected relu, tanh, sigmoid, gelu or leaky_relu)");
  SOMA_CHECK(c.dropout >= 0 && c.dropout < 1, "invalid --dropout ", c.dropout,
             " (must be in [0, 1))");
  SOMA_CHECK(optimizers.count(c.optimizer), "unknown --optimizer '", c.optimizer,
             "' (expected sgd, adam, adamw, rmsprop, adagrad or adadelta)");
  SOMA_CHECK(c.lr > 0 && std::isfinite(c.lr), "invalid --lr ", c.lr, " (must be positive)");
  SOMA_CHECK(c.momentum >= 0 && std::isfinite(c.momentum), "invalid --momentum ", c.momentum);
  SOMA_CHECK(std::isfinite(c.weight_decay), "invalid --weight-decay ", c.weight_decay);
  SOMA_CHECK(c.beta1 >= 0 && c.beta1 < 1, "invalid --beta1 ", c.beta1, " (must be in [0, 1))");
  SOMA_CHECK(c.beta2 >= 0 && c.beta2 < 1, "invalid --beta2 ", c.beta2, " (must be in [0, 1))");
  SOMA_CHECK(schedules.count(c.schedule), "unknown --schedule '", c.schedule,
             "' (expected none, step, exponential, cosine or plateau)");
  SOMA_CHECK(c.batch_size > 0, "invalid --batch-size ", c.batch_size, " (must be positive)");
  SOMA_CHECK(c.epochs > 0 && c.epochs <= 100000, "invalid --epochs ", c.epochs,
             " (must be positive)");
  SOMA_CHECK(c.patience >= 0, "invalid --patience ", c.patience, " (must be >= 0)");
  SOMA_CHECK(c.threads >= 0 && c.threads <= 4096, "invalid --threads ", c.threads);
  SOMA_CHECK(c.validation > 0 && c.validation < 1, "invalid --validation ", c.validation,
             " (must be in (0, 1))");
}

std::string to_json(const TrainConfig& c) {
  json j = {{"hidden", c.hidden},
            {"activation", c.activation},
            {"dropout", c.dropout},
            {"optimizer", c.optimizer},
            {"lr", c.lr},
            {"momentum", c.momentum},
            {"nesterov", c.nesterov},
            {"weight_decay", c.weight_decay},
            {"beta1", c.beta1},
            {"beta2", c.beta2},
            {"schedule", c.schedule},
            {"batch_size", c.batch_size},
            {"epochs", c.epochs},
            {"patience", c.patience},
            {"seed", c.seed},
            {"threads", c.threads},
            {"data", c.data},
            {"csv", c.csv},
            {"label_column", c.label_column},
            {"validation", c.validation},
            {"out", c.out}};
  return j.dump(2, ' ', false, json::error_handler_t::replace);  // any path bytes
}

}  // namespace soma::cli
