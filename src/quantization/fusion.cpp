// Sequential's inference fusion for statically quantized models (DESIGN.md, "Inference
// fusion"): a run of QuantizedConv2d [MaxPool2d] stages, with the Identity modules convert()
// leaves where BatchNorm2d and ReLU were, runs as one oneDNN int8 chain
// (kernels/onednn/qchain.h): uint8 activations between the stages, the ReLU and the next
// stage's input quantization fused into each convolution, the pooling on uint8. When the next
// module after the run (past Identity and Flatten) is a quantized layer, the chain's output is
// quantized with that layer's input qparams already and handed over dequantized, which that
// layer quantizes back to the same values. Only on CPUs with AVX-512 VNNI (after
// SOMA_MAX_CPU_ISA), whose int8 products oneDNN sums exactly in int32.
#include <cmath>
#include <cstring>
#include <memory>
#include <typeinfo>
#include <vector>

#include "core/tensor_impl.h"
#include "kernels/cpu/lowp.h"
#include "nn/fusion_internal.h"
#include "ops/trace.h"
#include "quantization/common.h"
#include "soma/core/error.h"
#include "soma/nn/layers.h"
#include "soma/nn/pooling.h"
#include "soma/ops/shape.h"
#include "soma/quantization/quantization.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/qchain.h"
#endif

namespace soma::quantization::internal {

#ifdef SOMA_ONEDNN
namespace {

namespace ok = kernels::onednn;
using Children = std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>;

bool valid_qparams(const Tensor& scale, const Tensor& zp) {
  if (!scale.defined() || !zp.defined() || scale.dtype() != kFloat32 || scale.numel() != 1 ||
      zp.dtype() != kInt32 || zp.numel() != 1)
    return false;
  const float s = scale.contiguous().data<float>()[0];
  const int32_t z = zp.contiguous().data<int32_t>()[0];
  return std::isfinite(s) && s > 0 && z >= 0 && z <= 255;
}

constexpr int64_t kMaxChainK = ((int64_t{1} << 31) - 1) / (255 * 128) / 2;  // 32896

// A QuantizedConv2d whose buffers are what the chain needs (anything else runs, and reports
// its error, the plain way).
QuantizedConv2d* chain_conv(nn::Module& m) {
  if (typeid(m) != typeid(QuantizedConv2d)) return nullptr;
  auto& c = static_cast<QuantizedConv2d&>(m);
  const int64_t co = c.out_channels;
  if (c.weight.dtype() != kInt8 || c.weight.shape() != Shape{co, c.in_channels, c.kh, c.kw})
    return nullptr;
  for (const Tensor* t : {&c.weight_scale, &c.bias})
    if (t->dtype() != kFloat32 || t->numel() != co) return nullptr;
  // the plain path's int32 bound on the products' length (lowp::gemm_u8s8_f32 refuses more)
  if (c.in_channels * c.kh * c.kw > kMaxChainK) return nullptr;
  const Tensor ws = c.weight_scale.contiguous(), b = c.bias.contiguous();
  for (int64_t o = 0; o < co; ++o)
    if (!(std::isfinite(ws.data<float>()[o]) && ws.data<float>()[o] > 0 &&
          std::isfinite(b.data<float>()[o])))
      return nullptr;
  return valid_qparams(c.input_scale, c.input_zero_point) ? &c : nullptr;
}

bool is_identity(const nn::Module& m) {
  return typeid(m) == typeid(nn::Identity);
}

struct Stage {
  QuantizedConv2d* conv = nullptr;
  bool pool = false;
  bool ceil_mode = false;
  ok::MaxPoolGeometry pool_g;
};

void sign_tensor(std::vector<int64_t>& sig, const Tensor& t) {
  const TensorImpl* impl = t.impl().get();
  sig.insert(sig.end(),
             {reinterpret_cast<int64_t>(impl), reinterpret_cast<int64_t>(impl->storage.get()),
              static_cast<int64_t>(impl->storage->version), impl->offset});
}

struct Entry {
  std::vector<int64_t> sig;
  std::vector<std::shared_ptr<nn::Module>> modules;  // keep the signed addresses alive
  std::shared_ptr<const ok::QuantChain> chain;
};

size_t int8_run(const Children& kids, const std::vector<char>& hooked, size_t i,
                detail::FusionCache& cache, Tensor& x) {
  const size_t n = kids.size();
  if (hooked[i] || !chain_conv(*kids[i].second) || trace::active() != nullptr) return 0;
  // Without VNNI (after SOMA_MAX_CPU_ISA, or oneDNN's own ONEDNN_MAX_CPU_ISA), oneDNN's u8 x s8
  // kernels add product pairs in saturating 16-bit sums (vpmaddubsw), which full-range int8
  // weights overflow: the module-by-module path is exact.
  if (!kernels::lowp::vnni_available() || !ok::int8_exact()) return 0;
  if (x.dtype() != kFloat32 || x.dim() != 4 || x.numel() == 0) return 0;
  // The longest run from i: (QuantizedConv2d [Identity]* [MaxPool2d [Identity]*])+, no hooks.
  std::vector<Stage> run;
  size_t j = i;
  auto skip_identities = [&] {
    while (j < n && !hooked[j] && is_identity(*kids[j].second)) ++j;
  };
  while (j < n && !hooked[j]) {
    QuantizedConv2d* conv = chain_conv(*kids[j].second);
    if (!conv) break;
    Stage st;
    st.conv = conv;
    ++j;
    skip_identities();
    if (j < n && !hooked[j] &&
        detail::max_pool_geometry(*kids[j].second, &st.pool_g, &st.ceil_mode)) {
      st.pool = true;
      ++j;
      skip_identities();
    }
    run.push_back(st);
  }
  // The next quantized layer's input qparams, when nothing but Identity / Flatten comes between.
  float out_scale = 0;
  int32_t out_zp = 0;
  const nn::Module* next = nullptr;
  for (size_t k = j; k < n && !hooked[k]; ++k) {
    const nn::Module& m = *kids[k].second;
    if (is_identity(m) || typeid(m) == typeid(nn::Flatten)) continue;
    const Tensor *s = nullptr, *z = nullptr;
    if (typeid(m) == typeid(QuantizedLinear)) {
      const auto& q = static_cast<const QuantizedLinear&>(m);
      s = &q.input_scale;
      z = &q.input_zero_point;
    } else if (typeid(m) == typeid(QuantizedConv2d)) {
      const auto& q = static_cast<const QuantizedConv2d&>(m);
      s = &q.input_scale;
      z = &q.input_zero_point;
    }
    if (s && valid_qparams(*s, *z)) {
      out_scale = s->contiguous().data<float>()[0];
      out_zp = z->contiguous().data<int32_t>()[0];
      next = &m;
    }
    break;
  }
  // The geometry for this input; a mismatch runs the plain way (which reports it).
  std::vector<ok::ChainGeometry> geo;
  int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  for (const Stage& st : run) {
    const QuantizedConv2d& q = *st.conv;
    if (c != q.in_channels) return 0;
    ok::ChainGeometry cg;
    kernels::cpu::ConvGeometry& g = cg.conv;
    g.n = x.size(0);
    g.c_in = c;
    g.h = h;
    g.w = w;
    g.c_out = q.out_channels;
    g.kh = q.kh;
    g.kw = q.kw;
    g.sh = q.stride[0];
    g.sw = q.stride[1];
    g.ph = q.padding[0];
    g.pw = q.padding[1];
    if (h + 2 * g.ph < g.kh || w + 2 * g.pw < g.kw) return 0;
    g.oh = (h + 2 * g.ph - g.kh) / g.sh + 1;
    g.ow = (w + 2 * g.pw - g.kw) / g.sw + 1;
    c = g.c_out;
    h = g.oh;
    w = g.ow;
    if (st.pool) {
      cg.pool = true;
      cg.pool_g = st.pool_g;
      ok::MaxPoolGeometry& p = cg.pool_g;
      p.oh = detail::pool_output_size(h, p.kh, p.ph, p.sh, p.dh, st.ceil_mode);
      p.ow = detail::pool_output_size(w, p.kw, p.pw, p.sw, p.dw, st.ceil_mode);
      if (p.oh < 1 || p.ow < 1) return 0;
      h = p.oh;
      w = p.ow;
    }
    geo.push_back(cg);
  }
  // The cached chain, rebuilt when any stage's buffers or the output qparams changed.
  std::vector<int64_t> sig;
  for (const Stage& st : run) {
    const QuantizedConv2d& q = *st.conv;
    sig.insert(sig.end(),
               {reinterpret_cast<int64_t>(&q), q.in_channels, q.out_channels, q.kh, q.kw, q.relu});
    for (const Tensor* t :
         {&q.weight, &q.weight_scale, &q.bias, &q.input_scale, &q.input_zero_point})
      sign_tensor(sig, *t);
  }
  int64_t scale_bits = 0;
  std::memcpy(&scale_bits, &out_scale, sizeof out_scale);
  sig.insert(sig.end(), {reinterpret_cast<int64_t>(next), scale_bits, out_zp});
  const nn::Module* key = kids[i].second.get();
  auto entry = std::static_pointer_cast<const Entry>(detail::fusion_slot(cache, key));
  if (!entry || entry->sig != sig) {
    std::vector<ok::QuantStage> stages;
    for (const Stage& st : run) {
      const QuantizedConv2d& q = *st.conv;
      ok::QuantStage s;
      const Tensor wt = q.weight.contiguous(), ws = q.weight_scale.contiguous(),
                   b = q.bias.contiguous();
      s.weight.assign(wt.data<int8_t>(), wt.data<int8_t>() + wt.numel());
      s.weight_scale.assign(ws.data<float>(), ws.data<float>() + ws.numel());
      s.bias.assign(b.data<float>(), b.data<float>() + b.numel());
      s.in_scale = q.input_scale.contiguous().data<float>()[0];
      s.in_zero_point = q.input_zero_point.contiguous().data<int32_t>()[0];
      s.relu = q.relu;
      stages.push_back(std::move(s));
    }
    auto fresh = std::make_shared<Entry>();
    fresh->sig = std::move(sig);
    for (size_t k = i; k < j; ++k) fresh->modules.push_back(kids[k].second);
    fresh->chain = std::make_shared<const ok::QuantChain>(std::move(stages), out_scale, out_zp);
    detail::set_fusion_slot(cache, key, fresh);
    entry = fresh;
  }
  const ok::ChainGeometry& last = geo.back();
  Tensor y = empty({x.size(0), last.conv.c_out, last.pool ? last.pool_g.oh : last.conv.oh,
                    last.pool ? last.pool_g.ow : last.conv.ow},
                   kFloat32);
  const Tensor xc = x.detach().contiguous();
  entry->chain->run(xc.data<float>(), y.data<float>(), geo);
  x = y;
  return j - i;
}

}  // namespace

void register_int8_fusion() {
  static const bool registered = (detail::set_run_fuser(&int8_run), true);
  (void)registered;
}

#else

void register_int8_fusion() {}

#endif

}  // namespace soma::quantization::internal
