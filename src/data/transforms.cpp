// soma::data::transforms: checks and per-sample random draws; the loops are in
// kernels/cpu/data.cpp.
#include "soma/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "soma/core/error.h"

namespace soma::data::transforms {

namespace {

// splitmix64's finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014): a bijective 64-bit mix.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform integer in [0, bound) from a 64-bit word: floor(r * bound / 2^64) (bias below
// bound / 2^64, invisible for image sizes).
int64_t below(uint64_t r, int64_t bound) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(r) * static_cast<uint64_t>(bound)) >>
                              64);
}

constexpr uint64_t kCropSalt = 1, kFlipSalt = 2;

void check_context(const char* op, const Tensor& x, const Context& ctx) {
  SOMA_CHECK(x.defined(), op, ": x is undefined");
  SOMA_CHECK(x.dim() >= 1, op, ": x must have a batch dimension, got a 0-d tensor");
  SOMA_CHECK(ctx.indices.empty() || static_cast<int64_t>(ctx.indices.size()) == x.size(0), op,
             ": the context has ", ctx.indices.size(), " sample indices but x has ", x.size(0),
             " rows (shape ", x.shape(), ")");
}

void check_image(const char* op, const Tensor& x) {
  SOMA_CHECK(x.dim() >= 3, op,
             ": x must be a batch of images [N, C, H, W] or [N, H, W], got shape ", x.shape(),
             " (flat rows: Reshape({C, H, W}) first)");
}

}  // namespace

uint64_t Context::random(int64_t k, uint64_t salt, uint64_t draw) const {
  uint64_t h = mix(seed);
  h = mix(h ^ static_cast<uint64_t>(epoch));
  h = mix(h ^ static_cast<uint64_t>(index(k)));
  h = mix(h ^ stream);
  return mix(h ^ (salt << 32) ^ draw);
}

// ---- Normalize -----------------------------------------------------------------------------
Normalize::Normalize(std::vector<double> mean, std::vector<double> std, double scale)
    : mean_(std::move(mean)), std_(std::move(std)), scale_(scale) {
  SOMA_CHECK(!mean_.empty() && mean_.size() == std_.size(), "transforms::Normalize: mean has ",
             mean_.size(), " entries but std has ", std_.size(), " (need the same number, > 0)");
  SOMA_CHECK(std::isfinite(scale_), "transforms::Normalize: invalid scale ", scale_);
  for (size_t c = 0; c < mean_.size(); ++c)
    SOMA_CHECK(std::isfinite(mean_[c]) && std::isfinite(std_[c]) && std_[c] > 0.0,
               "transforms::Normalize: invalid parameters for channel ", c, ": mean=", mean_[c],
               " std=", std_[c], " (std must be positive and all finite)");
}

Tensor Normalize::apply(const Tensor& x, const Context& ctx) const {
  check_context("transforms::Normalize", x, ctx);
  const auto channels = static_cast<int64_t>(mean_.size());
  int64_t outer = 1, inner = x.numel();
  if (channels > 1) {
    SOMA_CHECK(x.dim() >= 2 && x.size(1) == channels, "transforms::Normalize: mean and std have ",
               channels, " channels but x (shape ", x.shape(), ") has ",
               x.dim() >= 2 ? x.size(1) : 0, " in dimension 1 (x must be [N, C, ...])");
    outer = x.size(0);
    inner = outer == 0 ? 0 : x.numel() / (outer * channels);
  }
  const Tensor xc = x.contiguous();
  Tensor out = empty(x.shape(), kFloat32);
  if (x.numel() == 0) return out;
  soma::detail::dispatch_classic(x.dtype(), "Normalize", [&]<typename T>() {
    kernels::call<kernels::Normalize<T>>(xc.data<T>(), out.data<float>(), outer, channels, inner,
                                         scale_, mean_.data(), std_.data());
  });
  return out;
}

// ---- RandomCrop ----------------------------------------------------------------------------
RandomCrop::RandomCrop(int64_t size, int64_t padding) : size_(size), padding_(padding) {
  SOMA_CHECK(size > 0, "transforms::RandomCrop: size must be positive, got ", size);
  SOMA_CHECK(padding >= 0, "transforms::RandomCrop: padding must be non-negative, got ", padding);
}

std::vector<std::pair<int64_t, int64_t>> RandomCrop::offsets(const Context& ctx, int64_t n,
                                                             int64_t h, int64_t w) const {
  const int64_t ph = h + 2 * padding_, pw = w + 2 * padding_;
  SOMA_CHECK(size_ <= ph && size_ <= pw, "transforms::RandomCrop: crop size ", size_,
             " is larger than the padded image ", ph, "x", pw, " (image ", h, "x", w, ", padding ",
             padding_, ")");
  std::vector<std::pair<int64_t, int64_t>> out(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k)
    out[k] = {below(ctx.random(k, kCropSalt, 0), ph - size_ + 1),
              below(ctx.random(k, kCropSalt, 1), pw - size_ + 1)};
  return out;
}

Tensor RandomCrop::apply(const Tensor& x, const Context& ctx) const {
  check_context("transforms::RandomCrop", x, ctx);
  check_image("transforms::RandomCrop", x);
  const int64_t n = x.size(0);
  const auto offs = offsets(ctx, n, x.size(x.dim() - 2), x.size(x.dim() - 1));
  std::vector<int64_t> top(static_cast<size_t>(n)), left(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) std::tie(top[k], left[k]) = offs[k];
  return pad_crop(x, size_, size_, padding_, top, left);
}

// ---- RandomHorizontalFlip ------------------------------------------------------------------
RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  SOMA_CHECK(p >= 0.0 && p <= 1.0, "transforms::RandomHorizontalFlip: p must be in [0, 1], got ",
             p);
}

std::vector<uint8_t> RandomHorizontalFlip::decisions(const Context& ctx, int64_t n) const {
  std::vector<uint8_t> flip(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const double u = static_cast<double>(ctx.random(k, kFlipSalt) >> 11) * 0x1.0p-53;  // [0, 1)
    flip[k] = u < p_ ? 1 : 0;
  }
  return flip;
}

Tensor RandomHorizontalFlip::apply(const Tensor& x, const Context& ctx) const {
  check_context("transforms::RandomHorizontalFlip", x, ctx);
  check_image("transforms::RandomHorizontalFlip", x);
  return hflip(x, decisions(ctx, x.size(0)));
}

// ---- Reshape, Lambda, Compose --------------------------------------------------------------
Reshape::Reshape(std::vector<int64_t> sample_shape) : shape_(std::move(sample_shape)) {
  int64_t unknown = 0;
  for (int64_t d : shape_) {
    SOMA_CHECK(d >= 0 || d == -1, "transforms::Reshape: invalid sample shape ", shape_);
    unknown += d == -1;
  }
  SOMA_CHECK(unknown <= 1, "transforms::Reshape: at most one -1 in the sample shape, got ", shape_);
}

Tensor Reshape::apply(const Tensor& x, const Context& ctx) const {
  check_context("transforms::Reshape", x, ctx);
  std::vector<int64_t> shape{x.size(0)};
  shape.insert(shape.end(), shape_.begin(), shape_.end());
  int64_t known = 1;
  for (int64_t d : shape_) known *= d == -1 ? 1 : d;
  const int64_t per_sample = x.size(0) == 0 ? -1 : x.numel() / x.size(0);
  if (x.size(0) > 0)
    SOMA_CHECK(
        known > 0 && (per_sample % known == 0) &&
            (per_sample == known || std::find(shape_.begin(), shape_.end(), -1) != shape_.end()),
        "transforms::Reshape: samples of x (shape ", x.shape(), ") have ", per_sample,
        " elements, which do not fit the sample shape ", shape_);
  if (x.size(0) == 0)
    for (size_t j = 1; j < shape.size(); ++j)
      if (shape[j] == -1) shape[j] = 0;
  return x.reshape(shape);
}

Lambda::Lambda(std::function<Tensor(const Tensor&)> f) : f_(std::move(f)) {
  SOMA_CHECK(f_ != nullptr, "transforms::Lambda: the function is empty");
}

Tensor Lambda::apply(const Tensor& x, const Context& ctx) const {
  check_context("transforms::Lambda", x, ctx);
  return f_(x);
}

Compose::Compose(std::vector<Transform> stages) : stages_(std::move(stages)) {}

Tensor Compose::apply(const Tensor& x, const Context& ctx) const {
  Tensor y = x;
  Context c = ctx;
  for (size_t j = 0; j < stages_.size(); ++j) {
    c.stream = mix(ctx.stream ^ (0xC0FFEEULL + j));
    y = stages_[j](y, c);
  }
  return y;
}

// ---- functional ----------------------------------------------------------------------------
Tensor pad_crop(const Tensor& x, int64_t height, int64_t width, int64_t padding,
                const std::vector<int64_t>& top, const std::vector<int64_t>& left) {
  check_image("transforms::pad_crop", x);
  const int64_t n = x.size(0), h = x.size(x.dim() - 2), w = x.size(x.dim() - 1);
  SOMA_CHECK(height > 0 && width > 0 && padding >= 0, "transforms::pad_crop: invalid size ", height,
             "x", width, " or padding ", padding);
  SOMA_CHECK(static_cast<int64_t>(top.size()) == n && static_cast<int64_t>(left.size()) == n,
             "transforms::pad_crop: ", top.size(), " top and ", left.size(), " left offsets for ",
             n, " samples");
  const int64_t ph = h + 2 * padding, pw = w + 2 * padding;
  for (int64_t k = 0; k < n; ++k)
    SOMA_CHECK(top[k] >= 0 && left[k] >= 0 && top[k] + height <= ph && left[k] + width <= pw,
               "transforms::pad_crop: window ", height, "x", width, " at (", top[k], ", ", left[k],
               ") of sample ", k, " does not fit the padded image ", ph, "x", pw);
  std::vector<int64_t> shape = x.shape();
  shape[shape.size() - 2] = height;
  shape[shape.size() - 1] = width;
  Tensor out = empty(shape, x.dtype());
  if (out.numel() == 0) return out;
  const Tensor xc = x.contiguous();
  const int64_t planes = x.numel() / (n * h * w);
  soma::detail::dispatch_all(x.dtype(), [&]<typename T>() {
    kernels::call<kernels::PadCrop>(xc.data<T>(), out.data<T>(), sizeof(T), n, planes, h, w, height,
                                    width, padding, top.data(), left.data());
  });
  return out;
}

Tensor hflip(const Tensor& x, const std::vector<uint8_t>& flip) {
  check_image("transforms::hflip", x);
  const int64_t n = x.size(0), w = x.size(x.dim() - 1);
  SOMA_CHECK(static_cast<int64_t>(flip.size()) == n, "transforms::hflip: ", flip.size(),
             " flags for ", n, " samples");
  Tensor out = empty(x.shape(), x.dtype());
  if (x.numel() == 0) return out;
  const Tensor xc = x.contiguous();
  const int64_t rows = x.numel() / (n * w);
  soma::detail::dispatch_all(x.dtype(), [&]<typename T>() {
    kernels::call<kernels::HFlip>(xc.data<T>(), out.data<T>(), sizeof(T), n, rows, w, flip.data());
  });
  return out;
}

}  // namespace soma::data::transforms
