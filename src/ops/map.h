// Elementwise map helpers (internal): apply a scalar lambda over 1-3 broadcast inputs.
//
//   Tensor y = map1<T>(x, [](T v) { return v > 0 ? v : T(0); });        // same shape as x
//   Tensor z = map2<T>(a, b, [](T x, T y) { return x * y; });           // broadcast shape
// Inputs may have any strides (views, transposes, stride-0 broadcasts); the output is a new
// contiguous tensor of dtype TO. apply2 writes into an existing (possibly strided) output.
// `grain`: the loop runs on one thread below this many elements (kernels::cpu::kCheapGrain for
// memory-bound ops such as relu and add).
#pragma once

#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"

namespace soma::ops {

using kernels::for_each_row;
using kernels::cpu::make_loop;

/// Strides that read `t` broadcast to `shape` (0 along stretched or missing dims).
inline Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  Shape strides(shape.size(), 0);
  const int64_t lead = static_cast<int64_t>(shape.size()) - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) strides[lead + d] = t.size(d) == 1 ? 0 : t.stride(d);
  return strides;
}

template <typename T>
const T* ptr(const Tensor& t) {
  return reinterpret_cast<const T*>(t.impl()->bytes());
}
template <typename T>
T* mutable_ptr(const Tensor& t) {
  return reinterpret_cast<T*>(t.impl()->bytes());
}

template <typename TO, typename T, typename F>
void apply1(const Tensor& out, const Tensor& x, F f, int64_t grain = kernels::cpu::kParallelGrain) {
  const Shape sx = broadcast_strides(x, out.shape());
  auto loop = make_loop<2>(out.shape(), {&out.strides(), &sx});
  loop.grain = grain;
  TO* po = mutable_ptr<TO>(out);
  const T* px = ptr<T>(x);
  for_each_row<2>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
    TO* o = po + off[0];
    const T* a = px + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]]);
    }
  });
}

template <typename TO, typename T, typename F>
void apply2(const Tensor& out, const Tensor& x, const Tensor& y, F f,
            int64_t grain = kernels::cpu::kParallelGrain) {
  const Shape sx = broadcast_strides(x, out.shape()), sy = broadcast_strides(y, out.shape());
  auto loop = make_loop<3>(out.shape(), {&out.strides(), &sx, &sy});
  loop.grain = grain;
  TO* po = mutable_ptr<TO>(out);
  const T* px = ptr<T>(x);
  const T* py = ptr<T>(y);
  for_each_row<3>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
    TO* o = po + off[0];
    const T* a = px + off[1];
    const T* b = py + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const T bv = *b;
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const T av = *a;
      for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]], b[i * st[2]]);
    }
  });
}

template <typename TO, typename TC, typename T, typename F>
void apply3(const Tensor& out, const Tensor& x, const Tensor& y, const Tensor& z, F f) {
  const Shape sx = broadcast_strides(x, out.shape()), sy = broadcast_strides(y, out.shape()),
              sz = broadcast_strides(z, out.shape());
  auto loop = make_loop<4>(out.shape(), {&out.strides(), &sx, &sy, &sz});
  TO* po = mutable_ptr<TO>(out);
  const TC* px = ptr<TC>(x);
  const T* py = ptr<T>(y);
  const T* pz = ptr<T>(z);
  for_each_row<4>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
    TO* o = po + off[0];
    const TC* a = px + off[1];
    const T* b = py + off[2];
    const T* c = pz + off[3];
    for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]], b[i * st[2]], c[i * st[3]]);
  });
}

template <typename T, typename TO = T, typename F>
Tensor map1(const Tensor& x, F f, int64_t grain = kernels::cpu::kParallelGrain) {
  Tensor out = detail::make_tensor(x.shape(), dtype_of<TO>());
  apply1<TO, T>(out, x, f, grain);
  return out;
}

template <typename T, typename TO = T, typename F>
Tensor map2(const Tensor& x, const Tensor& y, F f, const char* op = "elementwise",
            int64_t grain = kernels::cpu::kParallelGrain) {
  Tensor out = detail::make_tensor(broadcast_shapes(x.shape(), y.shape(), op), dtype_of<TO>());
  apply2<TO, T>(out, x, y, f, grain);
  return out;
}

}  // namespace soma::ops
