// Normalisation modules: names, state_dict keys/dtypes/shapes and describe() against torch
// (tests/reference/norm_modules_reference.txt, written by tests/reference/toolkit_norm.py),
// num_batches_tracked (int64, incremented, saved, loaded, kept by to() and clone()), training vs
// eval, track_running_stats=false, SyncBatchNorm on one process and convert_sync_batchnorm,
// the fast kernels against the reference ones, double backward, errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "kernels/kernels.h"
#include "kernels/registry.h"
#include "reference/reference_file.h"
#include "soma/autograd/gradcheck.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace nn = soma::nn;
namespace F = soma::nn::functional;

std::shared_ptr<nn::Module> make_module(const std::string& id) {
  if (id == "bn1d") return std::make_shared<nn::BatchNorm1d>(3);
  if (id == "bn2d") return std::make_shared<nn::BatchNorm2d>(32);
  if (id == "bn2d_noaffine")
    return std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4).affine(false));
  if (id == "bn2d_notrack")
    return std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4).track_running_stats(false));
  if (id == "bn1d_cma")
    return std::make_shared<nn::BatchNorm1d>(
        nn::BatchNorm1dOptions(5).eps(1e-3).momentum(std::nullopt));
  if (id == "sync") return std::make_shared<nn::SyncBatchNorm>(4);
  if (id == "ln1") return std::make_shared<nn::LayerNorm>(std::vector<int64_t>{4});
  if (id == "ln2")
    return std::make_shared<nn::LayerNorm>(
        nn::LayerNormOptions({3, 4}).eps(1e-6).elementwise_affine(false));
  if (id == "gn") return std::make_shared<nn::GroupNorm>(2, 4);
  if (id == "gn_noaffine") return std::make_shared<nn::GroupNorm>(3, 6, 1e-3, false);
  if (id == "seq")
    return std::make_shared<nn::Sequential>(nn::BatchNorm2d(2), nn::GroupNorm(1, 2),
                                            nn::LayerNorm(std::vector<int64_t>{3}));
  return nullptr;
}

std::string dtype_text(soma::DType d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

TEST(NormModules, StateDictAndDescribeMatchTorch) {
  std::ifstream in(
      golden::reference_path("SOMA_NORM_MODULES_REFERENCE", "norm_modules_reference.txt"));
  ASSERT_TRUE(in) << "norm_modules_reference.txt not found";
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t a = line.find('|'), b = line.find('|', a + 1);
    ASSERT_NE(b, std::string::npos) << line;
    const std::string id = line.substr(0, a), repr = line.substr(a + 1, b - a - 1);
    std::map<std::string, std::string> expected;
    std::stringstream keys(line.substr(b + 1));
    for (std::string item; std::getline(keys, item, ',');) {
      const size_t c = item.find(':');
      expected[item.substr(0, c)] = item.substr(c + 1);
    }
    auto m = make_module(id);
    ASSERT_TRUE(m) << id;
    if (repr != "-") {
      EXPECT_EQ(m->describe(), repr) << id;
    }
    std::map<std::string, std::string> got;
    for (const auto& [k, t] : m->state_dict()) {
      std::string shape;
      for (size_t i = 0; i < t.shape().size(); ++i)
        shape += (i ? "x" : "") + std::to_string(t.shape()[i]);
      got[k] = dtype_text(t.dtype()) + ":" + shape;
    }
    EXPECT_EQ(got, expected) << id;
    ++count;
  }
  EXPECT_EQ(count, 11);
}

TEST(NormModules, ParametersAndBuffers) {
  nn::BatchNorm2d bn(3);
  auto params = bn.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(bn.weight.to_vector<float>(), std::vector<float>(3, 1.f));
  EXPECT_EQ(bn.bias.to_vector<float>(), std::vector<float>(3, 0.f));
  auto buffers = bn.named_buffers();
  ASSERT_EQ(buffers.size(), 3u);
  EXPECT_EQ(buffers[2].first, "num_batches_tracked");
  EXPECT_EQ(bn.num_batches_tracked.dtype(), soma::kInt64);
  EXPECT_EQ(bn.num_batches_tracked.dim(), 0);
  EXPECT_EQ(bn.num_parameters(), 6);
}

TEST(NormModules, TrainingUpdatesBuffersEvalUsesThem) {
  soma::manual_seed(1);
  nn::BatchNorm2d bn(2);
  Tensor x = soma::randn({4, 2, 3, 3}) * 2.0 + 1.0;
  Tensor y = bn(x);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  bn(x);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
  // training output: per-channel mean 0, biased variance 1
  Tensor m = soma::mean(y, {0, 2, 3});
  for (float v : m.to_vector<float>()) EXPECT_NEAR(v, 0.f, 1e-5);
  // eval: uses running stats, buffers unchanged
  bn.eval();
  const auto rm = bn.running_mean.to_vector<float>();
  Tensor ye = bn(x);
  EXPECT_EQ(bn.running_mean.to_vector<float>(), rm);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
  Tensor expected =
      F::batch_norm(x, bn.running_mean, bn.running_var, bn.weight.detach(), bn.bias.detach());
  EXPECT_TRUE(soma::allclose(ye.detach(), expected, 1e-6, 1e-6));
  // eval with batch 1 is fine; training with one value per channel is torch's error
  EXPECT_NO_THROW(bn(soma::randn({1, 2, 1, 1})));
  bn.train();
  try {
    bn(soma::randn({1, 2, 1, 1}));
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Expected more than 1 value per channel when training"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
}

TEST(NormModules, NoRunningStatsUsesBatchStatsInEval) {
  soma::manual_seed(2);
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(3).track_running_stats(false));
  EXPECT_TRUE(bn.named_buffers().empty());
  Tensor x = soma::randn({5, 3, 4});
  bn.eval();
  Tensor y = bn(x);
  Tensor expected = F::batch_norm(x, {}, {}, bn.weight.detach(), bn.bias.detach(), true);
  EXPECT_TRUE(soma::allclose(y.detach(), expected, 1e-6, 1e-6));
}

TEST(NormModules, CumulativeMovingAverage) {
  soma::manual_seed(3);
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(2).momentum(std::nullopt));
  Tensor a = soma::randn({6, 2}), b = soma::randn({6, 2}) + 3.0;
  bn(a);
  bn(b);
  // factor 1/1 then 1/2: the plain average of the two batches' statistics
  Tensor m = (soma::mean(a, 0) + soma::mean(b, 0)) * 0.5;
  Tensor v = (soma::var(a, {0}) + soma::var(b, {0})) * 0.5;
  EXPECT_TRUE(soma::allclose(bn.running_mean, m, 1e-5, 1e-6));
  EXPECT_TRUE(soma::allclose(bn.running_var, v, 1e-5, 1e-6));
}

TEST(NormModules, SaveLoadToAndClone) {
  soma::manual_seed(4);
  nn::Sequential model(nn::BatchNorm2d(2), nn::BatchNorm1d(2));
  Tensor x = soma::randn({3, 2, 2, 2});
  model[0](x);
  model[0](x);
  auto& bn = model.at<nn::BatchNorm2d>(0);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
  const std::string path =
      (std::filesystem::temp_directory_path() / "soma_norm_test.safetensors").string();
  soma::save(model, path);
  nn::Sequential fresh(nn::BatchNorm2d(2), nn::BatchNorm1d(2));
  soma::load(fresh, path);
  std::remove(path.c_str());
  auto& bn2 = fresh.at<nn::BatchNorm2d>(0);
  EXPECT_EQ(bn2.num_batches_tracked.dtype(), soma::kInt64);
  EXPECT_EQ(bn2.num_batches_tracked.item<int64_t>(), 2);
  EXPECT_EQ(bn2.running_mean.to_vector<float>(), bn.running_mean.to_vector<float>());
  // to(float64) converts the floating tensors only
  fresh.to(soma::kFloat64);
  EXPECT_EQ(bn2.running_var.dtype(), soma::kFloat64);
  EXPECT_EQ(bn2.weight.dtype(), soma::kFloat64);
  EXPECT_EQ(bn2.num_batches_tracked.dtype(), soma::kInt64);
  EXPECT_EQ(bn2.num_batches_tracked.item<int64_t>(), 2);
  // clone copies the buffers, independent afterwards
  auto copy = std::dynamic_pointer_cast<nn::Sequential>(model.clone());
  ASSERT_TRUE(copy);
  auto& bn3 = copy->at<nn::BatchNorm2d>(0);
  EXPECT_EQ(bn3.num_batches_tracked.item<int64_t>(), 2);
  EXPECT_EQ(bn3.running_mean.to_vector<float>(), bn.running_mean.to_vector<float>());
  (*copy)[0](x);
  EXPECT_EQ(bn3.num_batches_tracked.item<int64_t>(), 3);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
  EXPECT_EQ(copy->named_buffers().size(), 6u);
}

TEST(NormModules, SyncBatchNormOneProcessEqualsBatchNorm) {
  soma::manual_seed(5);
  Tensor x = soma::randn({4, 3, 2, 2}).requires_grad_(true);
  Tensor x2 = x.detach().clone().requires_grad_(true);
  nn::BatchNorm2d bn(3);
  nn::SyncBatchNorm sync(3);
  Tensor g = soma::randn({4, 3, 2, 2});
  (bn(x) * g).sum().backward();
  (sync(x2) * g).sum().backward();
  EXPECT_TRUE(soma::allclose(x.grad(), x2.grad(), 1e-6, 1e-6));
  EXPECT_TRUE(soma::allclose(bn.weight.grad(), sync.weight.grad(), 1e-6, 1e-6));
  EXPECT_TRUE(soma::allclose(bn.running_var, sync.running_var, 1e-6, 1e-6));
  EXPECT_EQ(sync.num_batches_tracked.item<int64_t>(), 1);
}

TEST(NormModules, ConvertSyncBatchnormKeepsTensors) {
  auto model =
      std::make_shared<nn::Sequential>(nn::Linear(3, 4), nn::BatchNorm1d(4),
                                       nn::Sequential(nn::BatchNorm2d(2), nn::GroupNorm(1, 2)));
  auto& inner = model->at<nn::Sequential>(2);
  const Tensor w = model->at<nn::BatchNorm1d>(1).weight;
  const Tensor rv = inner.at<nn::BatchNorm2d>(0).running_var;
  const auto keys_before = model->state_dict();
  model->eval();
  auto converted = nn::SyncBatchNorm::convert_sync_batchnorm(model);
  EXPECT_EQ(converted.get(), model.get());
  auto& s1 = model->at<nn::SyncBatchNorm>(1);
  EXPECT_EQ(s1.weight.impl(), w.impl());
  EXPECT_FALSE(s1.is_training());
  EXPECT_EQ(inner.at<nn::SyncBatchNorm>(0).running_var.impl(), rv.impl());
  EXPECT_NO_THROW(inner.at<nn::GroupNorm>(1));
  const auto keys_after = model->state_dict();
  ASSERT_EQ(keys_after.size(), keys_before.size());
  for (const auto& [k, t] : keys_before) {  // detached views of the same storage
    if (t.dtype() == soma::kInt64)
      EXPECT_EQ(keys_after.at(k).data<int64_t>(), t.data<int64_t>()) << k;
    else
      EXPECT_EQ(keys_after.at(k).data<float>(), t.data<float>()) << k;
  }
  EXPECT_EQ(model->parameters().size(), 8u);
  // a BatchNorm itself is returned converted
  auto one = nn::SyncBatchNorm::convert_sync_batchnorm(std::make_shared<nn::BatchNorm2d>(3));
  EXPECT_TRUE(std::dynamic_pointer_cast<nn::SyncBatchNorm>(one));
  EXPECT_EQ(one->describe(),
            "SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
}

TEST(NormModules, LayerNormAndGroupNormModules) {
  soma::manual_seed(6);
  nn::LayerNorm ln(std::vector<int64_t>{3, 4});
  Tensor x = soma::randn({2, 3, 4});
  EXPECT_TRUE(soma::allclose(ln(x).detach(), F::layer_norm(x, {3, 4}), 1e-6, 1e-6));
  nn::GroupNorm gn(2, 4);
  Tensor z = soma::randn({2, 4, 3});
  EXPECT_TRUE(soma::allclose(gn(z).detach(), F::group_norm(z, 2), 1e-6, 1e-6));
  auto c = std::dynamic_pointer_cast<nn::GroupNorm>(gn.clone());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->describe(), gn.describe());
}

TEST(NormModules, Errors) {
  nn::BatchNorm2d bn2(3);
  try {
    bn2(soma::randn({2, 3, 4}));
    FAIL() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 4D input (got 3D input"), std::string::npos)
        << e.what();
  }
  nn::BatchNorm1d bn1(3);
  EXPECT_THROW(bn1(soma::randn({2, 3, 4, 5})), soma::Error);
  EXPECT_THROW(bn1(soma::randn({2, 4})), soma::Error);  // wrong channel count
  EXPECT_THROW(nn::GroupNorm(4, 6), soma::Error);
  EXPECT_THROW(nn::BatchNorm2d(0), soma::Error);
  EXPECT_THROW(nn::LayerNorm(std::vector<int64_t>{}), soma::Error);
  nn::LayerNorm ln(std::vector<int64_t>{4});
  EXPECT_THROW(ln(soma::randn({2, 3})), soma::Error);
  EXPECT_THROW(F::batch_norm(soma::randn({2, 3}), {}, {}), soma::Error);  // eval needs stats
  EXPECT_THROW(F::batch_norm(soma::randn({3}), {}, {}, {}, {}, true), soma::Error);
  EXPECT_THROW(F::group_norm(soma::randn({2, 4}).to(soma::kInt64), 2), soma::Error);
}

// The fast kernels against the one-element-at-a-time references, on shapes with several
// vectors and blocks per channel (1e-4 relative in float32). The batch-norm shapes cover planes
// shorter than a 16-lane vector (B = 4: every element in the lanes' remainder), planes with a
// remainder (B = 49, 196), enough planes per channel that the float lanes are flushed into
// double in the middle of a plane, data far from zero next to its spread (the statistics shift
// by the channel's first element), and float64.
TEST(NormKernels, FastMatchesReference) {
  soma::manual_seed(7);
  struct Case {
    std::function<Tensor(const Tensor&)> f;
    soma::Shape shape;
    double scale = 3.0, offset = 2.0;
    soma::DType dtype = soma::kFloat32;
    bool first_zero = false;  // each channel's first element 0 (the statistics' shift), the rest
                              // near the offset
  };
  auto bn_affine = [](const Tensor& x) {
    Tensor w = soma::full({x.size(1)}, 1.5, x.dtype()),
           b = soma::full({x.size(1)}, 0.25, x.dtype());
    return F::batch_norm(x, {}, {}, w.requires_grad_(true), b.requires_grad_(true), true);
  };
  auto bn = [](const Tensor& x) { return F::batch_norm(x, {}, {}, {}, {}, true); };
  std::vector<Case> cases = {
      {bn_affine, {8, 5, 33, 37}},
      {bn, {300, 37}},
      {bn_affine, {256, 4, 2, 2}},
      {bn_affine, {64, 3, 7, 7}},
      {bn_affine, {130, 2, 14, 14}},
      {bn_affine, {256, 4, 2, 2}, 1.0, 300.0},
      {bn_affine, {256, 4, 2, 2}, 1.0, 300.0, soma::kFloat32, true},
      {bn_affine, {64, 3, 7, 7}, 1.0, 300.0, soma::kFloat32, true},
      {bn_affine, {130, 2, 14, 14}, 1.0, 300.0, soma::kFloat32, true},
      {bn, {300, 37}, 1.0, 300.0, soma::kFloat32, true},
      {bn_affine, {130, 2, 14, 14}, 3.0, 2.0, soma::kFloat64},
      {bn_affine, {256, 3, 1, 3}, 3.0, 2.0, soma::kFloat64},
      {[](const Tensor& x) { return F::layer_norm(x, {x.size(-1)}); }, {7, 1029}},
      {[](const Tensor& x) { return F::group_norm(x, 3); }, {3, 6, 21, 19}},
  };
  for (const Case& c : cases) {
    Tensor x = soma::randn(c.shape, c.dtype) * c.scale + c.offset;
    if (c.first_zero) {
      Tensor first = x.narrow(0, 0, 1);
      for (int64_t d = 2; d < x.dim(); ++d) first = first.narrow(d, 0, 1);
      first.zero_();
    }
    x.requires_grad_(true);
    Tensor g = soma::randn(c.shape, c.dtype);
    Tensor y = c.f(x);
    (y * g).sum().backward();
    Tensor gx = x.grad();
    x.zero_grad();
    Tensor yr, gxr;
    {
      soma::kernels::BackendGuard guard("reference");
      yr = c.f(x);
      (yr * g).sum().backward();
      gxr = x.grad();
    }
    const double tol = c.dtype == soma::kFloat64 ? 1e-10 : 1e-4;
    const std::string where = soma::shape_str(c.shape) + " offset " + std::to_string(c.offset) +
                              (c.first_zero ? ", first elements 0" : "");
    EXPECT_TRUE(soma::allclose(y.detach(), yr.detach(), tol, tol)) << where;
    EXPECT_TRUE(soma::allclose(gx, gxr, tol, tol)) << where;
  }
}

// Double backward of the training batch norm through the module (create_graph).
TEST(NormModules, BatchNormGradGradCheck) {
  soma::manual_seed(8);
  Tensor x = soma::randn({3, 2, 2}, soma::kFloat64).requires_grad_(true);
  Tensor w = (soma::rand({2}, soma::kFloat64) + 0.5).requires_grad_(true);
  Tensor b = soma::randn({2}, soma::kFloat64).requires_grad_(true);
  auto f = [](const std::vector<Tensor>& in) {
    Tensor y = F::batch_norm(in[0], {}, {}, in[1], in[2], true);
    return y * y;
  };
  EXPECT_NO_THROW(soma::autograd::gradgradcheck(f, {x, w, b}));
}

// Timing (not a test): ./soma_tests --gtest_also_run_disabled_tests
//   --gtest_filter='NormBench.*'
TEST(NormBench, DISABLED_BatchNormTrainForwardBackward) {
  soma::manual_seed(9);
  nn::BatchNorm2d bn(32);
  Tensor x = soma::randn({128, 32, 28, 28}).requires_grad_(true);
  Tensor g = soma::randn({128, 32, 28, 28});
  auto step = [&] {
    Tensor y = bn(x);
    y.backward(g);
  };
  for (int i = 0; i < 3; ++i) step();
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) step();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
      reps;
  Tensor y;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) y = bn(x.detach());
  const double fwd =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count() /
      reps;
  std::printf(
      "batch_norm training [128, 32, 28, 28] float32: forward+backward %.2f ms, "
      "forward %.2f ms (%d threads)\n",
      ms, fwd, soma::get_num_threads());
}

}  // namespace
