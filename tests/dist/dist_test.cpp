// soma::dist in one process (no mpirun): the job is this process, the collectives leave their
// arguments as they are, and misuse is an error. The multi-rank behaviour is checked under
// mpirun by tests/dist/dist_check.cpp (ctest dist.*).
#include "soma/dist/dist.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "data/data_test_util.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using soma_test::expect_error;
namespace train = soma::train;

TEST(Dist, OneProcessIsTheWholeJob) {
  EXPECT_FALSE(soma::dist::is_initialized());
  EXPECT_EQ(soma::dist::rank(), 0);
  EXPECT_EQ(soma::dist::world_size(), 1);
  EXPECT_EQ(soma::dist::local_rank(), 0);
  EXPECT_EQ(soma::dist::local_size(), 1);
  soma::dist::barrier();
}

TEST(Dist, CollectivesOfOneRankKeepTheirArguments) {
  Tensor w = soma::tensor({1.f, 2.f, 3.f}).requires_grad_(true);
  Tensor v = soma::tensor(std::vector<double>{4, 5}).requires_grad_(true);
  (w * w).sum().backward();
  const std::vector<float> g = w.grad().to_vector<float>();
  EXPECT_EQ(soma::dist::allreduce_gradients({w, v}, 3.0), 3.0);
  EXPECT_EQ(w.grad().to_vector<float>(), g);  // one rank's mean is its own gradient
  EXPECT_FALSE(v.grad().defined());
  soma::dist::broadcast_parameters({w, v});
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  std::vector<double> sums = {1.5, -2};
  soma::dist::allreduce_sum(sums);
  EXPECT_EQ(sums, (std::vector<double>{1.5, -2}));
  std::string bytes = "abc";
  soma::dist::broadcast_bytes(bytes);
  EXPECT_EQ(bytes, "abc");
}

TEST(Dist, BadArguments) {
  Tensor w = soma::ones({2}).requires_grad_(true);
  expect_error([&] { soma::dist::allreduce_gradients({w}, -1); },
               {"allreduce_gradients", "weight", "-1"});
  expect_error([&] { soma::dist::allreduce_gradients({w}, INFINITY); },
               {"allreduce_gradients", "weight", "inf"});
  expect_error([&] { soma::dist::allreduce_gradients({w}, 1, 0); },
               {"allreduce_gradients", "bucket_bytes", "0"});
  expect_error([&] { soma::dist::allreduce_gradients({soma::arange(3)}); },
               {"allreduce_gradients", "tensor 0", "float32 or float64", "int64"});
  expect_error(
      [&] {
        soma::dist::broadcast_parameters({w, Tensor()});
      },
      {"broadcast_parameters", "tensor 1", "undefined"});
  expect_error([&] { soma::dist::broadcast_parameters({w}, 1); },
               {"broadcast_parameters", "root 1", "1-rank job"});
}

// ctest is not mpirun: init() must not think it is one of several ranks.
TEST(Dist, LaunchDetection) {
  const char* saved = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (saved) GTEST_SKIP() << "running under mpirun";
  EXPECT_FALSE(soma::dist::launched_by_mpirun());
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  EXPECT_TRUE(soma::dist::launched_by_mpirun());
  if (!soma::dist::available())
    expect_error([] { soma::dist::init(); }, {"dist::init", "4 ranks", "without MPI"});
  unsetenv("OMPI_COMM_WORLD_SIZE");
}

// fit and evaluate refuse loaders sharded for another job: a 2-way shard in a 1-rank job
// would train on half the data.
TEST(Dist, ShardedLoaderInAOneRankJobIsAnError) {
  soma::manual_seed(0);
  soma::nn::Sequential model(soma::nn::Linear(2, 3));
  soma::optim::SGD opt(model.parameters(), {.lr = 0.1});
  soma::data::TensorDataset ds(soma::randn({8, 2}),
                               soma::tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1}));
  soma::data::DataLoader half(ds, {.batch_size = 2, .num_replicas = 2, .rank = 1});
  auto loss = [](const Tensor& out, const Tensor& y) {
    return soma::nn::functional::cross_entropy(out, y);
  };
  expect_error([&] { train::fit(model, opt, loss, half, {.epochs = 1}); },
               {"fit", "training loader", "rank 1 of 2", "rank 0 of 1", "num_replicas"});
  expect_error([&] { train::evaluate(model, half, loss); },
               {"evaluate", "rank 1 of 2", "rank 0 of 1"});
  soma::data::DataLoader whole(ds, {.batch_size = 2});
  expect_error([&] { train::fit(model, opt, loss, whole, {.epochs = 1, .validation = &half}); },
               {"fit", "validation loader", "rank 1 of 2"});
}

}  // namespace
