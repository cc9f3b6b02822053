// DataLoader worker threads (num_workers, prefetch_factor): identical batches for every number
// of workers (with random transforms), resume, early exit, errors naming the batch, the bound
// on batches loaded ahead, and one kernel thread per worker.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "data/data_test_util.h"
#include "kernels/cpu/parallel.h"
#include "soma/soma.h"

namespace {

namespace T = soma::data::transforms;
using soma::Tensor;
using soma::data::Batch;
using soma::data::DataLoader;
using soma::data::TensorDataset;
using soma_test::expect_error;

// uint8 images [n, 1, 9, 9] with distinct pixels, labels 0..n-1.
TensorDataset image_dataset(int64_t n) {
  Tensor x = soma::empty({n, 1, 9, 9}, soma::kUInt8);
  for (int64_t i = 0; i < x.numel(); ++i)
    x.data<uint8_t>()[i] = static_cast<uint8_t>((i * 7919 + i / 81) % 251);
  return TensorDataset(x, soma::arange(n));
}

T::Transform augment() {
  return T::Compose({T::RandomCrop(9, 2), T::RandomHorizontalFlip(),
                     T::Normalize({0.4}, {0.3}, 1.0 / 255), T::Reshape({81})});
}

// Every batch of a pass: x bytes and labels.
struct Pass {
  std::vector<std::vector<float>> x;
  std::vector<std::vector<int64_t>> y;
  bool operator==(const Pass&) const = default;
};

Pass run_pass(DataLoader& loader) {
  Pass p;
  for (const auto& [xb, yb] : loader) {
    p.x.push_back(xb.to_vector<float>());
    p.y.push_back(yb.to_vector<int64_t>());
  }
  return p;
}

int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key)
    if (key == "Threads:") {
      int n = 0;
      status >> n;
      return n;
    }
  return -1;
}

TEST(DataLoaderWorkersTest, SameBatchesForEveryNumberOfWorkers) {
  const TensorDataset ds = image_dataset(203);
  DataLoader reference(ds, {.batch_size = 16, .shuffle = true, .seed = 11, .transform = augment()});
  std::vector<Pass> want;
  for (int epoch = 0; epoch < 3; ++epoch) want.push_back(run_pass(reference));
  ASSERT_EQ(want[0].x.size(), 13u);
  ASSERT_EQ(want[0].x[0].size(), 16u * 81u);
  EXPECT_NE(want[0].x, want[1].x);  // a new augmentation (and order) every epoch
  for (int64_t workers : {1, 2, 3})
    for (int64_t prefetch : {1, 2, 4}) {
      SCOPED_TRACE("num_workers " + std::to_string(workers) + " prefetch_factor " +
                   std::to_string(prefetch));
      DataLoader loader(ds, {.batch_size = 16,
                             .shuffle = true,
                             .seed = 11,
                             .num_workers = workers,
                             .prefetch_factor = prefetch,
                             .transform = augment()});
      for (int epoch = 0; epoch < 3; ++epoch) EXPECT_TRUE(run_pass(loader) == want[epoch]);
      EXPECT_EQ(loader.epoch(), 3);
    }
  // More workers than batches.
  DataLoader few(image_dataset(20), {.batch_size = 16, .num_workers = 3, .transform = augment()});
  EXPECT_EQ(run_pass(few).x.size(), 2u);
}

// Epoch e's batches (order and augmentation) do not depend on the epochs run before.
TEST(DataLoaderWorkersTest, ResumeGivesTheSameAugmentation) {
  const TensorDataset ds = image_dataset(100);
  DataLoader full(ds, {.batch_size = 32, .shuffle = true, .seed = 5, .transform = augment()});
  Pass epoch3;
  for (int epoch = 0; epoch < 4; ++epoch) epoch3 = run_pass(full);
  for (int64_t workers : {0, 2}) {
    DataLoader resumed(ds, {.batch_size = 32,
                            .shuffle = true,
                            .seed = 5,
                            .num_workers = workers,
                            .transform = augment()});
    resumed.set_epoch(3);
    EXPECT_TRUE(run_pass(resumed) == epoch3) << "num_workers " << workers;
  }
  // A different batch size regroups the same augmented samples (keyed by sample index).
  DataLoader regrouped(ds, {.batch_size = 100, .shuffle = true, .seed = 5, .transform = augment()});
  regrouped.set_epoch(3);
  const Pass one = run_pass(regrouped);
  std::vector<float> joined;
  for (const auto& b : epoch3.x) joined.insert(joined.end(), b.begin(), b.end());
  EXPECT_EQ(one.x.at(0), joined);
}

// Leaving the loop early (break, or an exception in the loop body) stops and joins the
// workers: no hang, no thread left behind, and the epoch does not advance.
TEST(DataLoaderWorkersTest, EarlyExitStopsTheWorkers) {
  DataLoader loader(image_dataset(300), {.batch_size = 4,
                                         .shuffle = true,
                                         .num_workers = 2,
                                         .prefetch_factor = 3,
                                         .transform = augment()});
  for (auto& b : loader) {  // warm-up (allocator, OpenMP pools of this thread)
    (void)b;
    break;
  }
  const int threads = thread_count();
  ASSERT_GT(threads, 0);
  for (int i = 0; i < 300; ++i) {
    int64_t seen = 0;
    for (const auto& [xb, yb] : loader) {
      seen += xb.size(0);
      if (seen >= 4 * (1 + i % 3)) break;
    }
    EXPECT_EQ(seen, 4 * (1 + i % 3));
  }
  EXPECT_EQ(thread_count(), threads);
  EXPECT_EQ(loader.epoch(), 0);
  // An exception in the loop body.
  EXPECT_THROW(
      {
        for (const auto& b : loader) {
          (void)b;
          throw std::runtime_error("loop body");
        }
      },
      std::runtime_error);
  EXPECT_EQ(thread_count(), threads);
  // An iterator abandoned after begin(), and copies of one that share the pass.
  for (int i = 0; i < 50; ++i) {
    auto it = loader.begin();
    auto copy = it;
    ++copy;
    EXPECT_TRUE(it == copy);
  }
  EXPECT_EQ(thread_count(), threads);
  EXPECT_EQ(loader.epoch(), 0);
  // A full pass still works and advances the epoch.
  EXPECT_EQ(run_pass(loader).x.size(), 75u);
  EXPECT_EQ(loader.epoch(), 1);
}

// A dataset whose get_batch throws a plain std::exception for one sample.
class Faulty : public soma::data::Dataset {
 public:
  explicit Faulty(int64_t bad) : base_(image_dataset(40)), bad_(bad) {}
  int64_t size() const override { return base_.size(); }
  soma::data::Example get(int64_t i) const override { return base_.get(i); }
  Batch get_batch(const std::vector<int64_t>& indices) const override {
    for (int64_t i : indices)
      if (i == bad_) throw std::runtime_error("cannot read sample " + std::to_string(i));
    return base_.get_batch(indices);
  }

 private:
  TensorDataset base_;
  int64_t bad_;
};

TEST(DataLoaderWorkersTest, DatasetErrorNamesTheBatch) {
  for (int64_t workers : {0, 1, 2, 3}) {
    SCOPED_TRACE("num_workers " + std::to_string(workers));
    DataLoader loader(Faulty(21), {.batch_size = 4, .num_workers = workers});
    int64_t batches = 0;
    try {
      for (const auto& b : loader) {
        (void)b;
        ++batches;
      }
      ADD_FAILURE() << "no error";
    } catch (const soma::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("DataLoader: batch 5 of epoch 0"), std::string::npos) << what;
      EXPECT_NE(what.find("cannot read sample 21"), std::string::npos) << what;
    }
    EXPECT_EQ(batches, 5);  // batches 0..4 arrived first, in order
    EXPECT_EQ(loader.epoch(), 0);
    // In the first batch: from begin().
    DataLoader first(Faulty(2), {.batch_size = 4, .num_workers = workers});
    expect_error([&] { first.begin(); }, {"DataLoader: batch 0 of epoch 0", "sample 2"});
  }
}

// A dataset that counts get_batch calls and records its kernels' thread budget.
class Counting : public soma::data::Dataset {
 public:
  Counting() : base_(image_dataset(400)) {}
  int64_t size() const override { return base_.size(); }
  soma::data::Example get(int64_t i) const override { return base_.get(i); }
  Batch get_batch(const std::vector<int64_t>& indices) const override {
    ++calls;
    {
      std::lock_guard<std::mutex> lock(mutex);
      budgets.insert(soma::kernels::cpu::num_threads());
      threads.insert(std::this_thread::get_id());
    }
    return base_.get_batch(indices);
  }
  mutable std::atomic<int> calls{0};
  mutable std::mutex mutex;
  mutable std::set<int> budgets;
  mutable std::set<std::thread::id> threads;

 private:
  TensorDataset base_;
};

TEST(DataLoaderWorkersTest, LoadsAtMostPrefetchFactorBatchesAheadPerWorker) {
  for (int64_t workers : {1, 2, 3})
    for (int64_t prefetch : {1, 2}) {
      SCOPED_TRACE("num_workers " + std::to_string(workers) + " prefetch_factor " +
                   std::to_string(prefetch));
      auto ds = std::make_shared<Counting>();
      DataLoader loader(ds, {.batch_size = 4, .num_workers = workers, .prefetch_factor = prefetch});
      auto it = loader.begin();  // holds batch 0; batches 1 .. workers * prefetch may be built
      const int bound = 1 + static_cast<int>(workers * prefetch);
      for (int wait = 0; wait < 2500 && ds->calls < bound; ++wait)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_EQ(ds->calls, bound);  // the queue is full and no more
      ++it;
      for (int wait = 0; wait < 2500 && ds->calls < bound + 1; ++wait)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_EQ(ds->calls, bound + 1);  // one taken, one more built
    }
}

TEST(DataLoaderWorkersTest, WorkersRunTheirKernelsOnOneThread) {
  auto ds = std::make_shared<Counting>();
  DataLoader loader(ds, {.batch_size = 4, .num_workers = 2});
  run_pass(loader);
  EXPECT_EQ(ds->budgets, std::set<int>{1});
  EXPECT_EQ(ds->threads.size(), 2u);
  EXPECT_EQ(ds->threads.count(std::this_thread::get_id()), 0u);
  // Without workers, the calling thread builds the batches with the whole pool.
  auto inline_ds = std::make_shared<Counting>();
  DataLoader inline_loader(inline_ds, {.batch_size = 4});
  run_pass(inline_loader);
  EXPECT_EQ(inline_ds->threads, std::set<std::thread::id>{std::this_thread::get_id()});
  EXPECT_EQ(inline_ds->budgets, std::set<int>{soma::get_num_threads()});
}

}  // namespace
