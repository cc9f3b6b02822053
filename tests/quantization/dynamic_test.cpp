// Dynamic int8 quantization against torch 1.13 (tests/reference/quantization.py wrote
// quantization_reference.txt): qparams and int8 weights exactly, outputs to float32 rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace nn = soma::nn;
namespace q = soma::quantization;

struct LinearCase {
  std::string name;
  int64_t in = 0, out = 0, rows = 0;
  bool bias = false;
  std::map<std::string, std::vector<double>> v;  // weight, bias, x, qweight, wscale, y
};

struct Reference {
  std::vector<std::vector<double>> qparams;  // min, max, scale, zero_point
  std::vector<LinearCase> cases;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    std::ifstream in(std::string(SOMA_TEST_DATA_DIR) + "/reference/quantization_reference.txt");
    EXPECT_TRUE(in.good()) << "quantization_reference.txt not found";
    std::string line;
    LinearCase* cur = nullptr;
    bool in_observer = false;  // observer blocks are static_test.cpp's
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      std::string tag;
      ss >> tag;
      if (tag == "observer" || in_observer) {
        in_observer = tag != "end";
      } else if (tag == "qparams") {
        std::vector<double> v(4);
        ss >> v[0] >> v[1] >> v[2] >> v[3];
        r.qparams.push_back(v);
      } else if (tag == "case") {
        r.cases.emplace_back();
        cur = &r.cases.back();
        int b = 0;
        ss >> cur->name >> cur->in >> cur->out >> b >> cur->rows;
        cur->bias = b != 0;
      } else if (tag == "end") {
        cur = nullptr;
      } else if (cur) {
        std::vector<double> v;
        double d;
        while (ss >> d) v.push_back(d);
        cur->v[tag] = v;
      }
    }
    return r;
  }();
  return ref;
}

Tensor tensor_of(const std::vector<double>& v, const soma::Shape& shape) {
  std::vector<float> f(v.begin(), v.end());
  return soma::tensor(f, shape);
}

std::vector<float> values(const Tensor& t) {
  const Tensor c = t.to(soma::kFloat32).contiguous();
  return {c.data<float>(), c.data<float>() + c.numel()};
}

nn::Linear float_linear(const LinearCase& c) {
  nn::Linear lin(c.in, c.out, nn::LinearOptions{.bias = c.bias});
  soma::NoGradGuard no_grad;
  lin.weight.copy_(tensor_of(c.v.at("weight"), {c.out, c.in}));
  if (c.bias) lin.bias.copy_(tensor_of(c.v.at("bias"), {c.out}));
  return lin;
}

TEST(Quantization, ChooseQParamsMatchesTorch) {
  ASSERT_GE(reference().qparams.size(), 10u);
  for (const auto& v : reference().qparams) {
    const q::QParams p = q::choose_qparams(static_cast<float>(v[0]), static_cast<float>(v[1]));
    EXPECT_EQ(p.scale, static_cast<float>(v[2])) << "min " << v[0] << " max " << v[1];
    EXPECT_EQ(p.zero_point, static_cast<int32_t>(v[3])) << "min " << v[0] << " max " << v[1];
  }
}

TEST(Quantization, ChooseQParamsRejectsBadRanges) {
  EXPECT_THROW(q::choose_qparams(NAN, 1.0f), soma::Error);
  EXPECT_THROW(q::choose_qparams(0.0f, INFINITY), soma::Error);
  EXPECT_THROW(q::choose_qparams(2.0f, 1.0f), soma::Error);
  try {
    q::choose_qparams(2.0f, 1.0f);
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("min 2 is greater than max 1"), std::string::npos)
        << e.what();
  }
}

TEST(Quantization, WeightsAndOutputsMatchTorch) {
  ASSERT_GE(reference().cases.size(), 5u);
  for (const LinearCase& c : reference().cases) {
    SCOPED_TRACE(c.name);
    const nn::Linear lin = float_linear(c);
    auto ql = q::DynamicQuantLinear::from_float(lin);
    // int8 weights and their per-channel scales: exactly torch's
    ASSERT_EQ(ql->weight.dtype(), soma::kInt8);
    const Tensor w32 = ql->weight.to(soma::kFloat32);
    const auto qw = values(w32), ws = values(ql->weight_scale);
    ASSERT_EQ(qw.size(), c.v.at("qweight").size());
    int64_t weight_diff = 0;
    for (size_t i = 0; i < qw.size(); ++i) weight_diff += qw[i] != c.v.at("qweight")[i];
    EXPECT_EQ(weight_diff, 0) << "int8 weights that differ from torch's";
    for (size_t i = 0; i < ws.size(); ++i)
      EXPECT_EQ(ws[i], static_cast<float>(c.v.at("wscale")[i])) << "scale of row " << i;
    // outputs: the int32 sums are exact, so only the float epilogue's rounding may differ
    const Tensor x = tensor_of(c.v.at("x"), {c.rows, c.in});
    const auto y = values(ql->forward(x));
    const auto& ty = c.v.at("y");
    ASSERT_EQ(y.size(), ty.size());
    for (size_t i = 0; i < y.size(); ++i)
      EXPECT_NEAR(y[i], ty[i], 2e-6 * (1.0 + std::abs(ty[i]))) << "output " << i;
  }
}

TEST(Quantization, LeadingDimsAndEmptyBatch) {
  const LinearCase& c = reference().cases.at(1);
  auto ql = q::DynamicQuantLinear::from_float(float_linear(c));
  const Tensor x = tensor_of(c.v.at("x"), {c.rows, c.in});
  const Tensor flat = ql->forward(x);
  // [1, rows, in] gives the same numbers as [rows, in] (one quantization over the whole input)
  const Tensor y3 = ql->forward(x.reshape({1, c.rows, c.in}));
  EXPECT_EQ(y3.shape(), soma::Shape({1, c.rows, c.out}));
  EXPECT_EQ(values(y3), values(flat));
  EXPECT_EQ(ql->forward(soma::zeros({0, c.in})).shape(), soma::Shape({0, c.out}));
}

TEST(Quantization, DynamicModelIsCloseToFloatAndLeavesTheOriginal) {
  soma::manual_seed(3);
  nn::Sequential model(nn::Linear(20, 32), nn::ReLU(), nn::Sequential(nn::Linear(32, 16)),
                       nn::Tanh(), nn::Linear(16, 4));
  model.eval();
  const Tensor x = soma::randn({8, 20});
  const Tensor ref = model(x);
  auto qm = q::quantize_dynamic(model);
  EXPECT_TRUE(q::is_quantized(*qm));
  EXPECT_FALSE(q::is_quantized(model));
  EXPECT_NE(dynamic_cast<nn::Linear*>(model.ptr(0).get()), nullptr) << "the original changed";
  const auto& seq = dynamic_cast<nn::Sequential&>(*qm);
  ASSERT_NE(dynamic_cast<q::DynamicQuantLinear*>(seq.ptr(0).get()), nullptr);
  EXPECT_TRUE(dynamic_cast<q::DynamicQuantLinear&>(*seq.ptr(0)).relu) << "ReLU not fused";
  EXPECT_NE(dynamic_cast<nn::Identity*>(seq.ptr(1).get()), nullptr);
  EXPECT_FALSE(dynamic_cast<q::DynamicQuantLinear&>(*seq.ptr(4)).relu);
  EXPECT_NE(dynamic_cast<q::DynamicQuantLinear*>(seq.ptr(4).get()), nullptr);
  const auto& inner = dynamic_cast<nn::Sequential&>(*seq.ptr(2));
  EXPECT_NE(dynamic_cast<q::DynamicQuantLinear*>(inner.ptr(0).get()), nullptr);
  const Tensor y = (*qm)(x);
  const double err = soma::max(soma::abs(y - ref)).item<double>();
  const double mag = soma::max(soma::abs(ref)).item<double>();
  EXPECT_LT(err, 0.03 * mag) << "int8 error " << err << " against outputs up to " << mag;
  EXPECT_GT(err, 0.0) << "no quantization error at all: the float path ran";
  // state dict: the same names as the float model, int8 weights, float32 scales
  const auto sd = qm->state_dict();
  EXPECT_EQ(sd.at("0.weight").dtype(), soma::kInt8);
  EXPECT_EQ(sd.at("0.weight_scale").dtype(), soma::kFloat32);
  EXPECT_EQ(sd.at("2.0.bias").dtype(), soma::kFloat32);
}

TEST(Quantization, LoadedStateRepacksAndCloneIsIndependent) {
  soma::manual_seed(4);
  nn::Sequential model(nn::Linear(12, 6), nn::ReLU(), nn::Linear(6, 3));
  auto qm = q::quantize_dynamic(model);
  const Tensor x = soma::randn({5, 12});
  const Tensor y = (*qm)(x);
  // a second quantized model from other weights, then given the first one's state
  soma::manual_seed(5);
  nn::Sequential other(nn::Linear(12, 6), nn::ReLU(), nn::Linear(6, 3));
  auto qo = q::quantize_dynamic(other);
  const Tensor before = (*qo)(x);  // packs its own weights
  EXPECT_NE(values(before), values(y));
  qo->load_state_dict(qm->state_dict());
  EXPECT_EQ(values((*qo)(x)), values(y)) << "stale packed weights after load_state_dict";
  auto copy = qm->clone();
  EXPECT_EQ(values((*copy)(x)), values(y));
}

TEST(Quantization, BadInputsAreErrors) {
  soma::manual_seed(6);
  nn::Linear lin(4, 2);
  auto ql = q::DynamicQuantLinear::from_float(lin);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const soma::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              ql->forward(soma::ones({3, 5}));
            }).find("has 5 features, expected 4"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ql->forward(soma::ones({3, 4}, soma::kFloat64));
            }).find("input must be float32, got float64"),
            std::string::npos);
  Tensor bad = soma::ones({2, 4});
  bad.data<float>()[3] = NAN;
  EXPECT_NE(message([&] { ql->forward(bad); }).find("NaN or infinite"), std::string::npos);
  const Tensor rg = soma::ones({2, 4}).requires_grad_();
  EXPECT_NE(message([&] { ql->forward(rg); }).find("no gradient"), std::string::npos);
  {
    soma::NoGradGuard ng;
    EXPECT_EQ(ql->forward(rg).shape(), soma::Shape({2, 2}));
  }
  nn::Sequential no_linear{nn::ReLU()};
  EXPECT_NE(message([&] { q::quantize_dynamic(no_linear); }).find("holds no Linear"),
            std::string::npos);
  nn::Linear nan_w(3, 2);
  {
    soma::NoGradGuard ng;
    nan_w.weight.data<float>()[4] = NAN;
  }
  EXPECT_NE(message([&] { q::DynamicQuantLinear::from_float(nan_w); }).find("weight[1, 1] is nan"),
            std::string::npos);
}

}  // namespace
