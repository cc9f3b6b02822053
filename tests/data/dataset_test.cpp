// TensorDataset, Subset, train_val_split, random_split and Normalization.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "data/data_test_util.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using soma::data::Batch;
using soma::data::Example;
using soma::data::TensorDataset;
using soma_test::expect_error;

// uint8 x [n, 2, 2] with x[i] = 4i .. 4i+3 (mod 256), int64 y[i] = i.
TensorDataset make_dataset(int64_t n) {
  Tensor x = soma::empty({n, 2, 2}, soma::kUInt8);
  uint8_t* p = x.data<uint8_t>();
  for (int64_t i = 0; i < 4 * n; ++i) p[i] = static_cast<uint8_t>(i);
  return TensorDataset(x, soma::arange(n));
}

// Every sample of a dataset built by make_dataset() carries its original index in y, and its
// x must still match that index.
void expect_consistent(const Batch& b) {
  const auto y = b.y.to_vector<int64_t>();
  const auto x = b.x.to_vector<int64_t>();
  ASSERT_EQ(x.size(), 4 * y.size());
  for (size_t k = 0; k < y.size(); ++k)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(x[4 * k + j], (4 * y[k] + j) % 256) << "row " << k;
}

std::vector<int64_t> all_labels(const soma::data::Dataset& ds) {
  std::vector<int64_t> idx(static_cast<size_t>(ds.size()));
  std::iota(idx.begin(), idx.end(), 0);
  if (idx.empty()) return {};
  const Batch b = ds.get_batch(idx);
  expect_consistent(b);
  return b.y.to_vector<int64_t>();
}

// A dataset with only get(): exercises Dataset::get_batch's default (get + cat).
class Squares : public soma::data::Dataset {
 public:
  int64_t size() const override { return 6; }
  Example get(int64_t i) const override {
    return {soma::tensor(std::vector<float>{float(i), float(i * i)}),
            soma::tensor(std::vector<int64_t>{i}).squeeze(0)};
  }
};

TEST(DatasetTest, TensorDatasetGetAndGatherKeepDtype) {
  const TensorDataset ds = make_dataset(5);
  EXPECT_EQ(ds.size(), 5);
  const Example e = ds.get(3);
  EXPECT_EQ(e.x.shape(), (soma::Shape{2, 2}));
  EXPECT_EQ(e.x.dtype(), soma::kUInt8);
  EXPECT_EQ(e.x.to_vector<int64_t>(), (std::vector<int64_t>{12, 13, 14, 15}));
  EXPECT_EQ(e.y.dim(), 0);
  EXPECT_EQ(e.y.item<int64_t>(), 3);

  const Batch b = ds.get_batch({4, 0, 4});
  EXPECT_EQ(b.x.shape(), (soma::Shape{3, 2, 2}));
  EXPECT_EQ(b.x.dtype(), soma::kUInt8);
  EXPECT_EQ(b.y.dtype(), soma::kInt64);
  EXPECT_EQ(b.y.to_vector<int64_t>(), (std::vector<int64_t>{4, 0, 4}));
  expect_consistent(b);
}

TEST(DatasetTest, DefaultGetBatchStacksExamples) {
  const Squares ds;
  const Batch b = ds.get_batch({2, 5});
  EXPECT_EQ(b.x.shape(), (soma::Shape{2, 2}));
  EXPECT_EQ(b.x.to_vector<float>(), (std::vector<float>{2, 4, 5, 25}));
  EXPECT_EQ(b.y.shape(), (soma::Shape{2}));
  EXPECT_EQ(b.y.to_vector<int64_t>(), (std::vector<int64_t>{2, 5}));
  expect_error([&] { ds.get_batch({}); }, {"Dataset::get_batch", "empty"});
}

TEST(DatasetTest, Errors) {
  expect_error(
      [] {
        TensorDataset(soma::zeros({5, 3}), soma::zeros({4}));
      },
      {"TensorDataset", "[5, 3]", "[4]", "5", "4"});
  expect_error([] { TensorDataset(soma::zeros({}), soma::zeros({1})); },
               {"TensorDataset", "sample dimension"});
  expect_error([] { TensorDataset(Tensor(), soma::zeros({1})); }, {"TensorDataset", "undefined"});
  const TensorDataset ds = make_dataset(5);
  expect_error([&] { ds.get(5); }, {"TensorDataset::get", "index 5", "size 5"});
  expect_error([&] { ds.get(-1); }, {"TensorDataset::get", "index -1"});
  expect_error([&] { ds.get_batch({0, 7}); }, {"TensorDataset::get_batch", "index 7", "size 5"});
}

TEST(DatasetTest, TrainValSplitDisjointCompleteSeeded) {
  const TensorDataset ds = make_dataset(100);
  const auto [train, val] = soma::data::train_val_split(ds, 0.2, 7);
  EXPECT_EQ(train.size(), 80);
  EXPECT_EQ(val.size(), 20);
  EXPECT_EQ(train.x().dtype(), soma::kUInt8);
  const std::vector<int64_t> t = all_labels(train), v = all_labels(val);
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));  // original order kept
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  std::set<int64_t> all(t.begin(), t.end());
  all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 100u);  // disjoint and complete
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), 99);

  const auto [train2, val2] = soma::data::train_val_split(ds, 0.2, 7);
  EXPECT_EQ(all_labels(val2), v);
  const auto [train3, val3] = soma::data::train_val_split(ds, 0.2, 8);
  EXPECT_NE(all_labels(val3), v);

  // round(size * fraction), both ends of the range
  EXPECT_EQ(soma::data::train_val_split(make_dataset(10), 0.25, 0).second.size(), 3);
  EXPECT_EQ(soma::data::train_val_split(make_dataset(10), 0.0, 0).second.size(), 0);
  EXPECT_EQ(soma::data::train_val_split(make_dataset(10), 1.0, 0).first.size(), 0);
  expect_error([&] { soma::data::train_val_split(ds, 1.5, 0); },
               {"train_val_split", "val_fraction", "1.5"});
  expect_error([&] { soma::data::train_val_split(ds, -0.1, 0); }, {"train_val_split", "-0.1"});
}

TEST(DatasetTest, RandomSplitAndSubset) {
  auto ds = std::make_shared<TensorDataset>(make_dataset(10));
  const auto parts = soma::data::random_split(ds, {3, 5, 2}, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].size(), 3);
  EXPECT_EQ(parts[1].size(), 5);
  EXPECT_EQ(parts[2].size(), 2);
  std::set<int64_t> all;
  for (const auto& p : parts) {
    const std::vector<int64_t> labels = all_labels(p);
    EXPECT_EQ(labels, p.indices());
    all.insert(labels.begin(), labels.end());
    for (int64_t i = 0; i < p.size(); ++i) EXPECT_EQ(p.get(i).y.item<int64_t>(), p.indices()[i]);
  }
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(soma::data::random_split(ds, {3, 5, 2}, 1)[1].indices(), parts[1].indices());
  EXPECT_NE(soma::data::random_split(ds, {3, 5, 2}, 2)[1].indices(), parts[1].indices());

  expect_error(
      [&] {
        soma::data::random_split(ds, {3, 5}, 1);
      },
      {"random_split", "[3, 5]", "sum to 8", "10"});
  expect_error(
      [&] {
        soma::data::random_split(ds, {12, -2}, 1);
      },
      {"random_split", "non-negative", "[12, -2]"});
  expect_error([&] { soma::data::Subset(ds, {0, 10}); }, {"Subset", "index 10", "size 10"});
  expect_error([&] { parts[0].get(3); }, {"Subset::get", "index 3", "size 3"});
  expect_error([&] { parts[0].get_batch({0, 3}); }, {"Subset::get_batch", "index 3"});
}

TEST(DataNormalizationTest, Uint8ScaleMatchesHandLoop) {
  Tensor x = soma::empty({7, 3, 5}, soma::kUInt8);
  uint8_t* p = x.data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  const auto norm = soma::data::Normalization::fit(x);

  double sum = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) sum += p[i] / 255.0;
  const double mean = sum / static_cast<double>(x.numel());
  double ss = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) ss += (p[i] / 255.0 - mean) * (p[i] / 255.0 - mean);
  const double std = std::sqrt(ss / static_cast<double>(x.numel()));  // population std
  EXPECT_DOUBLE_EQ(norm.scale, 1.0 / 255.0);
  EXPECT_NEAR(norm.mean, mean, 1e-15);
  EXPECT_NEAR(norm.std, std, 1e-15);

  const Tensor y = norm.transform()(x);
  EXPECT_EQ(y.dtype(), soma::kFloat32);
  EXPECT_EQ(y.shape(), x.shape());
  const auto out = y.to_vector<float>();
  for (int64_t i = 0; i < x.numel(); ++i)
    EXPECT_NEAR(out[i], (p[i] / 255.0 - mean) / std, 1e-6) << "element " << i;
  EXPECT_NEAR(soma::data::Normalization::fit(y).mean, 0.0, 1e-6);
  EXPECT_NEAR(soma::data::Normalization::fit(y).std, 1.0, 1e-6);
}

// Normalize takes a division-free path for uint8; its result must still be exactly the documented
// formula, for every byte value and for fitted and unusual parameters.
TEST(DataNormalizationTest, Uint8IsExactlyTheFormulaForEveryByte) {
  Tensor x = soma::empty({256}, soma::kUInt8);
  for (int v = 0; v < 256; ++v) x.data<uint8_t>()[v] = static_cast<uint8_t>(v);
  std::vector<soma::data::Normalization> norms = {soma::data::Normalization::fit(x)};
  auto with = [&](double mean, double std, double scale) {
    soma::data::Normalization n;
    n.mean = mean;
    n.std = std;
    n.scale = scale;
    norms.push_back(n);
  };
  for (double mean : {0.2860402, 0.1307, -3.0, 1e-9})
    for (double std : {0.3530239, 0.3081, 7.0, 1e-3}) with(mean, std, 1.0 / 255.0);
  with(0.5, 0.25, 1.0);
  for (const auto& norm : norms) {
    const std::vector<float> out = norm.transform()(x).to_vector<float>();
    for (int v = 0; v < 256; ++v)
      ASSERT_EQ(out[v], static_cast<float>((v * norm.scale - norm.mean) / norm.std))
          << "byte " << v << " mean " << norm.mean << " std " << norm.std;
  }
}

TEST(DataNormalizationTest, FloatConstantAndErrors) {
  const auto norm = soma::data::Normalization::fit(soma::tensor({1.0f, 2.0f, 3.0f, 4.0f}));
  EXPECT_DOUBLE_EQ(norm.scale, 1.0);
  EXPECT_DOUBLE_EQ(norm.mean, 2.5);
  EXPECT_DOUBLE_EQ(norm.std, std::sqrt(1.25));
  EXPECT_EQ(norm.transform()(soma::tensor({2.5f}, {1, 1})).to_vector<float>(),
            std::vector<float>{0.0f});

  EXPECT_DOUBLE_EQ(soma::data::Normalization::fit(soma::full({3}, 7.0)).std, 1.0);  // constant
  expect_error(
      [] {
        soma::data::Normalization::fit(soma::zeros({0, 3}));
      },
      {"Normalization::fit", "empty", "[0, 3]"});
  expect_error(
      [] {
        soma::data::Normalization::fit(soma::tensor({1.0f, NAN}));
      },
      {"Normalization::fit", "NaN"});
  soma::data::Normalization bad;
  bad.std = 0.0;
  expect_error([&] { bad.transform()(soma::zeros({2})); }, {"transforms::Normalize", "std=0"});
}

// ---- per-feature normalisation ----------------------------------------------------------------

// Column statistics computed directly: mean and population std of each column of x * scale.
struct ColumnStats {
  std::vector<double> mean, std;
};
template <typename T>
ColumnStats column_stats(const std::vector<T>& x, int64_t n, int64_t f, double scale) {
  ColumnStats s{std::vector<double>(f, 0.0), std::vector<double>(f, 0.0)};
  for (int64_t j = 0; j < f; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i * f + j]) * scale;
    s.mean[j] = sum / static_cast<double>(n);
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(x[i * f + j]) * scale - s.mean[j];
      ss += d * d;
    }
    s.std[j] = std::sqrt(ss / static_cast<double>(n));
  }
  return s;
}

// Columns on very different scales (~1e4, ~1e-3, a constant, ~1): each is standardised with its
// own mean and std; a constant column gets std 1.
Tensor mixed_scale_columns(int64_t n) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) {
    v.push_back(10000.0f + 97.0f * static_cast<float>((i * 37) % 101));
    v.push_back(1e-3f * static_cast<float>((i * 13) % 7) + 1e-4f);
    v.push_back(5.0f);
    v.push_back(std::sin(static_cast<float>(i)));
  }
  return soma::tensor(v, {n, 4});
}

TEST(DataNormalizationTest, PerFeatureMatchesADirectComputationPerColumn) {
  const int64_t n = 60, f = 4;
  const Tensor x = mixed_scale_columns(n);
  const std::vector<float> xv = x.to_vector<float>();
  const ColumnStats want = column_stats(xv, n, f, 1.0);
  const auto norm = soma::data::Normalization::fit_per_feature(x);
  ASSERT_TRUE(norm.per_feature());
  ASSERT_EQ(norm.feature_mean.size(), 4u);
  ASSERT_EQ(norm.feature_std.size(), 4u);
  EXPECT_DOUBLE_EQ(norm.scale, 1.0);
  for (int64_t j = 0; j < f; ++j) {
    EXPECT_NEAR(norm.feature_mean[j], want.mean[j], 1e-12 * std::abs(want.mean[j])) << j;
    const double sd = want.std[j] == 0.0 ? 1.0 : want.std[j];  // the constant column
    EXPECT_NEAR(norm.feature_std[j], sd, 1e-12 * sd) << j;
  }
  EXPECT_EQ(want.std[2], 0.0);
  EXPECT_EQ(norm.feature_std[2], 1.0);

  const Tensor y = norm.transform()(x);
  EXPECT_EQ(y.dtype(), soma::kFloat32);
  EXPECT_EQ(y.shape(), x.shape());
  const std::vector<float> yv = y.to_vector<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) {
      const double sd = want.std[j] == 0.0 ? 1.0 : want.std[j];
      EXPECT_NEAR(yv[i * f + j], (xv[i * f + j] - want.mean[j]) / sd, 1e-5)
          << "row " << i << " column " << j;
    }
  // Every varying column comes out with mean 0 and std 1; the constant one with 0 and 0.
  const ColumnStats got = column_stats(yv, n, f, 1.0);
  for (int64_t j = 0; j < f; ++j) {
    EXPECT_NEAR(got.mean[j], 0.0, 1e-5) << j;
    EXPECT_NEAR(got.std[j], j == 2 ? 0.0 : 1.0, 1e-5) << j;
  }
  // A batch of one [1, F] gives the row of the batch result; a single sample [F] is not a batch.
  const std::vector<float> row7 = norm.transform()(x.narrow(0, 7, 1)).to_vector<float>();
  EXPECT_EQ(row7, std::vector<float>(yv.begin() + 7 * f, yv.begin() + 8 * f));
}

// The regression: one mean and std for all columns (what soma train used for CSV files) maps
// the ~1e-3 column onto a range of ~1e-7 around one value, so it carries no usable signal;
// per feature it spans several units.
TEST(DataNormalizationTest, PerFeatureKeepsASmallScaleColumnThatOneStdErases) {
  const int64_t n = 60, f = 4;
  const Tensor x = mixed_scale_columns(n);
  auto spread = [&](const Tensor& y, int64_t j) {
    const std::vector<float> v = y.to_vector<float>();
    float lo = v[j], hi = v[j];
    for (int64_t i = 0; i < n; ++i)
      lo = std::min(lo, v[i * f + j]), hi = std::max(hi, v[i * f + j]);
    return static_cast<double>(hi) - lo;
  };
  const double scalar = spread(soma::data::Normalization::fit(x).transform()(x), 1);
  const double per_feature =
      spread(soma::data::Normalization::fit_per_feature(x).transform()(x), 1);
  EXPECT_LT(scalar, 1e-6);
  EXPECT_GT(per_feature, 2.0);
}

TEST(DataNormalizationTest, PerFeatureUint8UsesScaleAndManyThreadsGiveTheSameResult) {
  // 40000 x 3 elements: Normalize runs its parallel loop.
  const int64_t n = 40000, f = 3;
  Tensor x = soma::empty({n, f}, soma::kUInt8);
  uint8_t* p = x.data<uint8_t>();
  for (int64_t i = 0; i < n * f; ++i)
    p[i] = static_cast<uint8_t>((i * 37 + i / 3) % (60 + 80 * (i % 3)));
  const std::vector<uint8_t> xv(p, p + n * f);
  const ColumnStats want = column_stats(xv, n, f, 1.0 / 255.0);
  const auto norm = soma::data::Normalization::fit_per_feature(x);
  EXPECT_DOUBLE_EQ(norm.scale, 1.0 / 255.0);
  const std::vector<float> yv = norm.transform()(x).to_vector<float>();
  for (int64_t j = 0; j < f; ++j) {
    EXPECT_NEAR(norm.feature_mean[j], want.mean[j], 1e-12) << j;
    EXPECT_NEAR(norm.feature_std[j], want.std[j], 1e-12) << j;
  }
  for (int64_t i = 0; i < n * f; ++i)
    ASSERT_EQ(yv[i], static_cast<float>((xv[i] * norm.scale - norm.feature_mean[i % f]) /
                                        norm.feature_std[i % f]))
        << "element " << i;
}

TEST(DataNormalizationTest, PerFeatureErrors) {
  expect_error([] { soma::data::Normalization::fit_per_feature(soma::zeros({6})); },
               {"Normalization::fit_per_feature", "[N, F]", "[6]"});
  expect_error(
      [] {
        soma::data::Normalization::fit_per_feature(soma::zeros({0, 3}));
      },
      {"Normalization::fit_per_feature", "[0, 3]"});
  expect_error(
      [] {
        soma::data::Normalization::fit_per_feature(soma::tensor({1.0f, 2.0f, 3.0f, NAN}, {2, 2}));
      },
      {"Normalization::fit_per_feature", "column 1", "NaN"});
  const auto norm = soma::data::Normalization::fit_per_feature(mixed_scale_columns(10));
  expect_error(
      [&] {
        norm.transform()(soma::zeros({5, 3}));
      },
      {"transforms::Normalize", "4 channels", "[5, 3]", "has 3 in dimension 1"});
  expect_error([&] { norm.transform()(soma::zeros({})); },
               {"transforms::Normalize", "batch dimension", "0-d"});
  soma::data::Normalization bad = norm;
  bad.feature_std.pop_back();
  expect_error(
      [&] {
        bad.transform()(soma::zeros({5, 4}));
      },
      {"transforms::Normalize", "mean has 4 entries but std has 3"});
  bad = norm;
  bad.feature_std[2] = 0.0;
  expect_error(
      [&] {
        bad.transform()(soma::zeros({5, 4}));
      },
      {"transforms::Normalize", "channel 2", "std=0"});
}

}  // namespace
