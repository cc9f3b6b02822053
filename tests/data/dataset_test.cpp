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

  const Tensor y = norm.apply(x);
  EXPECT_EQ(y.dtype(), soma::kFloat32);
  EXPECT_EQ(y.shape(), x.shape());
  const auto out = y.to_vector<float>();
  for (int64_t i = 0; i < x.numel(); ++i)
    EXPECT_NEAR(out[i], (p[i] / 255.0 - mean) / std, 1e-6) << "element " << i;
  EXPECT_NEAR(soma::data::Normalization::fit(y).mean, 0.0, 1e-6);
  EXPECT_NEAR(soma::data::Normalization::fit(y).std, 1.0, 1e-6);
}

// apply() takes a division-free path for uint8; its result must still be exactly the documented
// formula, for every byte value and for fitted and unusual parameters.
TEST(DataNormalizationTest, Uint8IsExactlyTheFormulaForEveryByte) {
  Tensor x = soma::empty({256}, soma::kUInt8);
  for (int v = 0; v < 256; ++v) x.data<uint8_t>()[v] = static_cast<uint8_t>(v);
  std::vector<soma::data::Normalization> norms = {soma::data::Normalization::fit(x)};
  for (double mean : {0.2860402, 0.1307, -3.0, 1e-9})
    for (double std : {0.3530239, 0.3081, 7.0, 1e-3}) norms.push_back({mean, std, 1.0 / 255.0});
  norms.push_back({0.5, 0.25, 1.0});
  for (const auto& norm : norms) {
    const std::vector<float> out = norm.apply(x).to_vector<float>();
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
  EXPECT_EQ(norm.apply(soma::tensor({2.5f}, {1, 1})).to_vector<float>(), std::vector<float>{0.0f});

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
  expect_error([&] { bad.apply(soma::zeros({2})); }, {"Normalization::apply", "std=0"});
}

}  // namespace
