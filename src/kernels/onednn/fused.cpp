// Inference chains on oneDNN (see kernels/onednn/fused.h). Built only with SOMA_ONEDNN.
#include "kernels/onednn/fused.h"

#include <omp.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "kernels/cpu/parallel.h"
#include "kernels/onednn/common.h"
#include "soma/core/error.h"

namespace soma::kernels::onednn {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dims = memory::dims;

memory::desc md(const dims& d, tag t) {
  return memory::desc(d, memory::data_type::f32, t);
}

// The right/bottom padding that makes oneDNN's (in + pl + pr - d (k - 1) - 1) / s + 1 equal
// `out`: pl itself when the floor formula already gives it, else the exact fit (a pooling's
// ceil_mode, whose last window starts inside the input or its left padding, as torch checks).
int64_t pad_right(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pl, int64_t d) {
  if ((in + 2 * pl - d * (k - 1) - 1) / s + 1 == out) return pl;
  return (out - 1) * s + d * (k - 1) + 1 - in - pl;
}

struct StagePlan {
  std::optional<dnnl::reorder> to_src;  // the previous output (or x) into the conv's format
  memory::desc src, dst, wei, bias, conv_scratch;
  dnnl::primitive conv;
  Buffer weights;  // the stage's weights in `wei`'s format
  bool pool = false;
  memory::desc pool_dst, pool_scratch;
  dnnl::primitive pool_prim;
};

struct Plan {
  std::vector<StagePlan> stages;
  memory::desc user_in, user_out;
  std::optional<dnnl::reorder> to_user;  // the last output into NCHW
  size_t scratch_bytes = 0;
  std::vector<std::string> impls;
};

dnnl::primitive_attr make_attr(bool relu) {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per call: safe across threads
  if (relu) {
    dnnl::post_ops po;
    po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    a.set_post_ops(po);
  }
  return a;
}

std::shared_ptr<Plan> create_plan(const std::vector<ChainStage>& stages,
                                  const std::vector<ChainGeometry>& geo) {
  auto plan = std::make_shared<Plan>();
  const dnnl::engine& eng = engine();
  dnnl::stream s(eng);
  const cpu::ConvGeometry& g0 = geo.front().conv;
  plan->user_in = md({g0.n, g0.c_in, g0.h, g0.w}, tag::nchw);
  memory::desc cur = plan->user_in;
  for (size_t i = 0; i < stages.size(); ++i) {
    const ChainStage& st = stages[i];
    const cpu::ConvGeometry& g = geo[i].conv;
    StagePlan sp;
    // The first convolution reads x as it is when it has few channels (oneDNN's nchw "first
    // convolution" kernel, as kernels/onednn/conv.cpp layout_for measured); every other one
    // reads the format it prefers.
    const bool plain_src = i == 0 && g.groups == 1 && g.c_in < 8;
    const memory::desc src_any = md({g.n, g.c_in, g.h, g.w}, plain_src ? tag::nchw : tag::any);
    const memory::desc dst_any = md({g.n, g.c_out, g.oh, g.ow}, tag::any);
    const dims wei_dims = g.groups == 1
                              ? dims{g.c_out, g.c_in, g.kh, g.kw}
                              : dims{g.groups, g.c_out / g.groups, g.c_in / g.groups, g.kh, g.kw};
    const memory::desc wei_user = md(wei_dims, g.groups == 1 ? tag::oihw : tag::goihw);
    const memory::desc wei_any = md(wei_dims, tag::any);
    const dims strides{g.sh, g.sw}, dil{g.dh - 1, g.dw - 1}, pad{g.ph, g.pw},
        pad_r{pad_right(g.h, g.oh, g.kh, g.sh, g.ph, g.dh),
              pad_right(g.w, g.ow, g.kw, g.sw, g.pw, g.dw)};
    using fwd = dnnl::convolution_forward;
    constexpr auto direct = dnnl::algorithm::convolution_direct;
    constexpr auto inference = dnnl::prop_kind::forward_inference;
    const bool has_bias = !st.bias.empty();
    sp.bias = md({g.c_out}, tag::x);
    const auto d = has_bias ? fwd::desc(inference, direct, src_any, wei_any, sp.bias, dst_any,
                                        strides, dil, pad, pad_r)
                            : fwd::desc(inference, direct, src_any, wei_any, dst_any, strides, dil,
                                        pad, pad_r);
    const fwd::primitive_desc pd(d, make_attr(st.relu), eng);
    sp.src = pd.src_desc();
    sp.dst = pd.dst_desc();
    sp.wei = pd.weights_desc();
    sp.conv_scratch = pd.scratchpad_desc();
    plan->scratch_bytes = std::max(plan->scratch_bytes, sp.conv_scratch.get_size());
    plan->impls.push_back(pd.impl_info_str());
    sp.conv = fwd(pd);
    if (sp.src != cur)
      sp.to_src = dnnl::reorder(dnnl::reorder::primitive_desc(eng, cur, eng, sp.src));
    // The weights in the primitive's format, once.
    sp.weights = Buffer(sp.wei.get_size());
    {
      memory user(wei_user, eng, const_cast<float*>(st.weight.data()));
      memory prim(sp.wei, eng, sp.weights.get());
      if (sp.wei == wei_user)
        std::copy_n(st.weight.data(), st.weight.size(), static_cast<float*>(sp.weights.get()));
      else
        dnnl::reorder(user, prim).execute(s, user, prim);
      s.wait();
    }
    cur = sp.dst;
    if (geo[i].pool) {
      const MaxPoolGeometry& p = geo[i].pool_g;
      const memory::desc pdst_any = md({g.n, g.c_out, p.oh, p.ow}, tag::any);
      const dims pl{p.ph, p.pw}, pr{pad_right(g.oh, p.oh, p.kh, p.sh, p.ph, p.dh),
                                    pad_right(g.ow, p.ow, p.kw, p.sw, p.pw, p.dw)};
      using pool = dnnl::pooling_v2_forward;
      const pool::primitive_desc ppd(
          pool::desc(inference, dnnl::algorithm::pooling_max, cur, pdst_any, {p.sh, p.sw},
                     {p.kh, p.kw}, {p.dh - 1, p.dw - 1}, pl, pr),
          make_attr(false), eng);
      sp.pool = true;
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
  plan->user_out = md({last.conv.n, last.conv.c_out, oh, ow}, tag::nchw);
  if (cur != plan->user_out)
    plan->to_user = dnnl::reorder(dnnl::reorder::primitive_desc(eng, cur, eng, plan->user_out));
  return plan;
}

constexpr size_t kCapacity = 8;

}  // namespace

struct FusedChain::Impl {
  std::vector<ChainStage> stages;
  std::mutex mutex;
  std::list<std::pair<std::vector<int64_t>, std::shared_ptr<Plan>>> plans;  // most recent first

  std::shared_ptr<Plan> plan(const std::vector<ChainGeometry>& geo, int threads) {
    SOMA_CHECK(geo.size() == stages.size() && !geo.empty(), "fused chain: ", geo.size(),
               " geometries for ", stages.size(), " stages");
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
      p = create_plan(stages, geo);  // outside the lock (milliseconds)
    } catch (const dnnl::error& err) {
      soma::detail::fail("onednn fused chain: cannot create the primitives for input [",
                         geo[0].conv.n, ", ", geo[0].conv.c_in, ", ", geo[0].conv.h, ", ",
                         geo[0].conv.w, "] (", stages.size(), " stages): ", err.what());
    }
    std::lock_guard<std::mutex> lock(mutex);
    plans.emplace_front(std::move(key), p);
    if (plans.size() > kCapacity) plans.pop_back();
    return p;
  }
};

FusedChain::FusedChain(std::vector<ChainStage> stages) : impl_(std::make_unique<Impl>()) {
  impl_->stages = std::move(stages);
}
FusedChain::~FusedChain() = default;

void FusedChain::run(const float* x, float* y, const std::vector<ChainGeometry>& geo) const {
  OmpThreads threads;
  const std::shared_ptr<Plan> plan = impl_->plan(geo, threads.n());
  try {
    const dnnl::engine& eng = engine();
    dnnl::stream s(eng);
    Buffer scratch(plan->scratch_bytes);
    std::vector<Buffer> temps;
    temps.reserve(3 * plan->stages.size());
    memory cur(plan->user_in, eng, const_cast<float*>(x));
    // The memory an output of descriptor `d` goes to: y when it is the chain's final output
    // in NCHW already, else a temporary.
    auto output = [&](const memory::desc& d, bool final) {
      if (final && !plan->to_user) return memory(d, eng, y);
      temps.emplace_back(d.get_size());
      return memory(d, eng, temps.back().get());
    };
    for (size_t i = 0; i < plan->stages.size(); ++i) {
      const StagePlan& sp = plan->stages[i];
      const bool last = i + 1 == plan->stages.size();
      if (sp.to_src) {
        memory m = output(sp.src, false);
        sp.to_src->execute(s, cur, m);
        cur = m;
      }
      memory dst = output(sp.dst, last && !sp.pool);
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, cur},
          {DNNL_ARG_WEIGHTS, memory(sp.wei, eng, sp.weights.get())},
          {DNNL_ARG_DST, dst}};
      const ChainStage& st = impl_->stages[i];
      if (!st.bias.empty())
        args.emplace(DNNL_ARG_BIAS, memory(sp.bias, eng, const_cast<float*>(st.bias.data())));
      if (sp.conv_scratch.get_size() > 0)
        args.emplace(DNNL_ARG_SCRATCHPAD, memory(sp.conv_scratch, eng, scratch.get()));
      sp.conv.execute(s, args);
      cur = dst;
      if (sp.pool) {
        memory pdst = output(sp.pool_dst, last);
        std::unordered_map<int, memory> pargs{{DNNL_ARG_SRC, cur}, {DNNL_ARG_DST, pdst}};
        if (sp.pool_scratch.get_size() > 0)
          pargs.emplace(DNNL_ARG_SCRATCHPAD, memory(sp.pool_scratch, eng, scratch.get()));
        sp.pool_prim.execute(s, pargs);
        cur = pdst;
      }
    }
    if (plan->to_user) {
      memory user(plan->user_out, eng, y);
      plan->to_user->execute(s, cur, user);
    }
    s.wait();
  } catch (const dnnl::error& err) {
    soma::detail::fail("onednn fused chain: ", err.what());
  }
}

std::vector<std::string> FusedChain::implementations(const std::vector<ChainGeometry>& g) const {
  OmpThreads threads;
  return impl_->plan(g, threads.n())->impls;
}

}  // namespace soma::kernels::onednn
