// Bulk fills from the global generator (internal): one lock per tensor, serial row-major order.
#pragma once

#include <cstdint>

namespace soma::detail {

void fill_uniform(float* p, int64_t n);
void fill_uniform(double* p, int64_t n);
void fill_normal(float* p, int64_t n);
void fill_normal(double* p, int64_t n);
/// Uniform integers in [low, high).
void fill_randint(int64_t* p, int64_t n, int64_t low, int64_t high);

}  // namespace soma::detail
