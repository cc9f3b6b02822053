// soma::dist: data-parallel training over MPI.
//
// Every process (rank) holds a replica of the model and trains on its shard of each global
// batch; gradients are averaged across ranks before the optimizer step, so N ranks with local
// batch B compute what one process computes with batch N*B. The pieces:
//   init / finalize (or the RAII Environment)   start and stop MPI (MPI_THREAD_FUNNELED)
//   rank(), world_size()                        this process's place in MPI_COMM_WORLD
//   broadcast_parameters(params)                rank 0's initial weights to every rank
//   broadcast_buffers(buffers)                  rank 0's buffers (BatchNorm's running stats)
//   allreduce_gradients(params, weight)         weighted average of .grad over ranks, packed
//                                               into large contiguous buckets
//   allreduce_sum(values)                       metric reduction (loss sums, counts)
//   DataLoaderOptions{.num_replicas, .rank}     the distributed sampler (data/dataloader.h):
//                                               rank r's disjoint shard of every global batch
// train::fit uses them by itself when world_size() > 1: it averages the gradients, reduces
// the epoch's metrics and validation, and gives every rank its own dropout stream.
//
//   int main(int argc, char** argv) {
//     soma::dist::Environment env(argc, argv);          // MPI_Init ... MPI_Finalize
//     soma::manual_seed(0);
//     nn::Sequential model(nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10));
//     soma::dist::broadcast_parameters(model.parameters());
//     soma::data::DataLoader train(ds, {.batch_size = 64, .shuffle = true, .seed = 0,
//                                       .num_replicas = soma::dist::world_size(),
//                                       .rank = soma::dist::rank()});
//     soma::train::fit(model, opt, loss, train, {.epochs = 5});   // same code as one process
//     if (soma::dist::rank() == 0) soma::save(model, "model.safetensors");
//   }
//   mpirun -np 2 ./train                       (as root: --allow-run-as-root; see DISTRIBUTED.md)
//
// Without MPI (built with SOMA_WITH_MPI=OFF, or run without mpirun and never init()'ed) this
// process is the whole job: rank() is 0, world_size() is 1, and the collectives leave their
// arguments as they are (allreduce_gradients of one rank is its own gradient).
//
// Faults: every MPI call's error becomes a soma::Error naming the call. An error must not
// leave the other ranks waiting in a collective, so a rank that fails calls abort(), which
// ends every rank of the job (MPI_Abort): Environment does so when it is destroyed by an
// exception, init() installs a std::terminate handler that does so, and the soma CLI does so
// after printing its error. A rank that dies is noticed by mpirun, which ends the others.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::dist {

/// Whether this soma was built with MPI (CMake option SOMA_WITH_MPI).
bool available();

/// Whether this process was started by an MPI launcher (mpirun/mpiexec of Open MPI, MPICH or
/// a PMIx/PMI launcher such as srun), judged by the environment variables they set.
bool launched_by_mpirun();

/// Starts MPI (MPI_Init_thread with MPI_THREAD_FUNNELED: only the thread that called init
/// makes MPI calls). Does nothing when already initialised. Without MPI it is an error to be
/// launched by mpirun with more than one process (every process would train alone and write
/// the same files); otherwise it does nothing. Unless SOMA_NUM_THREADS or OMP_NUM_THREADS is
/// set, it sets soma's threads to this rank's share of the machine: the cores this process may
/// run on, divided by the ranks on this node (at least 1).
void init(int* argc = nullptr, char*** argv = nullptr);

/// Ends MPI (MPI_Finalize) after a barrier. Does nothing when not initialised or already
/// finalised.
void finalize();

/// Whether init() has run and finalize() has not.
bool is_initialized();

/// init() on construction, finalize() on destruction, or abort(1) when destroyed while an
/// exception unwinds the stack (the other ranks may be waiting in a collective).
class Environment {
 public:
  Environment(int& argc, char**& argv);
  Environment();
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

 private:
  int uncaught_ = 0;
};

/// This process's rank in [0, world_size()); 0 when MPI is not initialised.
int rank();
/// The number of ranks in the job; 1 when MPI is not initialised.
int world_size();
/// This process's rank among the ranks on its node, and how many ranks share the node.
int local_rank();
int local_size();

/// Blocks until every rank has called it.
void barrier();

/// Overwrites every tensor with rank `root`'s values (float32 or float64, any shape; the same
/// list, in the same order, of the same shapes and dtypes on every rank), packed into buckets
/// of about bucket_bytes. Call after building the model, so replicas start equal.
void broadcast_parameters(const std::vector<Tensor>& tensors, int root = 0,
                          int64_t bucket_bytes = int64_t{25} << 20);

/// Overwrites every buffer (any dtype: float32/float64 as they are, integer buffers such as
/// BatchNorm's int64 num_batches_tracked exactly through float64) with rank `root`'s values,
/// as torch's DistributedDataParallel does before each forward (broadcast_buffers=True).
/// train::fit calls it before every step. Undefined tensors are skipped.
void broadcast_buffers(const std::vector<Tensor>& buffers, int root = 0);

/// Overwrites `bytes` with rank `root`'s string (e.g. a checkpoint file that only rank 0 can
/// read).
void broadcast_bytes(std::string& bytes, int root = 0);

/// Replaces the gradient of every parameter by the weighted mean over ranks,
///   grad = sum_r weight_r * grad_r / sum_r weight_r,
/// and returns sum_r weight_r. With weight 1 on every rank that is the plain average; train::fit
/// passes each rank's batch size, so unequal shards (the last batch of an epoch) give exactly
/// the gradient of the mean loss over the global batch. A gradient a rank does not have
/// (undefined) counts as zeros; a parameter with no gradient on any rank keeps none. weight
/// must be >= 0 and finite, except that a NaN weight marks this rank's step as failed: the sum
/// returned is then NaN on every rank, so all of them can stop together. Gradients are packed
/// into contiguous buckets of at most bucket_bytes (one bucket per dtype change; a bigger
/// tensor travels alone) and reduced with one MPI_Allreduce each. Every rank must pass the
/// same parameters in the same order.
double allreduce_gradients(const std::vector<Tensor>& params, double weight = 1.0,
                           int64_t bucket_bytes = int64_t{25} << 20);

/// Sums `values` element-wise over ranks, in place (every rank passes the same count).
void allreduce_sum(std::vector<double>& values);

/// Ends every rank of the job with `code` (MPI_Abort), or this process when MPI is not
/// initialised. Never returns.
[[noreturn]] void abort(int code = 1);

/// Time and volume of this process's gradient reductions since the last reset (for the
/// allreduce fraction of a step, docs/PERFORMANCE.md).
struct CommStats {
  int64_t calls = 0;        // allreduce_gradients calls
  int64_t messages = 0;     // MPI_Allreduce calls they made (buckets plus one for the weights)
  int64_t bytes = 0;        // gradient bytes reduced
  double seconds = 0;       // wall time inside allreduce_gradients (packing included)
  double ring_seconds = 0;  // of which in the ring exchange of the buckets (the transfer)
};
CommStats comm_stats();
void reset_comm_stats();

}  // namespace soma::dist
