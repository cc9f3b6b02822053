// The pooling and resampling modules: each forward calls one nn::functional op; describe()
// prints torch's repr.
#include "soma/nn/pooling.h"

#include <cmath>
#include <sstream>

#include "soma/core/error.h"
#include "soma/ops/shape.h"

namespace soma::nn {

namespace F = functional;

namespace {

// torch prints an int for an int argument and a tuple for a pair: "2" or "(2, 3)".
std::string size_repr(const std::vector<int64_t>& v) {
  if (v.size() == 1) return std::to_string(v[0]);
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// Python's repr of a float: 0.5, 2.0, 1e-05.
std::string py_float(double v) {
  std::ostringstream os;
  os << v;
  std::string s = os.str();
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

const char* py_bool(bool b) {
  return b ? "True" : "False";
}

}  // namespace

MaxPool2d::MaxPool2d(MaxPool2dOptions options) : options(std::move(options)) {}
Tensor MaxPool2d::forward(const Tensor& input) {
  return F::max_pool2d(input, options.kernel_size(), options.stride(), options.padding(),
                       options.dilation(), options.ceil_mode());
}
std::tuple<Tensor, Tensor> MaxPool2d::forward_with_indices(const Tensor& input) {
  return F::max_pool2d_with_indices(input, options.kernel_size(), options.stride(),
                                    options.padding(), options.dilation(), options.ceil_mode());
}
std::string MaxPool2d::describe() const {
  const auto& stride = options.stride().empty() ? options.kernel_size() : options.stride();
  return "MaxPool2d(kernel_size=" + size_repr(options.kernel_size()) +
         ", stride=" + size_repr(stride) + ", padding=" + size_repr(options.padding()) +
         ", dilation=" + size_repr(options.dilation()) +
         ", ceil_mode=" + py_bool(options.ceil_mode()) + ")";
}

AvgPool2d::AvgPool2d(AvgPool2dOptions options) : options(std::move(options)) {}
Tensor AvgPool2d::forward(const Tensor& input) {
  return F::avg_pool2d(input, options.kernel_size(), options.stride(), options.padding(),
                       options.ceil_mode(), options.count_include_pad(),
                       options.divisor_override());
}
std::string AvgPool2d::describe() const {
  const auto& stride = options.stride().empty() ? options.kernel_size() : options.stride();
  return "AvgPool2d(kernel_size=" + size_repr(options.kernel_size()) +
         ", stride=" + size_repr(stride) + ", padding=" + size_repr(options.padding()) + ")";
}

MaxPool1d::MaxPool1d(MaxPool1dOptions options) : options(options) {}
Tensor MaxPool1d::forward(const Tensor& input) {
  return F::max_pool1d(input, options.kernel_size(), options.stride(), options.padding(),
                       options.dilation(), options.ceil_mode());
}
std::string MaxPool1d::describe() const {
  const int64_t stride = options.stride() == 0 ? options.kernel_size() : options.stride();
  return "MaxPool1d(kernel_size=" + std::to_string(options.kernel_size()) +
         ", stride=" + std::to_string(stride) + ", padding=" + std::to_string(options.padding()) +
         ", dilation=" + std::to_string(options.dilation()) +
         ", ceil_mode=" + py_bool(options.ceil_mode()) + ")";
}

AvgPool1d::AvgPool1d(AvgPool1dOptions options) : options(options) {}
Tensor AvgPool1d::forward(const Tensor& input) {
  return F::avg_pool1d(input, options.kernel_size(), options.stride(), options.padding(),
                       options.ceil_mode(), options.count_include_pad());
}
std::string AvgPool1d::describe() const {
  const int64_t stride = options.stride() == 0 ? options.kernel_size() : options.stride();
  return "AvgPool1d(kernel_size=(" + std::to_string(options.kernel_size()) + ",), stride=(" +
         std::to_string(stride) + ",), padding=(" + std::to_string(options.padding()) + ",))";
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t output_size) : output_size({output_size}) {}
AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::vector<int64_t> output_size)
    : output_size(std::move(output_size)) {}
Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
  return F::adaptive_avg_pool2d(input, output_size);
}
std::string AdaptiveAvgPool2d::describe() const {
  return "AdaptiveAvgPool2d(output_size=" + size_repr(output_size) + ")";
}

AdaptiveMaxPool2d::AdaptiveMaxPool2d(int64_t output_size) : output_size({output_size}) {}
AdaptiveMaxPool2d::AdaptiveMaxPool2d(std::vector<int64_t> output_size)
    : output_size(std::move(output_size)) {}
Tensor AdaptiveMaxPool2d::forward(const Tensor& input) {
  return F::adaptive_max_pool2d(input, output_size);
}
std::tuple<Tensor, Tensor> AdaptiveMaxPool2d::forward_with_indices(const Tensor& input) {
  return F::adaptive_max_pool2d_with_indices(input, output_size);
}
std::string AdaptiveMaxPool2d::describe() const {
  return "AdaptiveMaxPool2d(output_size=" + size_repr(output_size) + ")";
}

Unflatten::Unflatten(int64_t dim, std::vector<int64_t> sizes) : dim(dim), sizes(std::move(sizes)) {
  SOMA_CHECK(!this->sizes.empty(), "Unflatten: unflattened_size must be non-empty");
  int64_t inferred = 0;
  for (int64_t s : this->sizes) {
    SOMA_CHECK(s > 0 || s == -1, "Unflatten: unflattened_size ", this->sizes,
               " holds an invalid size ", s);
    inferred += s == -1;
  }
  SOMA_CHECK(inferred <= 1, "Unflatten: only one dimension can be inferred (-1), got ",
             this->sizes);
}
Tensor Unflatten::forward(const Tensor& input) {
  SOMA_CHECK(input.defined(), "Unflatten: called with an undefined tensor");
  SOMA_CHECK(input.dim() >= 1, "Unflatten: expected an input with at least 1 dim, got a scalar");
  const int64_t d = dim < 0 ? dim + input.dim() : dim;
  SOMA_CHECK(d >= 0 && d < input.dim(), "Unflatten: Dimension out of range (expected to be in ",
             "range of [", -input.dim(), ", ", input.dim() - 1, "], but got ", dim, ")");
  int64_t known = 1;
  bool infer = false;
  for (int64_t s : sizes) s == -1 ? (void)(infer = true) : (void)(known *= s);
  const int64_t n = input.size(d);
  SOMA_CHECK(infer ? (known > 0 && n % known == 0) : known == n, "Unflatten: Provided sizes ",
             sizes, " don't multiply up to the size of dim ", dim, " (", n,
             ") in the input tensor of shape ", input.shape());
  Shape shape;
  for (int64_t i = 0; i < d; ++i) shape.push_back(input.size(i));
  for (int64_t s : sizes) shape.push_back(s == -1 ? n / known : s);
  for (int64_t i = d + 1; i < input.dim(); ++i) shape.push_back(input.size(i));
  return soma::reshape(input, shape);
}
std::string Unflatten::describe() const {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  s += sizes.size() == 1 ? ",)" : ")";
  return "Unflatten(dim=" + std::to_string(dim) + ", unflattened_size=" + s + ")";
}

Dropout2d::Dropout2d(double p) : p(p) {
  SOMA_CHECK(p >= 0.0 && p <= 1.0, "Dropout2d: dropout probability has to be between 0 and 1, ",
             "but got ", p);
}
Tensor Dropout2d::forward(const Tensor& input) {
  return F::dropout2d(input, p, is_training());
}
std::string Dropout2d::describe() const {
  return "Dropout2d(p=" + py_float(p) + ", inplace=False)";
}

Upsample::Upsample(UpsampleOptions options) : options(std::move(options)) {}
Tensor Upsample::forward(const Tensor& input) {
  F::InterpolateOptions o;
  o.size(options.size()).scale_factor(options.scale_factor()).mode(options.mode());
  if (options.align_corners()) o.align_corners(*options.align_corners());
  return F::interpolate(input, o);
}
std::string Upsample::describe() const {
  std::string s = "Upsample(";
  if (!options.size().empty()) {
    s += "size=" + size_repr(options.size());
  } else {
    const auto& f = options.scale_factor();
    if (f.size() == 1) {
      s += "scale_factor=" + py_float(f[0]);
    } else {
      s += "scale_factor=(";
      for (size_t i = 0; i < f.size(); ++i) s += (i ? ", " : "") + py_float(f[i]);
      s += ")";
    }
  }
  return s + ", mode=" + options.mode() + ")";
}

}  // namespace soma::nn
