// oneDNN convolutions (see kernels/onednn/conv.h). Built only with SOMA_ONEDNN.
#include "kernels/onednn/conv.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>
#include <utility>

#include "kernels/cpu/parallel.h"
#include "kernels/kernels.h"
#include "kernels/onednn/common.h"
#include "soma/core/error.h"

namespace soma::kernels::onednn {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dims = memory::dims;

// ---- descriptors ---------------------------------------------------------------------------
dims src_dims(const cpu::ConvGeometry& g) {
  return {g.n, g.c_in, g.h, g.w};
}
dims dst_dims(const cpu::ConvGeometry& g) {
  return {g.n, g.c_out, g.oh, g.ow};
}
dims wei_dims(const cpu::ConvGeometry& g) {
  if (g.groups == 1) return {g.c_out, g.c_in, g.kh, g.kw};
  return {g.groups, g.c_out / g.groups, g.c_in / g.groups, g.kh, g.kw};
}
tag wei_plain(const cpu::ConvGeometry& g) {
  return g.groups == 1 ? tag::oihw : tag::goihw;
}

using dt = memory::data_type;

memory::desc md(const dims& d, tag t, dt type = dt::f32) {
  return memory::desc(d, type, t);
}

// A tensor the primitive reads or writes: the caller's plain buffer, and the format the
// primitive wants with the reorder between them when they differ.
struct Port {
  memory::desc user, prim;
  std::optional<dnnl::reorder> to_prim, to_user;  // user -> prim (inputs), prim -> user (outputs)
  bool reordered() const { return user != prim; }
};

Port make_port(const memory::desc& user, const memory::desc& prim, bool output) {
  Port p{user, prim, std::nullopt, std::nullopt};
  if (!p.reordered()) return p;
  if (output)
    p.to_user = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), prim, engine(), user));
  else
    p.to_prim = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), user, engine(), prim));
  return p;
}

struct Entry {
  dnnl::primitive prim;
  std::string impl;
  memory::desc scratch;
  Port a, b, out;  // forward: src, weights, dst; backward_input: diff_dst, weights, diff_src;
                   // backward_weight: src, diff_dst, diff_weights
  bool bias = false;
  memory::desc bias_md;
  // A bfloat16 convolution oneDNN refuses (below AVX-512: no bf16 at all, or
  // ONEDNN_MAX_CPU_ISA below it) or could only run on its reference loops: the callers run
  // soma's "cpu" kernels (im2col + the bf16 GEMM, its exact emulation without AVX512_BF16).
  bool bf16 = false, slow_bf16 = false;
};

std::atomic<int64_t> bf16_runs{0};

// The entry's implementation name, and whether a bf16 one is oneDNN's reference fallback.
void describe(Entry& e, const char* impl, const cpu::ConvGeometry& g) {
  e.impl = impl;
  e.bf16 = g.bf16;
  e.slow_bf16 = g.bf16 && e.impl.rfind("ref", 0) == 0;
}

dnnl::primitive_attr attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per call: safe across threads
  return a;
}

// oneDNN's right/bottom padding: what makes (h + ph + pad_r - dh (kh - 1) - 1) / sh + 1 equal
// oh exactly. It is ph for a convolution's own geometry; a transposed convolution with
// output_padding >= stride (torch allows it below the dilation) runs the adjoint of a
// convolution whose last rows are never reached, so pad_r is smaller there.
dnnl::memory::dims right_padding(const cpu::ConvGeometry& g) {
  const auto one = [](int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d) {
    if ((in + 2 * p - d * (k - 1) - 1) / s + 1 == out) return p;  // the convolution's own
    return (out - 1) * s + d * (k - 1) + 1 - in - p;              // the exact fit
  };
  return {one(g.h, g.oh, g.kh, g.sh, g.ph, g.dh), one(g.w, g.ow, g.kw, g.sw, g.pw, g.dw)};
}

// What every primitive of one geometry is described by: the memory descriptors the layout
// asks for (tag::any lets oneDNN choose) and the strides, dilations and paddings.
//
// With g.bf16 (soma::autocast) the two operands of the kind's product are bfloat16 and the
// result float32 (oneDNN accumulates in float32): forward src, weights -> dst;
// backward_input diff_dst, weights -> diff_src; backward_weight src, diff_dst ->
// diff_weights (and the float32 bias gradient). The caller's buffers stay float32: the ports'
// reorders convert them (round to nearest even, as soma's own float_to_bf16_bits).
struct ConvDesc {
  memory::desc src, dst, wei;
  dims strides, dil, pad, pad_r;
};
ConvDesc conv_desc(const cpu::ConvGeometry& g, Layout layout, ConvKind kind) {
  const bool any_io = layout == Layout::blocked, any_w = layout != Layout::plain;
  const bool bf = g.bf16;
  const dt src_t = bf && kind != ConvKind::backward_input ? dt::bf16 : dt::f32;
  const dt dst_t = bf && kind != ConvKind::forward ? dt::bf16 : dt::f32;
  const dt wei_t = bf && kind != ConvKind::backward_weight ? dt::bf16 : dt::f32;
  return {md(src_dims(g), any_io ? tag::any : tag::nchw, src_t),
          md(dst_dims(g), any_io ? tag::any : tag::nchw, dst_t),
          md(wei_dims(g), any_w ? tag::any : wei_plain(g), wei_t),
          {g.sh, g.sw},
          {g.dh - 1, g.dw - 1},
          {g.ph, g.pw},
          right_padding(g)};
}

dnnl::convolution_forward::primitive_desc forward_pd(const cpu::ConvGeometry& g, Layout layout,
                                                     bool bias, dnnl::prop_kind prop) {
  const ConvDesc d = conv_desc(g, layout, ConvKind::forward);
  using fwd = dnnl::convolution_forward;
  constexpr auto direct = dnnl::algorithm::convolution_direct;
  if (bias)
    return {fwd::desc(prop, direct, d.src, d.wei, md({g.c_out}, tag::x), d.dst, d.strides, d.dil,
                      d.pad, d.pad_r),
            attr(), engine()};
  return {fwd::desc(prop, direct, d.src, d.wei, d.dst, d.strides, d.dil, d.pad, d.pad_r), attr(),
          engine()};
}

std::shared_ptr<Entry> create(ConvKind kind, Layout layout, bool bias, const cpu::ConvGeometry& g) {
  auto e = std::make_shared<Entry>();
  const memory::desc src_u = md(src_dims(g), tag::nchw), dst_u = md(dst_dims(g), tag::nchw),
                     wei_u = md(wei_dims(g), wei_plain(g));
  e->bias = bias;
  e->bias_md = md({g.c_out}, tag::x);
  if (kind == ConvKind::forward) {
    auto pd = forward_pd(g, layout, bias, dnnl::prop_kind::forward_inference);
    e->a = make_port(src_u, pd.src_desc(), false);
    e->b = make_port(wei_u, pd.weights_desc(), false);
    e->out = make_port(dst_u, pd.dst_desc(), true);
    e->scratch = pd.scratchpad_desc();
    describe(*e, pd.impl_info_str(), g);
    e->prim = dnnl::convolution_forward(pd);
    return e;
  }
  const auto hint = forward_pd(g, layout, bias, dnnl::prop_kind::forward_training);
  const ConvDesc d = conv_desc(g, layout, kind);
  constexpr auto direct = dnnl::algorithm::convolution_direct;
  if (kind == ConvKind::backward_input) {
    dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(direct, d.src, d.wei, d.dst, d.strides, d.dil, d.pad,
                                              d.pad_r),
        attr(), engine(), hint);
    e->a = make_port(dst_u, pd.diff_dst_desc(), false);
    e->b = make_port(wei_u, pd.weights_desc(), false);
    e->out = make_port(src_u, pd.diff_src_desc(), true);
    e->scratch = pd.scratchpad_desc();
    describe(*e, pd.impl_info_str(), g);
    e->prim = dnnl::convolution_backward_data(pd);
    return e;
  }
  using bw = dnnl::convolution_backward_weights;
  auto pd = bias ? bw::primitive_desc(bw::desc(direct, d.src, d.wei, e->bias_md, d.dst, d.strides,
                                               d.dil, d.pad, d.pad_r),
                                      attr(), engine(), hint)
                 : bw::primitive_desc(
                       bw::desc(direct, d.src, d.wei, d.dst, d.strides, d.dil, d.pad, d.pad_r),
                       attr(), engine(), hint);
  e->a = make_port(src_u, pd.src_desc(), false);
  e->b = make_port(dst_u, pd.diff_dst_desc(), false);
  e->out = make_port(wei_u, pd.diff_weights_desc(), true);
  e->scratch = pd.scratchpad_desc();
  describe(*e, pd.impl_info_str(), g);
  e->prim = bw(pd);
  return e;
}

// ---- the cache: the last kCapacity geometries used, most recent first ---------------------
constexpr size_t kCapacity = 64;
using Key = std::array<int64_t, 21>;

Key make_key(ConvKind kind, Layout layout, bool bias, int threads, const cpu::ConvGeometry& g) {
  return {static_cast<int64_t>(kind),
          static_cast<int64_t>(layout),
          bias,
          threads,
          g.n,
          g.c_in,
          g.h,
          g.w,
          g.c_out,
          g.kh,
          g.kw,
          g.sh,
          g.sw,
          g.ph,
          g.pw,
          g.dh,
          g.dw,
          g.groups,
          g.oh,
          g.ow,
          g.bf16};
}

struct Cache {
  std::mutex mutex;
  std::list<std::pair<Key, std::shared_ptr<Entry>>> items;
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: usable from static destructors
  return *c;
}

std::shared_ptr<Entry> lookup(ConvKind kind, Layout layout, bool bias, int threads,
                              const cpu::ConvGeometry& g) {
  const Key key = make_key(kind, layout, bias, threads, g);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto it = c.items.begin(); it != c.items.end(); ++it)
      if (it->first == key) {
        c.items.splice(c.items.begin(), c.items, it);
        return c.items.front().second;
      }
  }
  std::shared_ptr<Entry> e;
  try {
    e = create(kind, layout, bias, g);  // outside the lock (milliseconds)
  } catch (const dnnl::error& err) {
    if (g.bf16) {  // no bfloat16 on this CPU (below AVX-512, or ONEDNN_MAX_CPU_ISA): im2col
      e = std::make_shared<Entry>();
      e->impl = "none: no bf16 here (soma's cpu kernels)";
      e->bf16 = e->slow_bf16 = true;
    } else {
      soma::detail::fail("onednn conv: cannot create the primitive for input [", g.n, ", ", g.c_in,
                         ", ", g.h, ", ", g.w, "], ", g.c_out, " output channels, kernel ", g.kh,
                         "x", g.kw, ", groups ", g.groups, ": ", err.what());
    }
  }
  std::lock_guard<std::mutex> lock(c.mutex);
  c.items.emplace_front(key, e);
  if (c.items.size() > kCapacity) c.items.pop_back();
  return e;
}

// Runs the entry on the caller's buffers: reorders the inputs that need it into temporaries,
// executes, reorders the output back.
void execute(const Entry& e, int arg_a, const float* a, int arg_b, const float* b, int arg_out,
             float* out, const float* bias_in, float* bias_out) {
  const dnnl::engine& eng = engine();
  dnnl::stream s(eng);
  auto wrap = [&](const Port& p, const float* user, Buffer& tmp, bool output) {
    memory user_mem(p.user, eng, const_cast<float*>(user));
    if (!p.reordered()) return user_mem;
    tmp = Buffer(p.prim.get_size());
    memory prim_mem(p.prim, eng, tmp.get());
    if (!output) p.to_prim->execute(s, user_mem, prim_mem);
    return prim_mem;
  };
  Buffer ta, tb, tout, scratch(e.scratch.get_size());
  std::unordered_map<int, memory> args;
  args.emplace(arg_a, wrap(e.a, a, ta, false));
  args.emplace(arg_b, wrap(e.b, b, tb, false));
  memory out_mem = wrap(e.out, out, tout, true);
  args.emplace(arg_out, out_mem);
  if (e.bias) {
    args.emplace(bias_in ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS,
                 memory(e.bias_md, eng, const_cast<float*>(bias_in ? bias_in : bias_out)));
  }
  if (e.scratch.get_size() > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(e.scratch, eng, scratch.get()));
  e.prim.execute(s, args);
  if (e.bf16) ++bf16_runs;
  if (e.out.reordered()) {
    memory user_mem(e.out.user, eng, out);
    e.out.to_user->execute(s, out_mem, user_mem);
  }
  s.wait();
}

bool empty(const cpu::ConvGeometry& g) {
  return g.n == 0 || g.c_in == 0 || g.c_out == 0 || g.h == 0 || g.w == 0 || g.oh == 0 || g.ow == 0;
}

// soma's own kernel for a slot ("cpu": im2col + GEMM, the bf16 emulation where the CPU lacks
// AVX512_BF16), the "reference" loops if no "cpu" one is registered.
template <typename Slot>
auto im2col() {
  auto* f = Kernel<Slot>::get("cpu");
  return f ? f : Kernel<Slot>::get("reference");
}

template <typename F>
void guarded(F&& f) {
  try {
    f();
  } catch (const dnnl::error& err) {
    soma::detail::fail("onednn conv: ", err.what());
  }
}

}  // namespace

bool available() {
  static const bool ok = [] {
    try {
      (void)engine();
      return true;
    } catch (...) {
      return false;
    }
  }();
  return ok;
}

// Measured on issue 18's shapes (bench/conv_bench, docs/PERFORMANCE.md): oneDNN's blocked
// kernels (nChw16c) win by 1.2-10x, reorders included, except where the channels are too few
// to fill a 16-wide block (the first layer: 1 input channel, where the nchw "first conv" kernel
// with blocked weights wins by 2-3x) and for 1x1 convolutions' forward and input gradient
// (a GEMM on nchw as it is: 1.8-2.2x faster than reordering).
Layout layout_for(ConvKind kind, const cpu::ConvGeometry& g) {
  const bool few_channels = g.groups == 1 && g.c_in < 8;
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.ph == 0 && g.pw == 0 && g.groups == 1;
  if (kind != ConvKind::backward_weight && (few_channels || pointwise)) return Layout::weights;
  return Layout::blocked;
}

void conv_forward(Layout layout, const float* x, const float* w, const float* bias, float* y,
                  const cpu::ConvGeometry& g) {
  if (empty(g)) {
    if (g.c_in == 0 || g.h == 0 || g.w == 0)  // an empty sum: y = bias
      for (int64_t i = 0; i < g.n; ++i)
        for (int64_t c = 0; c < g.c_out; ++c)
          std::fill_n(y + (i * g.c_out + c) * g.oh * g.ow, g.oh * g.ow, bias ? bias[c] : 0.0f);
    return;
  }
  std::shared_ptr<Entry> e;
  {
    OmpThreads threads;
    guarded([&] {
      e = lookup(ConvKind::forward, layout, bias != nullptr, threads.n(), g);
      if (!e->slow_bf16)
        execute(*e, DNNL_ARG_SRC, x, DNNL_ARG_WEIGHTS, w, DNNL_ARG_DST, y, bias, nullptr);
    });
  }
  if (e->slow_bf16) im2col<ConvForward<float>>()(x, w, bias, y, g);
}

void conv_backward_input(Layout layout, const float* gy, const float* w, float* gx,
                         const cpu::ConvGeometry& g) {
  if (empty(g)) {
    std::fill_n(gx, g.n * g.c_in * g.h * g.w, 0.0f);
    return;
  }
  std::shared_ptr<Entry> e;
  {
    OmpThreads threads;
    guarded([&] {
      e = lookup(ConvKind::backward_input, layout, false, threads.n(), g);
      if (!e->slow_bf16)
        execute(*e, DNNL_ARG_DIFF_DST, gy, DNNL_ARG_WEIGHTS, w, DNNL_ARG_DIFF_SRC, gx, nullptr,
                nullptr);
    });
  }
  if (e->slow_bf16) im2col<ConvBackwardInput<float>>()(gy, w, gx, g);
}

void conv_backward_weight(Layout layout, const float* x, const float* gy, float* gw, float* gb,
                          const cpu::ConvGeometry& g) {
  if (empty(g)) {
    std::fill_n(gw, g.c_out * (g.groups ? g.c_in / g.groups : 0) * g.kh * g.kw, 0.0f);
    if (gb) std::fill_n(gb, g.c_out, 0.0f);
    return;
  }
  std::shared_ptr<Entry> e;
  {
    OmpThreads threads;
    guarded([&] {
      e = lookup(ConvKind::backward_weight, layout, gb != nullptr, threads.n(), g);
      if (!e->slow_bf16)
        execute(*e, DNNL_ARG_SRC, x, DNNL_ARG_DIFF_DST, gy, DNNL_ARG_DIFF_WEIGHTS, gw, nullptr, gb);
    });
  }
  if (e->slow_bf16) im2col<ConvBackwardWeight<float>>()(x, gy, gw, gb, g);
}

void conv_forward(const float* x, const float* w, const float* bias, float* y,
                  const cpu::ConvGeometry& g) {
  conv_forward(layout_for(ConvKind::forward, g), x, w, bias, y, g);
}
void conv_backward_input(const float* gy, const float* w, float* gx, const cpu::ConvGeometry& g) {
  conv_backward_input(layout_for(ConvKind::backward_input, g), gy, w, gx, g);
}
void conv_backward_weight(const float* x, const float* gy, float* gw, float* gb,
                          const cpu::ConvGeometry& g) {
  conv_backward_weight(layout_for(ConvKind::backward_weight, g), x, gy, gw, gb, g);
}

bool prefer_onednn(ConvKind kind, const cpu::ConvGeometry& g) {
  (void)kind;
  const double flop = 2.0 * static_cast<double>(g.n) * static_cast<double>(g.c_out) *
                      static_cast<double>(g.oh * g.ow) *
                      static_cast<double>(g.groups ? g.c_in / g.groups : 0) *
                      static_cast<double>(g.kh * g.kw);
  return flop >= kTinyFlop;
}

void tuned_conv_forward(const float* x, const float* w, const float* bias, float* y,
                        const cpu::ConvGeometry& g) {
  auto* cpu =
      prefer_onednn(ConvKind::forward, g) ? nullptr : Kernel<ConvForward<float>>::get("cpu");
  if (cpu)
    cpu(x, w, bias, y, g);
  else
    conv_forward(x, w, bias, y, g);
}
void tuned_conv_backward_input(const float* gy, const float* w, float* gx,
                               const cpu::ConvGeometry& g) {
  auto* cpu = prefer_onednn(ConvKind::backward_input, g)
                  ? nullptr
                  : Kernel<ConvBackwardInput<float>>::get("cpu");
  if (cpu)
    cpu(gy, w, gx, g);
  else
    conv_backward_input(gy, w, gx, g);
}
void tuned_conv_backward_weight(const float* x, const float* gy, float* gw, float* gb,
                                const cpu::ConvGeometry& g) {
  auto* cpu = prefer_onednn(ConvKind::backward_weight, g)
                  ? nullptr
                  : Kernel<ConvBackwardWeight<float>>::get("cpu");
  if (cpu)
    cpu(x, gy, gw, gb, g);
  else
    conv_backward_weight(x, gy, gw, gb, g);
}

std::string implementation(ConvKind kind, Layout layout, const cpu::ConvGeometry& g, bool bias) {
  OmpThreads threads;
  std::string name;
  guarded([&] { name = lookup(kind, layout, bias, threads.n(), g)->impl; });
  return name;
}

bool bf16_native(ConvKind kind, Layout layout, const cpu::ConvGeometry& g, bool bias) {
  cpu::ConvGeometry b = g;
  b.bf16 = true;
  OmpThreads threads;
  bool slow = true;
  guarded([&] { slow = lookup(kind, layout, bias, threads.n(), b)->slow_bf16; });
  return !slow;
}

int64_t bf16_executions() {
  return bf16_runs.load();
}

void clear_cache() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  cache().items.clear();
}

}  // namespace soma::kernels::onednn
