// view and reshape against PyTorch's geometry (tests/reference/view_strides.py writes
// view_strides_reference.txt): for strided inputs (slices, transposes, permutes, expands, steps,
// size-1 and size-0 dims, 0-d) view succeeds exactly when torch's does, with torch's strides,
// and reshape returns a view of the same storage exactly when torch's does (else a copy), with
// torch's strides and elements. Also: writes through such a view reach the base, and gradients
// flow back through it.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/tensor_impl.h"
#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

using soma::Shape;
using soma::Tensor;

struct ViewCase {
  std::string name;
  Shape in_shape, in_strides, new_shape;
  int64_t in_offset = 0, storage_n = 0;
  bool view_ok = false;
  Shape view_strides;
  bool reshape_alias = false;
  Shape reshape_strides;
  int64_t reshape_offset = 0;
  std::vector<double> values;
};

bool read_dims(std::istringstream& s, Shape* out, int64_t n) {
  out->assign(static_cast<size_t>(n), 0);
  for (auto& v : *out)
    if (!(s >> v)) return false;
  return true;
}

bool expect_word(std::istringstream& s, const char* word) {
  std::string w;
  return (s >> w) && w == word;
}

bool parse_case(std::istringstream& s, ViewCase* c) {
  int64_t nd = 0;
  std::string word;
  if (!(s >> c->name) || !expect_word(s, "in") || !(s >> nd) || !read_dims(s, &c->in_shape, nd) ||
      !read_dims(s, &c->in_strides, nd) || !(s >> c->in_offset >> c->storage_n) ||
      !expect_word(s, "new") || !(s >> nd) || !read_dims(s, &c->new_shape, nd) ||
      !expect_word(s, "view") || !(s >> word))
    return false;
  c->view_ok = word == "ok";
  if (c->view_ok && (!(s >> nd) || !read_dims(s, &c->view_strides, nd))) return false;
  if (!c->view_ok && word != "error") return false;
  if (!expect_word(s, "reshape") || !(s >> word)) return false;
  c->reshape_alias = word == "alias";
  if (c->reshape_alias &&
      (!(s >> nd) || !read_dims(s, &c->reshape_strides, nd) || !(s >> c->reshape_offset)))
    return false;
  if (!c->reshape_alias && word != "copy") return false;
  int64_t count = 0;
  if (!expect_word(s, "values") || !(s >> count)) return false;
  c->values.resize(static_cast<size_t>(count));
  for (auto& v : c->values)
    if (!(s >> v)) return false;
  return true;
}

struct ViewTable {
  std::vector<ViewCase> cases;
  std::string error;
};

const ViewTable& view_table() {
  static const ViewTable table = [] {
    ViewTable t;
    const std::string path =
        golden::reference_path("SOMA_VIEW_REFERENCE", "view_strides_reference.txt");
    t.error = golden::for_each_line(path, [&](const std::string& kind, std::istringstream& s) {
      ViewCase c;
      if (kind != "case" || !parse_case(s, &c)) return false;
      t.cases.push_back(std::move(c));
      return true;
    });
    if (t.error.empty() && t.cases.size() < 50)
      t.error = path + ": only " + std::to_string(t.cases.size()) + " cases";
    return t;
  }();
  return table;
}

// The case's input: a view of arange(storage_n) with the case's geometry.
Tensor input_of(const ViewCase& c) {
  const Tensor base = soma::arange(0, static_cast<double>(c.storage_n), 1, soma::kFloat32);
  return soma::detail::make_view(base, c.in_shape, c.in_strides, c.in_offset);
}

bool same_storage(const Tensor& a, const Tensor& b) {
  return a.impl()->storage == b.impl()->storage;
}

std::string where(const ViewCase& c) {
  std::ostringstream s;
  s << c.name << ": " << soma::shape_str(c.in_shape) << " strides " << soma::shape_str(c.in_strides)
    << " -> " << soma::shape_str(c.new_shape);
  return s.str();
}

TEST(ViewStrides, ViewMatchesTorch) {
  const ViewTable& t = view_table();
  ASSERT_EQ(t.error, "");
  int oks = 0, errors = 0;
  for (const ViewCase& c : t.cases) {
    const Tensor x = input_of(c);
    if (!c.view_ok) {
      ++errors;
      EXPECT_THROW(soma::view(x, c.new_shape), soma::Error) << where(c);
      continue;
    }
    ++oks;
    Tensor v;
    ASSERT_NO_THROW(v = soma::view(x, c.new_shape)) << where(c);
    EXPECT_EQ(v.shape(), c.new_shape) << where(c);
    EXPECT_EQ(v.strides(), c.view_strides) << where(c);
    EXPECT_TRUE(same_storage(v, x)) << where(c);
    EXPECT_EQ(v.contiguous().to_vector<double>(), c.values) << where(c);
  }
  // the file covers both outcomes
  EXPECT_GT(oks, 20);
  EXPECT_GT(errors, 5);
}

TEST(ViewStrides, ReshapeAliasesExactlyWhenTorchDoes) {
  const ViewTable& t = view_table();
  ASSERT_EQ(t.error, "");
  int aliases = 0, copies = 0;
  for (const ViewCase& c : t.cases) {
    const Tensor x = input_of(c);
    const Tensor r = soma::reshape(x, c.new_shape);
    EXPECT_EQ(r.shape(), c.new_shape) << where(c);
    EXPECT_EQ(same_storage(r, x), c.reshape_alias) << where(c);
    if (c.reshape_alias) {
      ++aliases;
      EXPECT_EQ(r.strides(), c.reshape_strides) << where(c);
      EXPECT_EQ(r.impl()->offset, c.reshape_offset) << where(c);
    } else {
      ++copies;
      EXPECT_TRUE(r.is_contiguous()) << where(c);
    }
    EXPECT_EQ(r.contiguous().to_vector<double>(), c.values) << where(c);
  }
  EXPECT_GT(aliases, 20);
  EXPECT_GT(copies, 5);
}

TEST(ViewStrides, WritesReachTheBaseAndGradientsFlowBack) {
  // a [4,6] tensor's first 4 columns viewed as [4,2,2] (strides 6,2,1): no copy
  Tensor base = soma::arange(0, 24, 1, soma::kFloat32).reshape({4, 6});
  Tensor v = soma::view(soma::slice(base, 1, 0, 4), {4, 2, 2});
  EXPECT_EQ(v.strides(), (Shape{6, 2, 1}));
  v.fill_(-1.0);
  const std::vector<float> b = base.to_vector<float>();
  for (int64_t i = 0; i < 24; ++i)
    EXPECT_EQ(b[i], i % 6 < 4 ? -1.0f : static_cast<float>(i)) << "element " << i;

  // d sum(w * reshape(x^T)) / dx = w reshaped back, through a non-contiguous alias
  Tensor x = soma::randn({4, 6}).requires_grad_(true);
  Tensor w = soma::randn({6, 2, 2});
  Tensor r = soma::reshape(x.t(), {6, 2, 2});
  EXPECT_FALSE(r.is_contiguous());
  soma::sum(r * w).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), w.reshape({6, 4}).t().contiguous().to_vector<float>());
}

TEST(ViewStrides, ViewErrorNamesTheGeometry) {
  Tensor x = soma::arange(0, 24, 1, soma::kFloat32).reshape({4, 6}).t();
  try {
    (void)soma::view(x, {24});
    FAIL() << "view of a transposed tensor as one dim should throw";
  } catch (const soma::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("view"), std::string::npos) << m;
    EXPECT_NE(m.find("[24]"), std::string::npos) << m;
    EXPECT_NE(m.find("[6, 4]"), std::string::npos) << m;
    EXPECT_NE(m.find("reshape"), std::string::npos) << m;
  }
}

}  // namespace
