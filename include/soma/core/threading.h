// Thread settings: one process-wide number of threads for soma's kernels and for BLAS.
//
// It is read once, at the first use, from SOMA_NUM_THREADS, else OMP_NUM_THREADS (its first
// entry), else the number of CPUs in the process's affinity mask (so `taskset -c 0` gives 1).
// set_num_threads changes it for every thread that runs soma ops, including threads the
// program starts later or started before; each parallel region asks for it. soma and OpenBLAS
// (its OpenMP build) share one OpenMP thread pool, so the two never oversubscribe the cores.
// Under mpirun, dist::init gives each rank its share of the node's cores unless one of the
// two variables is set.
#pragma once

namespace soma {

/// Sets the number of threads for soma's kernels and for BLAS (1 <= n <= 4096), process-wide.
void set_num_threads(int n);
/// The number of threads soma's kernels and BLAS use. Throws soma::Error if SOMA_NUM_THREADS
/// is set to something other than a whole number in [1, 4096].
int get_num_threads();
/// The number of CPUs this process may run on (its affinity mask: taskset, mpirun's binding).
int available_cpus();

}  // namespace soma
