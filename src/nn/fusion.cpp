// Conv + BatchNorm folding (torch.nn.utils.fusion) and Sequential's inference fusion
// (include/soma/nn/fusion.h; DESIGN.md, "Inference fusion"). The oneDNN side is
// kernels/onednn/fused.h; this file decides what may run there, folds the BatchNorms and
// caches the result per run of modules.
#include "soma/nn/fusion.h"

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <typeinfo>
#include <variant>
#include <vector>

#include "core/tensor_impl.h"
#include "kernels/registry.h"
#include "nn/fusion_internal.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/nn/layers.h"
#include "soma/nn/pooling.h"
#include "soma/ops/activation.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/shape.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/conv.h"
#include "kernels/onednn/fused.h"
#endif

namespace soma::nn {

// ---- torch.nn.utils.fusion -----------------------------------------------------------------
namespace utils {

std::pair<Tensor, Tensor> fuse_conv_bn_weights(const Tensor& conv_w, const Tensor& conv_b,
                                               const Tensor& bn_rm, const Tensor& bn_rv,
                                               double bn_eps, const Tensor& bn_w,
                                               const Tensor& bn_b, bool transpose) {
  const char* op = "fuse_conv_bn_weights";
  SOMA_CHECK(conv_w.defined() && bn_rm.defined() && bn_rv.defined(), op,
             ": conv_w, bn_rm and bn_rv must be defined");
  SOMA_CHECK(conv_w.dim() >= 2, op, ": conv_w must have at least 2 dims, got shape ",
             conv_w.shape());
  const int64_t c = conv_w.size(transpose ? 1 : 0);
  auto check = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    SOMA_CHECK(t.dim() == 1 && t.size(0) == c, op, ": ", name, " must have shape [", c,
               "] (the convolution's output channels), got ", t.shape());
  };
  check(conv_b, "conv_b");
  check(bn_rm, "bn_rm");
  check(bn_rv, "bn_rv");
  check(bn_w, "bn_w");
  check(bn_b, "bn_b");
  NoGradGuard no_grad;
  const Tensor rsqrt_v = rsqrt(bn_rv.detach() + bn_eps);
  const Tensor scale = bn_w.defined() ? bn_w.detach() * rsqrt_v : rsqrt_v;
  Shape shape(static_cast<size_t>(conv_w.dim()), 1);
  shape[transpose ? 1 : 0] = -1;
  Tensor w = conv_w.detach() * scale.reshape(shape);
  Tensor centred = conv_b.defined() ? conv_b.detach() - bn_rm.detach() : neg(bn_rm.detach());
  Tensor b = centred * rsqrt_v;
  if (bn_w.defined()) b = b * bn_w.detach();
  if (bn_b.defined()) b = b + bn_b.detach();
  w.requires_grad_(true);
  b.requires_grad_(true);
  return {w, b};
}

Conv2d fuse_conv_bn_eval(const Conv2d& conv, const BatchNorm2d& bn) {
  SOMA_CHECK(!conv.is_training() && !bn.is_training(),
             "fuse_conv_bn_eval: Fusion only for eval! (call eval() on the modules first)");
  SOMA_CHECK(bn.running_mean.defined() && bn.running_var.defined(),
             "fuse_conv_bn_eval: the BatchNorm2d has no running statistics ",
             "(track_running_stats=false)");
  SOMA_CHECK(bn.options.num_features() == conv.options.out_channels(),
             "fuse_conv_bn_eval: BatchNorm2d(", bn.options.num_features(), ") after a Conv2d with ",
             conv.options.out_channels(), " output channels");
  auto copy = std::dynamic_pointer_cast<Conv2d>(conv.clone());
  SOMA_CHECK(copy != nullptr, "fuse_conv_bn_eval: cannot copy ", conv.describe());
  Conv2d fused = *copy;
  auto [w, b] = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                     bn.options.eps(), bn.weight, bn.bias);
  NoGradGuard no_grad;
  fused.weight.copy_(w);
  if (fused.bias.defined()) {
    fused.bias.copy_(b);
  } else {
    fused.options.bias(true);
    fused.bias = fused.register_parameter("bias", b);
  }
  return fused;
}

}  // namespace utils

// ---- the switch ----------------------------------------------------------------------------
namespace {

std::atomic<bool>& fusion_flag() {
  static std::atomic<bool> flag = [] {
    const char* env = std::getenv("SOMA_INFERENCE_FUSION");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return flag;
}

}  // namespace

bool is_inference_fusion_enabled() {
  return fusion_flag().load(std::memory_order_relaxed);
}
void set_inference_fusion_enabled(bool enabled) {
  fusion_flag().store(enabled, std::memory_order_relaxed);
}

}  // namespace soma::nn

// ---- Sequential's fast path ----------------------------------------------------------------
namespace soma::detail {

using namespace soma::nn;  // NOLINT: this file's modules

namespace {
std::atomic<int64_t> fused_runs{0};
}  // namespace

int64_t fused_run_count() {
  return fused_runs.load(std::memory_order_relaxed);
}

#ifdef SOMA_ONEDNN
namespace {

namespace ok = kernels::onednn;

// One module of a run, as the run uses it.
struct RunConv {
  Conv2d* conv = nullptr;
  BatchNorm2d* bn = nullptr;  // or null
  bool relu = false;
  MaxPool2d* pool = nullptr;   // or null
  int64_t ph = 0, pw = 0;      // the convolution's padding
  ok::MaxPoolGeometry pool_g;  // kh..dw (oh, ow per call)
};

bool is_f32(const Tensor& t, int64_t numel) {
  return t.defined() && t.dtype() == kFloat32 && t.numel() == numel;
}

// The Conv2d the fast path can run, or null.
Conv2d* fusable_conv(Module& m) {
  if (typeid(m) != typeid(Conv2d) || m.is_training()) return nullptr;
  auto& c = static_cast<Conv2d&>(m);
  const Conv2dOptions& o = c.options;
  if (o.padding_mode() != "zeros") return nullptr;
  if (const auto* s = std::get_if<std::string>(&o.padding()); s && *s != "valid") return nullptr;
  const int64_t g = o.groups(), ci = o.in_channels(), co = o.out_channels();
  if (g < 1 || ci % g != 0 || co % g != 0 || ci < 1 || co < 1) return nullptr;
  const int64_t kh = o.kernel_size()[0], kw = o.kernel_size()[1];
  if (!c.weight.defined() || c.weight.dtype() != kFloat32 ||
      c.weight.shape() != Shape{co, ci / g, kh, kw})
    return nullptr;
  if (c.bias.defined() && !is_f32(c.bias, co)) return nullptr;
  for (int i = 0; i < 2; ++i)
    if (o.stride()[i] < 1 || o.dilation()[i] < 1 || kh < 1 || kw < 1) return nullptr;
  return &c;
}

BatchNorm2d* fusable_bn(Module& m, int64_t channels) {
  if (typeid(m) != typeid(BatchNorm2d) || m.is_training()) return nullptr;
  auto& bn = static_cast<BatchNorm2d&>(m);
  const BatchNormOptions& o = bn.options;
  if (!o.track_running_stats() || o.num_features() != channels) return nullptr;
  if (!is_f32(bn.running_mean, channels) || !is_f32(bn.running_var, channels)) return nullptr;
  if (o.affine() && (!is_f32(bn.weight, channels) || !is_f32(bn.bias, channels))) return nullptr;
  return &bn;
}

// torch's rules for max_pool2d's arguments; anything else runs (and fails) the plain way.
MaxPool2d* fusable_pool(Module& m, ok::MaxPoolGeometry* p) {
  if (typeid(m) != typeid(MaxPool2d)) return nullptr;
  auto& pool = static_cast<MaxPool2d&>(m);
  const MaxPool2dOptions& o = pool.options;
  auto two = [](const std::vector<int64_t>& v, int64_t* a, int64_t* b) {
    if (v.size() != 1 && v.size() != 2) return false;
    *a = v[0];
    *b = v.back();
    return true;
  };
  if (!two(o.kernel_size(), &p->kh, &p->kw) ||
      !two(o.stride().empty() ? o.kernel_size() : o.stride(), &p->sh, &p->sw) ||
      !two(o.padding(), &p->ph, &p->pw) || !two(o.dilation(), &p->dh, &p->dw))
    return nullptr;
  if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->ph < 0 ||
      p->pw < 0 || 2 * p->ph > p->kh || 2 * p->pw > p->kw)
    return nullptr;
  return &pool;
}

// torch's pooling_output_shape (ceil_mode: the last window starts inside the input or its
// left padding).
int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * pad - d * (k - 1) - 1;
  if (span < 0) return 0;
  int64_t out = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

// The per-call geometry of the run for an input [n, c, h, w]; false when some output would be
// empty or the channels do not chain (the plain path then runs and reports it).
bool geometry(const std::vector<RunConv>& run, const Shape& x,
              std::vector<ok::ChainGeometry>* out) {
  int64_t c = x[1], h = x[2], w = x[3];
  for (const RunConv& r : run) {
    const Conv2dOptions& o = r.conv->options;
    if (c != o.in_channels()) return false;
    ok::ChainGeometry cg;
    kernels::cpu::ConvGeometry& g = cg.conv;
    g.n = x[0];
    g.c_in = c;
    g.h = h;
    g.w = w;
    g.c_out = o.out_channels();
    g.kh = o.kernel_size()[0];
    g.kw = o.kernel_size()[1];
    g.sh = o.stride()[0];
    g.sw = o.stride()[1];
    g.ph = r.ph;
    g.pw = r.pw;
    g.dh = o.dilation()[0];
    g.dw = o.dilation()[1];
    g.groups = o.groups();
    const int64_t sh = h + 2 * g.ph - g.dh * (g.kh - 1) - 1,
                  sw = w + 2 * g.pw - g.dw * (g.kw - 1) - 1;
    if (sh < 0 || sw < 0) return false;
    g.oh = sh / g.sh + 1;
    g.ow = sw / g.sw + 1;
    c = g.c_out;
    h = g.oh;
    w = g.ow;
    if (r.pool) {
      cg.pool = true;
      cg.pool_g = r.pool_g;
      ok::MaxPoolGeometry& p = cg.pool_g;
      const bool ceil_mode = r.pool->options.ceil_mode();
      p.oh = pool_out(h, p.kh, p.ph, p.sh, p.dh, ceil_mode);
      p.ow = pool_out(w, p.kw, p.pw, p.sw, p.dw, ceil_mode);
      if (p.oh < 1 || p.ow < 1) return false;
      h = p.oh;
      w = p.ow;
    }
    out->push_back(cg);
  }
  return true;
}

// What a cached chain was built from: the modules, their options and their tensors' identity
// (storage) and version. Any change (an in-place update, load_state_dict, an optimizer step,
// to(), a new parameter, changed options) gives another signature.
void sign_tensor(std::vector<int64_t>& sig, const Tensor& t) {
  if (!t.defined()) {
    sig.push_back(-1);
    return;
  }
  const TensorImpl* impl = t.impl().get();
  sig.insert(sig.end(),
             {reinterpret_cast<int64_t>(impl), reinterpret_cast<int64_t>(impl->storage.get()),
              static_cast<int64_t>(impl->storage->version), impl->offset,
              static_cast<int64_t>(impl->dtype), static_cast<int64_t>(impl->contiguous)});
  sig.insert(sig.end(), impl->shape.begin(), impl->shape.end());
  sig.insert(sig.end(), impl->strides.begin(), impl->strides.end());
}

std::vector<int64_t> signature(const std::vector<RunConv>& run) {
  std::vector<int64_t> sig;
  for (const RunConv& r : run) {
    const Conv2dOptions& o = r.conv->options;
    sig.insert(sig.end(), {reinterpret_cast<int64_t>(r.conv), o.in_channels(), o.out_channels(),
                           o.kernel_size()[0], o.kernel_size()[1], o.groups(), r.relu});
    sign_tensor(sig, r.conv->weight);
    sign_tensor(sig, r.conv->bias);
    sig.push_back(reinterpret_cast<int64_t>(r.bn));
    if (r.bn) {
      sig.push_back(std::bit_cast<int64_t>(r.bn->options.eps()));
      sig.push_back(r.bn->options.affine());
      for (const Tensor* t : {&r.bn->weight, &r.bn->bias, &r.bn->running_mean, &r.bn->running_var})
        sign_tensor(sig, *t);
    }
  }
  return sig;
}

// The stage's folded weights, in double then rounded: w' = w scale, b' = (b - mean) scale +
// beta with scale = gamma / sqrt(var + eps).
ok::ChainStage fold(const RunConv& r) {
  ok::ChainStage st;
  st.relu = r.relu;
  const Tensor w = r.conv->weight.detach().contiguous();
  const int64_t co = r.conv->options.out_channels(), per = w.numel() / co;
  st.weight.assign(w.data<float>(), w.data<float>() + w.numel());
  std::vector<double> bias(static_cast<size_t>(co), 0.0);
  if (r.conv->bias.defined()) {
    const Tensor b = r.conv->bias.detach().contiguous();
    for (int64_t o = 0; o < co; ++o) bias[o] = b.data<float>()[o];
  }
  if (r.bn) {
    auto values = [co](const Tensor& t, double fill) {
      std::vector<double> v(static_cast<size_t>(co), fill);
      if (!t.defined()) return v;
      const Tensor c = t.detach().contiguous();
      for (int64_t o = 0; o < co; ++o) v[o] = c.data<float>()[o];
      return v;
    };
    const std::vector<double> mean = values(r.bn->running_mean, 0.0),
                              var = values(r.bn->running_var, 1.0),
                              gamma = values(r.bn->weight, 1.0), beta = values(r.bn->bias, 0.0);
    const double eps = r.bn->options.eps();
    for (int64_t o = 0; o < co; ++o) {
      const double scale = gamma[o] / std::sqrt(var[o] + eps);
      float* row = st.weight.data() + o * per;
      for (int64_t k = 0; k < per; ++k) row[k] = static_cast<float>(row[k] * scale);
      bias[o] = (bias[o] - mean[o]) * scale + beta[o];
    }
  }
  if (r.conv->bias.defined() || r.bn) st.bias.assign(bias.begin(), bias.end());
  return st;
}

}  // namespace

bool max_pool_geometry(nn::Module& m, kernels::onednn::MaxPoolGeometry* p, bool* ceil_mode) {
  nn::MaxPool2d* pool = fusable_pool(m, p);
  if (pool) *ceil_mode = pool->options.ceil_mode();
  return pool != nullptr;
}

int64_t pool_output_size(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil_mode) {
  return pool_out(in, k, pad, s, d, ceil_mode);
}

namespace {
std::atomic<RunFuser> run_fuser{nullptr};
}  // namespace

void set_run_fuser(RunFuser f) {
  run_fuser.store(f);
}

struct FusionCache {
  struct Entry {
    std::vector<int64_t> sig;
    // Hold what the signature names, so that no address in it can be reused while it is here.
    std::vector<std::shared_ptr<Storage>> storages;
    std::vector<Tensor> tensors;
    std::vector<std::shared_ptr<Module>> modules;
    std::shared_ptr<const ok::FusedChain> chain;
  };
  std::mutex mutex;
  std::map<const Module*, Entry> runs;                   // by the run's first convolution
  std::map<const Module*, std::shared_ptr<void>> slots;  // a RunFuser's, by its run's first module
};

std::shared_ptr<void> fusion_slot(FusionCache& cache, const nn::Module* key) {
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto it = cache.slots.find(key);
  return it == cache.slots.end() ? nullptr : it->second;
}

void set_fusion_slot(FusionCache& cache, const nn::Module* key, std::shared_ptr<void> value) {
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.slots[key] = std::move(value);
}

std::shared_ptr<FusionCache> new_fusion_cache() {
  return std::make_shared<FusionCache>();
}

bool fusion_applies(const Tensor& input) {
  if (!is_inference_fusion_enabled() || autograd::is_grad_enabled()) return false;
  if (!input.defined() || input.dtype() != kFloat32 || input.dim() != 4 || input.numel() == 0)
    return false;
  if (!kernels::onednn::available()) return false;
  const std::string backend = kernels::preferred_backend();
  return backend.empty() || backend == "onednn" || backend == "tuned";
}

Tensor fused_forward(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children,
                     const std::vector<char>& hooked, FusionCache& cache, const Tensor& input) {
  Tensor x = input;
  const size_t n = children.size();
  size_t i = 0;
  while (i < n) {
    // A run another layer fuses (the quantization layer's int8 convolutions)
    if (const RunFuser f = run_fuser.load())
      if (const size_t k = f(children, hooked, i, cache, x)) {
        fused_runs.fetch_add(1, std::memory_order_relaxed);
        i += k;
        continue;
      }
    // The longest run from i: (Conv2d [BatchNorm2d] [ReLU] [MaxPool2d])+, no hooks.
    std::vector<RunConv> run;
    size_t j = i;
    while (j < n && !hooked[j]) {
      Conv2d* conv = fusable_conv(*children[j].second);
      if (!conv) break;
      RunConv r;
      r.conv = conv;
      if (const auto* pad = std::get_if<ExpandingArray<2>>(&conv->options.padding())) {
        r.ph = (*pad)[0];
        r.pw = (*pad)[1];
      }
      ++j;
      if (j < n && !hooked[j])
        if ((r.bn = fusable_bn(*children[j].second, conv->options.out_channels()))) ++j;
      if (j < n && !hooked[j] && typeid(*children[j].second) == typeid(ReLU)) {
        r.relu = true;
        ++j;
      }
      if (j < n && !hooked[j])
        if ((r.pool = fusable_pool(*children[j].second, &r.pool_g))) ++j;
      run.push_back(r);
    }
    std::vector<ok::ChainGeometry> geo;
    if (run.empty() || x.dtype() != kFloat32 || x.dim() != 4 || x.numel() == 0 ||
        !geometry(run, x.shape(), &geo)) {
      x = (*children[i].second)(x);  // not fusable here: this module the plain way
      ++i;
      continue;
    }
    std::vector<int64_t> sig = signature(run);
    std::shared_ptr<const ok::FusedChain> chain;
    {
      std::lock_guard<std::mutex> lock(cache.mutex);
      auto it = cache.runs.find(run.front().conv);
      if (it != cache.runs.end() && it->second.sig == sig) chain = it->second.chain;
    }
    if (!chain) {
      std::vector<ok::ChainStage> stages;
      FusionCache::Entry e;
      for (const RunConv& r : run) {
        stages.push_back(fold(r));
        std::vector<Tensor> ts{r.conv->weight, r.conv->bias};
        if (r.bn)
          ts.insert(ts.end(), {r.bn->weight, r.bn->bias, r.bn->running_mean, r.bn->running_var});
        for (const Tensor& t : ts) {
          if (!t.defined()) continue;
          e.storages.push_back(t.impl()->storage);
          e.tensors.push_back(t);
        }
      }
      for (size_t k = i; k < j; ++k) e.modules.push_back(children[k].second);
      chain = std::make_shared<const ok::FusedChain>(std::move(stages));
      e.sig = std::move(sig);
      e.chain = chain;
      std::lock_guard<std::mutex> lock(cache.mutex);
      cache.runs[run.front().conv] = std::move(e);
    }
    const ok::ChainGeometry& last = geo.back();
    Tensor y = empty({x.size(0), last.conv.c_out, last.pool ? last.pool_g.oh : last.conv.oh,
                      last.pool ? last.pool_g.ow : last.conv.ow},
                     kFloat32);
    const Tensor xc = x.detach().contiguous();
    chain->run(xc.data<float>(), y.data<float>(), geo);
    fused_runs.fetch_add(1, std::memory_order_relaxed);
    x = y;
    i = j;
  }
  return x;
}

#else  // without oneDNN: never fused

struct FusionCache {};
std::shared_ptr<FusionCache> new_fusion_cache() {
  return std::make_shared<FusionCache>();
}
void set_run_fuser(RunFuser) {}
std::shared_ptr<void> fusion_slot(FusionCache&, const nn::Module*) {
  return nullptr;
}
void set_fusion_slot(FusionCache&, const nn::Module*, std::shared_ptr<void>) {}
bool fusion_applies(const Tensor&) {
  return false;
}
Tensor fused_forward(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children,
                     const std::vector<char>&, FusionCache&, const Tensor& input) {
  Tensor x = input;
  for (const auto& [name, child] : children) x = (*child)(x);
  return x;
}

#endif

}  // namespace soma::detail
