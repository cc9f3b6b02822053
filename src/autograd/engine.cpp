// Graph construction (record) and the backward engine: a topological walk from the root that
// calls each node's closure once all of its consumers have contributed their gradients.
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"

namespace soma::autograd {

Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending = std::move(next);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n && n.use_count() == 1) {  // last owner: take its edges before it dies
      for (auto& e : n->next) pending.push_back(std::move(e));
      n->next.clear();
    }
  }
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  TensorImpl& impl = *t.impl();
  if (impl.grad_fn) return impl.grad_fn;
  std::shared_ptr<Node> acc = impl.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<Node>();
    acc->name = "AccumulateGrad";
    acc->leaf = t.impl();
    acc->shape = impl.shape;
    acc->dtype = impl.dtype;
    impl.grad_accumulator = acc;
  }
  return acc;
}

namespace {

// Anomaly mode: "nan", "inf" or "-inf" for the first non-finite element of a floating tensor
// (its row-major index in *where), or nullptr when every element is finite.
const char* first_nonfinite(const Tensor& t, int64_t* where) {
  if (!t.defined() || (t.dtype() != kFloat32 && t.dtype() != kFloat64)) return nullptr;
  const Tensor c = t.contiguous();
  const int64_t n = c.numel();
  auto scan = [&](const auto* p) -> const char* {
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) {
        *where = i;
        return std::isnan(p[i]) ? "nan" : p[i] > 0 ? "inf" : "-inf";
      }
    return nullptr;
  };
  return c.dtype() == kFloat32 ? scan(c.data<float>()) : scan(c.data<double>());
}

// Forward check: the op's inputs were finite (or the first offender comes from outside the
// graph), and its output is.
void check_forward(const Tensor& out, const char* name, const std::vector<Tensor>& inputs) {
  int64_t i = 0;
  for (size_t k = 0; k < inputs.size(); ++k)
    if (const char* what = first_nonfinite(inputs[k], &i))
      detail::fail("detect_anomaly: input ", k, " of ", name, " already holds ", what, " (element ",
                   i, " of shape ", inputs[k].shape(),
                   "); it comes from outside the recorded graph: check the data");
  if (const char* what = first_nonfinite(out, &i))
    detail::fail("detect_anomaly: the forward of ", name, " produced ", what, " (element ", i,
                 " of its output of shape ", out.shape(), ") from finite inputs");
}

}  // namespace

void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward,
            const std::vector<Tensor>& saved) {
  if (is_anomaly_enabled()) check_forward(out, name, inputs);
  auto node = std::make_shared<Node>();
  node->name = name;
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next.push_back(edge_of(t));
  node->backward = std::move(backward);
  node->saved.reserve(saved.size());
  for (const Tensor& s : saved)
    node->saved.emplace_back(s.impl()->storage, s.impl()->storage->version);
  node->shape = out.shape();
  node->dtype = out.dtype();
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
}

namespace {

void accumulate_into_leaf(TensorImpl& leaf, Tensor g) {
  if (!leaf.grad.defined()) {
    // Steal the buffer when nothing else refers to it; otherwise keep a private copy, so a
    // later in-place update of .grad cannot write into another tensor (or into a from_blob
    // buffer, which its caller may still hold).
    const bool owned = g.impl().use_count() == 1 && g.impl()->storage.use_count() == 1 &&
                       !g.impl()->storage->foreign && g.is_contiguous() && g.impl()->offset == 0;
    leaf.grad = owned ? g : g.clone();
  } else {
    leaf.grad.add_(g);
  }
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  NoGradGuard no_grad;  // backward closures compute plain tensors
  std::shared_ptr<Node> root_node = edge_of(root);

  // Count, for every node reachable from the root, how many edges point at it.
  std::unordered_map<Node*, int> dependencies;
  {
    std::vector<Node*> stack{root_node.get()};
    std::unordered_set<Node*> seen{root_node.get()};
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const auto& e : n->next) {
        if (!e) continue;
        ++dependencies[e.get()];
        if (seen.insert(e.get()).second) stack.push_back(e.get());
      }
    }
  }

  std::unordered_map<Node*, Tensor> grads{{root_node.get(), grad}};
  std::vector<std::shared_ptr<Node>> ready{root_node};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Tensor g;
    if (auto it = grads.find(node.get()); it != grads.end()) {
      g = std::move(it->second);
      grads.erase(it);
    }
    if (node->leaf) {
      if (g.defined()) accumulate_into_leaf(*node->leaf, std::move(g));
      continue;
    }
    Grads input_grads;
    if (g.defined()) {
      SOMA_CHECK(!node->released, "backward: trying to backward through the graph a second time ",
                 "(the saved tensors of ", node->name,
                 " were freed by the first backward; pass retain_graph=true to keep them)");
      for (const auto& [storage, version] : node->saved)
        SOMA_CHECK(storage->version == version, "backward: a tensor saved by ", node->name,
                   " for its gradient was modified by an in-place operation (version ",
                   storage->version, ", saved at version ", version, ")");
      input_grads = node->backward(g);
      SOMA_CHECK(input_grads.size() == node->next.size(), "backward of ", node->name, ": returned ",
                 input_grads.size(), " gradients for ", node->next.size(), " inputs");
      if (is_anomaly_enabled()) {
        int64_t at = 0;
        if (const char* what = first_nonfinite(g, &at))
          detail::fail("detect_anomaly: the gradient reaching the backward of ", node->name,
                       " holds ", what, " (element ", at, " of shape ", g.shape(), ")");
        for (size_t k = 0; k < input_grads.size(); ++k)
          if (const char* what = first_nonfinite(input_grads[k], &at))
            detail::fail("detect_anomaly: the backward of ", node->name, " returned ", what,
                         " in the gradient for input ", k, " (element ", at, " of shape ",
                         input_grads[k].shape(), ")");
      }
    }
    if (!retain_graph) {
      node->backward = nullptr;
      node->saved.clear();
      node->released = true;
    }
    for (size_t i = 0; i < node->next.size(); ++i) {
      const std::shared_ptr<Node>& e = node->next[i];
      if (!e) continue;
      if (g.defined() && input_grads[i].defined()) {
        const Tensor& gi = input_grads[i];
        SOMA_CHECK(gi.shape() == e->shape && gi.dtype() == e->dtype, "backward of ", node->name,
                   ": gradient for input ", i, " has shape ", gi.shape(), " and dtype ", gi.dtype(),
                   ", expected ", e->shape, " and ", e->dtype);
        Tensor& slot = grads[e.get()];
        slot = slot.defined() ? slot + gi : gi;
      }
      if (--dependencies[e.get()] == 0) ready.push_back(e);
    }
  }
}

}  // namespace soma::autograd
