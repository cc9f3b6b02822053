// DataLoader: per-epoch sample order, batching, the transform stage and the worker threads.
#include "soma/data/dataloader.h"

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "data/shuffle.h"
#include "kernels/cpu/parallel.h"
#include "soma/core/error.h"

namespace soma::data {

namespace {

// What one pass needs, immutable once built, shared with the workers.
struct Plan {
  std::shared_ptr<const Dataset> dataset;
  transforms::Transform transform;
  uint64_t seed = 0;
  int64_t epoch = 0;
  std::vector<int64_t> order;   // this rank's samples of the epoch, in visiting order
  std::vector<int64_t> starts;  // batch b is order[starts[b], starts[b + 1])
  int64_t num_batches = 0;

  Batch make(int64_t b) const {
    const auto start = order.begin() + starts[b], stop = order.begin() + starts[b + 1];
    std::vector<int64_t> indices(start, stop);
    Batch batch;
    if (indices.empty()) {
      // This rank's share of a last global batch smaller than the number of ranks: 0 rows.
      batch = dataset->get_batch({0});
      batch.x = batch.x.narrow(0, 0, 0);
      if (batch.y.defined()) batch.y = batch.y.narrow(0, 0, 0);
    } else {
      batch = dataset->get_batch(indices);
    }
    if (transform)
      batch.x = transform(
          batch.x,
          transforms::Context{.seed = seed, .epoch = epoch, .indices = std::move(indices)});
    return batch;
  }

  // make(b), with any error rethrown as a soma::Error that names the batch.
  Batch build(int64_t b) const {
    try {
      return make(b);
    } catch (const std::exception& e) {
      soma::detail::fail("DataLoader: batch ", b, " of epoch ", epoch, " (", num_batches,
                         " batches) failed: ", e.what());
    }
  }
};

// The worker threads of one pass. Worker w builds batches w, w + W, ... while they are less
// than prefetch_factor * W ahead of the batch the loop takes next; take(b) waits for batch b.
class Workers {
 public:
  Workers(std::shared_ptr<const Plan> plan, int64_t num_workers, int64_t prefetch_factor)
      : plan_(std::move(plan)), num_workers_(num_workers), window_(num_workers * prefetch_factor) {
    try {
      for (int64_t w = 0; w < num_workers_ && w < plan_->num_batches; ++w)
        threads_.emplace_back([this, w] { run(w); });
    } catch (...) {
      stop();
      throw;
    }
  }
  ~Workers() { stop(); }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Batch b (the loop takes them in order), or its error.
  Batch take(int64_t b) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return done_.count(b) != 0; });
    auto node = done_.extract(b);
    next_take_ = b + 1;
    lock.unlock();
    space_.notify_all();
    if (node.mapped().error) std::rethrow_exception(node.mapped().error);
    return std::move(node.mapped().batch);
  }

  // Stops the workers and joins them (each finishes the batch it is building first).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    space_.notify_all();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };

  void run(int64_t w) {
    // One thread for this worker's kernels: the loop's ops already use the compute pool.
    kernels::cpu::ThreadLimit limit(1);
    for (int64_t b = w; b < plan_->num_batches; b += num_workers_) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [&] { return stopping_ || b < next_take_ + window_; });
        if (stopping_) return;
      }
      Result r;
      try {
        r.batch = plan_->build(b);
      } catch (...) {
        r.error = std::current_exception();
      }
      const bool failed = r.error != nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.emplace(b, std::move(r));
      }
      ready_.notify_one();
      if (failed) return;  // the loop stops at batch b
    }
  }

  const std::shared_ptr<const Plan> plan_;
  const int64_t num_workers_, window_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a batch was stored (the loop waits on it)
  std::condition_variable space_;  // the loop took a batch, or stop (workers wait on it)
  int64_t next_take_ = 0;          // the batch the loop takes next
  bool stopping_ = false;
  std::map<int64_t, Result> done_;  // built batches not yet taken
  std::vector<std::thread> threads_;
};

}  // namespace

struct DataLoader::Iterator::State {
  DataLoader* loader = nullptr;  // to advance its epoch counter at the end of the pass
  int64_t epoch = 0;             // the epoch this pass runs
  std::shared_ptr<const Plan> plan;
  int64_t num_workers = 0, prefetch_factor = 1;
  std::unique_ptr<Workers> workers;  // when num_workers > 0; joined when the state dies
  int64_t pos = 0;                   // index of `current`; plan->num_batches when past the end
  Batch current;
  bool failed = false;  // building batch pos threw: the pass cannot go on

  bool at_end() const { return pos >= plan->num_batches; }

  void finish() {
    current = Batch{};
    workers.reset();
    if (loader->epoch_ == epoch) loader->epoch_ = epoch + 1;
  }

  void fetch() {
    try {
      current = workers ? workers->take(pos) : plan->build(pos);
    } catch (...) {
      failed = true;
      current = Batch{};
      workers.reset();  // stop and join the other workers before the error leaves
      throw;
    }
  }

  void start() {
    if (at_end()) return finish();
    if (num_workers > 0) workers = std::make_unique<Workers>(plan, num_workers, prefetch_factor);
    fetch();
  }

  void advance() {
    SOMA_CHECK(!at_end(), "DataLoader::Iterator: cannot increment past the end");
    SOMA_CHECK(!failed, "DataLoader::Iterator: batch ", pos, " of epoch ", epoch,
               " failed; start a new pass with begin()");
    ++pos;
    if (at_end()) return finish();
    fetch();
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
  SOMA_CHECK(options_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ",
             options_.num_workers);
  SOMA_CHECK(options_.prefetch_factor >= 1, "DataLoader: prefetch_factor must be >= 1, got ",
             options_.prefetch_factor);
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
  plan->seed = options_.seed;
  plan->epoch = epoch_;
  plan->order = shard_order(epoch_, &plan->starts);
  plan->num_batches = size();
  auto state = std::make_shared<Iterator::State>();
  state->loader = this;
  state->epoch = epoch_;
  state->plan = std::move(plan);
  state->num_workers = options_.num_workers;
  state->prefetch_factor = options_.prefetch_factor;
  state->start();
  return Iterator(std::move(state));
}

}  // namespace soma::data
