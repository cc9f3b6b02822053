// Toolkit goldens for reductions, scans and sorting (tests/reference/toolkit_reduce.py), plus
// behaviour the goldens cannot show.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "ops/toolkit_driver.h"

namespace {

using toolkit::Inputs;
using toolkit::one;
using toolkit::Op;
using toolkit::two;
constexpr double kInf = std::numeric_limits<double>::infinity();

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"sum_dim1", {one([](const Inputs& x) { return soma::sum(x[0], 1); })}},
      {"sum_dim0_keepdim", {one([](const Inputs& x) { return x[0].sum(0, true); })}},
      {"sum_dims", {one([](const Inputs& x) {
         return soma::sum(x[0], {0, 2});
       })}},
      {"sum_dims_neg_keepdim", {one([](const Inputs& x) {
         return x[0].sum({-1, 0}, true);
       })}},
      {"sum_repeated", {one([](const Inputs& x) {
         return soma::sum(x[0], {0, -2});
       })}},
      {"mean_all", {one([](const Inputs& x) { return soma::mean(x[0]); })}},
      {"mean_dim1", {one([](const Inputs& x) { return soma::mean(x[0], 1); })}},
      {"mean_dims", {one([](const Inputs& x) {
         return x[0].mean({1, 2});
       })}},
      {"max_all", {one([](const Inputs& x) { return soma::max(x[0]); })}},
      {"max_dim1", {two([](const Inputs& x) { return soma::max(x[0], 1); })}},
      {"max_dim0_keepdim", {two([](const Inputs& x) { return x[0].max(0, true); })}},
      {"max_dim_t", {two([](const Inputs& x) { return soma::max(x[0].t(), -1); })}},
      {"min_dim1", {two([](const Inputs& x) { return x[0].min(1); })}},
      {"amax_all", {one([](const Inputs& x) { return soma::amax(x[0]); })}},
      {"amax_dims", {one([](const Inputs& x) {
         return soma::amax(x[0], {0, 2});
       })}},
      {"amin_dims_keepdim", {one([](const Inputs& x) { return x[0].amin({-1}, true); })}},
      {"prod_all", {one([](const Inputs& x) { return soma::prod(x[0]); })}},
      {"prod_dim1", {one([](const Inputs& x) { return soma::prod(x[0], 1); })}},
      {"prod_dim0_keepdim", {one([](const Inputs& x) { return x[0].prod(0, true); })}},
      {"cumsum_dim1", {one([](const Inputs& x) { return soma::cumsum(x[0], 1); })}},
      {"cumsum_neg", {one([](const Inputs& x) { return x[0].cumsum(-3); })}},
      {"cumsum_t", {one([](const Inputs& x) { return soma::cumsum(x[0].t(), 1); })}},
      {"cumprod_dim1", {one([](const Inputs& x) { return soma::cumprod(x[0], 1); })}},
      {"cumprod_dim0", {one([](const Inputs& x) { return x[0].cumprod(0); })}},
      {"var_all", {one([](const Inputs& x) { return soma::var(x[0]); })}},
      {"var_dims", {one([](const Inputs& x) {
         return soma::var(x[0], {0, 2});
       })}},
      {"var_corr0_keepdim", {one([](const Inputs& x) { return x[0].var({1}, 0, true); })}},
      {"std_all", {one([](const Inputs& x) { return x[0].std(); })}},
      {"std_dims", {one([](const Inputs& x) { return soma::std(x[0], {-1}); })}},
      {"std_corr2", {one([](const Inputs& x) {
         return soma::std(x[0], {0, 1}, 2);
       })}},
      {"norm2_all", {one([](const Inputs& x) { return soma::norm(x[0]); })}},
      {"norm2_dims", {one([](const Inputs& x) {
         return soma::norm(x[0], 2, {0, 2});
       })}},
      {"norm1_dim", {one([](const Inputs& x) { return soma::norm(x[0], 1, {1}, true); })}},
      {"norm_inf", {one([](const Inputs& x) { return soma::norm(x[0], kInf, {1}); })}},
      {"norm_ninf", {one([](const Inputs& x) { return x[0].norm(-kInf); })}},
      {"norm0", {one([](const Inputs& x) { return soma::norm(x[0], 0, {0}); })}},
      {"norm3", {one([](const Inputs& x) { return soma::norm(x[0], 3, {-1}); })}},
      {"norm_fro", {one([](const Inputs& x) {
         return soma::norm(x[0], "fro", {0, 1});
       })}},
      {"logsumexp_dims", {one([](const Inputs& x) {
         return soma::logsumexp(x[0], {0, 2});
       })}},
      {"logsumexp_dim_keepdim",
       {one([](const Inputs& x) { return soma::logsumexp(x[0], -1, true); })}},
      {"all_all", {one([](const Inputs& x) { return soma::all(x[0]); }), true, false}},
      {"all_dim", {one([](const Inputs& x) { return x[0].all(1); }), true, false}},
      {"any_all", {one([](const Inputs& x) { return x[0].any(); }), true, false}},
      {"any_dim_keepdim",
       {one([](const Inputs& x) { return soma::any(x[0], 0, true); }), true, false}},
      {"sort", {two([](const Inputs& x) { return soma::sort(x[0]); })}},
      {"sort_desc_dim0", {two([](const Inputs& x) { return x[0].sort(0, true); })}},
      {"sort_t", {two([](const Inputs& x) { return soma::sort(x[0].t(), -1); })}},
      {"argsort", {one([](const Inputs& x) { return soma::argsort(x[0], 1); }), true, false}},
      {"argsort_desc", {one([](const Inputs& x) { return x[0].argsort(0, true); }), true, false}},
      {"topk2", {two([](const Inputs& x) { return soma::topk(x[0], 2); })}},
      {"topk_smallest_dim0", {two([](const Inputs& x) { return x[0].topk(2, 0, false); })}},
      {"topk_t", {two([](const Inputs& x) { return soma::topk(x[0].t(), 1, -1); })}},
      {"kthvalue2", {two([](const Inputs& x) { return soma::kthvalue(x[0], 2); })}},
      {"kthvalue_dim0_keepdim", {two([](const Inputs& x) { return x[0].kthvalue(3, 0, true); })}},
      {"median_all", {one([](const Inputs& x) { return soma::median(x[0]); })}},
      {"median_dim1", {two([](const Inputs& x) { return soma::median(x[0], 1); })}},
      {"median_dim0_keepdim", {two([](const Inputs& x) { return x[0].median(0, true); })}},
      // ties (no finite differences: not smooth there)
      {"max_all_ties", {one([](const Inputs& x) { return soma::max(x[0]); }), true, false}},
      {"amax_all_ties", {one([](const Inputs& x) { return soma::amax(x[0]); }), true, false}},
      {"amax_dims_ties",
       {one([](const Inputs& x) {
          return soma::amax(x[0], {0, 2});
        }),
        true, false}},
      {"amin_dims_keepdim_ties",
       {one([](const Inputs& x) { return soma::amin(x[0], {-1}, true); }), true, false}},
  };
  return t;
}

SOMA_TOOLKIT_SUITE(Reduce, "toolkit_reduce_reference.txt", table);

TEST(ToolkitReduceErrors, MessagesNameTheOpAndValues) {
  const soma::Tensor x = soma::randn({3, 4});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const soma::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { soma::topk(x, 5, 1); }).find("topk: k (5)"), std::string::npos);
  EXPECT_NE(message([&] { soma::kthvalue(x, 0, 1); }).find("kthvalue: k (0)"), std::string::npos);
  EXPECT_NE(message([&] {
              soma::sum(x, {1, -1});
            }).find("dim 1 appears multiple times"),
            std::string::npos);
  EXPECT_NE(message([&] { soma::var(soma::arange(4)); }).find("var:"), std::string::npos);
  EXPECT_NE(message([&] { soma::norm(x, "nuc"); }).find("norm: unknown norm 'nuc'"),
            std::string::npos);
}

TEST(ToolkitReduceBehaviour, MaxOverDimReturnsValuesAndIndices) {
  const soma::Tensor x = soma::tensor({1.f, 5.f, 2.f, 7.f, 0.f, 3.f}, {2, 3});
  auto [values, indices] = x.max(1);
  EXPECT_EQ(values.to_vector<float>(), (std::vector<float>{5.f, 7.f}));
  EXPECT_EQ(indices.dtype(), soma::kInt64);
  EXPECT_EQ(indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  auto [mv, mi] = soma::min(x, 0, true);
  EXPECT_EQ(mv.shape(), (soma::Shape{1, 3}));
  EXPECT_EQ(mi.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 0}));
}

TEST(ToolkitReduceBehaviour, SortIsStableAndAllAnyGiveBool) {
  const soma::Tensor x = soma::tensor(std::vector<double>{2, 1, 2, 1, 2}, {5});
  EXPECT_EQ(soma::argsort(x).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 0, 2, 4}));
  EXPECT_EQ(soma::argsort(x, 0, true).to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 4, 1, 3}));
  EXPECT_EQ(soma::all(x).dtype(), soma::kBool);
  EXPECT_TRUE(soma::any(soma::arange(3)).item<bool>());
  EXPECT_FALSE(soma::all(soma::arange(3)).item<bool>());
}

TEST(ToolkitReduceBehaviour, NanSortsAsTheLargestAndMedianPropagatesIt) {
  const double nan = std::nan("");
  soma::Tensor x =
      soma::tensor(std::vector<double>{1.0, nan, -2.0, 0.5, 1.0, 3.0, -2.0, 0.5}, {2, 4});
  x.requires_grad_(true);
  auto [values, indices] = soma::sort(x, 1);
  EXPECT_EQ(indices.to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 0, 1, 2, 3, 0, 1}));
  EXPECT_TRUE(std::isnan(values.to_vector<double>()[3]));
  EXPECT_EQ(soma::argsort(x, 1, true).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 0, 3, 2, 1, 0, 3, 2}));
  // torch.median: a row holding NaN gives NaN and the NaN's index; else the lower median.
  auto [m, mi] = soma::median(x, 1);
  EXPECT_TRUE(std::isnan(m.to_vector<double>()[0]));
  EXPECT_EQ(m.to_vector<double>()[1], 0.5);
  EXPECT_EQ(mi.to_vector<int64_t>(), (std::vector<int64_t>{1, 3}));
  // The global median is NaN and its gradient goes to the NaN element (like torch).
  soma::Tensor all = soma::median(x);
  EXPECT_TRUE(std::isnan(all.item<double>()));
  all.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(std::isnan(soma::median(soma::zeros({0}, soma::kFloat64)).item<double>()));
}

TEST(ToolkitReduceBehaviour, LogsumexpOfMinusInfinityRows) {
  const soma::Tensor x = soma::tensor(std::vector<double>{-kInf, -kInf, 0.5, -kInf}, {2, 2});
  const std::vector<double> y = soma::logsumexp(x, 1).to_vector<double>();
  EXPECT_EQ(y[0], -kInf);
  EXPECT_DOUBLE_EQ(y[1], 0.5);
  const soma::Tensor big = soma::tensor(std::vector<double>{1000, 1000}, {2});
  EXPECT_DOUBLE_EQ(soma::logsumexp(big, 0).item<double>(), 1000 + std::log(2.0));
}

TEST(ToolkitReduceBehaviour, NormGradientAtZeroIsZero) {
  soma::Tensor x = soma::zeros({3}, soma::kFloat64).requires_grad_(true);
  soma::norm(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(ToolkitReduceKernels, ScanAndSortReferencesMatchTheFastOnes) {
  namespace k = soma::kernels;
  const int64_t outer = 6, n = 40, inner = 5;
  std::vector<double> x(static_cast<size_t>(outer * n * inner));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 37) % 11) * 0.25 - 1.0;
  x[17] = std::nan("");
  x[203] = std::nan("");
  for (bool reverse : {false, true})
    for (bool product : {false, true}) {
      std::vector<double> a(x.size()), b(x.size());
      k::Kernel<k::ScanDim<double>>::get("cpu")(x.data(), a.data(), outer, n, inner, reverse,
                                                product);
      k::Kernel<k::ScanDim<double>>::get("reference")(x.data(), b.data(), outer, n, inner, reverse,
                                                      product);
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
    }
  for (bool descending : {false, true}) {
    std::vector<int64_t> a(x.size()), b(x.size());
    k::Kernel<k::SortDim<double>>::get("cpu")(x.data(), a.data(), outer, n, inner, descending);
    k::Kernel<k::SortDim<double>>::get("reference")(x.data(), b.data(), outer, n, inner,
                                                    descending);
    EXPECT_EQ(a, b);  // both stable: the same order, ties and NaN included
  }
  // The ops on the reference backend give the same results.
  const soma::Tensor t = soma::tensor(x, {outer, n, inner});
  const soma::Tensor fast_sort = soma::argsort(t, 1, true);
  const soma::Tensor fast_scan = soma::cumsum(t, 1);
  k::BackendGuard guard("reference");
  EXPECT_EQ(soma::argsort(t, 1, true).to_vector<int64_t>(), fast_sort.to_vector<int64_t>());
  EXPECT_EQ(k::Kernel<k::SortDim<double>>::selected_backend(), "reference");
  const std::vector<double> a = soma::cumsum(t, 1).to_vector<double>();
  const std::vector<double> b = fast_scan.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
}

}  // namespace
