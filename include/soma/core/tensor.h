// soma::Tensor: an n-dimensional array with reverse-mode autograd.
//
// A Tensor is a cheap handle (one shared pointer) to a TensorImpl: a reference-counted storage
// buffer (64-byte aligned when soma allocates it; soma::from_blob wraps foreign memory, aligned
// to the element only), an element offset, a shape and strides (row-major when contiguous),
// a dtype, and autograd metadata (requires_grad, .grad, the node that produced it). Copying a
// Tensor copies the handle, like PyTorch; use clone() for a deep copy. Views (view, reshape where
// the strides allow, transpose, narrow, squeeze, detach) share storage with their base.
//
//   soma::Tensor x = soma::tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
//   soma::Tensor w = soma::randn({3, 4}).requires_grad_(true);
//   soma::Tensor loss = soma::relu(soma::matmul(x, w)).sum();
//   loss.backward();                       // w.grad() now holds d loss / d w, shape [3, 4]
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "soma/core/dtype.h"
#include "soma/core/scalar.h"

namespace soma {

/// Sizes of a tensor's dimensions, outermost first.
using Shape = std::vector<int64_t>;

struct TensorImpl;
namespace autograd {
struct Node;
}
namespace indexing {
class TensorIndex;  // soma/ops/indexing.h
}

class Tensor {
 public:
  /// An undefined tensor (like a default-constructed torch::Tensor); most calls on it throw.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }

  // ---- metadata -------------------------------------------------------------------------
  const Shape& shape() const;
  /// Size of dimension `dim` (negative counts from the end).
  int64_t size(int64_t dim) const;
  /// Strides in elements.
  const Shape& strides() const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const;
  int64_t numel() const;
  DType dtype() const;
  bool is_contiguous() const;

  // ---- element access -------------------------------------------------------------------
  /// The single element of a one-element tensor, converted to T (float, double, int64_t, int,
  /// bool).
  template <typename T>
  T item() const;
  /// All elements in row-major order, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;
  /// Pointer to the first element; T must match dtype(). Elements are laid out by strides().
  template <typename T>
  T* data();
  template <typename T>
  const T* data() const;
  /// The tensor itself when contiguous, else a contiguous copy (differentiable).
  Tensor contiguous() const;
  /// A deep copy with its own storage (differentiable).
  Tensor clone() const;
  /// A copy converted to `dtype` (the tensor itself when it already has that dtype).
  Tensor to(DType dtype) const;

  // ---- autograd -------------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a floating-point tensor as a leaf whose gradient is accumulated into grad().
  Tensor& requires_grad_(bool requires_grad = true);
  /// The accumulated gradient (undefined until a backward pass reaches this tensor).
  Tensor grad() const;
  /// Replaces the accumulated gradient (shape and dtype checked; undefined clears it).
  void set_grad(const Tensor& grad);
  /// Clears the gradient: sets it to undefined, or fills it with zeros when set_to_none=false.
  void zero_grad(bool set_to_none = true);
  /// Back-propagates from this tensor. `gradient` may be omitted for a one-element tensor.
  /// The graph is freed afterwards unless retain_graph is true (default: create_graph). With
  /// create_graph the backward is itself recorded, so the accumulated .grad can be
  /// differentiated again (a Hessian-vector product); as in PyTorch, a .grad that keeps its
  /// graph this way is freed by zero_grad() or by setting it again.
  void backward(const Tensor& gradient = Tensor(), std::optional<bool> retain_graph = std::nullopt,
                bool create_graph = false) const;
  /// Registers `hook`, called with this tensor's gradient during backward (before a leaf's
  /// .grad accumulates); a hook returning a Tensor replaces the gradient, one returning void
  /// only observes it. Returns an id for remove_hook (libtorch's register_hook).
  template <typename F>
  unsigned register_hook(F&& hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, const Tensor&>>)
      return register_hook_fn([h = std::forward<F>(hook)](const Tensor& g) {
        h(g);
        return Tensor();
      });
    else
      return register_hook_fn(std::function<Tensor(const Tensor&)>(std::forward<F>(hook)));
  }
  /// Removes the hook with this id (soma::Error if this tensor has none).
  void remove_hook(unsigned id);
  /// Keeps this non-leaf tensor's gradient in grad() after backward (a no-op on leaves).
  void retain_grad();
  /// Whether retain_grad() was called on this non-leaf tensor.
  bool retains_grad() const;
  /// A tensor sharing storage with this one, outside the graph.
  Tensor detach() const;
  /// True for tensors not produced by a differentiable op.
  bool is_leaf() const;
  /// The node that produced this tensor, or nullptr for leaves.
  const std::shared_ptr<autograd::Node>& grad_fn() const;

  // ---- in-place ops (allowed on a leaf that requires grad only under NoGradGuard) ---------
  // The result is computed in the promoted dtype (soma::result_type of this tensor and the
  // operand) and must be castable to this tensor's dtype (soma::can_cast): int64.mul_(0.5)
  // throws, float32.add_(float64 tensor) is fine. An operand that partially overlaps this
  // tensor's memory (x.add_(x.t())) and a tensor whose elements overlap each other (an
  // expand()ed view) are errors; the same tensor (x.add_(x)) is fine.
  Tensor& add_(const Tensor& other, const Scalar& alpha = 1);
  Tensor& add_(const Scalar& other, const Scalar& alpha = 1);
  Tensor& sub_(const Tensor& other, const Scalar& alpha = 1);
  Tensor& sub_(const Scalar& other, const Scalar& alpha = 1);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(const Scalar& other);
  /// rounding_mode: none (true division), "trunc" or "floor", as soma::div.
  Tensor& div_(const Tensor& other, std::optional<std::string_view> rounding_mode = std::nullopt);
  Tensor& div_(const Scalar& other, std::optional<std::string_view> rounding_mode = std::nullopt);
  Tensor& floor_divide_(const Tensor& other);
  Tensor& floor_divide_(const Scalar& other);
  Tensor& remainder_(const Tensor& other);
  Tensor& remainder_(const Scalar& other);
  Tensor& fmod_(const Tensor& other);
  Tensor& fmod_(const Scalar& other);
  Tensor& zero_();
  /// A floating value into an integer tensor truncates; one out of int64's range throws.
  Tensor& fill_(const Scalar& value);
  /// Copies `src` (broadcast to this shape, converted to this dtype) into this tensor.
  Tensor& copy_(const Tensor& src);
  Tensor& operator+=(const Tensor& other) { return add_(other); }
  Tensor& operator-=(const Tensor& other) { return sub_(other); }
  Tensor& operator*=(const Tensor& other) { return mul_(other); }
  Tensor& operator/=(const Tensor& other) { return div_(other); }
  Tensor& operator+=(const Scalar& v) { return add_(v); }
  Tensor& operator-=(const Scalar& v) { return sub_(v); }
  Tensor& operator*=(const Scalar& v) { return mul_(v); }
  Tensor& operator/=(const Scalar& v) { return div_(v); }

  // ---- method forms of the free functions in soma/ops ------------------------------------
  Tensor add(const Tensor& other, const Scalar& alpha = 1) const;
  Tensor add(const Scalar& other, const Scalar& alpha = 1) const;
  Tensor sub(const Tensor& other, const Scalar& alpha = 1) const;
  Tensor sub(const Scalar& other, const Scalar& alpha = 1) const;
  Tensor mul(const Tensor& other) const;
  Tensor mul(const Scalar& other) const;
  Tensor div(const Tensor& other,
             std::optional<std::string_view> rounding_mode = std::nullopt) const;
  Tensor div(const Scalar& other,
             std::optional<std::string_view> rounding_mode = std::nullopt) const;
  Tensor floor_divide(const Tensor& other) const;
  Tensor floor_divide(const Scalar& other) const;
  Tensor remainder(const Tensor& other) const;
  Tensor remainder(const Scalar& other) const;
  Tensor fmod(const Tensor& other) const;
  Tensor fmod(const Scalar& other) const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor clamp(double min, double max) const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor matmul(const Tensor& other) const;
  Tensor sum() const;
  Tensor sum(int64_t dim, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(int64_t dim, bool keepdim = false) const;
  Tensor max() const;
  /// (values, indices) along `dim`, like libtorch.
  std::tuple<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor expand(const Shape& size) const;
  Tensor expand_as(const Tensor& other) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor eq(const Scalar& other) const;
  Tensor ne(const Scalar& other) const;
  Tensor gt(const Scalar& other) const;
  Tensor lt(const Scalar& other) const;
  Tensor ge(const Scalar& other) const;
  Tensor le(const Scalar& other) const;

  // ---- toolkit: shape and copy (ops/shape.h) -----------------------------------------------
  Tensor permute(const Shape& dims) const;
  Tensor repeat(const Shape& repeats) const;
  std::vector<Tensor> split(int64_t split_size, int64_t dim = 0) const;
  std::vector<Tensor> split(const std::vector<int64_t>& split_sizes, int64_t dim = 0) const;
  std::vector<Tensor> split_with_sizes(const std::vector<int64_t>& split_sizes,
                                       int64_t dim = 0) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;
  std::vector<Tensor> unbind(int64_t dim = 0) const;
  Tensor flip(const Shape& dims) const;
  Tensor roll(const Shape& shifts, const Shape& dims = {}) const;
  Tensor movedim(int64_t source, int64_t destination) const;
  Tensor movedim(const Shape& source, const Shape& destination) const;
  Tensor tril(int64_t diagonal = 0) const;
  Tensor triu(int64_t diagonal = 0) const;
  Tensor unfold(int64_t dimension, int64_t size, int64_t step) const;

  // ---- toolkit: indexing (ops/indexing.h) ---------------------------------------------------
  /// libtorch's x.index({Slice(1, None), 0, idx, mask}) (soma::index); include soma/ops/indexing.h.
  Tensor index(std::initializer_list<indexing::TensorIndex> indices) const;
  Tensor index(const std::vector<indexing::TensorIndex>& indices) const;
  /// In place: self[indices] = values (+= with accumulate); values broadcast to the result shape.
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, const Tensor& values,
                     bool accumulate = false);
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                     bool accumulate = false);
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, const Scalar& value);
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Scalar& value);
  Tensor index_put(std::initializer_list<indexing::TensorIndex> indices, const Tensor& values,
                   bool accumulate = false) const;
  Tensor index_put(const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                   bool accumulate = false) const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  Tensor scatter(int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor scatter(int64_t dim, const Tensor& index, const Scalar& value) const;
  Tensor& scatter_(int64_t dim, const Tensor& index, const Tensor& src);
  Tensor& scatter_(int64_t dim, const Tensor& index, const Scalar& value);
  Tensor scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor& scatter_add_(int64_t dim, const Tensor& index, const Tensor& src);
  Tensor index_add(int64_t dim, const Tensor& index, const Tensor& source,
                   const Scalar& alpha = 1) const;
  Tensor& index_add_(int64_t dim, const Tensor& index, const Tensor& source,
                     const Scalar& alpha = 1);
  Tensor masked_fill(const Tensor& mask, const Tensor& value) const;
  Tensor masked_fill(const Tensor& mask, const Scalar& value) const;
  Tensor& masked_fill_(const Tensor& mask, const Tensor& value);
  Tensor& masked_fill_(const Tensor& mask, const Scalar& value);
  Tensor masked_select(const Tensor& mask) const;
  Tensor nonzero() const;
  Tensor take(const Tensor& index) const;

  // ---- toolkit: reductions, sorting (ops/reduce.h) -----------------------------------------
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor prod() const;
  Tensor prod(int64_t dim, bool keepdim = false) const;
  Tensor cumsum(int64_t dim) const;
  Tensor cumprod(int64_t dim) const;
  Tensor var() const;
  Tensor var(const std::vector<int64_t>& dims, int64_t correction = 1, bool keepdim = false) const;
  Tensor std() const;
  Tensor std(const std::vector<int64_t>& dims, int64_t correction = 1, bool keepdim = false) const;
  Tensor norm(double p = 2, const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor norm(std::string_view p, const std::vector<int64_t>& dims = {},
              bool keepdim = false) const;
  Tensor logsumexp(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor amax(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor amin(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor all() const;
  Tensor all(int64_t dim, bool keepdim = false) const;
  Tensor any() const;
  Tensor any(int64_t dim, bool keepdim = false) const;
  std::tuple<Tensor, Tensor> topk(int64_t k, int64_t dim = -1, bool largest = true,
                                  bool sorted = true) const;
  std::tuple<Tensor, Tensor> sort(int64_t dim = -1, bool descending = false) const;
  Tensor argsort(int64_t dim = -1, bool descending = false) const;
  std::tuple<Tensor, Tensor> kthvalue(int64_t k, int64_t dim = -1, bool keepdim = false) const;
  Tensor median() const;
  std::tuple<Tensor, Tensor> median(int64_t dim, bool keepdim = false) const;

  // ---- toolkit: math (ops/elementwise.h, ops/matmul.h) -------------------------------------
  Tensor sin() const;
  Tensor cos() const;
  Tensor tan() const;
  Tensor atan2(const Tensor& other) const;
  Tensor log1p() const;
  Tensor expm1() const;
  Tensor log2() const;
  Tensor log10() const;
  Tensor erf() const;
  Tensor floor() const;
  Tensor ceil() const;
  Tensor round() const;
  Tensor sign() const;
  Tensor reciprocal() const;
  Tensor rsqrt() const;
  Tensor square() const;
  Tensor lerp(const Tensor& end, const Scalar& weight) const;
  Tensor lerp(const Tensor& end, const Tensor& weight) const;
  Tensor addmm(const Tensor& mat1, const Tensor& mat2, const Scalar& beta = 1,
               const Scalar& alpha = 1) const;
  Tensor bmm(const Tensor& mat2) const;
  Tensor outer(const Tensor& vec2) const;
  Tensor dot(const Tensor& other) const;

  // ---- toolkit: activations, random in-place fills (ops/activation.h, core/tensor.h) -------
  /// Fills with samples of N(mean, std^2) from the global generator (float dtypes; std >= 0).
  Tensor& normal_(double mean = 0.0, double std = 1.0);
  /// Fills with samples of U[from, to) from the global generator (float dtypes; from <= to).
  Tensor& uniform_(double from = 0.0, double to = 1.0);
  /// Fills with 0/1 draws, 1 with probability p (a scalar, or a tensor broadcast to this shape).
  Tensor& bernoulli_(double p = 0.5);
  Tensor& bernoulli_(const Tensor& p);
  /// soma::bernoulli(*this): 0/1 draws with this tensor's entries as probabilities.
  Tensor bernoulli() const;
  Tensor bernoulli(double p) const;
  /// soma::multinomial(*this, num_samples, replacement).
  Tensor multinomial(int64_t num_samples, bool replacement = false) const;
  Tensor softmin(int64_t dim) const;
  Tensor prelu(const Tensor& weight) const;

  /// Internal handle (for soma's own code).
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

 private:
  unsigned register_hook_fn(std::function<Tensor(const Tensor&)> hook);
  std::shared_ptr<TensorImpl> impl_;
};

/// Prints "tensor([[1, 2.5],\n        [3, 4]], shape=[2, 2], dtype=float32)": one row per line,
/// 4 significant digits; tensors over 1000 elements show the first and last 3 of each dim.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// "[2, 3]"
std::string shape_str(const Shape& shape);

// ---- creation ---------------------------------------------------------------------------
/// A tensor holding `values` (row-major) with `shape`; a 1-D tensor when shape is omitted.
Tensor tensor(const std::vector<float>& values, const Shape& shape = {-1});
Tensor tensor(const std::vector<double>& values, const Shape& shape = {-1});
Tensor tensor(const std::vector<int64_t>& values, const Shape& shape = {-1});
/// A float32 tensor from a braced list: soma::tensor({1, 2, 3, 4}, {2, 2}).
Tensor tensor(std::initializer_list<float> values, const Shape& shape = {-1});
/// Uninitialised storage (from the caching allocator).
Tensor empty(const Shape& shape, DType dtype = kFloat32);
Tensor zeros(const Shape& shape, DType dtype = kFloat32);
Tensor ones(const Shape& shape, DType dtype = kFloat32);
/// `value` converted to `dtype` (a floating value truncates into an integer dtype; one that
/// int64 cannot hold, such as nan or 1e30, throws).
Tensor full(const Shape& shape, const Scalar& value, DType dtype = kFloat32);
/// [0, 1, ..., end - 1] (int64 by default, like torch.arange with an integer end).
Tensor arange(int64_t end, DType dtype = kInt64);
/// start, start + step, ... while < end (> end for a negative step).
Tensor arange(double start, double end, double step = 1.0, DType dtype = kFloat32);
/// Uniform in [0, 1).
Tensor rand(const Shape& shape, DType dtype = kFloat32);
/// Standard normal.
Tensor randn(const Shape& shape, DType dtype = kFloat32);
/// Uniform integers in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = kInt64);
/// `steps` evenly spaced values from start to end inclusive (torch.linspace; steps >= 0).
Tensor linspace(double start, double end, int64_t steps, DType dtype = kFloat32);
/// The n x m identity (ones on the main diagonal); m defaults to n (torch.eye).
Tensor eye(int64_t n, DType dtype = kFloat32);
Tensor eye(int64_t n, int64_t m, DType dtype = kFloat32);
/// int64 `indices` -> int64 one-hot with a trailing dim of num_classes (-1: max + 1), like
/// torch.nn.functional.one_hot; negative or out-of-range classes throw.
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);
/// 0/1 draws (input's dtype) with the entries of `p` (in [0, 1]) as probabilities.
Tensor bernoulli(const Tensor& p);
/// 0/1 draws shaped like `x`, each 1 with probability p.
Tensor bernoulli(const Tensor& x, double p);
/// Draws num_samples category indices (int64) per row of the 1-D or 2-D non-negative weights
/// `probs` (normalised per row), with or without replacement, like torch.multinomial.
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false);
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, const Scalar& value);
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);

}  // namespace soma
