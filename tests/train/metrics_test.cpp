// train metrics: accuracy and ConfusionMatrix against counts worked out by hand.
#include "soma/train/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace train = soma::train;

Tensor labels(const std::vector<int64_t>& v) {
  return soma::tensor(v);
}

TEST(Metrics, AccuracyFromLogitsAndPredictions) {
  // argmax per row: 1, 0, 1, 0; labels 1, 0, 0, 0 -> 3 of 4 correct.
  Tensor logits = soma::tensor({0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f, 0.6f, 0.4f}, {4, 2});
  EXPECT_DOUBLE_EQ(train::accuracy(logits, labels({1, 0, 0, 0})), 0.75);
  EXPECT_EQ(train::count_correct(logits, labels({1, 0, 0, 0})), 3);
  EXPECT_DOUBLE_EQ(train::accuracy(labels({2, 1, 0}), labels({2, 1, 1})), 2.0 / 3);
  // float64 logits, one-hot float targets compared by their argmax.
  Tensor l64 = soma::tensor(std::vector<double>{3, 1, 2, 0, 5, 9}, {3, 2});
  Tensor onehot = soma::tensor(std::vector<double>{1, 0, 0, 1, 0, 1}, {3, 2});
  EXPECT_DOUBLE_EQ(train::accuracy(l64, onehot), 2.0 / 3);
  // Logits that require grad are fine (no graph is built).
  Tensor g = soma::randn({5, 3}).requires_grad_(true);
  EXPECT_NO_THROW(train::accuracy(g, labels({0, 1, 2, 0, 1})));
}

TEST(Metrics, AccuracyErrors) {
  Tensor logits = soma::randn({4, 3});
  EXPECT_THROW(train::accuracy(logits, labels({0, 1, 2})), soma::Error);  // 4 vs 3 samples
  EXPECT_THROW(train::accuracy(soma::randn({4, 1}), labels({0, 1, 0, 1})), soma::Error);
  try {
    train::accuracy(soma::randn({4}), labels({0, 1, 0, 1}));
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("accuracy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4]"), std::string::npos) << e.what();
  }
}

TEST(MetricsConfusion, CountsByHand) {
  train::ConfusionMatrix cm(3);
  // true:  0 0 1 1 1 2 2
  // pred:  0 1 1 1 2 2 0
  cm.update(labels({0, 1, 1, 1, 2, 2, 0}), labels({0, 0, 1, 1, 1, 2, 2}));
  EXPECT_EQ(cm.at(0, 0), 1);
  EXPECT_EQ(cm.at(0, 1), 1);
  EXPECT_EQ(cm.at(1, 1), 2);
  EXPECT_EQ(cm.at(1, 2), 1);
  EXPECT_EQ(cm.at(2, 2), 1);
  EXPECT_EQ(cm.at(2, 0), 1);
  EXPECT_EQ(cm.at(2, 1), 0);
  EXPECT_EQ(cm.total(), 7);
  EXPECT_EQ(cm.counts(), (std::vector<int64_t>{1, 1, 0, 0, 2, 1, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(cm.accuracy(), 4.0 / 7);
  std::vector<double> per = cm.per_class_accuracy();
  ASSERT_EQ(per.size(), 3u);
  EXPECT_DOUBLE_EQ(per[0], 0.5);
  EXPECT_DOUBLE_EQ(per[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(per[2], 0.5);

  // A second batch, as logits: argmax 2, 0 for true classes 2, 1.
  cm.update(soma::tensor({0.f, 1.f, 5.f, 9.f, 1.f, 2.f}, {2, 3}), labels({2, 1}));
  EXPECT_EQ(cm.at(2, 2), 2);
  EXPECT_EQ(cm.at(1, 0), 1);
  EXPECT_EQ(cm.total(), 9);
  EXPECT_DOUBLE_EQ(cm.accuracy(), 5.0 / 9);
  EXPECT_EQ(cm.num_classes(), 3);
  EXPECT_NE(cm.to_string({"cat", "dog", "emu"}).find("emu"), std::string::npos);

  cm.reset();
  EXPECT_EQ(cm.total(), 0);
  EXPECT_TRUE(std::isnan(cm.accuracy()));
  EXPECT_TRUE(std::isnan(cm.per_class_accuracy()[1]));
}

TEST(MetricsConfusion, OutOfRangeLabelNamesLabelAndIndex) {
  train::ConfusionMatrix cm(3);
  try {
    cm.update(labels({0, 1, 2, 0}), labels({0, 1, 3, 0}));
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("label 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("index 2"), std::string::npos) << msg;
  }
  EXPECT_EQ(cm.total(), 0);  // nothing counted from the bad batch
  try {
    cm.update(labels({0, 1}), labels({-1, 0}));
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("label -1 at index 0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cm.update(labels({0, 5}), labels({0, 1})), soma::Error);       // prediction 5
  EXPECT_THROW(cm.update(soma::randn({2, 4}), labels({0, 1})), soma::Error);  // 4 classes
  EXPECT_THROW(cm.at(3, 0), soma::Error);
  EXPECT_THROW(train::ConfusionMatrix(0), soma::Error);
}

}  // namespace
