// soma::data::transforms: Normalize, pad_crop and hflip against PyTorch (torchvision's
// semantics, tests/reference/transforms_reference.txt), the random draws of RandomCrop and
// RandomHorizontalFlip (uniform, deterministic, per sample), Compose, Reshape and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "data/data_test_util.h"
#include "kernels/cpu/parallel.h"
#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

namespace T = soma::data::transforms;
using soma::Tensor;
using soma_test::expect_error;

std::vector<int64_t> ints(const golden::RefTensor& r) {
  return std::vector<int64_t>(r.values.begin(), r.values.end());
}

TEST(DataTransformGoldenTest, MatchesTorch) {
  const golden::RefFile file = golden::parse_reference(
      golden::reference_path("SOMA_TRANSFORMS_REFERENCE", "transforms_reference.txt"),
      {.roles = {"in", "out"}, .require_gout = false});
  ASSERT_EQ(golden::file_problem(file), "");
  std::map<std::string, int> ops;
  for (const golden::Case& c : file.cases) {
    SCOPED_TRACE(c.label());
    ASSERT_EQ(c.outs.size(), 1u);
    const Tensor x = golden::make_tensor(c.inputs.at(0));
    Tensor got;
    // Crop and flip copy elements: exact (float32 values are written with %.9g, which reads
    // back within 1e-8 relative of the float).
    golden::Tolerance tol{.rtol = x.dtype() == soma::kFloat32 ? 1e-7 : 0.0, .atol = 0.0};
    if (c.op == "normalize") {
      const auto& mean = c.inputs.at(1).values;
      const auto& std = c.inputs.at(2).values;
      const double scale = c.inputs.at(3).values.at(0);
      got = T::Normalize(mean, std, scale)(x);
      // torch computes in float32 with mean/std rounded to float; soma in double, rounded once.
      tol = {.rtol = 2e-6, .atol = 2e-6};
    } else if (c.op == "pad_crop") {
      const std::vector<int64_t> off = ints(c.inputs.at(1)), hwp = ints(c.inputs.at(2));
      std::vector<int64_t> top, left;
      for (size_t k = 0; k < off.size(); k += 2) {
        top.push_back(off[k]);
        left.push_back(off[k + 1]);
      }
      got = T::pad_crop(x, hwp[0], hwp[1], hwp[2], top, left);
    } else if (c.op == "hflip") {
      std::vector<uint8_t> flags;
      for (int64_t f : ints(c.inputs.at(1))) flags.push_back(static_cast<uint8_t>(f));
      got = T::hflip(x, flags);
    } else {
      FAIL() << "unknown op " << c.op;
    }
    ++ops[c.op];
    EXPECT_EQ(got.dtype(), c.outs[0].dtype);
    EXPECT_EQ(golden::compare(c, "out", got, c.outs[0], tol), "");
  }
  EXPECT_GE(ops["normalize"], 4);
  EXPECT_GE(ops["pad_crop"], 3);
  EXPECT_GE(ops["hflip"], 3);
}

// The random stages equal their deterministic part applied with the drawn offsets and flags.
TEST(DataTransformTest, RandomStagesApplyTheirDraws) {
  Tensor x = soma::empty({6, 2, 5, 7}, soma::kUInt8);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 13);
  const T::Context ctx{.seed = 3, .epoch = 1, .indices = {10, 11, 12, 13, 14, 15}};
  const T::RandomCrop crop(4, 2);
  const auto offs = crop.offsets(ctx, 6, 5, 7);
  std::vector<int64_t> top, left;
  for (auto [t, l] : offs) {
    top.push_back(t);
    left.push_back(l);
  }
  const Tensor cropped = crop(x, ctx);
  EXPECT_EQ(cropped.shape(), (soma::Shape{6, 2, 4, 4}));
  EXPECT_EQ(cropped.to_vector<uint8_t>(), T::pad_crop(x, 4, 4, 2, top, left).to_vector<uint8_t>());
  const T::RandomHorizontalFlip flip;
  EXPECT_EQ(flip(x, ctx).to_vector<uint8_t>(),
            T::hflip(x, flip.decisions(ctx, 6)).to_vector<uint8_t>());
  // Non-contiguous input gives the same result as its contiguous copy.
  const Tensor xt = x.transpose(2, 3);
  EXPECT_EQ(flip(xt, ctx).to_vector<uint8_t>(), flip(xt.contiguous(), ctx).to_vector<uint8_t>());
}

// Offsets and flips: uniform over their range, a pure function of (seed, epoch, sample index).
TEST(DataTransformTest, DrawsAreUniformAndDeterministic) {
  const int64_t n = 90000;
  T::Context ctx{.seed = 42, .epoch = 0};
  const T::RandomCrop crop(28, 4);  // Fashion-MNIST: offsets in [0, 8]
  const auto offs = crop.offsets(ctx, n, 28, 28);
  std::vector<int64_t> top_count(9, 0), left_count(9, 0), pair_count(81, 0);
  for (auto [t, l] : offs) {
    ASSERT_TRUE(t >= 0 && t <= 8 && l >= 0 && l <= 8) << t << " " << l;
    ++top_count[t];
    ++left_count[l];
    ++pair_count[t * 9 + l];
  }
  // Chi-square with 8 (and 80) degrees of freedom: 99.9 % quantiles 26.1 (and 124.8).
  auto chi2 = [](const std::vector<int64_t>& counts, double expected) {
    double s = 0;
    for (int64_t c : counts) s += (c - expected) * (c - expected) / expected;
    return s;
  };
  EXPECT_LT(chi2(top_count, n / 9.0), 26.1);
  EXPECT_LT(chi2(left_count, n / 9.0), 26.1);
  EXPECT_LT(chi2(pair_count, n / 81.0), 124.8);  // top and left independent

  const T::RandomHorizontalFlip flip(0.5);
  const auto flips = flip.decisions(ctx, n);
  int64_t flipped = 0, same_as_next = 0;
  for (int64_t k = 0; k < n; ++k) {
    flipped += flips[k];
    if (k + 1 < n) same_as_next += flips[k] == flips[k + 1];
  }
  EXPECT_NEAR(static_cast<double>(flipped) / n, 0.5, 0.01);       // 6 sigma
  EXPECT_NEAR(static_cast<double>(same_as_next) / n, 0.5, 0.01);  // no serial correlation
  for (double p : {0.0, 1.0}) {
    const auto d = T::RandomHorizontalFlip(p).decisions(ctx, 1000);
    EXPECT_EQ(std::count(d.begin(), d.end(), 1), p == 0.0 ? 0 : 1000);
  }
  const auto quarter = T::RandomHorizontalFlip(0.25).decisions(ctx, n);
  EXPECT_NEAR(static_cast<double>(std::count(quarter.begin(), quarter.end(), 1)) / n, 0.25, 0.01);

  // Deterministic, keyed by the sample index (not the row), and different per epoch and seed.
  EXPECT_EQ(crop.offsets(ctx, n, 28, 28), offs);
  T::Context shifted = ctx;
  shifted.indices = {5, 6, 7};
  const auto by_index = crop.offsets(shifted, 3, 28, 28);
  EXPECT_EQ(by_index, (std::vector<std::pair<int64_t, int64_t>>{offs[5], offs[6], offs[7]}));
  auto differing = [&](const T::Context& other) {
    const auto o = crop.offsets(other, 1000, 28, 28);
    int64_t diff = 0;
    for (int64_t k = 0; k < 1000; ++k) diff += o[k] != offs[k];
    return diff;
  };
  T::Context epoch1 = ctx, seed7 = ctx;
  epoch1.epoch = 1;
  seed7.seed = 7;
  EXPECT_GT(differing(epoch1), 900);  // equal with probability 1/81 per sample
  EXPECT_GT(differing(seed7), 900);
  // Fixed values: the stream must not change between versions without notice (resume).
  EXPECT_EQ(T::Context({.seed = 0, .epoch = 0}).random(0, 1), T::Context{}.random(0, 1));
  EXPECT_NE(T::Context({.seed = 0, .epoch = 0}).random(0, 1), T::Context{}.random(0, 2));
}

TEST(DataTransformTest, ComposeGivesEachStageItsOwnStream) {
  // Two flips in a row undo each other only where both drew "flip" or both drew "keep".
  Tensor x = soma::arange(2000 * 3).reshape({2000, 1, 3}).to(soma::kFloat32);
  const T::Compose twice({T::RandomHorizontalFlip(), T::RandomHorizontalFlip()});
  const auto y = twice(x).to_vector<float>();
  const auto v = x.to_vector<float>();
  int64_t unchanged = 0;
  for (int64_t k = 0; k < 2000; ++k) unchanged += y[3 * k] == v[3 * k];
  EXPECT_NEAR(unchanged / 2000.0, 0.5, 0.06);
  // A Compose of one stage is the stage with a different stream; nested Composes work.
  const T::Compose nested({T::Compose({T::RandomCrop(2, 1)}), T::Reshape({-1})});
  EXPECT_EQ(nested(x).shape(), (soma::Shape{2000, 4}));
}

TEST(DataTransformTest, ReshapeLambdaAndEmptyBatches) {
  const Tensor flat = soma::zeros({3, 784}, soma::kUInt8);
  EXPECT_EQ(T::Reshape({1, 28, 28})(flat).shape(), (soma::Shape{3, 1, 28, 28}));
  EXPECT_EQ(T::Reshape({-1, 28})(flat).shape(), (soma::Shape{3, 28, 28}));
  expect_error(
      [&] {
        T::Reshape({1, 27, 28})(flat);
      },
      {"transforms::Reshape", "784 elements", "[1, 27, 28]"});
  expect_error([] { T::Reshape({-1, -1}); }, {"transforms::Reshape", "-1"});
  const T::Transform pipeline =
      T::Compose({T::Reshape({1, 28, 28}), T::RandomCrop(28, 4), T::RandomHorizontalFlip(),
                  T::Normalize({0.5}, {0.25}, 1.0 / 255), T::Reshape({784})});
  const Tensor out = pipeline(flat);
  EXPECT_EQ(out.shape(), (soma::Shape{3, 784}));
  EXPECT_EQ(out.dtype(), soma::kFloat32);
  // Padding shows as the zero pixel's normalised value -2 only where the window left the image;
  // inside, the zero image also gives -2: every value is -2.
  for (float v : out.to_vector<float>()) ASSERT_EQ(v, -2.0f);
  const Tensor empty = pipeline(soma::zeros({0, 784}, soma::kUInt8));
  EXPECT_EQ(empty.shape(), (soma::Shape{0, 784}));
  EXPECT_FALSE(T::Transform());
  EXPECT_EQ(T::Transform()(flat).data<uint8_t>(), flat.data<uint8_t>());  // identity
}

// A batch of one channel ([128, 784] uint8, as `soma train` normalises) splits over the pool,
// and the result does not depend on the split.
TEST(DataTransformTest, NormalizeUsesThePoolForOneChannel) {
  Tensor x = soma::empty({128, 784}, soma::kUInt8);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 31);
  const T::Normalize norm({0.2860402}, {0.3530239}, 1.0 / 255);
  const std::vector<float> pooled = norm(x).to_vector<float>();
  if (soma::kernels::cpu::num_threads() > 1) {
    EXPECT_EQ(soma::kernels::cpu::last_team_size(), soma::kernels::cpu::num_threads());
  }
  std::vector<float> single;
  {
    soma::kernels::cpu::ThreadLimit one(1);
    single = norm(x).to_vector<float>();
    EXPECT_EQ(soma::kernels::cpu::last_team_size(), 1);
  }
  EXPECT_EQ(pooled, single);
}

TEST(DataTransformTest, BadInput) {
  expect_error(
      [] {
        T::Normalize({0.5, 0.5}, {1.0});
      },
      {"transforms::Normalize", "mean has 2 entries but std has 1"});
  expect_error([] { T::Normalize({}, {}); }, {"transforms::Normalize", "0 entries"});
  expect_error([] { T::Normalize({0.5}, {0.0}); }, {"transforms::Normalize", "channel 0", "std=0"});
  expect_error([] { T::Normalize({NAN}, {1.0}); }, {"transforms::Normalize", "mean=nan"});
  expect_error(
      [] {
        T::Normalize({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0})(soma::zeros({2, 1, 4, 4}));
      },
      {"transforms::Normalize", "3 channels", "[2, 1, 4, 4]", "has 1 in dimension 1"});
  expect_error(
      [] {
        T::Normalize({0.0, 0.0}, {1.0, 1.0})(soma::zeros({4}));
      },
      {"transforms::Normalize", "2 channels", "[4]"});
  expect_error([] { T::RandomCrop(0); }, {"transforms::RandomCrop", "size", "0"});
  expect_error([] { T::RandomCrop(4, -1); }, {"transforms::RandomCrop", "padding", "-1"});
  expect_error(
      [] {
        T::RandomCrop(33, 2)(soma::zeros({2, 1, 28, 28}));
      },
      {"transforms::RandomCrop", "crop size 33", "padded image 32x32", "padding 2"});
  expect_error(
      [] {
        T::RandomCrop(28, 4)(soma::zeros({2, 784}));
      },
      {"transforms::RandomCrop", "[N, C, H, W]", "[2, 784]", "Reshape"});
  expect_error([] { T::RandomHorizontalFlip(1.5); },
               {"transforms::RandomHorizontalFlip", "[0, 1]", "1.5"});
  expect_error(
      [] {
        T::RandomHorizontalFlip()(soma::zeros({2, 784}));
      },
      {"transforms::RandomHorizontalFlip", "[2, 784]"});
  expect_error(
      [] {
        T::RandomHorizontalFlip()(soma::zeros({3, 1, 2, 2}), {.indices = {1, 2}});
      },
      {"transforms::RandomHorizontalFlip", "2 sample indices", "3 rows"});
  expect_error(
      [] {
        T::pad_crop(soma::zeros({1, 1, 4, 4}), 3, 3, 0, {2}, {0});
      },
      {"transforms::pad_crop", "(2, 0)", "sample 0", "4x4"});
  expect_error(
      [] {
        T::hflip(soma::zeros({2, 1, 4, 4}), {1});
      },
      {"transforms::hflip", "1 flags for 2 samples"});
  expect_error([] { T::Lambda(nullptr); }, {"transforms::Lambda", "empty"});
}

}  // namespace
