// Thread settings. soma and OpenBLAS (its OpenMP build) share one OpenMP thread pool, so the
// two never oversubscribe the cores. The default is the number of cores, or SOMA_NUM_THREADS
// when that environment variable is set when the library loads.
#pragma once

namespace soma {

/// Sets the number of threads for soma's kernels and for BLAS (n >= 1).
void set_num_threads(int n);
/// The number of threads soma's kernels and BLAS use.
int get_num_threads();

}  // namespace soma
