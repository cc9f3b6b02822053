// int8, int32, bfloat16 and float16: conversions between every pair of soma's nine dtypes and
// arithmetic on the new ones against PyTorch (tests/reference/dtypes_lowp.py writes
// dtypes_lowp_reference.txt; every value is compared exactly, NaN matches NaN and the sign of
// a zero counts), plus soma::BFloat16/soma::Half against an exact scalar reference, factories,
// item, printing, and the errors for what soma does not support on these dtypes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

using golden::Case;
using golden::RefTensor;
using soma::BFloat16;
using soma::DType;
using soma::Half;
using soma::Tensor;

const golden::RefFile& reference() {
  static const golden::RefFile file = golden::parse_reference(
      golden::reference_path("SOMA_DTYPES_LOWP_REFERENCE", "dtypes_lowp_reference.txt"),
      {.roles = {"in", "out"}, .require_gout = false});
  return file;
}

using Op = std::function<Tensor(const std::vector<Tensor>&, DType)>;

const std::map<std::string, Op>& ops() {
  using V = const std::vector<Tensor>&;
  static const std::map<std::string, Op> table = {
      {"cast", [](V x, DType d) { return x[0].to(d); }},
      {"cast_oob", [](V x, DType d) { return x[0].to(d); }},
      {"add", [](V x, DType) { return x[0] + x[1]; }},
      {"sub", [](V x, DType) { return x[0] - x[1]; }},
      {"mul", [](V x, DType) { return x[0] * x[1]; }},
      {"div", [](V x, DType) { return x[0] / x[1]; }},
      {"div_floor", [](V x, DType) { return soma::div(x[0], x[1], "floor"); }},
      {"remainder", [](V x, DType) { return soma::remainder(x[0], x[1]); }},
      {"maximum", [](V x, DType) { return soma::maximum(x[0], x[1]); }},
      {"minimum", [](V x, DType) { return soma::minimum(x[0], x[1]); }},
      {"eq", [](V x, DType) { return soma::eq(x[0], x[1]); }},
      {"lt", [](V x, DType) { return soma::lt(x[0], x[1]); }},
      {"add_alpha_0p5", [](V x, DType) { return soma::add(x[0], x[1], 0.5); }},
      {"neg", [](V x, DType) { return -x[0]; }},
      {"abs", [](V x, DType) { return soma::abs(x[0]); }},
      {"sum", [](V x, DType) { return soma::sum(x[0]); }},
      {"mean", [](V x, DType) { return soma::mean(x[0]); }},
      {"mul_scalar_2p5", [](V x, DType) { return x[0] * 2.5; }},
      {"add_scalar_3", [](V x, DType) { return x[0] + 3; }},
  };
  return table;
}

// "" when `got` has the reference's dtype, shape and exactly its values (NaN matches NaN, -0
// differs from 0).
std::string mismatch(const Tensor& got, const RefTensor& want) {
  std::ostringstream msg;
  msg.precision(17);
  if (got.dtype() != want.dtype || got.shape() != want.shape) {
    msg << "got dtype " << got.dtype() << " shape " << soma::shape_str(got.shape()) << ", torch "
        << soma::dtype_name(want.dtype) << " " << soma::shape_str(want.shape);
    return msg.str();
  }
  // int64 values beyond 2^53 are not in the file (doubles); every other dtype converts to
  // double exactly.
  const std::vector<double> v = got.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) {
    double e = want.values[i];
    // float32/bfloat16/float16 values are written with %.9g, which round-trips through float
    if (want.dtype == soma::kFloat32 || soma::is_reduced_floating(want.dtype))
      e = static_cast<float>(e);
    const bool ok =
        (std::isnan(e) && std::isnan(v[i])) || (v[i] == e && std::signbit(v[i]) == std::signbit(e));
    if (!ok) {
      msg << "element " << i << ": got " << v[i] << ", torch " << e;
      return msg.str();
    }
  }
  return "";
}

std::string run(const Case& c) {
  const auto it = ops().find(c.op);
  if (it == ops().end()) return c.name + ": no op " + c.op;
  std::vector<Tensor> x;
  for (const RefTensor& r : c.inputs) x.push_back(golden::make_tensor(r));
  // the inputs themselves must be what torch had (the file's values are exact)
  for (size_t k = 0; k < x.size(); ++k)
    if (std::string m = mismatch(x[k], c.inputs[k]); !m.empty())
      return c.name + ": input " + std::to_string(k) + " " + m;
  try {
    const Tensor out = it->second(x, c.dtype);
    if (std::string m = mismatch(out, c.outs.at(0)); !m.empty()) return c.name + ": " + m;
  } catch (const soma::Error& e) {
    return c.name + ": soma threw " + e.what();
  }
  return "";
}

TEST(DTypesLowpReference, Loads) {
  ASSERT_EQ(golden::file_problem(reference()), "");
  std::map<std::string, int> per_op;
  for (const Case& c : reference().cases) ++per_op[c.op];
  EXPECT_EQ(per_op["cast"], 81);  // every ordered pair of the nine dtypes
  EXPECT_GT(per_op["cast_oob"], 10);
  for (const auto& [op, fn] : ops()) EXPECT_GT(per_op[op], 0) << "no cases for " << op;
}

TEST(DTypesLowpReference, CastsMatchTorch) {
  int n = 0;
  for (const Case& c : reference().cases) {
    if (c.op != "cast" && c.op != "cast_oob") continue;
    ++n;
    EXPECT_EQ(run(c), "");
  }
  EXPECT_GT(n, 81);
}

TEST(DTypesLowpReference, ArithmeticMatchesTorch) {
  int n = 0;
  for (const Case& c : reference().cases) {
    if (c.op == "cast" || c.op == "cast_oob") continue;
    ++n;
    EXPECT_EQ(run(c), "");
  }
  EXPECT_GT(n, 50);
}

// ---- soma::BFloat16 / soma::Half against an exact reference ---------------------------------
// Round to nearest even of a float to `mant` mantissa bits with exponent range [emin, emax] in
// double arithmetic (exact: a float has 24 bits), NaN -> NaN, overflow -> inf.
double round_to_format(float f, int mant, int emin, double max_finite) {
  if (std::isnan(f)) return f;
  const double x = f;
  if (x == 0 || std::isinf(x)) return x;
  int e = std::ilogb(x);
  if (e < emin) e = emin;  // subnormal: fixed quantum
  const double q = std::ldexp(1.0, e - mant);
  const double r = std::nearbyint(x / q) * q;  // ties to even (default rounding mode)
  // overflow: the rounded magnitude beyond max_finite (ties at the halfway go to even = inf)
  if (std::abs(r) > max_finite) return std::copysign(INFINITY, x);
  return r;
}

TEST(HalfTypes, ConvertFromEveryFloatPatternSample) {
  // Every 2^12-th float bit pattern and its neighbours: all exponents, halfway cases nearby.
  int checked = 0;
  for (uint64_t b = 0; b <= 0xffffffffull; b += 4093) {
    for (uint32_t d : {0u, 1u, 0x0fffu, 0x1000u, 0x7fffu, 0x8000u}) {
      const uint32_t bits = static_cast<uint32_t>(b) + d;
      float f;
      std::memcpy(&f, &bits, 4);
      const double h = round_to_format(f, 10, -14, 65504.0);
      const double bf = round_to_format(f, 7, -126, 3.3895313892515355e38);
      const float hf = Half(f), bff = BFloat16(f);
      if (std::isnan(h)) {
        ASSERT_TRUE(std::isnan(hf)) << bits;
      } else {
        ASSERT_EQ(static_cast<double>(hf), h) << "half of " << f << " bits " << bits;
        ASSERT_EQ(std::signbit(hf), std::signbit(f)) << bits;
      }
      if (std::isnan(bf))
        ASSERT_TRUE(std::isnan(bff)) << bits;
      else
        ASSERT_EQ(static_cast<double>(bff), bf) << "bfloat16 of " << f << " bits " << bits;
      ++checked;
    }
  }
  EXPECT_GT(checked, 6000000);
}

TEST(HalfTypes, EveryHalfAndBFloat16RoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const Half h = Half::from_bits(static_cast<uint16_t>(b));
    const BFloat16 bf = BFloat16::from_bits(static_cast<uint16_t>(b));
    const float hf = h, bff = bf;
    if (std::isnan(hf)) {
      EXPECT_TRUE(std::isnan(static_cast<float>(Half(hf))));
    } else {
      EXPECT_EQ(Half(hf).x, b);  // exact values convert back to themselves
    }
    if (!std::isnan(bff)) EXPECT_EQ(BFloat16(bff).x, b);
    // half -> float is exact: the value is (-1)^s 2^(e-15) (1 + m/1024), or subnormal
    const int e = (b >> 10) & 0x1f, m = b & 0x3ff;
    if (e != 0x1f) {
      const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
      EXPECT_EQ(static_cast<double>(hf), (b & 0x8000) ? -v : v) << b;
    }
  }
  EXPECT_EQ(static_cast<float>(std::numeric_limits<Half>::max()), 65504.0f);
  EXPECT_EQ(static_cast<float>(std::numeric_limits<BFloat16>::lowest()),
            -static_cast<float>(std::numeric_limits<BFloat16>::max()));
  EXPECT_TRUE(std::isinf(static_cast<float>(std::numeric_limits<Half>::infinity())));
}

// ---- factories, item, printing ---------------------------------------------------------------
const DType kNew[] = {soma::kInt8, soma::kInt32, soma::kBFloat16, soma::kFloat16};

TEST(DTypesLowp, FactoriesAndItem) {
  for (DType d : kNew) {
    SCOPED_TRACE(std::string(soma::dtype_name(d)));
    EXPECT_EQ(soma::element_size(d), d == soma::kInt32 ? 4u : d == soma::kInt8 ? 1u : 2u);
    const Tensor z = soma::zeros({2, 3}, d), o = soma::ones({4}, d), f = soma::full({2}, 5, d);
    EXPECT_EQ(z.dtype(), d);
    EXPECT_EQ(z.to_vector<double>(), std::vector<double>(6, 0.0));
    EXPECT_EQ(o.to_vector<double>(), std::vector<double>(4, 1.0));
    EXPECT_EQ(f.to_vector<double>(), std::vector<double>(2, 5.0));
    const Tensor a = soma::arange(0, 10, 3, d);
    EXPECT_EQ(a.dtype(), d);
    EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{0, 3, 6, 9}));
    EXPECT_EQ(soma::empty({3}, d).numel(), 3);
    EXPECT_EQ(f.sum().item<double>(), 10.0);
    EXPECT_EQ(soma::full({}, 7, d).item<int64_t>(), 7);
    // views and copies keep the dtype; clone/contiguous of a transposed view
    const Tensor t = soma::arange(0, 6, 1, d).reshape({2, 3}).t().contiguous();
    EXPECT_EQ(t.dtype(), d);
    EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
    // indexing (take/put kernels)
    const Tensor idx = soma::tensor(std::vector<int64_t>{2, 0}, {2});
    EXPECT_EQ(soma::index_select(t, 0, idx).to_vector<double>(), (std::vector<double>{2, 5, 0, 3}));
  }
  EXPECT_EQ(soma::full({}, 300, soma::kInt8).item<int64_t>(), 44);  // wraps like a cast
  EXPECT_EQ(soma::full({}, 0.1, soma::kBFloat16).item<double>(), 0.10009765625);
  EXPECT_EQ(soma::full({}, 0.1, soma::kFloat16).item<double>(), 0.0999755859375);
}

std::string printed(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

TEST(DTypesLowp, PrintsLikeTheWiderDtype) {
  // soma prints an int8/int32 tensor as the same values in int64 would print, and a
  // bfloat16/float16 tensor as the same (exact) values in float32, with its own dtype name.
  const Tensor f = soma::tensor({1.5f, -0.1f, 65504.f, 1e-5f, INFINITY, NAN}, {2, 3});
  for (DType d : {soma::kBFloat16, soma::kFloat16}) {
    const Tensor x = f.to(d);
    std::string want = printed(x.to(soma::kFloat32));
    want.replace(want.find("dtype=float32"), 13, "dtype=" + std::string(soma::dtype_name(d)));
    EXPECT_EQ(printed(x), want);
  }
  const Tensor i = soma::tensor(std::vector<int64_t>{-128, 5, 127, 0}, {4});
  for (DType d : {soma::kInt8, soma::kInt32}) {
    std::string want = printed(i);
    want.replace(want.find("dtype=int64"), 11, "dtype=" + std::string(soma::dtype_name(d)));
    EXPECT_EQ(printed(i.to(d)), want);
  }
}

// ---- what is refused -------------------------------------------------------------------------
void expect_error(const std::function<void()>& f, const std::string& op, const std::string& dt) {
  try {
    f();
    ADD_FAILURE() << op << " on " << dt << ": no error";
  } catch (const soma::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(op), std::string::npos) << m;
    EXPECT_NE(m.find(dt), std::string::npos) << m;
  }
}

TEST(DTypesLowp, UnsupportedOpsAreErrorsNamingOpAndDtype) {
  for (DType d : kNew) {
    const std::string n(soma::dtype_name(d));
    const Tensor x = soma::ones({2, 2}, d);
    expect_error([&] { soma::sort(x, 0); }, "sort", n);
    expect_error([&] { soma::max(x); }, "max", n);
    if (soma::is_floating(d)) {
      expect_error([&] { soma::matmul(x, x); }, "matmul", n);
      expect_error([&] { soma::cumsum(x, 0); }, "cumsum", n);
      expect_error([&] { soma::exp(x); }, "exp", n);
      expect_error([&] { soma::rand({2}, d); }, "rand", n);
    } else {
      // integer scans give int64, as torch's
      EXPECT_EQ(soma::cumsum(x, 0).dtype(), soma::kInt64);
    }
    Tensor y = soma::ones({2}, d);
    expect_error([&] { y.requires_grad_(true); }, "requires_grad_", n);
  }
  // autograd through a bfloat16/float16 result is refused, not silently dropped
  Tensor w = soma::ones({2}).requires_grad_(true);
  expect_error([&] { (void)w.to(soma::kBFloat16); }, "to", "bfloat16");
  // float16 tensor times a float32 0-d tensor is float16 (the dimensioned operand wins)
  expect_error([&] { (void)(soma::ones({2}, soma::kFloat16) * w.sum()); }, "autograd", "float16");
}

}  // namespace
