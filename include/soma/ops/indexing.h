// Indexing ops, libtorch style:
//
//   using namespace soma::indexing;
//   Tensor a = x.index({Slice(1, None), 0});            // basic: a view of x
//   Tensor b = x.index({idx, Ellipsis, mask});          // advanced (int64 / bool tensors): a copy
//   x.index_put_({Slice(), idx}, v);                    // in place, v broadcast to the result
//
// Basic indices (integers, slices, None, Ellipsis, true/false) give a view sharing x's storage;
// any int64 or bool tensor index makes the result a copy. Integer-tensor indices broadcast
// against each other (a bool mask of k dims counts as its k nonzero() columns); the broadcast
// dims replace the indexed dims in place when all tensor indices are adjacent, else they come
// first (PyTorch's rule). Negative indices count from the end. Everything is differentiable
// twice: the gradient of an index is an index_put with accumulate into zeros.
//
// gather, scatter, scatter_add, index_add, masked_fill, masked_select and take follow PyTorch
// (torch.gather etc.): the same argument checks (same dtype for a scattered source, index in
// range) and the same gradients (scatter's gradient w.r.t. src is a gather, and so on).
// The in-place forms (index_put_, scatter_, scatter_add_, index_add_, masked_fill_) bump the
// storage version and, like soma's other in-place ops, refuse tensors of the autograd graph
// outside NoGradGuard.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "soma/core/scalar.h"
#include "soma/core/tensor.h"

namespace soma {
namespace indexing {

/// An omitted slice bound, or a new size-1 dim as an index (Python's None).
inline constexpr std::nullopt_t None = std::nullopt;

struct EllipsisIndexType {};
/// Stands for as many full slices as the other indices leave (Python's ...).
inline constexpr EllipsisIndexType Ellipsis{};

/// start:stop:step (Python's slice); omitted bounds cover the whole dim, step defaults to 1 and
/// must be positive. Bounds are clamped to the dim like Python's.
struct Slice {
  Slice(std::optional<int64_t> start_ = std::nullopt, std::optional<int64_t> stop_ = std::nullopt,
        std::optional<int64_t> step_ = std::nullopt)
      : start(start_), stop(stop_), step(step_) {}
  std::optional<int64_t> start, stop, step;
};

/// One entry of an index list: an integer, a Slice, None, Ellipsis (or "..."), true/false, or
/// an int64 / bool tensor.
class TensorIndex {
 public:
  enum class Kind { None, Ellipsis, Integer, Boolean, Slice, Tensor };

  TensorIndex(std::nullopt_t) : kind_(Kind::None) {}
  TensorIndex(EllipsisIndexType) : kind_(Kind::Ellipsis) {}
  /// "..." is Ellipsis; any other string is an error.
  TensorIndex(const char* s);
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  TensorIndex(T i) : kind_(Kind::Integer), integer_(static_cast<int64_t>(i)) {}
  template <typename T, std::enable_if_t<std::is_same_v<T, bool>, int> = 0>
  TensorIndex(T b) : kind_(Kind::Boolean), boolean_(b) {}
  TensorIndex(Slice s) : kind_(Kind::Slice), slice_(s) {}
  TensorIndex(Tensor t) : kind_(Kind::Tensor), tensor_(std::move(t)) {}

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_ellipsis() const { return kind_ == Kind::Ellipsis; }
  bool is_integer() const { return kind_ == Kind::Integer; }
  bool is_boolean() const { return kind_ == Kind::Boolean; }
  bool is_slice() const { return kind_ == Kind::Slice; }
  bool is_tensor() const { return kind_ == Kind::Tensor; }
  int64_t integer() const { return integer_; }
  bool boolean() const { return boolean_; }
  const Slice& slice() const { return slice_; }
  const Tensor& tensor() const { return tensor_; }

 private:
  Kind kind_;
  int64_t integer_ = 0;
  bool boolean_ = false;
  Slice slice_;
  Tensor tensor_;
};

}  // namespace indexing

/// x[indices] (libtorch's Tensor::index): a view for basic indices only, else a copy.
Tensor index(const Tensor& x, const std::vector<indexing::TensorIndex>& indices);
/// x with x[indices] replaced by (accumulate: increased by) `values` broadcast to the shape of
/// x[indices]; values must have x's dtype. Not in place (torch.index_put).
Tensor index_put(const Tensor& x, const std::vector<indexing::TensorIndex>& indices,
                 const Tensor& values, bool accumulate = false);
/// In place form of index_put (x.index_put_).
Tensor& index_put_(Tensor& x, const std::vector<indexing::TensorIndex>& indices,
                   const Tensor& values, bool accumulate = false);
Tensor& index_put_(Tensor& x, const std::vector<indexing::TensorIndex>& indices,
                   const Scalar& value);

/// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on): index is int64 with x's number
/// of dims, no larger than x outside `dim`, entries in [0, x.size(dim)).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// A copy of x with out[index[i][j]][j] = src[i][j] (dim 0); src has x's dtype and is at least
/// as large as index in every dim. Repeated targets keep one of the values.
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Scalar& value);
/// As scatter, but repeated targets add up: out[index[i][j]][j] += src[i][j].
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
/// out = x with out.select(dim, index[i]) += alpha * source.select(dim, i); index 1-D int64.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source,
                 const Scalar& alpha = 1);
/// x with `value` where mask (bool, broadcast with x) is true; a tensor value must be 0-d.
/// The result has x's dtype and the broadcast shape.
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value);
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value);
/// The elements of x (broadcast with mask) where mask is true, as a 1-D copy.
Tensor masked_select(const Tensor& x, const Tensor& mask);
/// The indices of the nonzero elements of x, as an int64 tensor [n, x.dim()] (row-major order).
Tensor nonzero(const Tensor& x);
/// x.flatten()[index] with index's shape; negative entries count from the end.
Tensor take(const Tensor& x, const Tensor& index);

}  // namespace soma
