// GEMM and reductions against PyTorch at sizes that take the threaded and blocked paths.
//
// tests/reference/make_reference.py (kernels section) writes kernels_reference.txt: for every
// case the exact inputs, torch's output, an upstream gradient gout and torch's gradients, values
// stored compactly (q<s> integers / 2^s, fill, or base64 raw little-endian). Each case runs here
// with 2 threads (gemm.cpp splits C by rows or columns, reduce.cpp / softmax.cpp run their
// OpenMP loops) and with 1 (OpenBLAS's own blocking, the serial loops), and is compared with the
// same tolerances as tests/ops/golden_test.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

using golden::Case;
using golden::RefFile;
using golden::RefTensor;
using soma::Tensor;
using Inputs = std::vector<Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;
namespace F = soma::nn::functional;

// Mirrors KERNEL_OPS in make_reference.py.
const std::map<std::string, OpFn>& ops() {
  static const std::map<std::string, OpFn> table = {
      {"mm", [](const Inputs& x) { return soma::matmul(x[0], x[1]); }},
      {"mm_at", [](const Inputs& x) { return soma::matmul(x[0].t(), x[1]); }},
      {"mm_bt", [](const Inputs& x) { return soma::matmul(x[0], x[1].t()); }},
      {"mm_atbt", [](const Inputs& x) { return soma::matmul(x[0].t(), x[1].t()); }},
      {"linear", [](const Inputs& x) { return F::linear(x[0], x[1], x[2]); }},
      {"sum", [](const Inputs& x) { return soma::sum(x[0]); }},
      {"sum_dim0", [](const Inputs& x) { return soma::sum(x[0], 0); }},
      {"mean_dim1", [](const Inputs& x) { return soma::mean(x[0], 1); }},
      {"max_dim1", [](const Inputs& x) { return std::get<0>(soma::max(x[0], 1)); }},
      {"softmax_dim0", [](const Inputs& x) { return soma::softmax(x[0], 0); }},
      {"softmax_dim1", [](const Inputs& x) { return soma::softmax(x[0], 1); }},
      {"log_softmax_dim0", [](const Inputs& x) { return soma::log_softmax(x[0], 0); }},
      {"log_softmax_dim1", [](const Inputs& x) { return soma::log_softmax(x[0], 1); }},
      {"cross_entropy", [](const Inputs& x) { return F::cross_entropy(x[0], x[1]); }},
  };
  return table;
}

// The same tolerances as tests/ops/golden_test.cpp.
golden::Tolerance tolerance(soma::DType dtype) {
  if (dtype == soma::kFloat32) return {1e-5, 1e-6};
  return {1e-12, 1e-12};
}

// ---- the compact value encodings ----------------------------------------------------------
bool decode_base64(const std::string& in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else if ((v[j] = value(c)) < 0 || pad > 0) {
        return false;
      }
    }
    const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

// "<k> <dtype> <ndim> <dims...> <encoding> <payload...>"
bool parse_tensor(std::istringstream& in, RefTensor* t, std::string* error) {
  std::string dtype, encoding;
  int64_t ndim = -1;
  if (!(in >> t->key >> dtype >> ndim) || ndim < 0 || !golden::parse_dtype(dtype, &t->dtype)) {
    *error = "bad tensor header";
    return false;
  }
  t->index = std::atoi(t->key.c_str());
  int64_t numel = 1;
  for (int64_t d = 0; d < ndim; ++d) {
    int64_t size = -1;
    if (!(in >> size) || size < 0) {
      *error = "bad dimension";
      return false;
    }
    t->shape.push_back(size);
    numel *= size;
  }
  if (!(in >> encoding)) {
    *error = "no encoding";
    return false;
  }
  if (encoding == "fill") {
    double v = 0;
    if (!(in >> v)) {
      *error = "bad fill value";
      return false;
    }
    t->values.assign(static_cast<size_t>(numel), v);
  } else if (encoding == "b64") {
    std::string text, raw;
    const size_t width = t->dtype == soma::kFloat32 ? 4 : 8;
    if (!(in >> text) || !decode_base64(text, &raw) ||
        raw.size() != static_cast<size_t>(numel) * width ||
        !(t->dtype == soma::kFloat32 || t->dtype == soma::kFloat64)) {
      *error = "bad b64 payload";
      return false;
    }
    for (int64_t i = 0; i < numel; ++i) {
      if (width == 4) {
        float f;
        std::memcpy(&f, raw.data() + i * 4, 4);
        t->values.push_back(f);
      } else {
        double d;
        std::memcpy(&d, raw.data() + i * 8, 8);
        t->values.push_back(d);
      }
    }
  } else if (encoding.size() > 1 && encoding[0] == 'q') {
    const int s = std::atoi(encoding.c_str() + 1);
    int64_t v = 0;
    while (in >> v) t->values.push_back(std::ldexp(static_cast<double>(v), -s));
  } else {
    *error = "unknown encoding '" + encoding + "'";
    return false;
  }
  std::string extra;
  if (static_cast<int64_t>(t->values.size()) != numel || (in >> extra)) {
    *error = std::to_string(t->values.size()) + " values for shape " + soma::shape_str(t->shape);
    return false;
  }
  return true;
}

RefFile parse_file(const std::string& path) {
  RefFile file;
  file.path = path;
  std::ifstream in(path);
  if (!in) {
    file.error = "cannot open " + path;
    return file;
  }
  std::string line;
  int line_no = 0;
  Case current;
  bool in_case = false;
  auto fail = [&](const std::string& msg) {
    file.error = path + ":" + std::to_string(line_no) + ": " + msg;
    file.cases.clear();
    return file;
  };
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string role;
    if (!(ls >> role) || role[0] == '#') continue;
    if (role == "case") {
      if (in_case) return fail("'case' before 'end'");
      current = Case{};
      std::string dtype;
      if (!(ls >> current.name >> current.op >> dtype) ||
          !golden::parse_dtype(dtype, &current.dtype))
        return fail("bad case header");
      current.line = line_no;
      in_case = true;
    } else if (role == "end") {
      if (!in_case) return fail("'end' outside a case");
      if (current.outs.size() != 1 || !current.has_gout ||
          current.gout.values.size() != current.outs[0].values.size())
        return fail("a case needs one out and a gout of its size");
      file.cases.push_back(current);
      in_case = false;
    } else if (role == "in" || role == "out" || role == "gout" || role == "grad") {
      if (!in_case) return fail("tensor outside a case");
      RefTensor t;
      std::string error;
      if (!parse_tensor(ls, &t, &error)) return fail(role + ": " + error);
      if (role == "in") {
        if (t.index != static_cast<int>(current.inputs.size())) return fail("inputs out of order");
        current.inputs.push_back(t);
      } else if (role == "out") {
        current.outs.push_back(t);
      } else if (role == "gout") {
        current.gout = t;
        current.has_gout = true;
      } else {
        current.grads.push_back(t);
      }
    } else {
      return fail("unknown line type '" + role + "'");
    }
  }
  if (in_case) return fail("file ends inside a case");
  return file;
}

const RefFile& reference() {
  static const RefFile file =
      parse_file(golden::reference_path("SOMA_KERNELS_REFERENCE", "kernels_reference.txt"));
  return file;
}

struct ThreadsGuard {
  int prev = soma::get_num_threads();
  ~ThreadsGuard() { soma::set_num_threads(prev); }
};

// ---- the tests ----------------------------------------------------------------------------
TEST(KernelsGoldenFile, LoadsAndMatchesTheOpTable) {
  const RefFile& file = reference();
  ASSERT_EQ(golden::file_problem(file), "");
  std::set<std::string> in_file;
  for (const Case& c : file.cases) in_file.insert(c.op);
  for (const std::string& op : in_file) EXPECT_TRUE(ops().count(op)) << op << " not in ops()";
  for (const auto& [op, fn] : ops()) EXPECT_TRUE(in_file.count(op)) << op << " has no case";
}

// The cases are big enough for the paths they are meant to test: with 2 threads every GEMM case
// has a product that gemm.cpp splits (>= 128 rows or columns of C per thread, M N K >= 2^20),
// except mm_blocked, which stays under it; reductions have at least kParallelGrain elements
// (softmax: a quarter of it), so their OpenMP loops run in parallel.
TEST(KernelsGoldenFile, SizesTakeTheThreadedPaths) {
  for (const Case& c : reference().cases) {
    const soma::Shape& s0 = c.inputs[0].shape;
    int64_t numel = 1;
    for (int64_t d : s0) numel *= d;
    if (c.op.rfind("mm", 0) == 0 || c.op == "linear") {
      // C = op(A) op(B): the forward product's M, N (the output) and K.
      const soma::Shape& out = c.outs[0].shape;
      const int64_t m = out[0], n = out[1];
      const int64_t k = numel / m;
      const bool split = std::max(m, n) >= 2 * 128 && m * n * k >= (int64_t{1} << 20);
      EXPECT_EQ(split, c.name != "mm_blocked") << c.label() << " M " << m << " N " << n;
    } else if (c.op.find("softmax") != std::string::npos || c.op == "cross_entropy") {
      EXPECT_GE(numel, soma::kernels::cpu::kParallelGrain / 4) << c.label();
    } else {
      EXPECT_GE(numel, soma::kernels::cpu::kParallelGrain) << c.label();
    }
  }
}

class KernelsGolden : public ::testing::TestWithParam<size_t> {};

TEST_P(KernelsGolden, MatchesTorch) {
  const Case& c = reference().cases.at(GetParam());
  const auto op = ops().find(c.op);
  ASSERT_NE(op, ops().end()) << c.label();
  ThreadsGuard guard;
  for (int threads : {2, 1}) {
    SCOPED_TRACE(std::to_string(threads) + " thread(s)");
    soma::set_num_threads(threads);
    std::vector<Tensor> inputs;
    for (const RefTensor& r : c.inputs) {
      Tensor t = golden::make_tensor(r);
      if (soma::is_floating(r.dtype)) t.requires_grad_(true);
      inputs.push_back(t);
    }
    Tensor out = op->second(inputs);
    const golden::Tolerance tol = tolerance(c.dtype);
    std::string problem = golden::compare(c, "output", out, c.outs[0], tol);
    EXPECT_EQ(problem, "");
    out.backward(golden::make_tensor(c.gout));
    for (const RefTensor& g : c.grads) {
      problem = golden::compare(c, "grad of input " + g.key, inputs.at(g.index).grad(), g, tol);
      EXPECT_EQ(problem, "");
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<size_t>& info) {
  const Case& c = reference().cases.at(info.param);
  return c.name + "_" + c.dtype_str();
}

std::vector<size_t> case_indices() {
  std::vector<size_t> v(reference().cases.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = i;
  return v;
}

INSTANTIATE_TEST_SUITE_P(Torch, KernelsGolden, ::testing::ValuesIn(case_indices()), case_name);

}  // namespace
