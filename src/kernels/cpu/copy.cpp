#include "kernels/cpu/copy.h"

#include <cstring>

#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/cpu/loop.h"

namespace soma::kernels::cpu {

void copy(Tensor& dst, const Tensor& src) {
  auto loop = make_loop<2>(dst.shape(), {&dst.strides(), &src.strides()});
  detail::dispatch_all(dst.dtype(), [&]<typename D>() {
    detail::dispatch_all(src.dtype(), [&]<typename S>() {
      D* out = reinterpret_cast<D*>(dst.impl()->bytes());
      const S* in = reinterpret_cast<const S*>(src.impl()->bytes());
      for_each_row<2>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
        D* o = out + off[0];
        const S* x = in + off[1];
        if constexpr (std::is_same_v<D, S>) {
          if (st[0] == 1 && st[1] == 1) {
            std::memcpy(o, x, static_cast<size_t>(n) * sizeof(D));
            return;
          }
        }
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = static_cast<D>(x[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * st[0]] = static_cast<D>(x[i * st[1]]);
        }
      });
    });
  });
}

}  // namespace soma::kernels::cpu
