// Overlap checks for in-place writes: a cheap span test first, and an exact element test only
// when two views of one storage have overlapping spans without being the same view.
#include "core/overlap.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor_impl.h"
#include "soma/core/error.h"

namespace soma::detail {

namespace {

// The exact test marks every written element in a bitmap over the written span; spans larger
// than this many elements are treated as overlapping (an error) instead.
constexpr int64_t kMaxExactSpan = int64_t{1} << 27;

struct Span {
  int64_t lo, hi;  // first and last element offset touched (inclusive)
};

Span span_of(const Shape& shape, const Shape& strides, int64_t offset) {
  Span s{offset, offset};
  for (size_t d = 0; d < shape.size(); ++d) {
    const int64_t ext = (shape[d] - 1) * strides[d];
    (ext < 0 ? s.lo : s.hi) += ext;
  }
  return s;
}

// Calls f(written_offset, input_offset) for every index of `shape`, in row-major order.
template <typename F>
void for_each_offset(const Shape& shape, const Shape& ws, int64_t wo, const Shape& is, int64_t io,
                     F f) {
  const size_t nd = shape.size();
  std::vector<int64_t> idx(nd, 0);
  while (true) {
    f(wo, io);
    size_t d = nd;
    while (d > 0) {
      --d;
      wo += ws[d];
      io += is[d];
      if (++idx[d] < shape[d]) break;
      wo -= ws[d] * shape[d];
      io -= is[d] * shape[d];
      idx[d] = 0;
      if (d == 0) return;
    }
    if (nd == 0) return;
  }
}

[[noreturn]] void fail_partial(const Tensor& written, const Tensor& input, const char* op) {
  fail(op, ": unsupported operation: some elements of the input tensor and the written-to ",
       "tensor refer to a single memory location (input shape ", input.shape(), " strides ",
       input.strides(), " offset ", input.impl()->offset, "; written-to shape ", written.shape(),
       " strides ", written.strides(), " offset ", written.impl()->offset,
       "); clone() the input before the in-place operation");
}

}  // namespace

void check_no_internal_overlap(const Tensor& written, const char* op) {
  const TensorImpl& w = *written.impl();
  for (size_t d = 0; d < w.shape.size(); ++d)
    SOMA_CHECK(w.shape[d] <= 1 || w.strides[d] != 0, op,
               ": unsupported operation: more than one element of the written-to tensor refers ",
               "to a single memory location (shape ", w.shape, " strides ", w.strides,
               ", e.g. from expand()); clone() it before the in-place operation");
  if (w.contiguous || w.numel <= 1) return;

  // Every view soma makes (transpose, narrow, slice, squeeze) passes this cheap test: with the
  // dims sorted by stride, each stride steps past everything the smaller ones reach. Only
  // from_blob can make other layouts (strides {1, 1} for shape {2, 2}); those take the exact
  // test below.
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of dims with size > 1
  for (size_t d = 0; d < w.shape.size(); ++d)
    if (w.shape[d] > 1) dims.emplace_back(w.strides[d], w.shape[d]);
  std::sort(dims.begin(), dims.end());
  bool separated = true;
  int64_t reach = 0;  // largest offset the smaller-stride dims address
  for (const auto& [stride, size] : dims) {
    if (stride < 0 || stride <= reach) {
      separated = false;
      break;
    }
    reach += (size - 1) * stride;
  }
  if (separated) return;

  auto fail_internal = [&]() {
    fail(op, ": unsupported operation: more than one element of the written-to tensor refers ",
         "to a single memory location (shape ", w.shape, " strides ", w.strides,
         "); clone() it before the in-place operation");
  };
  const Span span = span_of(w.shape, w.strides, w.offset);
  const int64_t n = span.hi - span.lo + 1;
  if (n > kMaxExactSpan) fail_internal();
  std::vector<bool> seen(static_cast<size_t>(n), false);
  bool conflict = false;
  for_each_offset(w.shape, w.strides, w.offset, w.strides, w.offset, [&](int64_t wo, int64_t) {
    if (seen[wo - span.lo]) conflict = true;
    seen[wo - span.lo] = true;
  });
  if (conflict) fail_internal();
}

void check_no_partial_overlap(const Tensor& written, const Tensor& input, const char* op) {
  const TensorImpl& w = *written.impl();
  const TensorImpl& in = *input.impl();
  if (w.numel == 0 || in.numel == 0) return;
  // soma's own storages never share memory; foreign memory (from_blob) may overlap any storage,
  // so two storages are compared by address whenever one of them is foreign.
  if (w.storage != in.storage && !w.storage->foreign && !in.storage->foreign) return;

  // Spans in bytes from the written storage's base (views of one storage share the dtype, but
  // do not rely on it here).
  const Span ws = span_of(w.shape, w.strides, w.offset);
  const Span is = span_of(in.shape, in.strides, in.offset);
  const int64_t wb = static_cast<int64_t>(element_size(w.dtype));
  const int64_t ib = static_cast<int64_t>(element_size(in.dtype));
  const int64_t base = static_cast<int64_t>(reinterpret_cast<std::intptr_t>(in.storage->data) -
                                            reinterpret_cast<std::intptr_t>(w.storage->data));
  if ((ws.hi + 1) * wb <= base + is.lo * ib || base + (is.hi + 1) * ib <= ws.lo * wb) return;
  if (w.dtype != in.dtype || base % wb != 0) fail_partial(written, input, op);
  // The input's offset counted in elements from the written storage's base.
  const int64_t in_offset = in.offset + base / wb;

  // The input as the kernel reads it: broadcast to the written shape (stride 0 where stretched).
  const size_t nd = w.shape.size();
  Shape rs(nd, 0);
  const size_t lead = nd - in.shape.size();
  for (size_t d = 0; d < in.shape.size(); ++d) rs[lead + d] = in.shape[d] == 1 ? 0 : in.strides[d];

  bool exact = w.offset == in_offset;
  for (size_t d = 0; d < nd && exact; ++d) exact = w.shape[d] == 1 || rs[d] == w.strides[d];
  if (exact) return;  // every element is read where it is written: x.add_(x)

  // Exact test: an element read at one index and written at another is a conflict.
  const int64_t n = ws.hi - ws.lo + 1;
  if (n > kMaxExactSpan) fail_partial(written, input, op);
  std::vector<bool> is_written(static_cast<size_t>(n), false);
  for_each_offset(w.shape, w.strides, w.offset, rs, in_offset,
                  [&](int64_t wo, int64_t) { is_written[wo - ws.lo] = true; });
  bool conflict = false;
  for_each_offset(w.shape, w.strides, w.offset, rs, in_offset, [&](int64_t wo, int64_t io) {
    if (io != wo && io >= ws.lo && io <= ws.hi && is_written[io - ws.lo]) conflict = true;
  });
  if (conflict) fail_partial(written, input, op);
}

}  // namespace soma::detail
