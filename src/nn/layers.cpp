#include "soma/nn/layers.h"

#include <cmath>
#include <sstream>

#include "autograd/node.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "nn/fusion_internal.h"
#include "ops/trace.h"
#include "soma/core/autocast.h"
#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/nn/init.h"
#include "soma/ops/activation.h"

namespace soma::nn {

namespace F = functional;

Linear::Linear(int64_t in, int64_t out, LinearOptions options)
    : in_features(in), out_features(out), options(options) {
  SOMA_CHECK(in > 0 && out > 0, "Linear: in_features and out_features must be positive, got ", in,
             " and ", out);
  SOMA_CHECK(is_floating(options.dtype), "Linear: dtype must be float32 or float64, got ",
             options.dtype);
  reset();
}

void Linear::reset() {
  weight = register_parameter("weight", empty({out_features, in_features}, options.dtype));
  bias = options.bias ? register_parameter("bias", empty({out_features}, options.dtype)) : Tensor();
  reset_parameters();
}

void Linear::reset_parameters() {
  // PyTorch: kaiming_uniform_(weight, a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); bias the same.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

// What a Linear's weight was last seen as by a small-batch forward, and its pack once it has
// been seen unchanged twice: the storage (weakly held, so a dead one never matches), its write
// counter and export epoch, and the view. A first sighting runs the GEMM and only records the
// key, so a loop that changes the weight between every batch-1 forward (an optimizer step each
// time) never pays for packing.
struct Linear::Packed {
  std::weak_ptr<Storage> storage;
  uint64_t version = 0, epoch = 0;
  int64_t offset = 0;
  Shape strides;
  bool packed = false;
  kernels::cpu::PackedF32 w;
};

namespace {

// Weights of more bytes are never packed: the pack would double them in memory, and past the
// caches both paths stream them from DRAM alike.
constexpr int64_t kMaxPackBytes = int64_t{16} << 20;

std::atomic<int64_t> g_small_linear_runs{0};

}  // namespace

Tensor Linear::forward(const Tensor& input) {
  SOMA_CHECK(input.defined() && input.dim() >= 1 && input.size(-1) == in_features, describe(),
             ": input of shape ", input.defined() ? input.shape() : Shape{}, " has ",
             input.defined() && input.dim() >= 1 ? input.size(-1) : 0, " features, expected ",
             in_features);
  if (Tensor out = small_batch_forward(input); out.defined()) return out;
  return F::linear(input, weight, bias);
}

// Batch 1-4 inference through the packed kernel (kernels/cpu/small_gemm.h), or undefined when
// it does not apply (the caller runs F::linear).
Tensor Linear::small_batch_forward(const Tensor& input) const {
  const int64_t rows = input.numel() / in_features;
  if (rows < 1 || rows > kernels::cpu::kSmallGemmMaxRows || input.dtype() != kFloat32 ||
      !weight.defined() || weight.dtype() != kFloat32 ||
      weight.shape() != Shape({out_features, in_features}) ||
      (bias.defined() && (bias.dtype() != kFloat32 || bias.shape() != Shape({out_features}))) ||
      autograd::needs_grad(input, weight, bias) || is_autocast_enabled() ||
      trace::active() != nullptr || out_features * in_features * 4 > kMaxPackBytes) {
    // A pack is not kept through training (grad mode, or after to(kFloat64)): the weights
    // change at every step, and a later batch-1 forward packs anew after two sightings.
    if (weight.defined() &&
        (weight.dtype() != kFloat32 || autograd::needs_grad(input, weight, bias)) &&
        std::atomic_load(&packed_))
      std::atomic_store(&packed_, std::shared_ptr<const Packed>());
    return {};
  }
  auto* const kernel = kernels::Kernel<kernels::LinearSmallF32>::get();
  if (kernel == &kernels::cpu::linear_small_f32_decline) return {};
  const TensorImpl& wi = *weight.impl();
  Storage& st = *wi.storage;
  // Memory soma cannot watch for writes: foreign (from_blob, from_numpy) or handed out now.
  if (st.foreign || st.raw_exported.load() || st.exports.load() > 0) return {};
  const uint64_t epoch = st.export_epoch.load(), version = st.version;
  auto p = std::atomic_load(&packed_);
  const bool same = p && p->version == version && p->epoch == epoch && p->offset == wi.offset &&
                    p->strides == wi.strides && p->storage.lock() == wi.storage;
  if (!same || !p->packed) {
    auto fresh = std::make_shared<Packed>();
    fresh->storage = wi.storage;
    fresh->version = version;
    fresh->epoch = epoch;
    fresh->offset = wi.offset;
    fresh->strides = wi.strides;
    if (same) {  // seen unchanged once before: pack it now
      const Tensor w = weight.detach().contiguous();
      try {
        fresh->w = kernels::cpu::pack_f32(w.data<float>(), out_features, in_features);
        fresh->packed = true;
      } catch (const Error&) {  // out of memory for the copy: the GEMM needs none
        return {};
      }
    }
    std::atomic_store(&packed_, std::shared_ptr<const Packed>(fresh));
    if (!fresh->packed) return {};
    p = fresh;
  }
  const Tensor x = input.detach().contiguous();
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor out = empty({rows, out_features}, kFloat32);
  if (!kernel(rows, x.data<float>(), in_features, p->w, b.defined() ? b.data<float>() : nullptr,
              out.data<float>(), out_features))
    return {};
  g_small_linear_runs.fetch_add(1, std::memory_order_relaxed);
  Shape shape = input.shape();
  shape.back() = out_features;
  return out.view(shape);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_features) + " -> " + std::to_string(out_features) +
         (bias.defined() ? "" : ", bias=false") + ")";
}

Tensor ReLU::forward(const Tensor& input) {
  return relu(input);
}
Tensor Sigmoid::forward(const Tensor& input) {
  return sigmoid(input);
}
Tensor Tanh::forward(const Tensor& input) {
  return soma::tanh(input);
}
Tensor GELU::forward(const Tensor& input) {
  return gelu(input);
}
Tensor LeakyReLU::forward(const Tensor& input) {
  return leaky_relu(input, negative_slope);
}
std::string LeakyReLU::describe() const {
  return "LeakyReLU(negative_slope=" + std::to_string(negative_slope) + ")";
}
Tensor Softmax::forward(const Tensor& input) {
  return softmax(input, dim);
}
std::string Softmax::describe() const {
  return "Softmax(dim=" + std::to_string(dim) + ")";
}
Tensor LogSoftmax::forward(const Tensor& input) {
  return log_softmax(input, dim);
}
std::string LogSoftmax::describe() const {
  return "LogSoftmax(dim=" + std::to_string(dim) + ")";
}
namespace {
template <typename... Args>
std::string print(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace

Tensor Softmin::forward(const Tensor& input) {
  return softmin(input, dim);
}
std::string Softmin::describe() const {
  return print("Softmin(dim=", dim, ")");
}
Tensor ELU::forward(const Tensor& input) {
  return elu(input, alpha);
}
std::string ELU::describe() const {
  return print("ELU(alpha=", alpha, ")");
}
Tensor SELU::forward(const Tensor& input) {
  return selu(input);
}
CELU::CELU(double alpha) : alpha(alpha) {
  SOMA_CHECK(alpha != 0.0, "CELU: alpha cannot be 0");
}
Tensor CELU::forward(const Tensor& input) {
  return celu(input, alpha);
}
std::string CELU::describe() const {
  return print("CELU(alpha=", alpha, ")");
}
Tensor SiLU::forward(const Tensor& input) {
  return silu(input);
}
Tensor Mish::forward(const Tensor& input) {
  return mish(input);
}
Tensor Softplus::forward(const Tensor& input) {
  return softplus(input, beta, threshold);
}
std::string Softplus::describe() const {
  return print("Softplus(beta=", beta, ", threshold=", threshold, ")");
}
Hardtanh::Hardtanh(double min_val, double max_val) : min_val(min_val), max_val(max_val) {
  SOMA_CHECK(max_val > min_val, "Hardtanh: max_val (", max_val, ") must be greater than min_val (",
             min_val, ")");
}
Tensor Hardtanh::forward(const Tensor& input) {
  return hardtanh(input, min_val, max_val);
}
std::string Hardtanh::describe() const {
  return print("Hardtanh(min_val=", min_val, ", max_val=", max_val, ")");
}
Tensor Hardsigmoid::forward(const Tensor& input) {
  return hardsigmoid(input);
}
Tensor Hardswish::forward(const Tensor& input) {
  return hardswish(input);
}
Tensor LogSigmoid::forward(const Tensor& input) {
  return log_sigmoid(input);
}

PReLU::PReLU(int64_t num_parameters, double init, DType dtype)
    : num_parameters(num_parameters), init(init), dtype(dtype) {
  SOMA_CHECK(num_parameters > 0, "PReLU: num_parameters must be positive, got ", num_parameters);
  SOMA_CHECK(is_floating(dtype), "PReLU: dtype must be float32 or float64, got ", dtype);
  reset();
}
void PReLU::reset() {
  weight = register_parameter("weight", full({num_parameters}, init, dtype));
}
Tensor PReLU::forward(const Tensor& input) {
  return prelu(input, weight);
}
std::string PReLU::describe() const {
  return print("PReLU(num_parameters=", num_parameters, ")");
}
Tensor GLU::forward(const Tensor& input) {
  return glu(input, dim);
}
std::string GLU::describe() const {
  return print("GLU(dim=", dim, ")");
}

Tensor Flatten::forward(const Tensor& input) {
  return F::flatten(input, start_dim, end_dim);
}
std::string Flatten::describe() const {
  return "Flatten(start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim) +
         ")";
}

Dropout::Dropout(double p) : p(p) {
  SOMA_CHECK(p >= 0.0 && p < 1.0, "Dropout: probability p must be in [0, 1), got ", p);
}
Tensor Dropout::forward(const Tensor& input) {
  return F::dropout(input, p, is_training());
}
std::string Dropout::describe() const {
  std::ostringstream os;
  os << "Dropout(p=" << p << ")";
  return os.str();
}

}  // namespace soma::nn

int64_t soma::detail::small_linear_run_count() {
  return soma::nn::g_small_linear_runs.load(std::memory_order_relaxed);
}
