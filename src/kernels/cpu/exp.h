// e^x for float32 with PyTorch's bits: SLEEF's expf_u10 algorithm (at most 1 ULP from e^x), which
// is what torch.exp, softmax, log_softmax and cross_entropy evaluate on the CPU (ATen's
// Vectorized<float>::exp). glibc's expf rounds differently in about 9% of inputs.
//
//   kernels::cpu::exp_float(x, y, n);        // y[i] = e^x[i], y may be x
//   float e = kernels::cpu::exp_float(v);    // one value, the same bits
//
// The array form runs 16 lanes at a time with AVX-512 where vector_level() is 2, and otherwise
// the scalar form element by element: the same operations (fused multiply-adds included), so
// the same bits on every CPU and with SOMA_MAX_CPU_ISA.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// e^v (NaN in, NaN out; below -104: 0; above 100: inf).
float exp_float(float v);

/// y[i] = exp_float(x[i]) for i < n, on the calling thread; x and y may be the same array.
void exp_float(const float* x, float* y, int64_t n);

}  // namespace soma::kernels::cpu
