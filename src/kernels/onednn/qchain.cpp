// int8 inference chains on oneDNN (see kernels/onednn/qchain.h). Built only with SOMA_ONEDNN.
#include "kernels/onednn/qchain.h"

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "kernels/cpu/lowp.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"
#include "kernels/onednn/common.h"
#include "soma/core/error.h"

namespace soma::kernels::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using dims = memory::dims;

// As in fused.cpp: the right/bottom padding that makes oneDNN's output size equal `out`.
int64_t pad_right(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pl, int64_t d) {
  if ((in + 2 * pl - d * (k - 1) - 1) / s + 1 == out) return pl;
  return (out - 1) * s + d * (k - 1) + 1 - in - pl;
}

struct StagePlan {
  std::optional<dnnl::reorder> to_src;  // the previous output (or the quantized x) into the conv's
  memory::desc src, dst, wei, bias, conv_scratch;
  dnnl::primitive conv;
  Buffer weights;  // the stage's weights in `wei`'s format (with oneDNN's zero-point compensation)
  bool src_zp = false, dst_zp = false;
  bool pool = false;
  bool own_pool = false;  // max_pool_nhwc_u8 rather than pool_prim
  memory::desc pool_dst, pool_scratch;
  dnnl::primitive pool_prim;
};

// out[k] = max(out[k], in[k]) for k < c (vectorized: the two never overlap). C > 0: c == C,
// known at compile time (one or two vector instructions per call).
template <int C>
SOMA_VECTOR_INLINE void max_into(uint8_t* __restrict out, const uint8_t* __restrict in, int64_t c) {
  const int64_t n = C > 0 ? C : c;
  for (int64_t k = 0; k < n; ++k) out[k] = in[k] > out[k] ? in[k] : out[k];
}

// Max pooling of uint8 NHWC [n, h, w, c] into NHWC [n, p.oh, p.ow, c]: per output pixel, the
// maximum over the window's positions inside the input (padding never wins, as torch's -inf
// padding). oneDNN's int8 pooling on NHWC takes several times longer for a few channels (the
// CNN preset's 32 channels: 3.9 ms for a batch of 256 on one thread).
template <int C>
void max_pool_nhwc_u8_impl(const uint8_t* x, uint8_t* y, int64_t n, int64_t c, int64_t h, int64_t w,
                           const MaxPoolGeometry& p) {
  // 0 is uint8's least value, so the maximum over a window's positions inside the input is
  // the maximum of 0 and them: each output row starts at 0.
  cpu::parallel_for(n * p.oh, 1, [&](int64_t begin, int64_t end) {
    cpu::with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t img = r / p.oh, oy = r % p.oh;
        uint8_t* out_row = y + (img * p.oh + oy) * p.ow * c;
        std::memset(out_row, 0, static_cast<size_t>(p.ow * c));
        for (int64_t ky = 0; ky < p.kh; ++ky) {
          const int64_t iy = oy * p.sh - p.ph + ky * p.dh;
          if (iy < 0 || iy >= h) continue;
          const uint8_t* in_row = x + (img * h + iy) * w * c;
          for (int64_t ox = 0; ox < p.ow; ++ox)
            for (int64_t kx = 0; kx < p.kw; ++kx) {
              const int64_t ix = ox * p.sw - p.pw + kx * p.dw;
              if (ix >= 0 && ix < w) max_into<C>(out_row + ox * c, in_row + ix * c, c);
            }
        }
      }
    });
  });
}

void max_pool_nhwc_u8(const uint8_t* x, uint8_t* y, int64_t n, int64_t c, int64_t h, int64_t w,
                      const MaxPoolGeometry& p) {
  switch (c) {
    case 16:
      return max_pool_nhwc_u8_impl<16>(x, y, n, c, h, w, p);
    case 32:
      return max_pool_nhwc_u8_impl<32>(x, y, n, c, h, w, p);
    case 64:
      return max_pool_nhwc_u8_impl<64>(x, y, n, c, h, w, p);
    case 128:
      return max_pool_nhwc_u8_impl<128>(x, y, n, c, h, w, p);
    default:
      return max_pool_nhwc_u8_impl<0>(x, y, n, c, h, w, p);
  }
}

struct Plan {
  std::vector<StagePlan> stages;
  memory::desc user_in, user_out;  // u8 [n, c, h, w] as quantized; the output's NCHW (u8 or f32)
  std::optional<dnnl::reorder> to_user;
  size_t scratch_bytes = 0;
  std::vector<std::string> impls;
};

// What a stage's convolution needs besides the weights: the per-channel output scales, the
// bias in the accumulator's units (oneDNN 2.x adds the bias to the int32 sum converted to
// float, then applies the output scales), and the zero points.
struct StageConst {
  std::vector<float> scales, bias;
  int32_t src_zp = 0, dst_zp = 0;
  bool u8_out = true;
};

}  // namespace

struct QuantChain::Impl {
  std::vector<QuantStage> stages;
  std::vector<StageConst> consts;
  float out_scale = 0;
  int32_t out_zero_point = 0;
  std::mutex mutex;
  std::list<std::pair<std::vector<int64_t>, std::shared_ptr<Plan>>> plans;  // most recent first

  std::shared_ptr<Plan> create_plan(const std::vector<ChainGeometry>& geo) const;
  std::shared_ptr<Plan> plan(const std::vector<ChainGeometry>& geo, int threads);
  void run_slice(const float* x, float* y, const std::vector<ChainGeometry>& geo,
                 int nthreads) const;
};

bool int8_exact() {
  static const bool exact = [] {
    try {
      const dnnl::engine& eng = engine();
      const memory::desc src({1, 16, 8, 8}, dt::u8, tag::any), dst({1, 16, 8, 8}, dt::u8, tag::any),
          wei({16, 16, 3, 3}, dt::s8, tag::any), bias({16}, dt::f32, tag::x);
      dnnl::primitive_attr attr;
      attr.set_output_scales(1 << 1, std::vector<float>(16, 0.5f));
      attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
      using fwd = dnnl::convolution_forward;
      const fwd::primitive_desc pd(
          fwd::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                    wei, bias, dst, {1, 1}, {0, 0}, {1, 1}, {1, 1}),
          attr, eng);
      const std::string impl = pd.impl_info_str();
      return impl.find("vnni") != std::string::npos || impl.find("amx") != std::string::npos;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return exact;
}

QuantChain::QuantChain(std::vector<QuantStage> stages, float out_scale, int32_t out_zero_point)
    : impl_(std::make_unique<Impl>()) {
  SOMA_CHECK(!stages.empty(), "onednn int8 chain: no stage");
  impl_->stages = std::move(stages);
  impl_->out_scale = out_scale;
  impl_->out_zero_point = out_zero_point;
  const size_t ns = impl_->stages.size();
  for (size_t i = 0; i < ns; ++i) {
    const QuantStage& st = impl_->stages[i];
    const size_t co = st.weight_scale.size();
    SOMA_CHECK(co > 0 && st.bias.size() == co && st.weight.size() % co == 0,
               "onednn int8 chain: stage ", i, " has ", co, " weight scales, ", st.bias.size(),
               " biases and ", st.weight.size(), " weights");
    StageConst c;
    const bool last = i + 1 == ns;
    const float next_scale = last ? out_scale : impl_->stages[i + 1].in_scale;
    c.u8_out = !last || out_scale > 0;
    c.src_zp = st.in_zero_point;
    c.dst_zp = c.u8_out ? (last ? out_zero_point : impl_->stages[i + 1].in_zero_point) : 0;
    c.scales.resize(co);
    c.bias.resize(co);
    for (size_t o = 0; o < co; ++o) {
      const float acc_scale = st.in_scale * st.weight_scale[o];  // one accumulator unit, as float
      c.bias[o] = st.bias[o] / acc_scale;
      c.scales[o] = c.u8_out ? acc_scale / next_scale : acc_scale;
    }
    impl_->consts.push_back(std::move(c));
  }
}

QuantChain::~QuantChain() = default;

std::shared_ptr<Plan> QuantChain::Impl::create_plan(const std::vector<ChainGeometry>& geo) const {
  auto plan = std::make_shared<Plan>();
  const dnnl::engine& eng = engine();
  dnnl::stream s(eng);
  const cpu::ConvGeometry& g0 = geo.front().conv;
  // One input channel: NCHW and NHWC are the same bytes, and NHWC is what the int8 kernels read.
  plan->user_in =
      memory::desc({g0.n, g0.c_in, g0.h, g0.w}, dt::u8, g0.c_in == 1 ? tag::nhwc : tag::nchw);
  memory::desc cur = plan->user_in;
  for (size_t i = 0; i < stages.size(); ++i) {
    const QuantStage& st = stages[i];
    const StageConst& c = consts[i];
    const cpu::ConvGeometry& g = geo[i].conv;
    SOMA_CHECK(g.groups == 1 && g.dh == 1 && g.dw == 1 &&
                   static_cast<int64_t>(st.weight.size()) == g.c_out * g.c_in * g.kh * g.kw,
               "onednn int8 chain: stage ", i, " geometry does not match its weights");
    StagePlan sp;
    const memory::desc src_any({g.n, g.c_in, g.h, g.w}, dt::u8, tag::any);
    const memory::desc dst_any({g.n, g.c_out, g.oh, g.ow}, c.u8_out ? dt::u8 : dt::f32, tag::any);
    const dims wei_dims{g.c_out, g.c_in, g.kh, g.kw};
    const memory::desc wei_user(wei_dims, dt::s8, tag::oihw);
    const memory::desc wei_any(wei_dims, dt::s8, tag::any);
    sp.bias = memory::desc({g.c_out}, dt::f32, tag::x);
    const dims strides{g.sh, g.sw}, dil{0, 0}, pad{g.ph, g.pw},
        pad_r{pad_right(g.h, g.oh, g.kh, g.sh, g.ph, 1), pad_right(g.w, g.ow, g.kw, g.sw, g.pw, 1)};
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(1 << 1, c.scales);
    sp.src_zp = c.src_zp != 0;
    sp.dst_zp = c.dst_zp != 0;
    if (sp.src_zp) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (sp.dst_zp) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    if (st.relu) {
      dnnl::post_ops po;
      po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(po);
    }
    using fwd = dnnl::convolution_forward;
    const fwd::primitive_desc pd(
        fwd::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any,
                  wei_any, sp.bias, dst_any, strides, dil, pad, pad_r),
        attr, eng);
    sp.src = pd.src_desc();
    sp.dst = pd.dst_desc();
    sp.wei = pd.weights_desc();
    sp.conv_scratch = pd.scratchpad_desc();
    plan->scratch_bytes = std::max(plan->scratch_bytes, sp.conv_scratch.get_size());
    plan->impls.push_back(pd.impl_info_str());
    sp.conv = fwd(pd);
    if (sp.src != cur)
      sp.to_src = dnnl::reorder(dnnl::reorder::primitive_desc(eng, cur, eng, sp.src));
    // The weights in the primitive's format, once (the reorder also writes the compensation
    // the source zero point needs when the format asks for it).
    sp.weights = Buffer(sp.wei.get_size());
    {
      memory user(wei_user, eng, const_cast<int8_t*>(st.weight.data()));
      memory prim(sp.wei, eng, sp.weights.get());
      dnnl::reorder(user, prim).execute(s, user, prim);
      s.wait();
    }
    cur = sp.dst;
    if (geo[i].pool) {
      const MaxPoolGeometry& p = geo[i].pool_g;
      const memory::desc pdst_any({g.n, g.c_out, p.oh, p.ow}, cur.data_type(), tag::any);
      const dims pl{p.ph, p.pw}, pr{pad_right(g.oh, p.oh, p.kh, p.sh, p.ph, p.dh),
                                    pad_right(g.ow, p.ow, p.kw, p.sw, p.pw, p.dw)};
      sp.pool = true;
      const memory::desc nhwc_u8({g.n, g.c_out, g.oh, g.ow}, dt::u8, tag::nhwc);
      if (cur == nhwc_u8) {
        sp.own_pool = true;
        sp.pool_dst = memory::desc({g.n, g.c_out, p.oh, p.ow}, dt::u8, tag::nhwc);
        plan->impls.push_back("soma:max_pool_nhwc_u8");
        cur = sp.pool_dst;
        plan->stages.push_back(std::move(sp));
        continue;
      }
      using pool = dnnl::pooling_v2_forward;
      dnnl::primitive_attr pattr;
      pattr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      const pool::primitive_desc ppd(
          pool::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, cur,
                     pdst_any, {p.sh, p.sw}, {p.kh, p.kw}, {p.dh - 1, p.dw - 1}, pl, pr),
          pattr, eng);
      sp.pool_dst = ppd.dst_desc();
      sp.pool_scratch = ppd.scratchpad_desc();
      plan->scratch_bytes = std::max(plan->scratch_bytes, sp.pool_scratch.get_size());
      plan->impls.push_back(ppd.impl_info_str());
      sp.pool_prim = pool(ppd);
      cur = sp.pool_dst;
    }
    plan->stages.push_back(std::move(sp));
  }
  const ChainGeometry& last = geo.back();
  const int64_t oh = last.pool ? last.pool_g.oh : last.conv.oh,
                ow = last.pool ? last.pool_g.ow : last.conv.ow;
  plan->user_out = memory::desc({last.conv.n, last.conv.c_out, oh, ow}, cur.data_type(), tag::nchw);
  if (cur != plan->user_out)
    plan->to_user = dnnl::reorder(dnnl::reorder::primitive_desc(eng, cur, eng, plan->user_out));
  return plan;
}

std::shared_ptr<Plan> QuantChain::Impl::plan(const std::vector<ChainGeometry>& geo, int threads) {
  SOMA_CHECK(geo.size() == stages.size(), "onednn int8 chain: ", geo.size(), " geometries for ",
             stages.size(), " stages");
  std::vector<int64_t> key{threads};
  for (const ChainGeometry& c : geo) {
    const cpu::ConvGeometry& g = c.conv;
    const MaxPoolGeometry& p = c.pool_g;
    key.insert(key.end(), {g.n,  g.c_in, g.h,  g.w,  g.c_out,  g.kh, g.kw, g.sh,   g.sw,
                           g.ph, g.pw,   g.dh, g.dw, g.groups, g.oh, g.ow, c.pool, p.kh,
                           p.kw, p.sh,   p.sw, p.ph, p.pw,     p.dh, p.dw, p.oh,   p.ow});
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto it = plans.begin(); it != plans.end(); ++it)
      if (it->first == key) {
        plans.splice(plans.begin(), plans, it);
        return plans.front().second;
      }
  }
  std::shared_ptr<Plan> p;
  try {
    p = create_plan(geo);  // outside the lock (milliseconds)
  } catch (const dnnl::error& err) {
    soma::detail::fail("onednn int8 chain: cannot create the primitives for input [", geo[0].conv.n,
                       ", ", geo[0].conv.c_in, ", ", geo[0].conv.h, ", ", geo[0].conv.w, "] (",
                       stages.size(), " stages): ", err.what());
  }
  std::lock_guard<std::mutex> lock(mutex);
  plans.emplace_front(std::move(key), p);
  if (plans.size() > 8) plans.pop_back();
  return p;
}

void QuantChain::run(const float* x, float* y, const std::vector<ChainGeometry>& geo) const {
  OmpThreads threads;
  SOMA_CHECK(!geo.empty(), "onednn int8 chain: no geometry");
  // A few images at a time, so that each stage's output is still in cache when the next
  // primitive (the pooling, the next convolution) reads it: kSliceBytes of the largest
  // intermediate per slice.
  const cpu::ConvGeometry& g0 = geo.front().conv;
  const ChainGeometry& gl = geo.back();
  int64_t per_image = 1;
  for (const ChainGeometry& c : geo)
    per_image = std::max(per_image, c.conv.c_out * c.conv.oh * c.conv.ow *
                                        (c.pool ? 1 : 4));  // u8, or the last stage's float
  constexpr int64_t kSliceBytes = 512 << 10;
  const int64_t n = g0.n, slice = std::clamp<int64_t>(kSliceBytes / per_image, 1, n);
  const int64_t in_image = g0.c_in * g0.h * g0.w,
                out_image = gl.conv.c_out *
                            (gl.pool ? gl.pool_g.oh * gl.pool_g.ow : gl.conv.oh * gl.conv.ow);
  std::vector<ChainGeometry> part = geo;
  for (int64_t b = 0; b < n; b += slice) {
    const int64_t m = std::min(slice, n - b);
    for (ChainGeometry& c : part) c.conv.n = m;
    impl_->run_slice(x + b * in_image, y + b * out_image, part, threads.n());
  }
}

void QuantChain::Impl::run_slice(const float* x, float* y, const std::vector<ChainGeometry>& geo,
                                 int nthreads) const {
  const std::shared_ptr<Plan> plan = const_cast<Impl*>(this)->plan(geo, nthreads);
  const cpu::ConvGeometry& g0 = geo.front().conv;
  const QuantStage& first = stages.front();
  const int64_t in_numel = g0.n * g0.c_in * g0.h * g0.w;
  try {
    const dnnl::engine& eng = engine();
    dnnl::stream s(eng);
    Buffer scratch(plan->scratch_bytes);
    Buffer qx(static_cast<size_t>(in_numel));
    {
      auto* q = static_cast<uint8_t*>(qx.get());
      cpu::parallel_for(in_numel, 1 << 16, [&](int64_t b, int64_t e) {
        lowp::quantize_u8(x + b, e - b, first.in_scale, first.in_zero_point, q + b);
      });
    }
    std::vector<Buffer> temps;
    temps.reserve(3 * plan->stages.size() + 1);
    auto temp = [&](const memory::desc& d) {
      temps.emplace_back(d.get_size());
      return memory(d, eng, temps.back().get());
    };
    const bool f32_out = plan->user_out.data_type() == dt::f32;
    memory cur(plan->user_in, eng, qx.get());
    for (size_t i = 0; i < plan->stages.size(); ++i) {
      const StagePlan& sp = plan->stages[i];
      const StageConst& c = consts[i];
      const bool last = i + 1 == plan->stages.size();
      if (sp.to_src) {
        memory m = temp(sp.src);
        sp.to_src->execute(s, cur, m);
        cur = m;
      }
      const bool direct = last && !sp.pool && f32_out && !plan->to_user;
      memory dst = direct ? memory(sp.dst, eng, y) : temp(sp.dst);
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, cur},
          {DNNL_ARG_WEIGHTS, memory(sp.wei, eng, sp.weights.get())},
          {DNNL_ARG_BIAS, memory(sp.bias, eng, const_cast<float*>(c.bias.data()))},
          {DNNL_ARG_DST, dst}};
      const memory::desc zp_md({1}, dt::s32, tag::x);
      if (sp.src_zp)
        args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
                     memory(zp_md, eng, const_cast<int32_t*>(&c.src_zp)));
      if (sp.dst_zp)
        args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST,
                     memory(zp_md, eng, const_cast<int32_t*>(&c.dst_zp)));
      if (sp.conv_scratch.get_size() > 0)
        args.emplace(DNNL_ARG_SCRATCHPAD, memory(sp.conv_scratch, eng, scratch.get()));
      sp.conv.execute(s, args);
      cur = dst;
      if (sp.pool) {
        const bool pdirect = last && f32_out && !plan->to_user;
        memory pdst = pdirect ? memory(sp.pool_dst, eng, y) : temp(sp.pool_dst);
        if (sp.own_pool) {
          s.wait();  // the convolution's output is complete
          const cpu::ConvGeometry& g = geo[i].conv;
          max_pool_nhwc_u8(static_cast<const uint8_t*>(cur.get_data_handle()),
                           static_cast<uint8_t*>(pdst.get_data_handle()), g.n, g.c_out, g.oh, g.ow,
                           geo[i].pool_g);
          cur = pdst;
          continue;
        }
        std::unordered_map<int, memory> pargs{{DNNL_ARG_SRC, cur}, {DNNL_ARG_DST, pdst}};
        if (sp.pool_scratch.get_size() > 0)
          pargs.emplace(DNNL_ARG_SCRATCHPAD, memory(sp.pool_scratch, eng, scratch.get()));
        sp.pool_prim.execute(s, pargs);
        cur = pdst;
      }
    }
    if (plan->to_user) {
      memory user = f32_out ? memory(plan->user_out, eng, y) : temp(plan->user_out);
      plan->to_user->execute(s, cur, user);
      cur = user;
    }
    s.wait();
    if (!f32_out) {  // the u8 output, dequantized with the chain's output qparams
      const auto* q = static_cast<const uint8_t*>(cur.get_data_handle());
      const int64_t numel = static_cast<int64_t>(plan->user_out.get_size());
      const float scale = out_scale;
      const int32_t zp = out_zero_point;
      cpu::parallel_for(numel, 1 << 15, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) y[k] = static_cast<float>(q[k] - zp) * scale;
      });
    }
  } catch (const dnnl::error& err) {
    soma::detail::fail("onednn int8 chain: ", err.what());
  }
}

std::vector<std::string> QuantChain::implementations(const std::vector<ChainGeometry>& g) const {
  OmpThreads threads;
  return impl_->plan(g, threads.n())->impls;
}

}  // namespace soma::kernels::onednn
