// Convolution kernels per backend on issue 18's benchmark shapes. Built as build/bench/conv_bench.
//
//   build/bench/conv_bench --benchmark_min_time=0.5 --benchmark_filter=threads:2
//
// One benchmark per shape x kernel (forward, backward_input, backward_weight) x backend x
// threads (1, 2), named <shape>/<kernel>/<backend>/threads:<t>. Backends:
//   cpu, reference       the registered implementations (reference only with
//   CONV_BENCH_REFERENCE=1:
//                        one element at a time, seconds per call)
//   onednn:plain         oneDNN on nchw / oihw as they are (no reorder)
//   onednn:weights       oneDNN with its preferred weight format (the weight reordered per call)
//   onednn:blocked       oneDNN with its preferred formats everywhere (reorders in and out)
//   im2col_local         a quick im2col + GEMM in this file (only while no "cpu" one is registered)
//   selected             Kernel<Slot>::get(): what the ops call (the measured per-shape rule)
// CONV_BENCH_BF16=1 runs every geometry with bf16 set (soma::autocast's bfloat16 products).
// Counter GFLOP: 2 * n * c_out * oh * ow * (c_in / groups) * kh * kw per call, per second.
// docs/PERFORMANCE.md ("Convolutions (issue 18)") has the numbers and the rule they gave.
#include <benchmark/benchmark.h>
#include <soma/soma.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/conv.h"
#endif

namespace {

namespace k = soma::kernels;
using k::cpu::ConvGeometry;

ConvGeometry geometry(int64_t n, int64_t c_in, int64_t hw, int64_t c_out, int64_t kernel,
                      int64_t stride, int64_t pad, int64_t groups) {
  ConvGeometry g;
  g.n = n, g.c_in = c_in, g.h = g.w = hw, g.c_out = c_out, g.kh = g.kw = kernel;
  g.sh = g.sw = stride, g.ph = g.pw = pad, g.groups = groups;
  g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  g.bf16 = std::getenv("CONV_BENCH_BF16") != nullptr;
  return g;
}

struct Shape {
  std::string name;
  ConvGeometry g;
  bool forward, backward_input, backward_weight;
};

// The ConvTranspose2d shape ([128, 64, 7, 7] -> 32 channels, kernel 4, stride 2, padding 1) is
// the convolution [128, 32, 14, 14] -> 64 channels it is the adjoint of: its forward is that
// convolution's backward_input, its input gradient that convolution's forward.
std::vector<Shape> shapes() {
  return {
      {"conv1_b128", geometry(128, 1, 28, 32, 3, 1, 1, 1), true, false, true},
      {"conv2_b128", geometry(128, 32, 14, 64, 3, 1, 1, 1), true, true, true},
      {"conv1_b1024", geometry(1024, 1, 28, 32, 3, 1, 1, 1), true, false, false},
      {"conv2_b1024", geometry(1024, 32, 14, 64, 3, 1, 1, 1), true, false, false},
      {"conv1_b1", geometry(1, 1, 28, 32, 3, 1, 1, 1), true, false, false},
      {"conv2_b1", geometry(1, 32, 14, 64, 3, 1, 1, 1), true, false, false},
      {"depthwise_b128", geometry(128, 32, 14, 32, 3, 1, 1, 32), true, true, true},
      {"pointwise_b128", geometry(128, 32, 14, 64, 1, 1, 0, 1), true, true, true},
      {"convT_b128", geometry(128, 32, 14, 64, 4, 2, 1, 1), true, true, true},
  };
}

double flop(const ConvGeometry& g) {
  return 2.0 * static_cast<double>(g.n * g.c_out * g.oh * g.ow * (g.c_in / g.groups) * g.kh * g.kw);
}

std::vector<float> filled(int64_t n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t s = 12345;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 16777216.0f - 0.5f);
  }
  return v;
}

struct Buffers {
  std::vector<float> x, w, b, y, gx, gw, gb;
  explicit Buffers(const ConvGeometry& g)
      : x(filled(g.n * g.c_in * g.h * g.w, 1.0f)),
        w(filled(g.c_out * (g.c_in / g.groups) * g.kh * g.kw, 0.2f)),
        b(filled(g.c_out, 0.1f)),
        y(filled(g.n * g.c_out * g.oh * g.ow, 1.0f)),
        gx(x.size()),
        gw(w.size()),
        gb(b.size()) {}
};

enum Kind { kForward, kBackwardInput, kBackwardWeight };
const char* kind_name(Kind kind) {
  return kind == kForward         ? "forward"
         : kind == kBackwardInput ? "backward_input"
                                  : "backward_weight";
}

using Runner = void (*)(Kind, Buffers&, const ConvGeometry&, const std::string&);

void run_registered(Kind kind, Buffers& b, const ConvGeometry& g, const std::string& backend) {
  if (kind == kForward) {
    auto* f = backend == "selected" ? k::Kernel<k::ConvForward<float>>::get()
                                    : k::Kernel<k::ConvForward<float>>::get(backend);
    f(b.x.data(), b.w.data(), b.b.data(), b.y.data(), g);
  } else if (kind == kBackwardInput) {
    auto* f = backend == "selected" ? k::Kernel<k::ConvBackwardInput<float>>::get()
                                    : k::Kernel<k::ConvBackwardInput<float>>::get(backend);
    f(b.y.data(), b.w.data(), b.gx.data(), g);
  } else {
    auto* f = backend == "selected" ? k::Kernel<k::ConvBackwardWeight<float>>::get()
                                    : k::Kernel<k::ConvBackwardWeight<float>>::get(backend);
    f(b.x.data(), b.y.data(), b.gw.data(), b.gb.data(), g);
  }
}

bool registered(Kind kind, const std::string& backend) {
  if (kind == kForward) return k::Kernel<k::ConvForward<float>>::get(backend) != nullptr;
  if (kind == kBackwardInput)
    return k::Kernel<k::ConvBackwardInput<float>>::get(backend) != nullptr;
  return k::Kernel<k::ConvBackwardWeight<float>>::get(backend) != nullptr;
}

// A quick im2col + GEMM (soma's Im2Col / Col2Im / Gemm kernels), one image at a time, one GEMM
// per group: the baseline while no "cpu" convolution is registered.
k::cpu::FoldGeometry fold(const ConvGeometry& g) {
  return {g.c_in, g.h, g.w, g.kh, g.kw, g.dh, g.dw, g.ph, g.pw, g.sh, g.sw, g.oh, g.ow};
}

void run_local(Kind kind, Buffers& b, const ConvGeometry& g, const std::string&) {
  const int64_t cig = g.c_in / g.groups, cog = g.c_out / g.groups, kk = cig * g.kh * g.kw,
                l = g.oh * g.ow, hw = g.h * g.w;
  thread_local std::vector<float> cols;
  cols.resize(static_cast<size_t>(g.c_in * g.kh * g.kw * l));
  if (kind == kBackwardWeight) std::fill(b.gw.begin(), b.gw.end(), 0.0f);
  for (int64_t n = 0; n < g.n; ++n) {
    const float* x = b.x.data() + n * g.c_in * hw;
    float* gx = b.gx.data() + n * g.c_in * hw;
    float* y = b.y.data() + n * g.c_out * l;
    if (kind != kBackwardInput) k::call<k::Im2Col<float>>(x, cols.data(), fold(g));
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const float* w = b.w.data() + gr * cog * kk;
      float* c = cols.data() + gr * kk * l;
      float* yg = y + gr * cog * l;
      if (kind == kForward) {
        for (int64_t o = 0; o < cog; ++o) std::fill_n(yg + o * l, l, b.b[gr * cog + o]);
        k::gemm<float>(false, false, cog, l, kk, 1.0f, w, kk, c, l, 1.0f, yg, l);
      } else if (kind == kBackwardInput) {
        k::gemm<float>(true, false, kk, l, cog, 1.0f, w, kk, yg, l, 0.0f, c, l);
      } else {
        k::gemm<float>(false, true, cog, kk, l, 1.0f, yg, l, c, l, 1.0f,
                       b.gw.data() + gr * cog * kk, kk);
      }
    }
    if (kind == kBackwardInput) {
      std::fill_n(gx, g.c_in * hw, 0.0f);
      k::call<k::Col2Im<float>>(cols.data(), gx, fold(g));
    }
  }
}

#ifdef SOMA_ONEDNN
k::onednn::Layout layout_of(const std::string& backend) {
  if (backend == "onednn:plain") return k::onednn::Layout::plain;
  if (backend == "onednn:weights") return k::onednn::Layout::weights;
  return k::onednn::Layout::blocked;
}

void run_onednn(Kind kind, Buffers& b, const ConvGeometry& g, const std::string& backend) {
  const auto layout = layout_of(backend);
  if (kind == kForward)
    k::onednn::conv_forward(layout, b.x.data(), b.w.data(), b.b.data(), b.y.data(), g);
  else if (kind == kBackwardInput)
    k::onednn::conv_backward_input(layout, b.y.data(), b.w.data(), b.gx.data(), g);
  else
    k::onednn::conv_backward_weight(layout, b.x.data(), b.y.data(), b.gw.data(), b.gb.data(), g);
}
#endif

void add(const Shape& s, Kind kind, const std::string& backend, Runner run) {
  const std::string name = s.name + "/" + kind_name(kind) + "/" + backend;
  benchmark::RegisterBenchmark(name.c_str(),
                               [s, kind, backend, run](benchmark::State& state) {
                                 soma::set_num_threads(static_cast<int>(state.range(0)));
                                 Buffers b(s.g);
                                 run(kind, b, s.g, backend);  // warm-up: primitive creation
                                 for (auto _ : state) {
                                   run(kind, b, s.g, backend);
                                   benchmark::ClobberMemory();
                                 }
                                 state.counters["GFLOP"] = benchmark::Counter(
                                     flop(s.g) / 1e9, benchmark::Counter::kIsIterationInvariantRate,
                                     benchmark::Counter::OneK::kIs1000);
                               })
      ->Arg(1)
      ->Arg(2)
      ->ArgName("threads")
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  const bool with_reference = std::getenv("CONV_BENCH_REFERENCE") != nullptr;
  for (const Shape& s : shapes()) {
    for (Kind kind : {kForward, kBackwardInput, kBackwardWeight}) {
      if ((kind == kForward && !s.forward) || (kind == kBackwardInput && !s.backward_input) ||
          (kind == kBackwardWeight && !s.backward_weight))
        continue;
      for (const char* backend : {"cpu", "reference"}) {
        if (std::string(backend) == "reference" && !with_reference) continue;
        if (registered(kind, backend)) add(s, kind, backend, &run_registered);
      }
      if (!registered(kind, "cpu")) add(s, kind, "im2col_local", &run_local);
#ifdef SOMA_ONEDNN
      for (const char* backend : {"onednn:plain", "onednn:weights", "onednn:blocked"})
        add(s, kind, backend, &run_onednn);
#endif
      add(s, kind, "selected", &run_registered);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
