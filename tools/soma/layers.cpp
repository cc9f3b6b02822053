#include "layers.h"

#include <cmath>
#include <sstream>

#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/nn/conv.h"
#include "soma/nn/layers.h"
#include "soma/nn/normalization.h"
#include "soma/nn/pooling.h"

namespace soma::cli {

using nlohmann::json;

namespace {

// For messages: never throws, even on strings that are not UTF-8.
std::string shown(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_integer(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d) && std::abs(d) < 0x1p62;
}

int64_t as_integer(const json& v) {
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

template <typename M>
std::shared_ptr<nn::Module> module(M m) {
  return std::make_shared<M>(std::move(m));
}

// torch's `inplace` flag (ReLU(inplace=True), Dropout(inplace=False), ...): accepted, and
// without effect on the result (soma's layers return new tensors).
void inplace(LayerArgs& a) {
  a.boolean("inplace", false);
}

}  // namespace

LayerArgs::LayerArgs(const json& spec, size_t index, std::string type, std::string label)
    : spec_(spec), index_(index), type_(std::move(type)), label_(std::move(label)) {}

std::string LayerArgs::where() const {
  if (!label_.empty()) return label_;
  return "arch: layer " + std::to_string(index_) + " (" + type_ + ")";
}

void LayerArgs::bad(const std::string& name, const std::string& expected) const {
  const auto it = spec_.find(name);
  detail::fail(where(), ": '", name, "' must be ", expected, ", got ",
               it == spec_.end() ? std::string("nothing") : shown(*it));
}

const json* LayerArgs::get(const std::string& name) {
  known_.push_back(name);
  const auto it = spec_.find(name);
  return it == spec_.end() || it->is_null() ? nullptr : &*it;
}

bool LayerArgs::has(const std::string& name) {
  return get(name) != nullptr;
}

const json& LayerArgs::raw(const std::string& name) {
  static const json null;
  const json* v = get(name);
  return v ? *v : null;
}

int64_t LayerArgs::integer(const std::string& name) {
  const json* v = get(name);
  if (!v) return missing(name), 1;
  if (!is_integer(*v)) bad(name, "an integer");
  return as_integer(*v);
}

int64_t LayerArgs::integer(const std::string& name, int64_t fallback) {
  return has(name) ? integer(name) : fallback;
}

double LayerArgs::number(const std::string& name, double fallback) {
  const json* v = get(name);
  if (!v) return fallback;
  if (!v->is_number()) bad(name, "a number");
  return v->get<double>();
}

bool LayerArgs::boolean(const std::string& name, bool fallback) {
  const json* v = get(name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, "true or false");
  return v->get<bool>();
}

std::string LayerArgs::choice(const std::string& name, const std::string& fallback,
                              std::initializer_list<const char*> allowed) {
  const json* v = get(name);
  std::string expected = "a string";
  if (allowed.size()) {
    expected = "one of";
    for (const char* a : allowed) expected += std::string(" \"") + a + "\"";
  }
  if (!v) return fallback;
  if (!v->is_string()) bad(name, expected);
  const std::string s = v->get<std::string>();
  if (allowed.size() == 0) return s;
  for (const char* a : allowed)
    if (s == a) return s;
  bad(name, expected);
}

std::vector<int64_t> LayerArgs::ints(const std::string& name, size_t n) {
  const json* v = get(name);
  if (!v) return missing(name), std::vector<int64_t>(n, 1);
  const std::string expected =
      n == 1 ? "an integer" : "an integer or a list of " + std::to_string(n) + " integers";
  if (is_integer(*v)) return std::vector<int64_t>(n, as_integer(*v));
  if (!v->is_array() || v->size() != n) bad(name, expected);
  std::vector<int64_t> out;
  for (const json& e : *v) {
    if (!is_integer(e)) bad(name, expected);
    out.push_back(as_integer(e));
  }
  return out;
}

std::vector<int64_t> LayerArgs::ints(const std::string& name, size_t n,
                                     std::vector<int64_t> fallback) {
  return has(name) ? ints(name, n) : fallback;
}

std::vector<int64_t> LayerArgs::int_list(const std::string& name) {
  const json* v = get(name);
  if (!v) return missing(name), std::vector<int64_t>{1};
  if (is_integer(*v)) return {as_integer(*v)};
  if (!v->is_array() || v->empty()) bad(name, "an integer or a list of integers");
  std::vector<int64_t> out;
  for (const json& e : *v) {
    if (!is_integer(e)) bad(name, "an integer or a list of integers");
    out.push_back(as_integer(e));
  }
  return out;
}

std::vector<int64_t> LayerArgs::int_list(const std::string& name, std::vector<int64_t> fallback) {
  return has(name) ? int_list(name) : fallback;
}

LayerArgs::IntsOrWord LayerArgs::ints_or_word(const std::string& name, size_t n,
                                              std::vector<int64_t> fallback,
                                              std::initializer_list<const char*> words) {
  const json* v = get(name);
  if (!v) return {std::move(fallback), ""};
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    for (const char* w : words)
      if (s == w) return {{}, s};
    std::string expected = "an integer, a list of " + std::to_string(n) + " integers";
    for (const char* w : words) expected += std::string(" or \"") + w + "\"";
    bad(name, expected);
  }
  return {ints(name, n), ""};
}

void LayerArgs::missing(const std::string& name) {
  missing_.push_back(name);
}

void LayerArgs::finish() const {
  for (const auto& item : spec_.items()) {
    const std::string& key = item.key();
    if (key == "type" || std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string takes;
    for (const std::string& k : known_)
      if (takes.find("'" + k + "'") == std::string::npos)
        takes += (takes.empty() ? "" : ", ") + ("'" + k + "'");
    detail::fail(where(), ": unknown argument '", key, "' (", type_, " takes ",
                 takes.empty() ? std::string("no arguments") : takes, ")");
  }
  if (!missing_.empty())
    detail::fail(where(), ": the argument '", missing_.front(), "' is required");
}

namespace {

// Conv1d / Conv2d: torch's argument names; padding an integer, D integers, "same" or "valid".
template <size_t D>
std::shared_ptr<nn::Module> conv(LayerArgs& a) {
  const int64_t in = a.integer("in_channels"), out = a.integer("out_channels");
  const std::vector<int64_t> zeros(D, 0), ones(D, 1);
  nn::ConvOptions<D> o(in, out, a.ints("kernel_size", D));
  o.stride(a.ints("stride", D, ones));
  const LayerArgs::IntsOrWord pad = a.ints_or_word("padding", D, zeros, {"same", "valid"});
  if (pad.word.empty())
    o.padding(pad.ints);
  else
    o.padding(pad.word);
  o.dilation(a.ints("dilation", D, ones))
      .groups(a.integer("groups", 1))
      .bias(a.boolean("bias", true))
      .padding_mode(
          a.choice("padding_mode", "zeros", {"zeros", "reflect", "replicate", "circular"}));
  if constexpr (D == 1)
    return module(nn::Conv1d(o));
  else
    return module(nn::Conv2d(o));
}

// ConvTranspose1d / ConvTranspose2d: Conv's names (integer padding only) and output_padding.
template <size_t D>
std::shared_ptr<nn::Module> conv_transpose(LayerArgs& a) {
  const int64_t in = a.integer("in_channels"), out = a.integer("out_channels");
  const std::vector<int64_t> zeros(D, 0), ones(D, 1);
  nn::ConvTransposeOptions<D> o(in, out, a.ints("kernel_size", D));
  o.stride(a.ints("stride", D, ones))
      .padding(a.ints("padding", D, zeros))
      .output_padding(a.ints("output_padding", D, zeros))
      .dilation(a.ints("dilation", D, ones))
      .groups(a.integer("groups", 1))
      .bias(a.boolean("bias", true))
      .padding_mode(a.choice("padding_mode", "zeros", {"zeros"}));
  if constexpr (D == 1)
    return module(nn::ConvTranspose1d(o));
  else
    return module(nn::ConvTranspose2d(o));
}

// BatchNorm1d / BatchNorm2d (momentum a number: torch's None is not read from a layer list).
nn::BatchNormOptions batch_norm(LayerArgs& a) {
  nn::BatchNormOptions o(a.integer("num_features"));
  o.eps(a.number("eps", 1e-5)).momentum(a.number("momentum", 0.1));
  o.affine(a.boolean("affine", true)).track_running_stats(a.boolean("track_running_stats", true));
  return o;
}

}  // namespace

// The layer types. One entry per torch.nn class: its name, and a function that reads torch's
// argument names (with torch's defaults) and returns the soma module. Each entry must read
// every argument the type takes (with a default where torch has one): the names it reads are
// the names the list accepts for it, and the list of them is what an unknown argument's
// message shows.
const std::map<std::string, LayerFactory>& layer_registry() {
  static const std::map<std::string, LayerFactory> registry = {
      {"Linear",
       [](LayerArgs& a) {
         const int64_t in = a.integer("in_features"), out = a.integer("out_features");
         nn::LinearOptions o;
         o.bias = a.boolean("bias", true);
         return module(nn::Linear(in, out, o));
       }},
      {"Identity", [](LayerArgs&) { return module(nn::Identity()); }},
      // convolution
      {"Conv1d", [](LayerArgs& a) { return conv<1>(a); }},
      {"Conv2d", [](LayerArgs& a) { return conv<2>(a); }},
      {"ConvTranspose1d", [](LayerArgs& a) { return conv_transpose<1>(a); }},
      {"ConvTranspose2d", [](LayerArgs& a) { return conv_transpose<2>(a); }},
      // pooling and resampling
      {"MaxPool2d",
       [](LayerArgs& a) {
         nn::MaxPool2dOptions o(a.ints("kernel_size", 2));
         if (a.has("stride")) o.stride(a.ints("stride", 2));  // null or missing: kernel_size
         o.padding(a.ints("padding", 2, {0, 0}))
             .dilation(a.ints("dilation", 2, {1, 1}))
             .ceil_mode(a.boolean("ceil_mode", false));
         if (a.boolean("return_indices", false))
           a.bad("return_indices", "false (a layer list passes one tensor on)");
         return module(nn::MaxPool2d(o));
       }},
      {"AvgPool2d",
       [](LayerArgs& a) {
         nn::AvgPool2dOptions o(a.ints("kernel_size", 2));
         if (a.has("stride")) o.stride(a.ints("stride", 2));
         o.padding(a.ints("padding", 2, {0, 0}))
             .ceil_mode(a.boolean("ceil_mode", false))
             .count_include_pad(a.boolean("count_include_pad", true));
         if (a.has("divisor_override")) o.divisor_override(a.integer("divisor_override"));
         return module(nn::AvgPool2d(o));
       }},
      {"AdaptiveAvgPool2d",
       [](LayerArgs& a) { return module(nn::AdaptiveAvgPool2d(a.ints("output_size", 2))); }},
      {"AdaptiveMaxPool2d",
       [](LayerArgs& a) {
         const std::vector<int64_t> size = a.ints("output_size", 2);
         if (a.boolean("return_indices", false))
           a.bad("return_indices", "false (a layer list passes one tensor on)");
         return module(nn::AdaptiveMaxPool2d(size));
       }},
      {"Dropout2d",
       [](LayerArgs& a) {
         const double p = a.number("p", 0.5);
         inplace(a);
         return module(nn::Dropout2d(p));
       }},
      {"Unflatten",
       [](LayerArgs& a) {
         const int64_t dim = a.integer("dim");
         return module(nn::Unflatten(dim, a.int_list("unflattened_size")));
       }},
      {"Upsample",
       [](LayerArgs& a) {
         nn::UpsampleOptions o;
         if (a.has("size")) o.size(a.ints("size", 2));
         if (a.has("scale_factor")) {
           const json& f = a.raw("scale_factor");
           if (f.is_number())
             o.scale_factor({f.get<double>()});
           else if (f.is_array() && f.size() == 2 && f[0].is_number() && f[1].is_number())
             o.scale_factor({f[0].get<double>(), f[1].get<double>()});
           else
             a.bad("scale_factor", "a number or a list of 2 numbers");
         }
         o.mode(a.choice("mode", "nearest", {"nearest", "bilinear"}));
         if (a.has("align_corners")) o.align_corners(a.boolean("align_corners", false));
         return module(nn::Upsample(o));
       }},
      // normalisation
      {"BatchNorm1d", [](LayerArgs& a) { return module(nn::BatchNorm1d(batch_norm(a))); }},
      {"BatchNorm2d", [](LayerArgs& a) { return module(nn::BatchNorm2d(batch_norm(a))); }},
      {"LayerNorm",
       [](LayerArgs& a) {
         nn::LayerNormOptions o(a.int_list("normalized_shape"));
         o.eps(a.number("eps", 1e-5)).elementwise_affine(a.boolean("elementwise_affine", true));
         return module(nn::LayerNorm(o));
       }},
      {"GroupNorm",
       [](LayerArgs& a) {
         const int64_t groups = a.integer("num_groups"), channels = a.integer("num_channels");
         nn::GroupNormOptions o(groups, channels);
         o.eps(a.number("eps", 1e-5)).affine(a.boolean("affine", true));
         return module(nn::GroupNorm(o));
       }},
      {"Flatten",
       [](LayerArgs& a) {
         const int64_t start = a.integer("start_dim", 1), end = a.integer("end_dim", -1);
         return module(nn::Flatten(start, end));
       }},
      {"Dropout",
       [](LayerArgs& a) {
         const double p = a.number("p", 0.5);
         inplace(a);
         return module(nn::Dropout(p));
       }},
      // activations
      {"ReLU",
       [](LayerArgs& a) {
         inplace(a);
         return module(nn::ReLU());
       }},
      {"Sigmoid", [](LayerArgs&) { return module(nn::Sigmoid()); }},
      {"Tanh", [](LayerArgs&) { return module(nn::Tanh()); }},
      {"LeakyReLU",
       [](LayerArgs& a) {
         const double slope = a.number("negative_slope", 0.01);
         inplace(a);
         return module(nn::LeakyReLU(slope));
       }},
      {"GELU",
       [](LayerArgs& a) {
         a.choice("approximate", "none", {"none"});  // "tanh" is not implemented
         return module(nn::GELU());
       }},
      {"ELU",
       [](LayerArgs& a) {
         const double alpha = a.number("alpha", 1.0);
         inplace(a);
         return module(nn::ELU(alpha));
       }},
      {"SELU",
       [](LayerArgs& a) {
         inplace(a);
         return module(nn::SELU());
       }},
      {"CELU",
       [](LayerArgs& a) {
         const double alpha = a.number("alpha", 1.0);
         inplace(a);
         return module(nn::CELU(alpha));
       }},
      {"SiLU",
       [](LayerArgs& a) {
         inplace(a);
         return module(nn::SiLU());
       }},
      {"Mish",
       [](LayerArgs& a) {
         inplace(a);
         return module(nn::Mish());
       }},
      {"Softplus",
       [](LayerArgs& a) {
         const double beta = a.number("beta", 1.0), threshold = a.number("threshold", 20.0);
         return module(nn::Softplus(beta, threshold));
       }},
      {"Hardtanh",
       [](LayerArgs& a) {
         const double lo = a.number("min_val", -1.0), hi = a.number("max_val", 1.0);
         inplace(a);
         return module(nn::Hardtanh(lo, hi));
       }},
      {"Hardsigmoid",
       [](LayerArgs& a) {
         inplace(a);
         return module(nn::Hardsigmoid());
       }},
      {"Hardswish",
       [](LayerArgs& a) {
         inplace(a);
         return module(nn::Hardswish());
       }},
      {"LogSigmoid", [](LayerArgs&) { return module(nn::LogSigmoid()); }},
      {"PReLU",
       [](LayerArgs& a) {
         const int64_t n = a.integer("num_parameters", 1);
         const double init = a.number("init", 0.25);
         return module(nn::PReLU(n, init));
       }},
      {"GLU", [](LayerArgs& a) { return module(nn::GLU(a.integer("dim", -1))); }},
      // torch's default dim (None) picks one from the input's rank; soma's layers take the last
      {"Softmax", [](LayerArgs& a) { return module(nn::Softmax(a.integer("dim", -1))); }},
      {"LogSoftmax", [](LayerArgs& a) { return module(nn::LogSoftmax(a.integer("dim", -1))); }},
      {"Softmin", [](LayerArgs& a) { return module(nn::Softmin(a.integer("dim", -1))); }},
  };
  return registry;
}

std::shared_ptr<nn::Sequential> build_sequential(const json& layers) {
  SOMA_CHECK(layers.is_array() && !layers.empty(),
             "arch: expected a non-empty JSON array of layers like [{\"type\": \"Linear\", "
             "\"in_features\": 784, \"out_features\": 10}], got ",
             shown(layers).substr(0, 80));
  const auto& registry = layer_registry();
  auto model = std::make_shared<nn::Sequential>();
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& spec = layers[i];
    SOMA_CHECK(spec.is_object() && spec.contains("type") && spec.at("type").is_string(),
               "arch: layer ", i,
               " must be an object with a \"type\" (a torch.nn class name), got ",
               shown(spec).substr(0, 80));
    const std::string type = spec.at("type").get<std::string>();
    const auto it = registry.find(type);
    if (it == registry.end()) {
      std::string known;
      for (const auto& entry : registry) known += (known.empty() ? "" : ", ") + entry.first;
      detail::fail("arch: layer ", i, ": unknown type '", type, "' (known: ", known, ")");
    }
    LayerArgs args(spec, i, type);
    std::shared_ptr<nn::Module> layer;
    try {
      layer = it->second(args);
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.starts_with("arch: ")) throw;  // an ill-typed argument
      args.finish();                         // an unknown or missing argument is the better message
      detail::fail(args.where(), ": ", msg);  // the module refused a value
    }
    args.finish();
    model->push_back(std::move(layer));
  }
  return model;
}

void check_chain(nn::Sequential& model, const json& layers, const Shape& input_shape,
                 int64_t classes, const std::string& hint) {
  auto type = [&](size_t i) {
    return i < layers.size() && layers[i].is_object() ? layers[i].value("type", "?")
                                                      : std::string("?");
  };
  const bool was_training = model.is_training();
  model.eval();  // no dropout draws, no running statistics updated
  NoGradGuard no_grad;
  Shape shape{1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  Tensor x = zeros(shape);
  for (size_t i = 0; i < model.size(); ++i) {
    try {
      x = model[static_cast<int64_t>(i)](x);
    } catch (const Error& e) {
      model.train(was_training);
      detail::fail("arch: layer ", i, " (", type(i), "): input ", x.shape(), ": ", e.what(),
                   i == 0 ? hint : "");
    }
  }
  model.train(was_training);
  const size_t last = model.size() - 1;
  SOMA_CHECK(x.shape() == Shape({1, classes}), "arch: the last layer (", last, ", ", type(last),
             ") outputs ", x.shape(), " for an input ", shape, "; the data has ", classes,
             " classes: it must output [1, ", classes, "]");
}

}  // namespace soma::cli
