// libtorch code ports by renaming the namespace: the calls below are written as in libtorch's
// C++ API (torch:: -> soma::) and must compile and agree with soma's other ops.
#include <gtest/gtest.h>

#include <tuple>

#include "soma/soma.h"

namespace {

using soma::Tensor;
using namespace soma::indexing;

TEST(LibtorchPort, SignaturesAsInLibtorch) {
  soma::manual_seed(0);
  Tensor x = soma::randn({3, 4});
  Tensor a = soma::randn({3, 5}), b = soma::randn({5, 2});
  Tensor index = soma::tensor(std::vector<int64_t>{0, 2, 1, 3, 0, 1, 2, 3, 3, 2, 1, 0}, {3, 4});

  Tensor g = soma::gather(x, 1, index);
  EXPECT_EQ(g.shape(), x.shape());
  auto [values, indices] = soma::topk(x, 2, 1);
  EXPECT_EQ(values.shape(), (soma::Shape{3, 2}));
  EXPECT_EQ(indices.dtype(), soma::kInt64);
  EXPECT_EQ(std::get<0>(soma::max(x, 1)).to_vector<float>(),
            std::get<0>(soma::topk(x, 1, 1)).reshape({3}).to_vector<float>());
  Tensor e = soma::einsum("ij,jk->ik", {a, b});
  EXPECT_TRUE(soma::allclose(e, soma::matmul(a, b)));
  Tensor lse = soma::logsumexp(x, {1}, false);
  EXPECT_EQ(lse.shape(), (soma::Shape{3}));
  Tensor mask = soma::gt(x, 0.0);
  Tensor filled = x.masked_fill(mask, 0.0);
  EXPECT_EQ(soma::gt(filled, 0.0).sum().item<int64_t>(), 0);
  Tensor s = soma::stack({a, a}, 0);
  EXPECT_EQ(s.shape(), (soma::Shape{2, 3, 5}));
  Tensor idx = soma::tensor(std::vector<int64_t>{0, 2}, {2});
  Tensor picked = x.index({Slice(1, None), idx});
  EXPECT_EQ(picked.shape(), (soma::Shape{2, 2}));

  Tensor w = soma::randn({4}, soma::kFloat64).requires_grad_();
  Tensor y = (w * w).sum();
  std::vector<Tensor> grads = soma::autograd::grad({y}, {w}, {}, /*retain_graph=*/true,
                                                   /*create_graph=*/true);
  EXPECT_TRUE(soma::allclose(grads[0], w * 2.0));
}

}  // namespace

namespace {

TEST(Isclose, AllcloseEqualAndErrors) {
  // isclose's values are in the math goldens (toolkit_math_reference.txt); here the two
  // reductions over it and the errors.
  Tensor a = soma::tensor(std::vector<double>{1.0, 2.0, 3.0}, {3});
  Tensor b = a + 1e-9;
  EXPECT_TRUE(soma::allclose(a, b));
  EXPECT_FALSE(soma::allclose(a, b, 0.0, 0.0));
  EXPECT_FALSE(soma::equal(a, b));
  EXPECT_TRUE(soma::equal(a, a.to(soma::kFloat32).to(soma::kFloat64)));
  EXPECT_FALSE(soma::equal(a, a.narrow(0, 0, 2)));
  EXPECT_THROW(soma::isclose(a, soma::zeros({4}, soma::kFloat64)), soma::Error);
  EXPECT_THROW(soma::isclose(a, b, -1.0), soma::Error);
}

}  // namespace
