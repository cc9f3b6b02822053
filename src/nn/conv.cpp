// nn::Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d: torch's options, checks, initialisation,
// padding modes and repr, over nn::functional's convolutions.
#include "soma/nn/conv.h"

#include <cmath>
#include <sstream>

#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/nn/init.h"
#include "soma/ops/shape.h"

namespace soma::nn {

namespace F = functional;

namespace {

template <size_t D>
std::string tuple(const ExpandingArray<D>& a) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < D; ++i) os << (i ? ", " : "") << a[i];
  os << (D == 1 ? ",)" : ")");
  return os.str();
}

template <size_t D>
bool all_equal(const ExpandingArray<D>& a, int64_t v) {
  for (size_t i = 0; i < D; ++i)
    if (a[i] != v) return false;
  return true;
}

// torch's _ConvNd checks, shared by the plain and transposed options.
template <typename Options, size_t D>
void check_common(const char* name, const Options& o) {
  SOMA_CHECK(o.in_channels() > 0 && o.out_channels() > 0, name,
             ": in_channels and out_channels must be positive, got ", o.in_channels(), " and ",
             o.out_channels());
  SOMA_CHECK(o.groups() > 0, name, ": groups must be a positive integer, got ", o.groups());
  SOMA_CHECK(o.in_channels() % o.groups() == 0, name, ": in_channels must be divisible by groups ",
             "(in_channels ", o.in_channels(), ", groups ", o.groups(), ")");
  SOMA_CHECK(o.out_channels() % o.groups() == 0, name, ": out_channels must be divisible by ",
             "groups (out_channels ", o.out_channels(), ", groups ", o.groups(), ")");
  for (size_t i = 0; i < D; ++i) {
    SOMA_CHECK(o.kernel_size()[i] > 0, name, ": kernel_size must be positive, got ",
               tuple(o.kernel_size()));
    SOMA_CHECK(o.stride()[i] > 0, name, ": stride must be positive, got ", tuple(o.stride()));
    SOMA_CHECK(o.dilation()[i] > 0, name, ": dilation must be positive, got ", tuple(o.dilation()));
  }
  SOMA_CHECK(is_floating(o.dtype()), name, ": dtype must be float32 or float64, got ", o.dtype());
}

template <size_t D>
void check_conv(const char* name, const ConvOptions<D>& o) {
  check_common<ConvOptions<D>, D>(name, o);
  if (const auto* s = std::get_if<std::string>(&o.padding())) {
    SOMA_CHECK(*s == "same" || *s == "valid", name, ": Invalid padding string '", *s,
               "', should be one of {'valid', 'same'}");
    SOMA_CHECK(*s != "same" || all_equal(o.stride(), 1), name, ": padding='same' is not ",
               "supported for strided convolutions (stride ", tuple(o.stride()), ")");
  } else {
    for (size_t i = 0; i < D; ++i)
      SOMA_CHECK(std::get<ExpandingArray<D>>(o.padding())[i] >= 0, name,
                 ": padding must be non-negative, got ",
                 tuple(std::get<ExpandingArray<D>>(o.padding())));
  }
  const std::string& m = o.padding_mode();
  SOMA_CHECK(m == "zeros" || m == "reflect" || m == "replicate" || m == "circular", name,
             ": padding_mode must be one of {'zeros', 'reflect', 'replicate', 'circular'}, but ",
             "got padding_mode='", m, "'");
}

template <size_t D>
void check_transpose(const char* name, const ConvTransposeOptions<D>& o) {
  check_common<ConvTransposeOptions<D>, D>(name, o);
  SOMA_CHECK(o.padding_mode() == "zeros", name, ": Only \"zeros\" padding mode is supported for ",
             name, " (got \"", o.padding_mode(), "\")");
  for (size_t i = 0; i < D; ++i) {
    SOMA_CHECK(o.padding()[i] >= 0, name, ": padding must be non-negative, got ",
               tuple(o.padding()));
    SOMA_CHECK(o.output_padding()[i] >= 0 && (o.output_padding()[i] < o.stride()[i] ||
                                              o.output_padding()[i] < o.dilation()[i]),
               name, ": output padding must be smaller than either stride or dilation, got ",
               "output_padding=", tuple(o.output_padding()), ", stride=", tuple(o.stride()),
               ", dilation=", tuple(o.dilation()));
  }
}

// weight [a, b, k...] and bias [bias_size], registered and initialised as torch.
template <size_t D>
void make_parameters(Module& m, Tensor& weight, Tensor& bias, int64_t a, int64_t b,
                     const ExpandingArray<D>& k, bool has_bias, int64_t bias_size, DType dtype) {
  Shape shape{a, b};
  for (size_t i = 0; i < D; ++i) shape.push_back(k[i]);
  weight = m.register_parameter("weight", empty(shape, dtype));
  bias = has_bias ? m.register_parameter("bias", empty({bias_size}, dtype)) : Tensor();
}

void init_parameters(Tensor& weight, Tensor& bias) {
  // torch _ConvNd.reset_parameters: kaiming_uniform_(a=sqrt(5)); bias U(-1/sqrt(fan_in), ..)
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    if (fan_in != 0) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      init::uniform_(bias, -bound, bound);
    }
  }
}

template <size_t D>
std::string describe_conv(const char* name, const ConvOptions<D>& o, bool has_bias) {
  std::ostringstream os;
  os << name << "(" << o.in_channels() << ", " << o.out_channels()
     << ", kernel_size=" << tuple(o.kernel_size()) << ", stride=" << tuple(o.stride());
  if (const auto* s = std::get_if<std::string>(&o.padding()))
    os << ", padding=" << *s;
  else if (!all_equal(std::get<ExpandingArray<D>>(o.padding()), 0))
    os << ", padding=" << tuple(std::get<ExpandingArray<D>>(o.padding()));
  if (!all_equal(o.dilation(), 1)) os << ", dilation=" << tuple(o.dilation());
  if (o.groups() != 1) os << ", groups=" << o.groups();
  if (!has_bias) os << ", bias=False";
  if (o.padding_mode() != "zeros") os << ", padding_mode=" << o.padding_mode();
  os << ")";
  return os.str();
}

template <size_t D>
std::string describe_transpose(const char* name, const ConvTransposeOptions<D>& o, bool has_bias) {
  std::ostringstream os;
  os << name << "(" << o.in_channels() << ", " << o.out_channels()
     << ", kernel_size=" << tuple(o.kernel_size()) << ", stride=" << tuple(o.stride());
  if (!all_equal(o.padding(), 0)) os << ", padding=" << tuple(o.padding());
  if (!all_equal(o.dilation(), 1)) os << ", dilation=" << tuple(o.dilation());
  if (!all_equal(o.output_padding(), 0)) os << ", output_padding=" << tuple(o.output_padding());
  if (o.groups() != 1) os << ", groups=" << o.groups();
  if (!has_bias) os << ", bias=False";
  os << ")";
  return os.str();
}

// The conv of a (batched or unbatched) input under the options' padding and padding_mode.
template <size_t D>
Tensor conv_forward(const Module& m, const ConvOptions<D>& o, const Tensor& input,
                    const Tensor& weight, const Tensor& bias) {
  SOMA_CHECK(input.defined(), m.describe(), ": called with an undefined input");
  SOMA_CHECK(input.dim() == D + 1 || input.dim() == D + 2, m.describe(), ": expected a ", D + 1,
             "-d (unbatched [C, ...]) or ", D + 2, "-d (batched [N, C, ...]) input, got input of ",
             "shape ", input.shape());
  const int64_t c = input.size(input.dim() == D + 2 ? 1 : 0);
  SOMA_CHECK(c == o.in_channels(), m.describe(), ": expected input with ", o.in_channels(),
             " channels, got input of shape ", input.shape(),
             input.dim() == D + 1 ? std::string(" (a ") + std::to_string(D + 1) +
                                        "-d input is read as one unbatched sample [C, ...], as "
                                        "torch does; add the batch dimension: [N, C, ...])"
                                  : std::string());
  auto run = [&](const Tensor& x, const std::vector<int64_t>& padding) {
    if constexpr (D == 1)
      return F::conv1d(x, weight, bias, o.stride().vec(), padding, o.dilation().vec(), o.groups());
    else
      return F::conv2d(x, weight, bias, o.stride().vec(), padding, o.dilation().vec(), o.groups());
  };
  const auto* s = std::get_if<std::string>(&o.padding());
  if (o.padding_mode() == "zeros") {
    if (s) {
      if constexpr (D == 1)
        return F::conv1d(input, weight, bias, o.stride().vec(), *s, o.dilation().vec(), o.groups());
      else
        return F::conv2d(input, weight, bias, o.stride().vec(), *s, o.dilation().vec(), o.groups());
    }
    return run(input, std::get<ExpandingArray<D>>(o.padding()).vec());
  }
  // torch's _reversed_padding_repeated_twice: (before, after) per dim, last dim first
  std::vector<int64_t> pads;
  for (size_t i = D; i-- > 0;) {
    int64_t before = 0, after = 0;
    if (!s) {
      before = after = std::get<ExpandingArray<D>>(o.padding())[i];
    } else if (*s == "same") {
      const int64_t total = o.dilation()[i] * (o.kernel_size()[i] - 1);
      before = total / 2;
      after = total - before;
    }
    pads.push_back(before);
    pads.push_back(after);
  }
  // F::pad's non-constant modes want a batch dimension for circular: add one when unbatched
  const bool unbatched = input.dim() == D + 1;
  Tensor x = unbatched ? soma::unsqueeze(input, 0) : input;
  x = F::pad(x, pads, o.padding_mode());
  if (unbatched) x = soma::squeeze(x, 0);
  return run(x, std::vector<int64_t>{0});
}

}  // namespace

// ---- Conv1d / Conv2d -------------------------------------------------------------------------
Conv1d::Conv1d(Conv1dOptions options) : options(std::move(options)) {
  check_conv("Conv1d", this->options);
  reset();
}
Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
    : Conv1d(Conv1dOptions(in_channels, out_channels, kernel_size)) {}
void Conv1d::reset() {
  const auto& o = options;
  make_parameters(*this, weight, bias, o.out_channels(), o.in_channels() / o.groups(),
                  o.kernel_size(), o.bias(), o.out_channels(), o.dtype());
  reset_parameters();
}
void Conv1d::reset_parameters() {
  init_parameters(weight, bias);
}
Tensor Conv1d::forward(const Tensor& input) {
  return conv_forward(*this, options, input, weight, bias);
}
std::string Conv1d::describe() const {
  return describe_conv("Conv1d", options, bias.defined());
}

Conv2d::Conv2d(Conv2dOptions options) : options(std::move(options)) {
  check_conv("Conv2d", this->options);
  reset();
}
Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size)
    : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
void Conv2d::reset() {
  const auto& o = options;
  make_parameters(*this, weight, bias, o.out_channels(), o.in_channels() / o.groups(),
                  o.kernel_size(), o.bias(), o.out_channels(), o.dtype());
  reset_parameters();
}
void Conv2d::reset_parameters() {
  init_parameters(weight, bias);
}
Tensor Conv2d::forward(const Tensor& input) {
  return conv_forward(*this, options, input, weight, bias);
}
std::string Conv2d::describe() const {
  return describe_conv("Conv2d", options, bias.defined());
}

// ---- ConvTranspose1d / ConvTranspose2d ---------------------------------------------------------
ConvTranspose1d::ConvTranspose1d(ConvTranspose1dOptions options) : options(std::move(options)) {
  check_transpose("ConvTranspose1d", this->options);
  reset();
}
ConvTranspose1d::ConvTranspose1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
    : ConvTranspose1d(ConvTranspose1dOptions(in_channels, out_channels, kernel_size)) {}
void ConvTranspose1d::reset() {
  const auto& o = options;
  make_parameters(*this, weight, bias, o.in_channels(), o.out_channels() / o.groups(),
                  o.kernel_size(), o.bias(), o.out_channels(), o.dtype());
  reset_parameters();
}
void ConvTranspose1d::reset_parameters() {
  init_parameters(weight, bias);
}
Tensor ConvTranspose1d::forward(const Tensor& input) {
  const auto& o = options;
  return F::conv_transpose1d(input, weight, bias, o.stride().vec(), o.padding().vec(),
                             o.output_padding().vec(), o.groups(), o.dilation().vec());
}
std::string ConvTranspose1d::describe() const {
  return describe_transpose("ConvTranspose1d", options, bias.defined());
}

ConvTranspose2d::ConvTranspose2d(ConvTranspose2dOptions options) : options(std::move(options)) {
  check_transpose("ConvTranspose2d", this->options);
  reset();
}
ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels,
                                 ExpandingArray<2> kernel_size)
    : ConvTranspose2d(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)) {}
void ConvTranspose2d::reset() {
  const auto& o = options;
  make_parameters(*this, weight, bias, o.in_channels(), o.out_channels() / o.groups(),
                  o.kernel_size(), o.bias(), o.out_channels(), o.dtype());
  reset_parameters();
}
void ConvTranspose2d::reset_parameters() {
  init_parameters(weight, bias);
}
Tensor ConvTranspose2d::forward(const Tensor& input) {
  const auto& o = options;
  return F::conv_transpose2d(input, weight, bias, o.stride().vec(), o.padding().vec(),
                             o.output_padding().vec(), o.groups(), o.dilation().vec());
}
std::string ConvTranspose2d::describe() const {
  return describe_transpose("ConvTranspose2d", options, bias.defined());
}

}  // namespace soma::nn
