// Conv + BatchNorm folding and Sequential's inference fusion (soma/nn/fusion.h):
// fuse_conv_bn_eval / fuse_conv_bn_weights against PyTorch (tests/reference/fusion_reference.txt,
// written by tests/reference/fusion.py), the fused inference path against the plain one
// (InferenceFusionGuard(false)) to 1e-4 relative in float32 over a table of networks, that it
// falls back (float64, grad on, training, reflect padding, hooks), and that its cached folded
// weights follow in-place changes of the parameters and buffers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "kernels/registry.h"
#include "nn/fusion_internal.h"
#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
using golden::Case;
using golden::RefTensor;
using soma::Tensor;

// ---- fuse_conv_bn_eval against torch ----------------------------------------------------------
struct FuseCase {
  const char* name;
  int64_t in, out;
  std::vector<int64_t> k, s, p, d;
  int64_t groups;
  bool bias, affine;
  double eps;
};

// The same table as tests/reference/fusion.py's CASES.
const std::vector<FuseCase>& fuse_cases() {
  static const std::vector<FuseCase> cases = {
      {"basic", 3, 4, {3}, {1}, {1}, {1}, 1, true, true, 1e-5},
      {"nobias", 3, 4, {3}, {1}, {1}, {1}, 1, false, true, 1e-5},
      {"noaffine", 3, 4, {3}, {1}, {1}, {1}, 1, true, false, 1e-5},
      {"nobias_noaffine_eps", 3, 4, {3}, {1}, {1}, {1}, 1, false, false, 1e-3},
      {"strided_groups", 4, 6, {3, 2}, {2}, {1, 0}, {1}, 2, true, true, 1e-5},
      {"dilated_depthwise", 4, 4, {3}, {1}, {2}, {2}, 4, true, true, 1e-5},
      {"pointwise", 5, 3, {1}, {1}, {0}, {1}, 1, true, true, 1e-5},
      {"float64", 3, 4, {3}, {1}, {1}, {1}, 1, true, true, 1e-5},
      {"float64_nobias", 2, 3, {2}, {2}, {1}, {1}, 1, false, true, 1e-4},
  };
  return cases;
}

const golden::RefFile& fusion_reference() {
  static const golden::RefFile file = golden::parse_reference(
      golden::reference_path("SOMA_FUSION_REFERENCE", "fusion_reference.txt"),
      {.roles = {"in", "param", "out"}, .require_gout = false});
  return file;
}

const RefTensor* param(const Case& c, const std::string& key) {
  for (const RefTensor& p : c.params)
    if (p.key == key) return &p;
  return nullptr;
}

TEST(FuseConvBnEval, MatchesTorch) {
  const golden::RefFile& file = fusion_reference();
  ASSERT_EQ(golden::file_problem(file), "");
  ASSERT_EQ(file.cases.size(), fuse_cases().size());
  for (const Case& c : file.cases) {
    const FuseCase* fc = nullptr;
    for (const FuseCase& f : fuse_cases())
      if (c.name == f.name) fc = &f;
    ASSERT_NE(fc, nullptr) << c.name;
    nn::Conv2d conv(nn::Conv2dOptions(fc->in, fc->out, fc->k)
                        .stride(fc->s)
                        .padding(nn::ExpandingArray<2>(fc->p))
                        .dilation(fc->d)
                        .groups(fc->groups)
                        .bias(fc->bias)
                        .dtype(c.dtype));
    nn::BatchNorm2d bn(nn::BatchNorm2dOptions(fc->out).eps(fc->eps).affine(fc->affine));
    bn.to(c.dtype);
    nn::Sequential pair(conv, bn);  // a container, to load both state dicts at once
    nn::StateDict named;
    for (const RefTensor& p : c.params) {
      const bool is_conv = p.key.rfind("conv.", 0) == 0;
      named[std::string(is_conv ? "0" : "1") + p.key.substr(is_conv ? 4 : 2)] =
          golden::make_tensor(p);
    }
    named["1.num_batches_tracked"] = soma::tensor(std::vector<int64_t>{0}, {});
    pair.load_state_dict(named);
    ASSERT_NE(param(c, "bn.running_var"), nullptr);
    conv.eval();
    bn.eval();
    nn::Conv2d fused = nn::utils::fuse_conv_bn_eval(conv, bn);
    EXPECT_FALSE(fused.is_training()) << c.name;
    EXPECT_TRUE(fused.options.bias()) << c.name;
    ASSERT_TRUE(fused.bias.defined()) << c.name;
    EXPECT_TRUE(fused.weight.requires_grad() && fused.bias.requires_grad()) << c.name;
    EXPECT_NE(fused.weight.impl(), conv.weight.impl()) << c.name << ": not a copy";
    const golden::Tolerance tol =
        c.dtype == soma::kFloat32 ? golden::Tolerance{1e-6, 1e-6} : golden::Tolerance{1e-13, 1e-13};
    EXPECT_EQ(golden::compare(c, "weight", fused.weight, c.outs[0], tol), "");
    EXPECT_EQ(golden::compare(c, "bias", fused.bias, c.outs[1], tol), "");
    const golden::Tolerance ytol =
        c.dtype == soma::kFloat32 ? golden::Tolerance{1e-5, 1e-5} : golden::Tolerance{1e-12, 1e-12};
    soma::NoGradGuard no_grad;
    EXPECT_EQ(
        golden::compare(c, "fused(x)", fused(golden::make_tensor(c.inputs[0])), c.outs[2], ytol),
        "");
    // the originals are unchanged
    EXPECT_EQ(golden::compare(c, "conv.weight", conv.weight, *param(c, "conv.weight"), {1e-7, 0}),
              "");
  }
}

TEST(FuseConvBnEval, Errors) {
  nn::Conv2d conv(3, 4, 3);
  nn::BatchNorm2d bn(4);
  EXPECT_THROW(nn::utils::fuse_conv_bn_eval(conv, bn), soma::Error);  // training
  conv.eval();
  EXPECT_THROW(nn::utils::fuse_conv_bn_eval(conv, bn), soma::Error);  // bn training
  bn.eval();
  EXPECT_NO_THROW(nn::utils::fuse_conv_bn_eval(conv, bn));
  nn::BatchNorm2d untracked(nn::BatchNorm2dOptions(4).track_running_stats(false));
  untracked.eval();
  EXPECT_THROW(nn::utils::fuse_conv_bn_eval(conv, untracked), soma::Error);
  nn::BatchNorm2d wrong(5);
  wrong.eval();
  EXPECT_THROW(nn::utils::fuse_conv_bn_eval(conv, wrong), soma::Error);
  EXPECT_THROW(nn::utils::fuse_conv_bn_weights(conv.weight, conv.bias, soma::zeros({5}),
                                               soma::ones({5}), 1e-5, {}, {}),
               soma::Error);
}

TEST(FuseConvBnWeights, Transpose) {
  // transpose: the scale goes along dim 1 ([in, out / groups, kh, kw])
  const Tensor w = soma::randn({3, 4, 2, 2}), rm = soma::randn({4}), rv = soma::rand({4}) + 0.5,
               g = soma::randn({4}), b = soma::randn({4});
  auto [fw, fb] = nn::utils::fuse_conv_bn_weights(w, {}, rm, rv, 1e-5, g, b, true);
  const Tensor scale = g / soma::sqrt(rv + 1e-5);
  EXPECT_TRUE(soma::allclose(fw, w * scale.reshape({1, 4, 1, 1}), 1e-6, 1e-6));
  EXPECT_TRUE(soma::allclose(fb, b - rm * scale, 1e-6, 1e-6));
}

// ---- the fused inference path against the plain one ----------------------------------------
struct Stage {
  int64_t out;
  std::vector<int64_t> k{3}, s{1}, p{1}, d{1};
  int64_t groups = 1;
  bool bias = true;
  int bn = 1;  // 0 none, 1 affine, 2 not affine
  bool relu = true;
  std::optional<nn::MaxPool2dOptions> pool;
  const char* padding = nullptr;  // "valid" instead of p
};

struct Net {
  const char* name;
  soma::Shape input;
  std::vector<Stage> stages;
  bool head = false;  // Flatten + Linear(10) after the stages
};

nn::MaxPool2dOptions pool(std::vector<int64_t> k, std::vector<int64_t> s = {},
                          std::vector<int64_t> p = {0}, std::vector<int64_t> d = {1},
                          bool ceil = false) {
  nn::MaxPool2dOptions o(std::move(k));
  o.stride(std::move(s)).padding(std::move(p)).dilation(std::move(d)).ceil_mode(ceil);
  return o;
}

Stage st(int64_t out) {
  Stage s;
  s.out = out;
  return s;
}
template <typename F>
Stage st(int64_t out, F&& f) {
  Stage s = st(out);
  f(s);
  return s;
}

std::vector<Net> nets() {
  return {
      {"preset",
       {3, 1, 28, 28},
       {st(32, [](Stage& s) { s.pool = pool({2}); }), st(64, [](Stage& s) { s.pool = pool({2}); })},
       true},
      {"batch1_odd_strided", {1, 3, 13, 11}, {st(16, [](Stage& s) { s.s = {2}; })}},
      {"groups_dilation_ceil",
       {2, 16, 15, 17},
       {st(16,
           [](Stage& s) {
             s.groups = 4, s.d = {2}, s.p = {2}, s.bn = 2;
             s.pool = pool({3}, {2}, {1}, {1}, true);
           })}},
      {"depthwise_nobias",
       {2, 8, 9, 10},
       {st(8, [](Stage& s) { s.groups = 8, s.bias = false; }),
        st(24, [](Stage& s) { s.k = {1}, s.p = {0}; })}},
      {"conv_relu_only_rect",
       {2, 4, 11, 12},
       {st(8,
           [](Stage& s) {
             s.k = {3, 5}, s.s = {1, 2}, s.p = {1, 2}, s.bn = 0, s.bias = false;
           }),
        st(8,
           [](Stage& s) {
             s.k = {1}, s.p = {0}, s.bn = 0, s.relu = false, s.pool = pool({2}, {}, {0}, {1}, true);
           })}},
      {"conv_alone", {2, 5, 9, 9}, {st(7, [](Stage& s) { s.bn = 0, s.relu = false; })}},
      {"conv_bn_no_relu_valid",
       {2, 20, 10, 9},
       {st(20, [](Stage& s) { s.relu = false, s.padding = "valid"; }),
        st(36,
           [](Stage& s) {
             s.pool = pool({3, 2}, {1, 2}, {1, 0}, {2, 1});
           })}},
      {"pool_no_relu_bn_noaffine",
       {1, 3, 8, 8},
       {st(17, [](Stage& s) { s.relu = false, s.bn = 2, s.pool = pool({2}, {1}); })}},
      {"three_stages_batch5",
       {5, 3, 20, 20},
       {st(16, [](Stage& s) { s.pool = pool({2}); }), st(32, [](Stage& s) { s.s = {2}; }),
        st(32, [](Stage& s) { s.pool = pool({2}, {}, {0}, {1}, true); })},
       true},
  };
}

// A Sequential for `net` with random parameters and BatchNorm statistics, in eval mode.
nn::Sequential build(const Net& net) {
  nn::Sequential model;
  int64_t c = net.input[1];
  for (const Stage& s : net.stages) {
    nn::Conv2dOptions o(c, s.out, s.k);
    o.stride(s.s).dilation(s.d).groups(s.groups).bias(s.bias);
    if (s.padding)
      o.padding(s.padding);
    else
      o.padding(nn::ExpandingArray<2>(s.p));
    model.push_back(nn::Conv2d(o));
    if (s.bn) {
      nn::BatchNorm2d bn(nn::BatchNorm2dOptions(s.out).affine(s.bn == 1));
      soma::NoGradGuard no_grad;
      bn.running_mean.copy_(soma::randn({s.out}));
      bn.running_var.copy_(soma::rand({s.out}) * 2 + 0.1);
      if (s.bn == 1) {
        bn.weight.copy_(soma::randn({s.out}));
        bn.bias.copy_(soma::randn({s.out}));
      }
      model.push_back(bn);
    }
    if (s.relu) model.push_back(nn::ReLU());
    if (s.pool) model.push_back(nn::MaxPool2d(*s.pool));
    c = s.out;
  }
  if (net.head) {
    model.push_back(nn::Flatten());
    soma::NoGradGuard no_grad;
    const int64_t features = model.forward(soma::zeros(net.input)).numel() / net.input[0];
    model.push_back(nn::Linear(features, 10));
  }
  model.eval();
  return model;
}

// max |a - b| <= 1e-4 max |b|, same shape, all finite.
void expect_close(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isfinite(x[i])) << what << " element " << i;
    err = std::max(err, std::fabs(static_cast<double>(x[i]) - y[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(y[i])));
  }
  EXPECT_LE(err, 1e-4 * std::max(scale, 1e-30)) << what << ": max error " << err << " of " << scale;
}

Tensor plain(nn::Sequential& model, const Tensor& x) {
  nn::InferenceFusionGuard off(false);
  soma::NoGradGuard no_grad;
  return model(x);
}

// The model's output on the fused path, and how many runs it executed fused.
Tensor fused(nn::Sequential& model, const Tensor& x, int64_t* runs) {
  nn::InferenceFusionGuard on(true);
  soma::NoGradGuard no_grad;
  const int64_t before = soma::detail::fused_run_count();
  Tensor y = model(x);
  *runs = soma::detail::fused_run_count() - before;
  return y;
}

bool onednn_built() {
  const auto names = soma::kernels::registered_backends();
  return std::find(names.begin(), names.end(), "onednn") != names.end();
}

TEST(InferenceFusion, EqualsThePlainPath) {
  if (!onednn_built()) GTEST_SKIP() << "built without oneDNN: nothing is fused";
  soma::manual_seed(18);
  for (const Net& net : nets()) {
    nn::Sequential model = build(net);
    const Tensor x = soma::randn(net.input);
    int64_t runs = 0;
    const Tensor y = fused(model, x, &runs);
    EXPECT_EQ(runs, 1) << net.name << ": the stages should be one fused run";
    expect_close(y, plain(model, x), net.name);
    // again: the cached chain
    expect_close(fused(model, x, &runs), y, std::string(net.name) + " (cached)");
    EXPECT_EQ(runs, 1) << net.name;
    // a non-contiguous input
    const Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);
    ASSERT_FALSE(xt.is_contiguous());
    expect_close(fused(model, xt, &runs), y, std::string(net.name) + " (strided input)");
  }
}

TEST(InferenceFusion, FallsBack) {
  if (!onednn_built()) GTEST_SKIP() << "built without oneDNN: nothing is fused";
  soma::manual_seed(19);
  const Net net = nets()[0];
  nn::Sequential model = build(net);
  const Tensor x = soma::randn(net.input);
  const Tensor expected = plain(model, x);
  int64_t runs = 0;
  {  // grad mode on
    nn::InferenceFusionGuard on(true);
    const int64_t before = soma::detail::fused_run_count();
    const Tensor y = model(x);
    EXPECT_EQ(soma::detail::fused_run_count(), before);
    expect_close(y, expected, "grad on");
  }
  {  // the switch off
    nn::InferenceFusionGuard off(false);
    soma::NoGradGuard no_grad;
    const int64_t before = soma::detail::fused_run_count();
    model(x);
    EXPECT_EQ(soma::detail::fused_run_count(), before);
  }
  {  // the reference backend preferred
    soma::kernels::BackendGuard reference("reference");
    expect_close(fused(model, x, &runs), expected, "reference backend");
    EXPECT_EQ(runs, 0);
  }
  // a float64 model and input
  std::shared_ptr<nn::Module> m64 = model.clone();
  m64->to(soma::kFloat64);
  expect_close(
      fused(static_cast<nn::Sequential&>(*m64), x.to(soma::kFloat64), &runs).to(soma::kFloat32),
      expected, "float64");
  EXPECT_EQ(runs, 0);
  // a BatchNorm in training mode: the conv alone is fused, the BatchNorm runs (and updates its
  // statistics) the plain way
  nn::Sequential trained = build(net);
  trained.ptr(1)->train();
  const Tensor mean_before = trained.at<nn::BatchNorm2d>(1).running_mean.clone();
  std::shared_ptr<nn::Module> copy = trained.clone();
  auto& twin = static_cast<nn::Sequential&>(*copy);
  const Tensor y_plain = plain(twin, x);
  const Tensor y_fused = fused(trained, x, &runs);
  EXPECT_EQ(runs, 2) << "conv 0 alone, then the second stage";
  expect_close(y_fused, y_plain, "training BatchNorm");
  EXPECT_FALSE(soma::equal(trained.at<nn::BatchNorm2d>(1).running_mean, mean_before));
  expect_close(trained.at<nn::BatchNorm2d>(1).running_mean,
               twin.at<nn::BatchNorm2d>(1).running_mean, "running_mean");
  // the whole model in training mode: nothing fused
  trained.train();
  fused(trained, x, &runs);
  EXPECT_EQ(runs, 0);
  // reflect padding: that convolution runs the plain way
  nn::Sequential reflect(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1).padding_mode("reflect")),
                         nn::ReLU(), nn::Conv2d(4, 4, 3));
  reflect.eval();
  expect_close(fused(reflect, x, &runs), plain(reflect, x), "reflect");
  EXPECT_EQ(runs, 1) << "the second conv only";
  // a forward hook on the BatchNorm: it sees NCHW values, the conv before it runs alone
  nn::Sequential hooked = build(net);
  Tensor seen;
  hooked[1].register_forward_hook(
      [&](nn::Module&, const Tensor&, const Tensor& out) { seen = out; });
  expect_close(fused(hooked, x, &runs), plain(hooked, x), "hooked");
  EXPECT_EQ(runs, 2);
  ASSERT_TRUE(seen.defined());
  EXPECT_EQ(seen.shape(), (soma::Shape{3, 32, 28, 28}));
  // an input with the wrong channel count: the plain path's error
  EXPECT_THROW(fused(model, soma::randn({2, 3, 28, 28}), &runs), soma::Error);
  // too small for the kernel: the plain path's error
  EXPECT_THROW(fused(model, soma::randn({2, 1, 1, 1}), &runs), soma::Error);
}

TEST(InferenceFusion, FollowsParameterChanges) {
  if (!onednn_built()) GTEST_SKIP() << "built without oneDNN: nothing is fused";
  soma::manual_seed(20);
  const Net net = nets()[0];
  nn::Sequential model = build(net);
  const Tensor x = soma::randn(net.input);
  int64_t runs = 0;
  const Tensor y0 = fused(model, x, &runs);
  auto& bn = model.at<nn::BatchNorm2d>(1);
  auto& conv = model.at<nn::Conv2d>(4);
  {
    soma::NoGradGuard no_grad;
    bn.running_mean.add_(0.5);
  }
  Tensor y1 = fused(model, x, &runs);
  expect_close(y1, plain(model, x), "running_mean changed");
  EXPECT_FALSE(soma::allclose(y1, y0, 1e-3, 1e-3));
  {
    soma::NoGradGuard no_grad;
    conv.weight.mul_(-1.0);
  }
  expect_close(fused(model, x, &runs), plain(model, x), "weight changed");
  // an optimizer step
  {
    model.train();
    const Tensor loss = model(x).sum();
    loss.backward();
    soma::optim::SGD sgd(model.parameters(), soma::optim::SGDOptions{.lr = 0.1});
    sgd.step();
    model.eval();
  }
  expect_close(fused(model, x, &runs), plain(model, x), "after an optimizer step");
  // load_state_dict from another model
  nn::Sequential other = build(net);
  model.load_state_dict(other.state_dict());
  expect_close(fused(model, x, &runs), plain(other, x), "after load_state_dict");
  // to(float64) and back
  model.to(soma::kFloat64);
  fused(model, x.to(soma::kFloat64), &runs);
  EXPECT_EQ(runs, 0);
  model.to(soma::kFloat32);
  expect_close(fused(model, x, &runs), plain(other, x), "after to(float64) and back");
  EXPECT_EQ(runs, 1);
  // a clone and its original, alternately
  std::shared_ptr<nn::Module> copy = model.clone();
  auto& twin = static_cast<nn::Sequential&>(*copy);
  {
    soma::NoGradGuard no_grad;
    twin.at<nn::BatchNorm2d>(1).running_var.mul_(4.0);
  }
  expect_close(fused(twin, x, &runs), plain(twin, x), "clone");
  expect_close(fused(model, x, &runs), plain(other, x), "original after the clone");
}

}  // namespace
