// DataLoader: coverage, batch counts, seeded per-epoch shuffle, resume, transform, errors.
// Worker threads: loader_workers_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "data/data_test_util.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using soma::data::Batch;
using soma::data::DataLoader;
using soma::data::DataLoaderOptions;
using soma::data::TensorDataset;
using soma_test::expect_error;

// x float32 [n, 2] = (i, -i), y int64 [n] = i: every batch can be checked against its labels.
TensorDataset make_dataset(int64_t n) {
  std::vector<float> x;
  for (int64_t i = 0; i < n; ++i) {
    x.push_back(float(i));
    x.push_back(-float(i));
  }
  return TensorDataset(soma::tensor(x, {n, 2}), soma::arange(n));
}

struct Pass {
  std::vector<int64_t> order;  // labels in visiting order
  std::vector<int64_t> sizes;  // batch sizes
};

Pass run_pass(DataLoader& loader) {
  Pass pass;
  for (auto& [xb, yb] : loader) {
    const auto y = yb.to_vector<int64_t>();
    const auto x = xb.to_vector<float>();
    EXPECT_EQ(xb.shape(), (soma::Shape{yb.size(0), 2}));
    for (size_t k = 0; k < y.size(); ++k) {
      EXPECT_EQ(x[2 * k], float(y[k]));
      EXPECT_EQ(x[2 * k + 1], -float(y[k]));
    }
    pass.order.insert(pass.order.end(), y.begin(), y.end());
    pass.sizes.push_back(yb.size(0));
  }
  return pass;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(DataLoaderTest, CoversDatasetOncePerEpoch) {
  for (bool shuffle : {false, true}) {
    DataLoader loader(make_dataset(10), {.batch_size = 3, .shuffle = shuffle, .seed = 5});
    for (int epoch = 0; epoch < 3; ++epoch) {
      Pass pass = run_pass(loader);
      EXPECT_EQ(pass.sizes, (std::vector<int64_t>{3, 3, 3, 1}));
      if (!shuffle) {
        EXPECT_EQ(pass.order, iota(10));
      }
      std::sort(pass.order.begin(), pass.order.end());
      EXPECT_EQ(pass.order, iota(10)) << "shuffle=" << shuffle << " epoch " << epoch;
    }
  }
}

TEST(DataLoaderTest, SizesWithAndWithoutDropLast) {
  struct Case {
    int64_t n, batch;
    bool drop_last;
    int64_t batches, samples;
  };
  for (const Case& c : {Case{10, 3, false, 4, 10}, Case{10, 3, true, 3, 9}, Case{9, 3, false, 3, 9},
                        Case{9, 3, true, 3, 9}, Case{2, 3, false, 1, 2}, Case{2, 3, true, 0, 0},
                        Case{1, 1, true, 1, 1}}) {
    DataLoader loader(make_dataset(c.n),
                      {.batch_size = c.batch, .shuffle = true, .drop_last = c.drop_last});
    EXPECT_EQ(loader.size(), c.batches) << c.n << "/" << c.batch << " drop_last=" << c.drop_last;
    EXPECT_EQ(loader.num_samples(), c.samples);
    const Pass pass = run_pass(loader);
    EXPECT_EQ(static_cast<int64_t>(pass.sizes.size()), c.batches);
    EXPECT_EQ(static_cast<int64_t>(pass.order.size()), c.samples);
    if (c.drop_last) {
      for (int64_t s : pass.sizes) EXPECT_EQ(s, c.batch);
    }
    EXPECT_EQ(loader.epoch(), 1);  // a pass with no batches still counts as an epoch
  }
}

TEST(DataLoaderTest, ShuffleDiffersBetweenEpochsAndIsReproducible) {
  const DataLoaderOptions opts{.batch_size = 7, .shuffle = true, .seed = 42};
  DataLoader a(make_dataset(100), opts), b(make_dataset(100), opts);
  const Pass a0 = run_pass(a), a1 = run_pass(a);
  EXPECT_NE(a0.order, a1.order);
  EXPECT_NE(a0.order, iota(100));
  EXPECT_EQ(a0.order, a.epoch_order(0));
  EXPECT_EQ(a1.order, a.epoch_order(1));
  EXPECT_EQ(run_pass(b).order, a0.order);  // same (seed, epoch), another loader
  EXPECT_EQ(run_pass(b).order, a1.order);

  DataLoader c(make_dataset(100), {.batch_size = 7, .shuffle = true, .seed = 43});
  EXPECT_NE(run_pass(c).order, a0.order);
  EXPECT_EQ(DataLoader(make_dataset(5)).epoch_order(3), iota(5));  // identity without shuffle
}

// The documented algorithm, written out again: mt19937_64(seed * 0x9E3779B97F4A7C15 + epoch),
// Fisher-Yates from the back, j uniform in [0, i] by rejection of draws below 2^64 mod (i+1).
TEST(DataLoaderTest, ShuffleFollowsTheDocumentedAlgorithm) {
  const uint64_t seed = 3;
  const int64_t epoch = 2, n = 50;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + epoch);
  std::vector<int64_t> expected = iota(n);
  for (uint64_t i = n - 1; i >= 1; --i) {
    const uint64_t bound = i + 1, threshold = (0 - bound) % bound;
    uint64_t r;
    do r = rng();
    while (r < threshold);
    std::swap(expected[i], expected[r % bound]);
  }
  DataLoader loader(make_dataset(n), {.shuffle = true, .seed = seed});
  EXPECT_EQ(loader.epoch_order(epoch), expected);
  // Pinned: mt19937_64 is fully specified by the standard, so this holds everywhere.
  const std::vector<int64_t> order0 = loader.epoch_order(0);
  const std::vector<int64_t> first(order0.begin(), order0.begin() + 8);
  EXPECT_EQ(first, (std::vector<int64_t>{16, 23, 21, 15, 4, 48, 42, 25}));
}

TEST(DataLoaderTest, EpochCounterAndSetEpoch) {
  DataLoader loader(make_dataset(20), {.batch_size = 4, .shuffle = true, .seed = 9});
  EXPECT_EQ(loader.epoch(), 0);
  run_pass(loader);
  EXPECT_EQ(loader.epoch(), 1);
  for (auto& batch : loader) {  // leaving a pass early does not finish the epoch
    (void)batch;
    break;
  }
  EXPECT_EQ(loader.epoch(), 1);
  {
    auto it = loader.begin();
    EXPECT_EQ(loader.epoch(), 1);  // during the pass, epoch() is the running epoch
    ++it;
  }
  run_pass(loader);
  EXPECT_EQ(loader.epoch(), 2);

  // Resume: a fresh loader set to epoch 5 gives the batches the original gives in epoch 5.
  DataLoader resumed(make_dataset(20), {.batch_size = 4, .shuffle = true, .seed = 9});
  resumed.set_epoch(5);
  loader.set_epoch(5);
  const Pass p5 = run_pass(resumed);
  EXPECT_EQ(p5.order, run_pass(loader).order);
  EXPECT_EQ(p5.order, loader.epoch_order(5));
  EXPECT_EQ(resumed.epoch(), 6);
  expect_error([&] { resumed.set_epoch(-1); }, {"DataLoader::set_epoch", "-1"});
}

TEST(DataLoaderTest, TransformAppliedToEveryBatch) {
  Tensor x = soma::empty({10, 4}, soma::kUInt8);
  for (int64_t i = 0; i < 40; ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 6);
  const TensorDataset ds(x, soma::arange(10));
  const auto norm = soma::data::Normalization::fit(ds.x());
  int calls = 0;
  namespace T = soma::data::transforms;
  DataLoader loader(ds, {.batch_size = 4,
                         .transform = T::Compose({T::Lambda([&](const Tensor& xb) {
                                                    ++calls;
                                                    return xb;
                                                  }),
                                                  norm.transform()})});
  int64_t seen = 0;
  for (const auto& [xb, yb] : loader) {
    EXPECT_EQ(xb.dtype(), soma::kFloat32);
    const auto v = xb.to_vector<float>();
    const auto y = yb.to_vector<int64_t>();
    for (size_t k = 0; k < y.size(); ++k)
      for (int64_t j = 0; j < 4; ++j) {
        const double raw = static_cast<double>((y[k] * 4 + j) * 6);
        EXPECT_NEAR(v[4 * k + j], (raw / 255.0 - norm.mean) / norm.std, 1e-6);
      }
    seen += yb.size(0);
  }
  EXPECT_EQ(seen, 10);
  EXPECT_EQ(calls, 3);
}

TEST(DataLoaderTest, ErrorsFromTransformReachTheConsumer) {
  for (int64_t workers : {0, 1, 2}) {
    SCOPED_TRACE("num_workers " + std::to_string(workers));
    // Batch 2 holds samples 4 and 5; its x starts with 4.
    DataLoader loader(make_dataset(10),
                      {.batch_size = 2,
                       .num_workers = workers,
                       .transform = soma::data::transforms::Lambda([](const Tensor& xb) {
                         if (xb.to_vector<float>()[0] == 4.0f) soma::detail::fail("bad sample 4");
                         return xb;
                       })});
    expect_error([&] { run_pass(loader); },
                 {"DataLoader: batch 2 of epoch 0", "(5 batches)", "bad sample 4"});
    EXPECT_EQ(loader.epoch(), 0);
    // The pass that failed cannot go on; a new one can (and fails at the same batch).
    auto it = loader.begin();
    ++it;
    expect_error([&] { ++it; }, {"DataLoader: batch 2"});
    expect_error([&] { ++it; }, {"DataLoader::Iterator", "batch 2", "failed", "begin()"});
  }
}

TEST(DataLoaderTest, BadOptionsAndIteratorMisuse) {
  expect_error([] { DataLoader(make_dataset(4), {.batch_size = 0}); },
               {"DataLoader", "batch_size", "0"});
  expect_error([] { DataLoader(make_dataset(4), {.batch_size = -1}); },
               {"DataLoader", "batch_size", "-1"});
  expect_error([] { DataLoader(make_dataset(4), {.num_workers = -1}); },
               {"DataLoader", "num_workers", "-1"});
  expect_error([] { DataLoader(make_dataset(4), {.prefetch_factor = 0}); },
               {"DataLoader", "prefetch_factor", "0"});
  expect_error([] { DataLoader(std::shared_ptr<const soma::data::Dataset>()); },
               {"DataLoader", "null"});
  DataLoader loader(make_dataset(4), {.batch_size = 4});
  auto it = loader.begin();
  ++it;
  EXPECT_TRUE(it == loader.end());
  expect_error([&] { *it; }, {"DataLoader::Iterator", "end"});
  expect_error([&] { ++it; }, {"DataLoader::Iterator", "past the end"});
}

TEST(DataLoaderTest, SharedDatasetsAndSubsets) {
  auto ds = std::make_shared<TensorDataset>(make_dataset(12));
  const auto parts = soma::data::random_split(ds, {8, 4}, 0);
  DataLoader from_subset(parts[1], {.batch_size = 3});
  const Pass pass = run_pass(from_subset);
  EXPECT_EQ(pass.order, parts[1].indices());
  DataLoader shared(ds, {.batch_size = 5});
  EXPECT_EQ(shared.size(), 3);
  EXPECT_EQ(&shared.dataset(), ds.get());
  EXPECT_EQ(shared.options().batch_size, 5);
  static_assert(std::input_iterator<DataLoader::Iterator>);
}

}  // namespace

// The distributed sampler, all ranks simulated in one process: for every (N, B, W, drop_last),
// the ranks run the same number of batches, their batch b together is exactly the one-process
// batch b of size W*B, each rank's share is the documented slice, and num_samples() adds up.
TEST(DataLoaderTest, ShardsAreDisjointCompleteAndMatchTheGlobalBatch) {
  for (int64_t n : {1, 2, 7, 64, 101, 1000})
    for (int64_t b : {1, 3, 32})
      for (int64_t w : {1, 2, 3, 5})
        for (bool drop_last : {false, true}) {
          SCOPED_TRACE("N " + std::to_string(n) + " B " + std::to_string(b) + " W " +
                       std::to_string(w) + " drop_last " + std::to_string(drop_last));
          DataLoader single(
              make_dataset(n),
              {.batch_size = b * w, .shuffle = true, .seed = 4, .drop_last = drop_last});
          single.set_epoch(2);
          const Pass whole = run_pass(single);
          std::vector<Pass> ranks;
          int64_t local_total = 0;
          for (int64_t r = 0; r < w; ++r) {
            DataLoader shard(make_dataset(n), {.batch_size = b,
                                               .shuffle = true,
                                               .seed = 4,
                                               .drop_last = drop_last,
                                               .num_replicas = w,
                                               .rank = r});
            shard.set_epoch(2);
            EXPECT_EQ(shard.size(), single.size());
            EXPECT_EQ(shard.global_num_samples(), single.num_samples());
            ranks.push_back(run_pass(shard));
            ASSERT_EQ(static_cast<int64_t>(ranks.back().sizes.size()), single.size());
            EXPECT_EQ(static_cast<int64_t>(ranks.back().order.size()), shard.num_samples());
            EXPECT_EQ(shard.shard_order(2), ranks.back().order);
            local_total += shard.num_samples();
          }
          EXPECT_EQ(local_total, single.num_samples());
          // Batch k of rank r is slice [r*m/W, (r+1)*m/W) of global batch k (m its size).
          std::vector<size_t> pos(static_cast<size_t>(w), 0);
          size_t global_pos = 0;
          for (size_t k = 0; k < whole.sizes.size(); ++k) {
            const int64_t m = whole.sizes[k];
            for (int64_t r = 0; r < w; ++r) {
              const int64_t lo = r * m / w, hi = (r + 1) * m / w;
              ASSERT_EQ(ranks[r].sizes[k], hi - lo);
              for (int64_t i = lo; i < hi; ++i)
                ASSERT_EQ(ranks[r].order[pos[r]++], whole.order[global_pos + i]);
            }
            global_pos += static_cast<size_t>(m);
          }
        }
}

// A last global batch with fewer samples than ranks leaves some ranks an empty batch: 0 rows,
// the dataset's column shape and dtypes, through the transform.
TEST(DataLoaderTest, EmptyShareOfTheLastBatch) {
  DataLoader shard(
      make_dataset(7),
      {.batch_size = 2,
       .transform = soma::data::transforms::Lambda([](const Tensor& x) { return x * 2.0f; }),
       .num_replicas = 3,
       .rank = 0});
  // 7 = 6 + 1: the last global batch has 1 sample, which rank 2 gets.
  EXPECT_EQ(shard.size(), 2);
  EXPECT_EQ(shard.num_samples(), 2);
  std::vector<soma::Shape> shapes;
  for (auto& [xb, yb] : shard) {
    shapes.push_back(xb.shape());
    EXPECT_EQ(yb.size(0), xb.size(0));
    EXPECT_EQ(yb.dtype(), soma::kInt64);
  }
  EXPECT_EQ(shapes, (std::vector<soma::Shape>{{2, 2}, {0, 2}}));
}

TEST(DataLoaderTest, BadShardOptions) {
  expect_error([] { DataLoader(make_dataset(4), {.num_replicas = 0}); },
               {"DataLoader", "num_replicas", "0"});
  expect_error([] { DataLoader(make_dataset(4), {.num_replicas = 2, .rank = 2}); },
               {"DataLoader", "rank", "[0, num_replicas = 2)", "2"});
  expect_error([] { DataLoader(make_dataset(4), {.num_replicas = 2, .rank = -1}); },
               {"DataLoader", "rank", "-1"});
}
