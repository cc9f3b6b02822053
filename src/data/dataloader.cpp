// DataLoader: per-epoch sample order, batching, transform and background prefetch.
#include "soma/data/dataloader.h"

#include <omp.h>

#include <future>
#include <numeric>
#include <random>

#include "data/shuffle.h"
#include "soma/core/error.h"

namespace soma::data {

namespace {

// What one pass needs, immutable once built, shared with the prefetch task (so an iterator
// destroyed mid-pass never leaves that task with dangling references).
struct Plan {
  std::shared_ptr<const Dataset> dataset;
  std::function<Batch(Batch)> transform;
  std::vector<int64_t> order;   // this rank's samples of the epoch, in visiting order
  std::vector<int64_t> starts;  // batch b is order[starts[b], starts[b + 1])
  int64_t num_batches = 0;

  Batch make(int64_t b) const {
    const auto start = order.begin() + starts[b], stop = order.begin() + starts[b + 1];
    Batch batch;
    if (start == stop) {
      // This rank's share of a last global batch smaller than the number of ranks: 0 rows.
      batch = dataset->get_batch({0});
      batch.x = batch.x.narrow(0, 0, 0);
      if (batch.y.defined()) batch.y = batch.y.narrow(0, 0, 0);
    } else {
      batch = dataset->get_batch(std::vector<int64_t>(start, stop));
    }
    if (transform) batch = transform(std::move(batch));
    return batch;
  }
};

}  // namespace

struct DataLoader::Iterator::State {
  DataLoader* loader = nullptr;  // to advance its epoch counter at the end of the pass
  int64_t epoch = 0;             // the epoch this pass runs
  std::shared_ptr<const Plan> plan;
  bool prefetch = false;
  int64_t pos = 0;  // index of `current`; plan->num_batches when past the end
  Batch current;
  std::future<Batch> next;  // batch pos + 1, when prefetching

  bool at_end() const { return pos >= plan->num_batches; }

  void finish() {
    current = Batch{};
    if (loader->epoch_ == epoch) loader->epoch_ = epoch + 1;
  }

  // Starts building batch `b` on a background thread.
  void launch(int64_t b) {
    if (!prefetch || b >= plan->num_batches) return;
    next = std::async(std::launch::async, [p = plan, b] {
      // One OpenMP thread here: the consumer's kernels already use the whole pool.
      omp_set_num_threads(1);
      return p->make(b);
    });
  }

  void start() {
    if (at_end()) return finish();
    current = plan->make(0);
    launch(1);
  }

  void advance() {
    SOMA_CHECK(!at_end(), "DataLoader::Iterator: cannot increment past the end");
    ++pos;
    if (at_end()) return finish();
    current = prefetch ? next.get() : plan->make(pos);  // get() rethrows the task's error
    launch(pos + 1);
  }
};

// ---- Iterator ------------------------------------------------------------------------------
const Batch& DataLoader::Iterator::operator*() const {
  SOMA_CHECK(state_ != nullptr && !state_->at_end(),
             "DataLoader::Iterator: cannot dereference the end iterator");
  return state_->current;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  SOMA_CHECK(state_ != nullptr, "DataLoader::Iterator: cannot increment the end iterator");
  state_->advance();
  return *this;
}

bool operator==(const DataLoader::Iterator& a, const DataLoader::Iterator& b) {
  const bool a_end = a.state_ == nullptr || a.state_->at_end();
  const bool b_end = b.state_ == nullptr || b.state_->at_end();
  if (a_end || b_end) return a_end == b_end;
  return a.state_ == b.state_;
}

// ---- DataLoader ----------------------------------------------------------------------------
DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  SOMA_CHECK(dataset_ != nullptr, "DataLoader: dataset is null");
  SOMA_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got ",
             options_.batch_size);
  SOMA_CHECK(options_.num_replicas >= 1, "DataLoader: num_replicas must be >= 1, got ",
             options_.num_replicas);
  SOMA_CHECK(options_.rank >= 0 && options_.rank < options_.num_replicas,
             "DataLoader: rank must be in [0, num_replicas = ", options_.num_replicas, "), got ",
             options_.rank);
  SOMA_CHECK(options_.batch_size <= (int64_t{1} << 62) / options_.num_replicas,
             "DataLoader: batch_size ", options_.batch_size, " times num_replicas ",
             options_.num_replicas, " overflows");
}

int64_t DataLoader::global_num_samples() const {
  const int64_t n = dataset_->size(), g = options_.batch_size * options_.num_replicas;
  return options_.drop_last ? n / g * g : n;
}

int64_t DataLoader::size() const {
  const int64_t n = dataset_->size(), g = options_.batch_size * options_.num_replicas;
  return options_.drop_last ? n / g : (n + g - 1) / g;
}

namespace {

// Rank r's slice of a global batch of m samples shared by w ranks: [lo, hi) within it.
std::pair<int64_t, int64_t> slice(int64_t m, int64_t w, int64_t r) {
  return {r * m / w, (r + 1) * m / w};
}

}  // namespace

int64_t DataLoader::num_samples() const {
  const int64_t w = options_.num_replicas, g = options_.batch_size * w;
  const int64_t n = global_num_samples(), full = n / g, rest = n - full * g;
  const auto [lo, hi] = slice(rest, w, options_.rank);
  return full * options_.batch_size + (hi - lo);
}

std::vector<int64_t> DataLoader::shard_order(int64_t epoch, std::vector<int64_t>* starts) const {
  std::vector<int64_t> all = epoch_order(epoch);
  const int64_t w = options_.num_replicas, g = options_.batch_size * w;
  const int64_t n = global_num_samples(), batches = size();
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(num_samples()));
  if (starts) starts->assign(1, 0);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * g, m = std::min(g, n - first);
    const auto [lo, hi] = slice(m, w, options_.rank);
    mine.insert(mine.end(), all.begin() + first + lo, all.begin() + first + hi);
    if (starts) starts->push_back(static_cast<int64_t>(mine.size()));
  }
  return mine;
}

void DataLoader::set_epoch(int64_t epoch) {
  SOMA_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch must be non-negative, got ", epoch);
  epoch_ = epoch;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  SOMA_CHECK(epoch >= 0, "DataLoader::epoch_order: epoch must be non-negative, got ", epoch);
  std::vector<int64_t> order(static_cast<size_t>(dataset_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle) {
    std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch));
    detail::shuffle(order, rng);
  }
  return order;
}

DataLoader::Iterator DataLoader::begin() {
  auto plan = std::make_shared<Plan>();
  plan->dataset = dataset_;
  plan->transform = options_.transform;
  plan->order = shard_order(epoch_, &plan->starts);
  plan->num_batches = size();
  auto state = std::make_shared<Iterator::State>();
  state->loader = this;
  state->epoch = epoch_;
  state->plan = std::move(plan);
  state->prefetch = options_.prefetch;
  state->start();
  return Iterator(std::move(state));
}

}  // namespace soma::data
