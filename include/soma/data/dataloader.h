// DataLoader: iterates over a Dataset in mini-batches, optionally shuffled (with an explicit
// seed, reshuffled every epoch), through an optional transform stage (soma/data/transforms.h),
// built on the calling thread or by persistent worker threads that load ahead.
//
// Epoch e visits the samples in epoch_order(e): 0, 1, ..., N-1 without shuffle; with shuffle, a
// Fisher-Yates shuffle driven by std::mt19937_64(seed * 0x9E3779B97F4A7C15 + e) in which the
// swap index for position i is drawn uniformly from [0, i] by rejection sampling on raw 64-bit
// draws (no std::uniform_int_distribution), so the order depends only on (seed, e) and is the
// same with every compiler and standard library. Batch b holds samples [b*B, min((b+1)*B, n))
// of that order, where n = num_samples() (N, or N rounded down to a multiple of B with
// drop_last).
//
// Distributed sampler (data-parallel training, soma/dist/dist.h): with num_replicas = W > 1,
// batch_size B is the per-rank batch and a global batch holds G = W*B samples. Every rank
// computes the same epoch order (same seed), global batch b is positions [b*G, min((b+1)*G,
// n)) of it (n = N, or N rounded down to a multiple of G with drop_last), and rank r's batch b
// is that global batch's r-th slice [b*G + floor(r*m/W), b*G + floor((r+1)*m/W)), m its
// length. So the ranks' shards are disjoint and together cover the epoch, every rank runs the
// same number of batches, and W ranks see, batch for batch, the samples one process sees with
// batch size G. When the last global batch has fewer than W samples some ranks get an empty
// batch (x and y with 0 rows), which train::fit takes part in with weight 0.
//
// Workers (num_workers = W > 0, torch's name): a pass starts W threads that live until the pass
// ends (reaching end(), or the last iterator of the pass being destroyed: leaving the loop
// early with break or an exception stops and joins them; a worker finishes the batch it is
// building first). Worker w builds batches w, w + W, w + 2W, ... (torch's round-robin), at
// most prefetch_factor * W batches ahead of the one the loop is at, and the loop receives
// them in order: the batches, and the random draws of the transform (keyed by seed, epoch and
// sample index), are bit-identical for every num_workers. An exception from the dataset or
// the transform reaches the loop, at the batch that failed, as a soma::Error naming the batch
// and the epoch (with num_workers = 0 too).
//
// Threads: a worker runs its kernels (gather, transform) on one thread (a ThreadLimit of 1),
// while the loop's own ops use the compute pool, soma::get_num_threads() threads. A pass is
// therefore get_num_threads() + num_workers busy threads: keep num_workers <= cores -
// get_num_threads(), i.e. use workers only when the pool leaves cores free (with every core
// in the pool, one extra thread slows training: docs/PERFORMANCE.md). The loader does not
// clamp num_workers; `soma train` picks 1 when get_num_threads() < the cores it may use, else 0.
//
//   soma::data::DataLoader loader(soma::data::TensorDataset(x, y),
//                                 {.batch_size = 128, .shuffle = true, .seed = 42});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (auto& [xb, yb] : loader) { /* xb [128, ...], yb [128] */ }
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "soma/data/dataset.h"
#include "soma/data/transforms.h"

namespace soma::data {

struct DataLoaderOptions {
  int64_t batch_size = 32;      // samples per batch (> 0)
  bool shuffle = false;         // visit the samples in a new random order every epoch
  uint64_t seed = 0;            // the order of epoch e depends only on (seed, e)
  bool drop_last = false;       // drop the last batch when it has fewer than batch_size samples
  int64_t num_workers = 0;      // worker threads building batches ahead (>= 0; 0: the calling
                                // thread builds each batch when the loop reaches it); see above
  int64_t prefetch_factor = 2;  // batches loaded in advance per worker (>= 1)
  transforms::Transform transform{};  // applied to every batch's x (on the workers when
                                      // num_workers > 0), with the batch's seed, epoch, indices
  int64_t num_replicas = 1;           // ranks sharing each global batch (dist::world_size())
  int64_t rank = 0;                   // this rank's shard, in [0, num_replicas) (dist::rank())
};

class DataLoader {
 public:
  /// Reads from a shared dataset (non-null); the loader keeps it alive.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  /// Takes a copy of `dataset` (TensorDataset copies are cheap: tensors are handles).
  template <typename D>
  requires std::derived_from<D, Dataset> DataLoader(D dataset, DataLoaderOptions options = {})
      : DataLoader(std::shared_ptr<const Dataset>(std::make_shared<const D>(std::move(dataset))),
                   std::move(options)) {}

  /// An input iterator over one epoch's batches. Copies share their position. The batch a
  /// dereference returns stays valid until the next increment; an iterator must not outlive
  /// its loader. Errors from the dataset or the transform surface from begin() or ++ as a
  /// soma::Error naming the batch; the pass is then over (a further ++ throws).
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    /// The end iterator.
    Iterator() = default;
    const Batch& operator*() const;
    const Batch* operator->() const { return &**this; }
    Iterator& operator++();
    void operator++(int) { ++*this; }
    /// Equal when both are past the end, or both are at the same batch of the same pass.
    friend bool operator==(const Iterator& a, const Iterator& b);

   private:
    friend class DataLoader;
    struct State;  // the pass's sample order, position, current batch and its workers
    explicit Iterator(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  /// Starts a pass over epoch epoch() and builds its first batch. When the pass reaches end(),
  /// epoch() advances by one (unless set_epoch() was called meanwhile); leaving a pass early
  /// does not advance it. An epoch with no batches advances it at once.
  Iterator begin();
  Iterator end() { return Iterator(); }

  /// Batches per epoch: ceil(N / G), or floor(N / G) with drop_last (G = B * num_replicas).
  int64_t size() const;
  /// This rank's samples per epoch: N, or B * floor(N / B) with drop_last, for one replica.
  int64_t num_samples() const;
  /// Samples per epoch over all replicas: N, or G * floor(N / G) with drop_last.
  int64_t global_num_samples() const;
  /// This rank's samples of epoch `epoch`, in the order it visits them, and where each of its
  /// batches starts in that list (size() + 1 offsets; batch b is [starts[b], starts[b+1])).
  std::vector<int64_t> shard_order(int64_t epoch, std::vector<int64_t>* starts = nullptr) const;
  /// The epoch the next begin() will run (0 at construction).
  int64_t epoch() const { return epoch_; }
  /// Sets the epoch the next begin() will run (>= 0), e.g. to resume a run exactly.
  void set_epoch(int64_t epoch);
  /// The order in which epoch `epoch` visits the samples (all N of them, including those that
  /// drop_last leaves out): the identity without shuffle.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }

 private:
  friend struct Iterator::State;
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
};

}  // namespace soma::data
