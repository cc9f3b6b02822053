// The oneDNN convolution kernels (kernels/onednn/conv.h) against the naive reference ones, in
// every layout, over a table of geometries (strides, paddings, dilations, groups, odd sizes,
// batch 1, 1x1, depthwise, empty batch), with and without bias, on 1 and 2 threads: issue 18's
// "the fast kernels agree with the naive reference to 1e-4 relative in float32".
#include <gtest/gtest.h>
#include <soma/soma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "kernels/kernels.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/conv.h"
#endif

namespace {

namespace k = soma::kernels;
using k::cpu::ConvGeometry;

#ifdef SOMA_ONEDNN

ConvGeometry geometry(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t kh,
                      int64_t kw, int64_t s, int64_t p, int64_t d, int64_t groups) {
  ConvGeometry g;
  g.n = n, g.c_in = c_in, g.h = h, g.w = w, g.c_out = c_out, g.kh = kh, g.kw = kw;
  g.sh = s, g.sw = s, g.ph = p, g.pw = p, g.dh = d, g.dw = d;
  g.groups = groups;
  g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

std::vector<ConvGeometry> table() {
  std::vector<ConvGeometry> t = {
      geometry(2, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1),    // the first layer
      geometry(2, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1),   // the second
      geometry(1, 3, 7, 5, 4, 3, 3, 2, 1, 1, 1),       // stride 2, odd sizes, batch 1
      geometry(2, 4, 9, 9, 6, 3, 2, 1, 0, 2, 2),       // dilation 2, groups 2, 3x2 kernel
      geometry(2, 32, 14, 14, 32, 3, 3, 1, 1, 1, 32),  // depthwise
      geometry(2, 32, 14, 14, 64, 1, 1, 1, 0, 1, 1),   // pointwise
      geometry(2, 32, 14, 14, 64, 4, 4, 2, 1, 1, 1),   // the ConvTranspose2d shape's adjoint
      geometry(3, 5, 6, 7, 3, 5, 5, 3, 2, 1, 1),       // kernel 5, stride 3, padding 2
      geometry(0, 4, 5, 5, 2, 3, 3, 1, 1, 1, 1),       // empty batch
  };
  ConvGeometry rect = geometry(2, 3, 8, 11, 5, 2, 3, 1, 1, 1, 1);
  rect.sw = 2, rect.pw = 0;  // unequal strides and paddings
  rect.ow = (rect.w + 2 * rect.pw - rect.dw * (rect.kw - 1) - 1) / rect.sw + 1;
  t.push_back(rect);
  return t;
}

std::vector<float> filled(int64_t n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.0f - 0.5f;
  }
  return v;
}

std::string describe(const ConvGeometry& g) {
  return "x [" + std::to_string(g.n) + ", " + std::to_string(g.c_in) + ", " + std::to_string(g.h) +
         ", " + std::to_string(g.w) + "] c_out " + std::to_string(g.c_out) + " k " +
         std::to_string(g.kh) + "x" + std::to_string(g.kw) + " s " + std::to_string(g.sh) + "," +
         std::to_string(g.sw) + " p " + std::to_string(g.ph) + "," + std::to_string(g.pw) + " d " +
         std::to_string(g.dh) + " groups " + std::to_string(g.groups);
}

// |a - b| <= 1e-4 (|b| + the scale of the sum: max |b| over the buffer), elementwise.
void expect_close(const std::vector<float>& a, const std::vector<float>& b,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  float scale = 1e-6f;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  int bad = 0;
  for (size_t i = 0; i < a.size() && bad < 5; ++i)
    if (!(std::fabs(a[i] - b[i]) <= 1e-4f * (std::fabs(b[i]) + scale))) {
      ADD_FAILURE() << what << " at " << i << ": " << a[i] << " vs reference " << b[i];
      ++bad;
    }
}

using Layout = k::onednn::Layout;

// The registered "reference" convolution (direct loops, kernels/cpu/conv.cpp).
template <typename Slot>
typename Slot::Fn* reference() {
  auto* f = k::Kernel<Slot>::get("reference");
  EXPECT_NE(f, nullptr) << Slot::name << " has no reference implementation";
  return f;
}

TEST(OnednnConv, AgreesWithTheReferenceInEveryLayout) {
  auto* ref_fwd = reference<k::ConvForward<float>>();
  auto* ref_bi = reference<k::ConvBackwardInput<float>>();
  auto* ref_bw = reference<k::ConvBackwardWeight<float>>();
  ASSERT_TRUE(k::onednn::available());
  const int threads = soma::get_num_threads();
  for (int t : {1, 2}) {
    soma::set_num_threads(t);
    for (const ConvGeometry& g : table()) {
      const int64_t nx = g.n * g.c_in * g.h * g.w, ny = g.n * g.c_out * g.oh * g.ow,
                    nw = g.c_out * (g.c_in / g.groups) * g.kh * g.kw;
      const std::vector<float> x = filled(nx, 1), w = filled(nw, 2), b = filled(g.c_out, 3),
                               gy = filled(ny, 4);
      std::vector<float> y_ref(ny), gx_ref(nx), gw_ref(nw), gb_ref(g.c_out);
      ref_fwd(x.data(), w.data(), b.data(), y_ref.data(), g);
      ref_bi(gy.data(), w.data(), gx_ref.data(), g);
      ref_bw(x.data(), gy.data(), gw_ref.data(), gb_ref.data(), g);
      for (Layout layout : {Layout::plain, Layout::weights, Layout::blocked}) {
        const std::string what = describe(g) + " layout " +
                                 std::to_string(static_cast<int>(layout)) + " threads " +
                                 std::to_string(t);
        std::vector<float> y(ny, 7.0f), gx(nx, 7.0f), gw(nw, 7.0f), gb(g.c_out, 7.0f);
        k::onednn::conv_forward(layout, x.data(), w.data(), b.data(), y.data(), g);
        expect_close(y, y_ref, "forward " + what);
        k::onednn::conv_backward_input(layout, gy.data(), w.data(), gx.data(), g);
        expect_close(gx, gx_ref, "backward_input " + what);
        k::onednn::conv_backward_weight(layout, x.data(), gy.data(), gw.data(), gb.data(), g);
        expect_close(gw, gw_ref, "backward_weight " + what);
        expect_close(gb, gb_ref, "bias gradient " + what);
        // Without bias: y is the convolution alone, and gw the same without gb.
        std::vector<float> y0(ny), y0_ref(ny), gw0(nw, 7.0f);
        ref_fwd(x.data(), w.data(), nullptr, y0_ref.data(), g);
        k::onednn::conv_forward(layout, x.data(), w.data(), nullptr, y0.data(), g);
        expect_close(y0, y0_ref, "forward without bias " + what);
        k::onednn::conv_backward_weight(layout, x.data(), gy.data(), gw0.data(), nullptr, g);
        expect_close(gw0, gw_ref, "backward_weight without bias " + what);
      }
    }
  }
  soma::set_num_threads(threads);
}

TEST(OnednnConv, RegisteredForFloatOnly) {
  EXPECT_NE(k::Kernel<k::ConvForward<float>>::get("onednn"), nullptr);
  EXPECT_NE(k::Kernel<k::ConvBackwardInput<float>>::get("onednn"), nullptr);
  EXPECT_NE(k::Kernel<k::ConvBackwardWeight<float>>::get("onednn"), nullptr);
  EXPECT_EQ(k::Kernel<k::ConvForward<double>>::get("onednn"), nullptr);
  // The default for float is the per-shape rule; SOMA_KERNELS / BackendGuard still pick one.
  EXPECT_EQ(k::Kernel<k::ConvForward<float>>::selected_backend(), "tuned");
  EXPECT_EQ(k::Kernel<k::ConvBackwardWeight<float>>::selected_backend(), "tuned");
  ASSERT_NE(k::Kernel<k::ConvForward<double>>::get("cpu"), nullptr);  // double stays on cpu
  EXPECT_EQ(k::Kernel<k::ConvForward<double>>::selected_backend(), "cpu");
  k::BackendGuard guard("onednn");
  EXPECT_EQ(k::Kernel<k::ConvForward<float>>::selected_backend(), "onednn");
}

TEST(OnednnConv, TheRuleSendsTinyConvolutionsToCpu) {
  using k::onednn::ConvKind;
  EXPECT_FALSE(
      k::onednn::prefer_onednn(ConvKind::forward, geometry(2, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1)));
  EXPECT_TRUE(
      k::onednn::prefer_onednn(ConvKind::forward, geometry(1, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1)));
  EXPECT_TRUE(k::onednn::prefer_onednn(ConvKind::backward_weight,
                                       geometry(128, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1)));
  // Whatever it picks agrees with the reference.
  auto* ref_fwd = reference<k::ConvForward<float>>();
  for (const ConvGeometry& g :
       {geometry(2, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1), geometry(2, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1)}) {
    const int64_t nx = g.n * g.c_in * g.h * g.w, ny = g.n * g.c_out * g.oh * g.ow,
                  nw = g.c_out * g.c_in * g.kh * g.kw;
    const std::vector<float> x = filled(nx, 1), w = filled(nw, 2), b = filled(g.c_out, 3);
    std::vector<float> y(ny), y_ref(ny);
    ref_fwd(x.data(), w.data(), b.data(), y_ref.data(), g);
    k::Kernel<k::ConvForward<float>>::get()(x.data(), w.data(), b.data(), y.data(), g);
    expect_close(y, y_ref, "tuned forward " + describe(g));
  }
}

TEST(OnednnConv, SharedAcrossThreadsAndCacheEviction) {
  // Many geometries (past the cache's capacity) from two user threads at once.
  auto* ref_fwd = reference<k::ConvForward<float>>();
  auto work = [&](int seed, bool* ok) {
    for (int64_t c = 1; c <= 40; ++c) {
      const ConvGeometry g = geometry(1, c, 6, 6, 3, 3, 3, 1, 1, 1, 1);
      const std::vector<float> x = filled(c * 36, seed), w = filled(3 * c * 9, seed + 1);
      std::vector<float> y(3 * 36), y_ref(3 * 36);
      ref_fwd(x.data(), w.data(), nullptr, y_ref.data(), g);
      k::onednn::conv_forward(x.data(), w.data(), nullptr, y.data(), g);
      for (size_t i = 0; i < y.size(); ++i)
        if (std::fabs(y[i] - y_ref[i]) > 1e-4f * (1 + std::fabs(y_ref[i]))) *ok = false;
    }
  };
  bool ok1 = true, ok2 = true;
  std::thread t1(work, 1, &ok1), t2(work, 5, &ok2);
  t1.join();
  t2.join();
  EXPECT_TRUE(ok1);
  EXPECT_TRUE(ok2);
  k::onednn::clear_cache();
}

#else

TEST(OnednnConv, NotBuilt) {
  GTEST_SKIP() << "built with SOMA_ONEDNN=OFF";
}

#endif

}  // namespace
