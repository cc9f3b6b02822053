#include "config.h"

// toml++'s internal checks off in every build: v3.3's parse_table_header() reaches one (an
// assert(), or with NDEBUG under clang a __builtin_assume that makes it undefined behaviour) on
// a header such as `[/]` before reporting the error itself, which it then does correctly. With
// TOML_ASSERT a no-op and NDEBUG unset while the header is read, every check is a no-op and
// no assumption is compiled in. (Found by tests/fuzz/config_fuzz.)
#pragma push_macro("NDEBUG")
#undef NDEBUG
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>
#pragma pop_macro("NDEBUG")

#include <charconv>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "soma/core/error.h"
#include "soma/io/file.h"

namespace soma::cli {
namespace {

using nlohmann::json;

constexpr int kMaxTableDepth = 8;  // [a.b.c...]: deeper tables are refused

// "file:line:column" of a TOML node, for messages.
std::string where(const std::string& path, const toml::source_region& src) {
  return path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

// One TOML value as JSON. Dates and times have no JSON form and no option takes one.
json toml_value(const toml::node& v, const std::string& key, const std::string& path) {
  if (const auto* s = v.as_string()) return s->get();
  if (const auto* i = v.as_integer()) return i->get();
  if (const auto* f = v.as_floating_point()) return f->get();
  if (const auto* b = v.as_boolean()) return b->get();
  if (const auto* a = v.as_array()) {
    json out = json::array();
    for (const toml::node& e : *a) out.push_back(toml_value(e, key, path));
    return out;
  }
  if (const auto* t = v.as_table()) {
    json out = json::object();
    for (auto&& [k, e] : *t) out[std::string(k.str())] = toml_value(e, key, path);
    return out;
  }
  std::ostringstream shown;
  const char* kind = "a date-time";
  if (const auto* d = v.as_date()) {
    shown << d->get();
    kind = "a date";
  } else if (const auto* t = v.as_time()) {
    shown << t->get();
    kind = "a time";
  } else if (const auto* dt = v.as_date_time()) {
    shown << dt->get();
  }
  detail::fail("config: ", where(path, v.source()), ": '", key, "' is ", kind, " (", shown.str(),
               "); options take strings, numbers, booleans or arrays");
}

// The options of a TOML table, tables flattened: `[model] hidden = [8]` sets `hidden`. `seen`
// maps each option (normalized_key) to the dotted key that set it.
void flatten_toml(const toml::table& table, const std::string& prefix, int depth,
                  const std::string& path, json& out, std::map<std::string, std::string>& seen) {
  for (auto&& [k, v] : table) {
    const std::string key(k.str());
    const std::string dotted = prefix.empty() ? key : prefix + "." + key;
    if (const toml::table* sub = v.as_table()) {
      SOMA_CHECK(depth < kMaxTableDepth, "config: ", where(path, v.source()), ": table '", dotted,
                 "' is nested deeper than ", kMaxTableDepth, " levels");
      flatten_toml(*sub, dotted, depth + 1, path, out, seen);
      continue;
    }
    const auto [it, fresh] = seen.emplace(normalized_key(key), dotted);
    SOMA_CHECK(fresh, "config: ", where(path, v.source()), ": option '", key, "' is given twice ('",
               it->second, "' and '", dotted, "')");
    out[key] = toml_value(v, dotted, path);
  }
}

// A TOML file as the JSON object of options that apply_object() reads.
json parse_toml(const std::string& text, const std::string& path) {
  toml::table table;
#if TOML_EXCEPTIONS
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    detail::fail("config: ", where(path, e.source()), ": invalid TOML: ", e.description());
  }
#else
  toml::parse_result result = toml::parse(text, path);
  if (!result)
    detail::fail("config: ", where(path, result.error().source()),
                 ": invalid TOML: ", result.error().description());
  table = std::move(result).table();
#endif
  json out = json::object();
  std::map<std::string, std::string> seen;
  flatten_toml(table, "", 0, path, out, seen);
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
