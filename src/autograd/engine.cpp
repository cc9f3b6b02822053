// Graph construction (record) and the backward engine: a topological walk from the root that
// calls each node's closure once all of its consumers have contributed their gradients.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "ops/trace.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"

namespace soma::autograd {
namespace {
thread_local const std::shared_ptr<Node>* running_node = nullptr;  // the closure running now
std::atomic<int64_t> live_nodes{0};
std::atomic<unsigned> hook_ids{0};
}  // namespace

Node::~Node() {
  live_nodes.fetch_sub(1, std::memory_order_relaxed);
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
    acc->accumulates = true;
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
  SOMA_CHECK(!is_reduced_floating(out.dtype()), name,
             ": autograd supports float32 and float64 only, ", "but this result (dtype ",
             out.dtype(), ") would need a gradient; detach() the ",
             "inputs, or compute in float32 and convert afterwards");
  trace::on_autograd_record(name, inputs);  // while exporting: an op without an ONNX mapping
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

void accumulate_into_leaf(TensorImpl& leaf, Tensor g, bool create_graph) {
  if (create_graph) {
    // Keep the gradient's graph (a Hessian-vector product differentiates .grad again); a new
    // tensor, never the incoming gradient itself (it may be the caller's own tensor).
    leaf.grad = leaf.grad.defined() ? leaf.grad + g : g.clone();
    return;
  }
  if (!leaf.grad.defined()) {
    // Steal the buffer when nothing else refers to it; otherwise keep a private copy, so a
    // later in-place update of .grad cannot write into another tensor (or into a from_blob
    // buffer, which its caller may still hold).
    const bool owned = g.impl().use_count() == 1 && g.impl()->storage.use_count() == 1 &&
                       !g.impl()->storage->foreign && g.is_contiguous() && g.impl()->offset == 0 &&
                       g.grad_fn() == nullptr;
    leaf.grad = owned ? g : g.detach().clone();
  } else if (leaf.grad.requires_grad()) {
    leaf.grad = (leaf.grad + g).detach();  // a .grad kept with its graph by create_graph
  } else {
    leaf.grad.add_(g);
  }
}

Tensor run_hooks(std::vector<std::pair<unsigned, Hook>> hooks, Tensor g) {
  // A copy: a hook may remove hooks (itself included) while they run.
  for (const auto& [id, hook] : hooks) {
    Tensor r = hook(g);
    if (r.defined()) {
      SOMA_CHECK(r.shape() == g.shape() && r.dtype() == g.dtype(), "register_hook: hook ", id,
                 " returned a gradient of shape ", r.shape(), " and dtype ", r.dtype(),
                 ", expected ", g.shape(), " and ", g.dtype());
      g = std::move(r);
    }
  }
  return g;
}

class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(is_grad_enabled()) { set_grad_enabled(on); }
  ~GradModeGuard() { set_grad_enabled(prev_); }

 private:
  bool prev_;
};

}  // namespace

Node::Node() {
  live_nodes.fetch_add(1, std::memory_order_relaxed);
}

int64_t live_node_count() {
  return live_nodes.load(std::memory_order_relaxed);
}

unsigned next_hook_id() {
  return hook_ids.fetch_add(1, std::memory_order_relaxed);
}

Tensor attach_output(const Tensor& y) {
  if (!is_grad_enabled() || running_node == nullptr || !y.defined() ||
      !supports_autograd(y.dtype()))
    return y;
  Tensor alias = y.detach();
  alias.impl()->requires_grad = true;
  alias.impl()->grad_fn = *running_node;
  return alias;
}

std::vector<Tensor> run_backward(std::span<const Tensor> roots, std::span<const Tensor> seeds,
                                 bool retain_graph, bool create_graph,
                                 const std::vector<Tensor>* inputs) {
  GradModeGuard grad_mode(create_graph);  // closures record their own graph only then
  SOMA_CHECK(roots.size() == seeds.size(), "backward: ", roots.size(), " tensors but ",
             seeds.size(), " gradients");

  std::unordered_map<Node*, Tensor> grads;
  // The distinct root nodes; after counting dependencies below, the ready queue itself.
  std::vector<std::shared_ptr<Node>> ready;
  for (size_t i = 0; i < roots.size(); ++i) {
    std::shared_ptr<Node> n = edge_of(roots[i]);
    SOMA_CHECK(n != nullptr, "backward: element ", i, " of the tensors does not require grad and ",
               "has no grad_fn");
    Tensor& slot = grads[n.get()];
    slot = slot.defined() ? slot + seeds[i] : seeds[i];
    if (std::find(ready.begin(), ready.end(), n) == ready.end()) ready.push_back(std::move(n));
  }
  const std::vector<std::shared_ptr<Node>>& root_nodes = ready;

  // Count, for every node reachable from the roots, how many edges point at it.
  std::unordered_map<Node*, int> dependencies;
  {
    std::vector<Node*> stack;
    std::unordered_set<Node*> seen;
    for (const auto& r : root_nodes)
      if (seen.insert(r.get()).second) stack.push_back(r.get());
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

  // autograd::grad: which node carries each input's gradient, and which nodes lead to one.
  std::unordered_map<Node*, std::vector<size_t>> captured;
  std::unordered_set<Node*> needed;
  std::vector<Tensor> results;
  if (inputs != nullptr) {
    results.resize(inputs->size());
    for (size_t i = 0; i < inputs->size(); ++i) {
      const Tensor& x = (*inputs)[i];
      SOMA_CHECK(x.defined() && x.requires_grad(), "grad: input ", i,
                 " does not require grad (one of the differentiated tensors)");
      captured[edge_of(x).get()].push_back(i);
    }
    // A topological order: a node after every node that points at it.
    std::unordered_map<Node*, int> pending = dependencies;
    std::vector<Node*> topo;
    std::vector<Node*> ready_nodes;
    for (const auto& r : root_nodes)
      if (pending[r.get()] == 0) ready_nodes.push_back(r.get());
    while (!ready_nodes.empty()) {
      Node* n = ready_nodes.back();
      ready_nodes.pop_back();
      topo.push_back(n);
      for (const auto& e : n->next)
        if (e && --pending[e.get()] == 0) ready_nodes.push_back(e.get());
    }
    for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
      Node* n = *it;
      bool need = captured.count(n) > 0;
      for (const auto& e : n->next) need = need || (e && needed.count(e.get()));
      if (need) needed.insert(n);
    }
  }

  // A root that another root's graph reaches waits for its gradient from there.
  std::erase_if(ready, [&](const std::shared_ptr<Node>& r) {
    const auto it = dependencies.find(r.get());
    return it != dependencies.end() && it->second > 0;
  });
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Tensor g;
    if (auto it = grads.find(node.get()); it != grads.end()) {
      g = std::move(it->second);
      grads.erase(it);
    }
    // autograd::grad returns the gradient that reaches an input before its hooks run (as
    // torch.autograd.grad in PyTorch 1.13).
    if (inputs != nullptr)
      if (auto c = captured.find(node.get()); c != captured.end() && g.defined())
        for (size_t k : c->second) results[k] = g;
    if (g.defined() && !node->pre_hooks.empty()) g = run_hooks(node->pre_hooks, std::move(g));
    if (g.defined())
      if (std::shared_ptr<TensorImpl> out = node->retains.lock()) {
        Tensor gd = create_graph ? g : g.detach();
        out->grad = out->grad.defined() ? (out->grad + gd) : gd.clone();
      }
    if (node->accumulates) {
      if (inputs == nullptr && g.defined())
        if (std::shared_ptr<TensorImpl> leaf = node->leaf.lock()) {
          if (!leaf->hooks.empty()) g = run_hooks(leaf->hooks, std::move(g));
          accumulate_into_leaf(*leaf, std::move(g), create_graph);
        }
      continue;
    }
    // autograd::grad runs only the nodes between the roots and the inputs.
    const bool run = inputs == nullptr || [&] {
      for (const auto& e : node->next)
        if (e && needed.count(e.get())) return true;
      return false;
    }();
    Grads input_grads;
    if (g.defined() && run) {
      SOMA_CHECK(!node->released, "backward: trying to backward through the graph a second time ",
                 "(the saved tensors of ", node->name,
                 " were freed by the first backward; pass retain_graph=true to keep them)");
      for (const auto& [storage, version] : node->saved)
        SOMA_CHECK(storage->version == version, "backward: a tensor saved by ", node->name,
                   " for its gradient was modified by an in-place operation (version ",
                   storage->version, ", saved at version ", version, ")");
      const std::shared_ptr<Node>* outer = running_node;
      running_node = &node;
      try {
        input_grads = node->backward(g);
      } catch (...) {
        running_node = outer;
        throw;
      }
      running_node = outer;
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
    if (!retain_graph && run) {
      node->backward = nullptr;
      node->saved.clear();
      node->released = true;
    }
    for (size_t i = 0; i < node->next.size(); ++i) {
      const std::shared_ptr<Node>& e = node->next[i];
      if (!e) continue;
      if (!input_grads.empty() && input_grads[i].defined()) {
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
  return results;
}

}  // namespace soma::autograd
