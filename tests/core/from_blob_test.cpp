// soma::from_blob: tensors over foreign memory. Sharing in both directions, the deleter's
// lifetime (views, detach, autograd, optimizers), foreign layouts (transposed, row pitch,
// stride-0 broadcast, addresses aligned to the element but not to 64 bytes) through the ops,
// in-place writes and overlap checks, optimizers, safetensors, and the validation errors.
//
// Every op result on a foreign tensor is compared bit for bit with the same op on a
// soma-allocated tensor of the same layout and values (the layout decides which path a kernel
// takes, so both sides take the same one).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor_impl.h"
#include "soma/soma.h"

namespace {

namespace F = soma::nn::functional;
using soma::DType;
using soma::Shape;
using soma::Tensor;

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected soma::Error containing '" << parts.front() << "'";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// The elements of `t` in row-major order, as raw bytes (bitwise comparison, NaN-safe).
std::string raw(const Tensor& t) {
  const Tensor c = t.detach().contiguous();
  const char* p = reinterpret_cast<const char*>(c.impl()->bytes());
  return std::string(p, static_cast<size_t>(c.numel()) * soma::element_size(c.dtype()));
}

void expect_same(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  EXPECT_TRUE(raw(got) == raw(want))
      << what << ": results differ\n got " << got << "\nwant " << want;
}

// A caller's buffer: `count` elements starting at an address that is a multiple of 64 bytes
// (aligned) or exactly one element past one (misaligned: element-aligned only).
struct Buffer {
  std::vector<unsigned char> mem;
  void* p = nullptr;
  Buffer(size_t bytes, size_t esize, bool misaligned) : mem(bytes + 128) {
    auto a = reinterpret_cast<std::uintptr_t>(mem.data());
    a = (a + 63) / 64 * 64 + (misaligned ? esize : 0);
    p = reinterpret_cast<void*>(a);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, misaligned ? esize % 64 : 0);
  }
};

enum class Layout { Contiguous, Transposed, RowPitch, Broadcast };
const char* name(Layout l) {
  switch (l) {
    case Layout::Contiguous:
      return "contiguous";
    case Layout::Transposed:
      return "transposed";
    case Layout::RowPitch:
      return "row pitch";
    case Layout::Broadcast:
      return "broadcast";
  }
  return "?";
}

// The same [R, C] matrix twice: `ref` a view of soma-allocated storage `base`, `foreign` from_blob
// over a copy of base's bytes in `buf`, both with the same strides and element offset.
struct Pair {
  std::unique_ptr<Buffer> buf;
  Tensor base, ref, foreign;
  Shape shape, strides;
  int64_t offset = 0;
};

Pair make_pair(Layout layout, int64_t R, int64_t C, DType dtype, bool misaligned) {
  Pair p;
  auto values = [&](const Shape& s) {
    return dtype == soma::kInt64 ? soma::randint(-50, 50, s) : soma::randn(s, dtype);
  };
  p.shape = {R, C};
  switch (layout) {
    case Layout::Contiguous:
      p.base = values({R, C});
      p.strides = {C, 1};
      break;
    case Layout::Transposed:  // the buffer holds the transpose, row-major
      p.base = values({C, R});
      p.strides = {1, R};
      break;
    case Layout::RowPitch:  // columns 1..C of a row-major [R, C + 3] buffer, padding = 99
      p.base = soma::full({R, C + 3}, 99, dtype);
      p.base.narrow(1, 1, C).copy_(values({R, C}));
      p.strides = {C + 3, 1};
      p.offset = 1;
      break;
    case Layout::Broadcast:  // one row read R times (stride 0)
      p.base = values({C});
      p.strides = {0, 1};
      break;
  }
  const size_t esize = soma::element_size(dtype);
  const size_t bytes = static_cast<size_t>(p.base.numel()) * esize;
  p.buf = std::make_unique<Buffer>(bytes, esize, misaligned);
  std::memcpy(p.buf->p, p.base.impl()->bytes(), bytes);
  p.ref = soma::detail::make_view(p.base, p.shape, p.strides, p.offset);
  p.foreign =
      soma::from_blob(static_cast<char*>(p.buf->p) + p.offset * esize, p.shape, p.strides, dtype);
  return p;
}

// The buffer's bytes equal base's (after the same writes on both sides).
void expect_buffer_matches(const Pair& p, const std::string& what) {
  const size_t bytes = static_cast<size_t>(p.base.numel()) * soma::element_size(p.base.dtype());
  EXPECT_EQ(std::memcmp(p.buf->p, p.base.impl()->bytes(), bytes), 0) << what;
}

struct Op {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
};

std::vector<Op> ops_for(DType dtype, int64_t R, int64_t C) {
  const bool fp = soma::is_floating(dtype);
  auto values = [&](const Shape& s) {
    return fp ? soma::randn(s, dtype) : soma::randint(-9, 9, s, soma::kInt64);
  };
  const Tensor row = values({C}), col = values({R, 1});
  const Tensor idx0 = soma::tensor(std::vector<int64_t>{R - 1, 0, R / 2, 0});
  const Tensor idx1 = soma::tensor(std::vector<int64_t>{C - 1, 1, 0});
  std::vector<Op> ops = {
      {"add broadcast row", [=](const Tensor& x) { return soma::add(x, row); }},
      {"mul broadcast col", [=](const Tensor& x) { return soma::mul(x, col); }},
      {"add self", [](const Tensor& x) { return x + x; }},
      {"sum dim 0", [](const Tensor& x) { return soma::sum(x, 0); }},
      {"sum dim 1", [](const Tensor& x) { return soma::sum(x, 1, true); }},
      {"sum", [](const Tensor& x) { return soma::sum(x); }},
      {"max dim 1", [](const Tensor& x) { return std::get<0>(soma::max(x, 1)); }},
      {"argmax dim 0", [](const Tensor& x) { return soma::argmax(x, 0); }},
      {"index_select dim 0", [=](const Tensor& x) { return soma::index_select(x, 0, idx0); }},
      {"index_select dim 1", [=](const Tensor& x) { return soma::index_select(x, 1, idx1); }},
      {"contiguous", [](const Tensor& x) { return x.contiguous(); }},
      {"clone", [](const Tensor& x) { return x.clone(); }},
      {"reshape", [](const Tensor& x) { return x.reshape({-1}); }},
      {"transpose + contiguous", [](const Tensor& x) { return x.t().contiguous(); }},
      {"narrow + clone", [](const Tensor& x) { return x.narrow(1, 1, 2).clone(); }},
  };
  if (fp) {
    const Tensor w = values({C, 5}), v = values({3, R});
    const Tensor target = soma::randint(0, C, {R});
    const std::vector<Op> more = {
        {"mean dim 1", [](const Tensor& x) { return soma::mean(x, 1); }},
        {"mean", [](const Tensor& x) { return soma::mean(x); }},
        {"matmul x @ w", [=](const Tensor& x) { return soma::matmul(x, w); }},
        {"matmul v @ x", [=](const Tensor& x) { return soma::matmul(v, x); }},
        {"matmul x^T @ x", [](const Tensor& x) { return soma::matmul(x.t(), x); }},
        {"matmul batched", [](const Tensor& x) { return soma::matmul(x.unsqueeze(0), x.t()); }},
        {"softmax dim 1", [](const Tensor& x) { return soma::softmax(x, 1); }},
        {"log_softmax dim 0", [](const Tensor& x) { return soma::log_softmax(x, 0); }},
        {"relu", [](const Tensor& x) { return soma::relu(x); }},
        {"exp", [](const Tensor& x) { return soma::exp(x); }},
        {"cross_entropy", [=](const Tensor& x) { return F::cross_entropy(x, target); }},
        {"linear", [=](const Tensor& x) { return F::linear(x, w.t()); }},
        {"to other dtype",
         [dtype](const Tensor& x) {
           return x.to(dtype == soma::kFloat32 ? soma::kFloat64 : soma::kFloat32);
         }},
    };
    ops.insert(ops.end(), more.begin(), more.end());
  }
  return ops;
}

const Layout kLayouts[] = {Layout::Contiguous, Layout::Transposed, Layout::RowPitch,
                           Layout::Broadcast};

void check_ops(DType dtype) {
  for (const auto& [R, C] : {std::pair<int64_t, int64_t>{7, 5}, {130, 67}}) {
    for (Layout layout : kLayouts) {
      for (bool misaligned : {false, true}) {
        soma::manual_seed(1234);
        Pair p = make_pair(layout, R, C, dtype, misaligned);
        const std::string where = std::string(name(layout)) + (misaligned ? ", misaligned" : "") +
                                  ", " + std::to_string(R) + "x" + std::to_string(C);
        ASSERT_EQ(p.foreign.strides(), p.ref.strides()) << where;
        ASSERT_EQ(p.foreign.is_contiguous(), p.ref.is_contiguous()) << where;
        expect_same(p.foreign, p.ref, where + ": values");
        for (const Op& op : ops_for(dtype, R, C))
          expect_same(op.f(p.foreign), op.f(p.ref), where + ": " + op.name);
        expect_buffer_matches(p, where + ": the ops wrote to their input");
      }
    }
  }
}

// ---- sharing ---------------------------------------------------------------------------------

TEST(FromBlob, SharesMemoryBothWays) {
  std::vector<float> buf = {1, 2, 3, 4, 5, 6};
  Tensor t = soma::from_blob(buf.data(), {2, 3});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.data<float>(), buf.data());
  buf[4] = 50;  // the caller writes: the tensor sees it
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 50, 6}));
  t.mul_(2.0);  // the tensor writes: the caller sees it
  EXPECT_EQ(buf, (std::vector<float>{2, 4, 6, 8, 100, 12}));
  t.t().narrow(0, 1, 1).fill_(-1);  // through a view: column 1
  EXPECT_EQ(buf, (std::vector<float>{2, -1, 6, 8, -1, 12}));
  t.detach().zero_();
  EXPECT_EQ(buf, std::vector<float>(6, 0.0f));
}

TEST(FromBlob, Dtypes) {
  std::vector<double> d = {1.5, -2.5};
  std::vector<int64_t> i = {7, -8, 9};
  std::vector<uint8_t> b = {1, 0, 1};
  Tensor td = soma::from_blob(d.data(), {2}, soma::kFloat64);
  Tensor ti = soma::from_blob(i.data(), {3}, soma::kInt64);
  Tensor tb = soma::from_blob(b.data(), {3}, soma::kBool);
  EXPECT_EQ(td.dtype(), soma::kFloat64);
  EXPECT_EQ(td.to_vector<double>(), d);
  EXPECT_EQ(ti.to_vector<int64_t>(), i);
  EXPECT_EQ(tb.dtype(), soma::kBool);
  EXPECT_EQ(tb.sum().item<int64_t>(), 2);
  ti.add_(1);
  EXPECT_EQ(i, (std::vector<int64_t>{8, -7, 10}));
}

TEST(FromBlob, ZeroElementsAndScalar) {
  Tensor e = soma::from_blob(nullptr, {0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.sum().item<float>(), 0.0f);
  float x = 3.5f;
  Tensor s = soma::from_blob(&x, {});
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<float>(), 3.5f);
  s.add_(1.0);
  EXPECT_EQ(x, 4.5f);
}

TEST(FromBlob, HeaderExample) {
  std::vector<double> buf(12);  // 3 x 4, row-major, owned by the caller
  soma::Tensor t = soma::from_blob(buf.data(), {3, 4}, soma::kFloat64);
  buf[5] = 1.5;
  t.mul_(2.0);  // doubles buf in place
  EXPECT_EQ(buf[5], 3.0);

  // Column 1..2 of a row-major 3 x 4 buffer (row pitch 4), owned by soma from now on:
  float* p = new float[12]();
  p[6] = 7.0f;
  soma::Tensor cols = soma::from_blob(p + 1, {3, 2}, {4, 1}, [p](void*) { delete[] p; });
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{0, 0, 0, 7, 0, 0}));
}

// ---- the deleter -----------------------------------------------------------------------------

// A heap buffer whose deleter counts its calls and checks it gets the right pointer.
struct Owned {
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  float* data;
  explicit Owned(size_t n) : data(new float[n]) {
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(i) - 2.0f;
  }
  soma::Deleter deleter() const {
    return [calls = calls, expected = data](void* p) {
      EXPECT_EQ(p, expected);
      ++*calls;
      delete[] static_cast<float*>(p);
    };
  }
};

TEST(FromBlob, DeleterRunsOnceAfterTheLastView) {
  Owned o(12);
  Tensor t = soma::from_blob(o.data, {3, 4}, o.deleter());
  Tensor v = t.t();
  Tensor d = t.detach();
  Tensor n = t.narrow(0, 1, 1);
  Tensor r = t.reshape({12});
  t = Tensor();
  v = Tensor();
  d = Tensor();
  r = Tensor();
  EXPECT_EQ(*o.calls, 0);
  EXPECT_EQ(n.to_vector<float>(), (std::vector<float>{2, 3, 4, 5}));
  n = Tensor();
  EXPECT_EQ(*o.calls, 1);
}

TEST(FromBlob, DeleterWithStrides) {
  Owned o(12);
  {
    Tensor t = soma::from_blob(o.data + 1, {3, 2}, {4, 1}, [&o](void* p) {
      EXPECT_EQ(p, o.data + 1);
      ++*o.calls;
      delete[] o.data;
    });
    EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{-1, 0, 3, 4, 7, 8}));
  }
  EXPECT_EQ(*o.calls, 1);
}

TEST(FromBlob, DeleterWaitsForAutogradAndBackward) {
  for (bool grad_holder_dies_first : {false, true}) {
    Owned o(6);
    Tensor w = soma::from_blob(o.data, {2, 3}, o.deleter()).requires_grad_();
    Tensor x = soma::randn({4, 2});
    Tensor loss = (soma::matmul(x, w) * w.sum(0)).sum();  // w saved for backward
    const std::vector<float> before(o.data, o.data + 6);
    Tensor leaf = w;  // kept to read the gradient
    w = Tensor();
    EXPECT_EQ(*o.calls, 0);
    Tensor detached = leaf.detach().t();  // a detached view, alive across backward
    loss.backward();
    EXPECT_EQ(*o.calls, 0);
    ASSERT_TRUE(leaf.grad().defined());
    EXPECT_EQ(leaf.grad().shape(), (Shape{2, 3}));
    // The gradient lives in soma's memory; the caller's buffer is unchanged.
    EXPECT_NE(leaf.grad().data<float>(), o.data);
    EXPECT_EQ(std::vector<float>(o.data, o.data + 6), before);
    if (grad_holder_dies_first) {
      leaf = Tensor();
      loss = Tensor();
    } else {
      loss = Tensor();
      EXPECT_EQ(*o.calls, 0);
      leaf = Tensor();
    }
    EXPECT_EQ(*o.calls, 0);
    EXPECT_EQ(detached.sum().item<float>(),
              before[0] + before[1] + before[2] + before[3] + before[4] + before[5]);
    detached = Tensor();
    EXPECT_EQ(*o.calls, 1);
  }
}

TEST(FromBlob, GraphAloneKeepsTheBufferAlive) {
  for (bool backward : {false, true}) {
    Owned o(4);
    Tensor loss;
    {
      Tensor w = soma::from_blob(o.data, {4}, o.deleter()).requires_grad_();
      loss = (w * w.exp()).sum();
    }
    EXPECT_EQ(*o.calls, 0);  // only the graph refers to the buffer now
    if (backward) {
      loss.backward();
      EXPECT_LE(*o.calls, 1);
    }
    loss = Tensor();
    EXPECT_EQ(*o.calls, 1);
  }
}

TEST(FromBlob, NoDeleterNoOwnershipAndNotTheAllocator) {
  const soma::MemoryStats before = soma::memory_stats();
  {
    std::vector<float> buf(1000, 1.0f);
    Tensor t = soma::from_blob(buf.data(), {1000});
    Tensor v = t.narrow(0, 10, 10);
    EXPECT_EQ(v.sum().item<float>(), 10.0f);
  }
  const soma::MemoryStats after = soma::memory_stats();
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  // A null std::function is "no deleter".
  std::vector<float> buf(3);
  { Tensor t = soma::from_blob(buf.data(), {3}, soma::Deleter(), soma::kFloat32); }
}

TEST(FromBlob, FailedCallLeavesOwnershipWithTheCaller) {
  Owned o(4);
  expect_error([&] { soma::from_blob(o.data, {2, 2}, {2}, o.deleter()); }, {"from_blob"});
  expect_error([&] { soma::from_blob(o.data, {-1}, o.deleter()); }, {"from_blob"});
  EXPECT_EQ(*o.calls, 0);
  delete[] o.data;
}

// ---- layouts through the ops -----------------------------------------------------------------

TEST(FromBlob, OpsFloat32) {
  check_ops(soma::kFloat32);
}
TEST(FromBlob, OpsFloat64) {
  check_ops(soma::kFloat64);
}
TEST(FromBlob, OpsInt64) {
  check_ops(soma::kInt64);
}

TEST(FromBlob, MisalignedValuesMatchPlainTensors) {
  // A tensor at buffer + 1 float computes what a fresh (64-byte aligned) copy computes, for an op
  // whose code does not depend on the layout (elementwise, softmax over a contiguous row).
  for (DType dtype : {soma::kFloat32, soma::kFloat64}) {
    soma::manual_seed(7);
    Pair p = make_pair(Layout::Contiguous, 33, 65, dtype, true);
    const Tensor copy = p.foreign.clone();
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(copy.impl()->bytes()) % 64, 0u);
    expect_same(soma::softmax(p.foreign, 1), soma::softmax(copy, 1), "softmax");
    expect_same(soma::relu(p.foreign) * 3.0, soma::relu(copy) * 3.0, "relu * 3");
    expect_same(soma::matmul(p.foreign, copy.t()), soma::matmul(copy, copy.t()), "matmul");
  }
}

TEST(FromBlob, AutogradThroughForeignLayouts) {
  for (Layout layout : {Layout::Transposed, Layout::RowPitch, Layout::Contiguous}) {
    for (bool misaligned : {false, true}) {
      soma::manual_seed(99);
      Pair p = make_pair(layout, 9, 6, soma::kFloat64, misaligned);
      const Tensor w = soma::randn({6, 4}, soma::kFloat64);
      const Tensor target = soma::randint(0, 4, {9});
      auto loss_of = [&](Tensor x) {
        x.requires_grad_();
        Tensor loss = F::cross_entropy(soma::matmul(soma::relu(x), w), target) +
                      soma::log_softmax(x, 1).mean();
        loss.backward();
        return std::pair{loss, x.grad()};
      };
      const auto [lf, gf] = loss_of(p.foreign);
      const auto [lr, gr] = loss_of(p.ref);
      const std::string where = std::string(name(layout)) + (misaligned ? ", misaligned" : "");
      expect_same(lf, lr, where + ": loss");
      expect_same(gf, gr, where + ": gradient");
    }
  }
}

// ---- in-place writes -------------------------------------------------------------------------

TEST(FromBlob, InPlaceWritesMatchSomaStorage) {
  for (DType dtype : {soma::kFloat32, soma::kFloat64, soma::kInt64}) {
    for (Layout layout : {Layout::Contiguous, Layout::Transposed, Layout::RowPitch}) {
      for (bool misaligned : {false, true}) {
        soma::manual_seed(5);
        Pair p = make_pair(layout, 11, 7, dtype, misaligned);
        const std::string where = std::string(name(layout)) + (misaligned ? ", misaligned" : "");
        const Tensor src =
            dtype == soma::kInt64 ? soma::randint(-5, 5, {11, 7}) : soma::randn({11, 7}, dtype);
        const Tensor row = src.narrow(0, 0, 1).squeeze(0);
        for (Tensor* t : {&p.foreign, &p.ref}) {
          t->copy_(src);
          t->add_(row);
          t->mul_(3);
          t->narrow(1, 2, 3).copy_(row.narrow(0, 0, 3));
          t->t().narrow(0, 4, 1).fill_(2);
        }
        expect_same(p.foreign, p.ref, where);
        expect_buffer_matches(p, where + ": buffer (padding untouched)");
        // copy_ from a strided source into the foreign tensor
        p.foreign.copy_(src.t().contiguous().t());
        expect_same(p.foreign, src, where + ": copy_ from a transposed source");
      }
    }
  }
}

TEST(FromBlob, OverlapChecks) {
  std::vector<float> buf = {1, 2, 3, 4, 5, 6, 7, 8};
  // A stride-0 broadcast is readable but not writable in place.
  Tensor b = soma::from_blob(buf.data(), {3, 4}, {0, 1});
  EXPECT_EQ(b.sum().item<float>(), 30.0f);
  expect_error([&] { b.add_(1.0); }, {"add_", "single memory location", "[0, 1]"});
  expect_error([&] { b.copy_(soma::zeros({3, 4})); }, {"copy_"});
  // Strides that make elements coincide without a zero stride (a sliding window).
  Tensor w = soma::from_blob(buf.data(), {3, 3}, {1, 1});
  EXPECT_EQ(w.sum(1).to_vector<float>(), (std::vector<float>{6, 9, 12}));
  expect_error([&] { w.mul_(2.0); }, {"mul_", "single memory location", "[1, 1]"});
  expect_error([&] { w.fill_(0); }, {"fill_"});
  // Strides that interleave without coinciding are writable: rows of 2 at pitch 3... and a dim of
  // stride 2 inside one of stride 3: offsets {0, 2, 3, 5} are distinct.
  Tensor ok = soma::from_blob(buf.data(), {2, 2}, {3, 2});
  ok.add_(10.0);
  EXPECT_EQ(buf, (std::vector<float>{11, 2, 13, 14, 5, 16, 7, 8}));
  // Offsets {0, 2, 2, 4}: two elements share buf[2].
  Tensor clash = soma::from_blob(buf.data(), {2, 2}, {2, 2});
  expect_error([&] { clash.add_(1.0); }, {"add_", "single memory location"});
  EXPECT_EQ(buf, (std::vector<float>{11, 2, 13, 14, 5, 16, 7, 8}));

  // Two from_blob tensors over one buffer are checked by address.
  std::vector<float> m = {0, 1, 2, 3, 4, 5, 6, 7};
  Tensor lo = soma::from_blob(m.data(), {4});
  Tensor hi = soma::from_blob(m.data() + 1, {4});
  expect_error([&] { lo.copy_(hi); }, {"copy_", "single memory location"});
  expect_error([&] { hi.add_(lo); }, {"add_", "single memory location"});
  Tensor same = soma::from_blob(m.data(), {4});
  lo.add_(same);  // the same elements in the same places: fine
  EXPECT_EQ(m, (std::vector<float>{0, 2, 4, 6, 4, 5, 6, 7}));
  Tensor rest = soma::from_blob(m.data() + 4, {4});
  lo.copy_(rest);  // disjoint halves of one buffer: fine
  EXPECT_EQ(m, (std::vector<float>{4, 5, 6, 7, 4, 5, 6, 7}));
  Tensor even = soma::from_blob(m.data(), {4}, {2});
  Tensor odd = soma::from_blob(m.data() + 1, {4}, {2});
  even.copy_(odd);  // interleaved but disjoint
  EXPECT_EQ(m, (std::vector<float>{5, 5, 7, 7, 5, 5, 7, 7}));

  // A from_blob over soma's own storage overlaps it too.
  Tensor s = soma::arange(0.0, 8.0, 1.0);
  Tensor alias = soma::from_blob(s.data<float>() + 1, {4});
  expect_error([&] { s.narrow(0, 0, 4).copy_(alias); }, {"copy_", "single memory location"});
  expect_error([&] { alias.add_(s.narrow(0, 0, 4)); }, {"add_", "single memory location"});
  s.narrow(0, 5, 3).copy_(alias.narrow(0, 0, 3));  // disjoint: fine
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 1, 2, 3}));
}

// ---- optimizers ------------------------------------------------------------------------------

template <typename Opt, typename Options>
void check_optimizer(const Options& options, bool misaligned) {
  soma::manual_seed(3);
  Pair p = make_pair(Layout::Contiguous, 8, 5, soma::kFloat32, misaligned);
  Tensor pf = p.foreign, pr = p.ref.clone();  // a plain soma parameter with the same values
  pf.requires_grad_();
  pr.requires_grad_();
  Opt of({pf}, options), orf({pr}, options);
  const Tensor x = soma::randn({3, 8});
  for (int step = 0; step < 3; ++step) {
    for (auto [param, opt] : {std::pair{pf, &of}, std::pair{pr, &orf}}) {
      opt->zero_grad();
      soma::matmul(x, param).pow(2.0).sum().backward();
      opt->step();
    }
  }
  expect_same(pf, pr, misaligned ? "misaligned" : "aligned");
  // The step wrote into the caller's buffer.
  EXPECT_EQ(std::memcmp(p.buf->p, pr.impl()->bytes(), 40 * sizeof(float)), 0);
}

TEST(FromBlob, OptimizerUpdatesForeignParameterInPlace) {
  for (bool misaligned : {false, true}) {
    check_optimizer<soma::optim::SGD>(
        soma::optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true}, misaligned);
    check_optimizer<soma::optim::Adam>(soma::optim::AdamOptions{.lr = 0.01}, misaligned);
    check_optimizer<soma::optim::AdamW>(soma::optim::AdamOptions{.lr = 0.01}, misaligned);
  }
}

TEST(FromBlob, OptimizerRejectsStridedForeignParameter) {
  for (Layout layout : {Layout::Transposed, Layout::RowPitch}) {
    Pair p = make_pair(layout, 4, 3, soma::kFloat32, true);
    Tensor param = p.foreign;
    param.requires_grad_();
    expect_error([&] { soma::optim::SGD({param}, {.lr = 0.1}); }, {"Optimizer", "not contiguous"});
  }
}

TEST(FromBlob, OptimizerKeepsBufferAliveUntilItDies) {
  Owned o(6);
  auto opt = std::make_unique<soma::optim::SGD>(
      std::vector<Tensor>{soma::from_blob(o.data, {6}, o.deleter()).requires_grad_()},
      soma::optim::SGDOptions{.lr = 0.5});
  EXPECT_EQ(*o.calls, 0);
  opt.reset();
  EXPECT_EQ(*o.calls, 1);
}

// ---- safetensors -----------------------------------------------------------------------------

TEST(FromBlob, SafetensorsSavesForeignLayouts) {
  for (DType dtype : {soma::kFloat32, soma::kFloat64, soma::kInt64}) {
    for (Layout layout : kLayouts) {
      soma::manual_seed(11);
      Pair p = make_pair(layout, 6, 4, dtype, true);
      const std::string got = soma::io::serialize_safetensors({{"w", p.foreign}});
      const std::string want = soma::io::serialize_safetensors({{"w", p.ref.contiguous()}});
      EXPECT_TRUE(got == want) << name(layout);
    }
  }
  Pair p = make_pair(Layout::Transposed, 5, 3, soma::kFloat32, true);
  const std::string path =
      (std::filesystem::path(testing::TempDir()) / "from_blob_test.safetensors").string();
  soma::io::save_safetensors(path, {{"t", p.foreign}});
  const soma::io::SafetensorsFile f = soma::io::load_safetensors(path);
  expect_same(f.tensors.at("t"), p.ref, "save + load");
  std::filesystem::remove(path);
}

// ---- validation ------------------------------------------------------------------------------

TEST(FromBlob, ValidationErrors) {
  std::vector<double> buf(16);
  double* d = buf.data();
  expect_error(
      [&] {
        soma::from_blob(nullptr, {2, 3});
      },
      {"from_blob", "null", "[2, 3]", "6 elements"});
  expect_error(
      [&] {
        soma::from_blob(d, {2, -1}, soma::kFloat64);
      },
      {"from_blob", "[2, -1]", "negative"});
  expect_error(
      [&] {
        soma::from_blob(d, {2, 3}, {3}, soma::kFloat64);
      },
      {"from_blob", "strides [3]", "[2, 3]", "2 dims"});
  expect_error(
      [&] {
        soma::from_blob(d + 4, {2, 3}, {3, -1}, soma::kFloat64);
      },
      {"from_blob", "negative stride -1", "dim 1"});
  expect_error([&] { soma::from_blob(reinterpret_cast<char*>(d) + 4, {2}, soma::kFloat64); },
               {"from_blob", "not aligned", "8-byte", "float64"});
  expect_error([&] { soma::from_blob(reinterpret_cast<char*>(d) + 2, {2}, soma::kFloat32); },
               {"from_blob", "not aligned", "4-byte", "float32"});
  expect_error(
      [&] {
        soma::from_blob(d, {2, 2}, {int64_t{1} << 62, 1}, soma::kFloat64);
      },
      {"from_blob", "more than 2^63 bytes"});
  expect_error(
      [&] {
        soma::from_blob(d, {3, 3}, {int64_t{1} << 62, 1}, soma::kFloat64);
      },
      {"from_blob", "more than 2^63 elements"});
  expect_error(
      [&] {
        soma::from_blob(d, {int64_t{1} << 32, int64_t{1} << 32});
      },
      {"from_blob", "too many elements"});
  // Fine: an odd address for a one-byte dtype, a negative stride on a size-1 dim, a null pointer
  // with no elements, zero strides.
  EXPECT_NO_THROW(soma::from_blob(reinterpret_cast<char*>(d) + 1, {3}, soma::kUInt8));
  EXPECT_NO_THROW(soma::from_blob(d, {1, 3}, {-5, 1}, soma::kFloat64));
  EXPECT_NO_THROW(soma::from_blob(nullptr, {0}, {-1}, soma::kFloat64));
  EXPECT_NO_THROW(soma::from_blob(d, {4, 4}, {0, 0}, soma::kFloat64));
}

}  // namespace
