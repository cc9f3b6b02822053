// Golden-value tests for soma::nn against PyTorch: layers (forward, input and parameter
// gradients), every loss in every reduction mode, a whole MLP training step, and the
// state-dict keys of two models.
//
// tests/reference/make_reference.py (the nn section) runs each case in PyTorch in float32 and
// float64 and writes inputs, module parameters (by state-dict key), outputs, an upstream
// gradient and torch's gradients into tests/reference/nn_reference.txt (format at the top of
// that file). Here each case builds the same module and loads torch's parameters with
// load_state_dict, or calls the functional op / loss module named by the case, checks the
// outputs, runs backward and checks the gradient of every input that requires grad and of
// every parameter. One gtest instance per case: Torch/NnGoldenTest.MatchesTorch/<case>_<dtype>.
// SOMA_NN_GOLDEN_REFERENCE may name another file (a perturbed scratch copy, to see it fail).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "nn/fusion_internal.h"
#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;
using golden::Case;
using golden::RefFile;
using golden::RefTensor;
using soma::Tensor;
using Inputs = std::vector<Tensor>;
using nn::Reduction;

// ---- functional ops and loss modules (mirror NN_FUNCS in make_reference.py) -----------------
// Inputs: x[0] input, x[1] target, then the option tensors in the order the op name lists them.
using FuncFn = std::function<Tensor(const Inputs&)>;

const std::map<std::string, FuncFn>& funcs() {
  static const std::map<std::string, FuncFn> table = [] {
    std::map<std::string, FuncFn> t = {
        {"linear_fn", [](const Inputs& x) { return F::linear(x[0], x[1], x[2]); }},
        {"linear_fn_nobias", [](const Inputs& x) { return F::linear(x[0], x[1]); }},
        // the loss modules, once each
        {"MSELoss_sum",
         [](const Inputs& x) {
           nn::MSELoss loss({.reduction = Reduction::Sum});
           return loss(x[0], x[1]);
         }},
        {"L1Loss_none",
         [](const Inputs& x) {
           nn::L1Loss loss({.reduction = Reduction::None});
           return loss(x[0], x[1]);
         }},
        {"BCELoss_weight",
         [](const Inputs& x) {
           nn::BCELoss loss({.weight = x[2]});
           return loss(x[0], x[1]);
         }},
        {"BCEWithLogitsLoss_posw_sum",
         [](const Inputs& x) {
           nn::BCEWithLogitsLoss loss({.pos_weight = x[2], .reduction = Reduction::Sum});
           return loss(x[0], x[1]);
         }},
        {"CrossEntropyLoss_weight_smooth0p1",
         [](const Inputs& x) {
           nn::CrossEntropyLoss loss({.weight = x[2], .label_smoothing = 0.1});
           return loss(x[0], x[1]);
         }},
        {"NLLLoss_ignore1",
         [](const Inputs& x) {
           nn::NLLLoss loss({.ignore_index = 1});
           return loss(x[0], x[1]);
         }},
    };
    // every loss variant with each reduction: "<variant>_<none|mean|sum>"
    const std::pair<std::string, Reduction> reductions[] = {
        {"none", Reduction::None}, {"mean", Reduction::Mean}, {"sum", Reduction::Sum}};
    for (const auto& entry : reductions) {
      const std::string s = "_" + entry.first;
      const Reduction r = entry.second;
      t["mse" + s] = [r](const Inputs& x) { return F::mse_loss(x[0], x[1], {.reduction = r}); };
      t["l1" + s] = [r](const Inputs& x) { return F::l1_loss(x[0], x[1], {.reduction = r}); };
      t["bce" + s] = [r](const Inputs& x) {
        return F::binary_cross_entropy(x[0], x[1], {.reduction = r});
      };
      t["bce_weight" + s] = [r](const Inputs& x) {
        return F::binary_cross_entropy(x[0], x[1], {.weight = x[2], .reduction = r});
      };
      t["bcel" + s] = [r](const Inputs& x) {
        return F::binary_cross_entropy_with_logits(x[0], x[1], {.reduction = r});
      };
      t["bcel_weight_posw" + s] = [r](const Inputs& x) {
        return F::binary_cross_entropy_with_logits(
            x[0], x[1], {.weight = x[2], .pos_weight = x[3], .reduction = r});
      };
      t["bcel_posw" + s] = [r](const Inputs& x) {
        return F::binary_cross_entropy_with_logits(x[0], x[1],
                                                   {.pos_weight = x[2], .reduction = r});
      };
      t["ce" + s] = [r](const Inputs& x) { return F::cross_entropy(x[0], x[1], {.reduction = r}); };
      t["ce_weight" + s] = [r](const Inputs& x) {
        return F::cross_entropy(x[0], x[1], {.weight = x[2], .reduction = r});
      };
      t["ce_ignore2" + s] = [r](const Inputs& x) {
        return F::cross_entropy(x[0], x[1], {.ignore_index = 2, .reduction = r});
      };
      t["ce_smooth0p1" + s] = [r](const Inputs& x) {
        return F::cross_entropy(x[0], x[1], {.label_smoothing = 0.1, .reduction = r});
      };
      t["ce_weight_smooth0p1_ignore2" + s] = [r](const Inputs& x) {
        return F::cross_entropy(
            x[0], x[1],
            {.weight = x[2], .ignore_index = 2, .label_smoothing = 0.1, .reduction = r});
      };
      t["ce_weight_smooth0p1" + s] = [r](const Inputs& x) {
        return F::cross_entropy(x[0], x[1],
                                {.weight = x[2], .label_smoothing = 0.1, .reduction = r});
      };
      t["nll" + s] = [r](const Inputs& x) { return F::nll_loss(x[0], x[1], {.reduction = r}); };
      t["nll_weight" + s] = [r](const Inputs& x) {
        return F::nll_loss(x[0], x[1], {.weight = x[2], .reduction = r});
      };
      t["nll_ignore1" + s] = [r](const Inputs& x) {
        return F::nll_loss(x[0], x[1], {.ignore_index = 1, .reduction = r});
      };
    }
    return t;
  }();
  return table;
}

// ---- modules (mirror NN_MODULES): built in the case's dtype, parameters loaded from the file --
struct ModuleOp {
  std::function<std::shared_ptr<nn::Module>(soma::DType)> make;
  // The outputs, in the order of the case's "out" lines.
  std::function<std::vector<Tensor>(nn::Module&, const Inputs&)> run;
};

std::vector<Tensor> forward_only(nn::Module& m, const Inputs& x) {
  return {m(x[0])};
}

// The training step: logits and cross_entropy(logits, labels).
std::vector<Tensor> logits_and_loss(nn::Module& m, const Inputs& x) {
  Tensor logits = m(x[0]);
  return {logits, F::cross_entropy(logits, x[1])};
}

// Sequential(Linear(5, 6), ReLU(), Linear(6, 4), act)
template <typename Act>
ModuleOp seq_5_6_4(Act act) {
  return {[act](soma::DType d) {
            return std::make_shared<nn::Sequential>(nn::Linear(5, 6, {.dtype = d}), nn::ReLU(),
                                                    nn::Linear(6, 4, {.dtype = d}), act);
          },
          forward_only};
}

ModuleOp mlp(int64_t in, int64_t hidden, int64_t out) {
  return {[=](soma::DType d) {
            return std::make_shared<nn::Sequential>(nn::Linear(in, hidden, {.dtype = d}),
                                                    nn::ReLU(),
                                                    nn::Linear(hidden, out, {.dtype = d}));
          },
          logits_and_loss};
}

const std::map<std::string, ModuleOp>& modules() {
  static const std::map<std::string, ModuleOp> table = {
      {"Linear_5_4",
       {[](soma::DType d) {
          return std::make_shared<nn::Linear>(5, 4, nn::LinearOptions{.dtype = d});
        },
        forward_only}},
      {"Linear_5_4_nobias",
       {[](soma::DType d) {
          return std::make_shared<nn::Linear>(5, 4, nn::LinearOptions{.bias = false, .dtype = d});
        },
        forward_only}},
      {"Seq_5_6_4_Tanh", seq_5_6_4(nn::Tanh())},
      {"Seq_5_6_4_Sigmoid", seq_5_6_4(nn::Sigmoid())},
      {"Seq_5_6_4_GELU", seq_5_6_4(nn::GELU())},
      {"Seq_5_6_4_LeakyReLU0p2", seq_5_6_4(nn::LeakyReLU(0.2))},
      {"Seq_5_6_4_Softmax1", seq_5_6_4(nn::Softmax(1))},
      {"Seq_5_6_4_LogSoftmax1", seq_5_6_4(nn::LogSoftmax(1))},
      {"MLP_784_64_10_ce", mlp(784, 64, 10)},
      {"MLP_48_32_10_ce", mlp(48, 32, 10)},
  };
  return table;
}

// ---- models whose state-dict keys and shapes must equal torch's (mirror NN_KEYS) ------------
const std::map<std::string, std::function<std::shared_ptr<nn::Module>()>>& key_models() {
  static const std::map<std::string, std::function<std::shared_ptr<nn::Module>()>> table = {
      {"keys_mnist_mlp",
       [] {
         return std::make_shared<nn::Sequential>(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5),
                                                 nn::Linear(256, 128), nn::ReLU(),
                                                 nn::Linear(128, 10));
       }},
      {"keys_nested",
       [] {
         return std::make_shared<nn::Sequential>(nn::Sequential(nn::Linear(4, 3), nn::Tanh()),
                                                 nn::Linear(3, 2));
       }},
  };
  return table;
}

// rtol 1e-5 / atol 1e-6 in float32 and 1e-12 in float64 for every op; loosen one only for a
// real reason, with a comment saying which.
golden::Tolerance tolerance(const std::string& /*op*/, soma::DType dtype) {
  if (dtype == soma::kFloat32) return {1e-5, 1e-6};
  return {1e-12, 1e-12};
}

const RefFile& reference() {
  static const RefFile file = golden::parse_reference(
      golden::reference_path("SOMA_NN_GOLDEN_REFERENCE", "nn_reference.txt"),
      {.roles = {"in", "param", "out", "gout", "grad", "pgrad", "key"}, .require_gout = false});
  return file;
}

std::string compare(const Case& c, const std::string& what, const Tensor& actual,
                    const RefTensor& expected) {
  return golden::compare(c, what, actual, expected, tolerance(c.op, c.dtype));
}

// ---- the tests ----------------------------------------------------------------------------
TEST(NnGoldenFile, LoadsCases) {
  const RefFile& file = reference();
  ASSERT_EQ(golden::file_problem(file), "");
  for (const Case& c : file.cases)
    EXPECT_TRUE(c.dtype == soma::kFloat32 || c.dtype == soma::kFloat64) << c.label();
}

// Every op in the file has exactly one table entry and every entry has a case.
TEST(NnGoldenFile, OpTablesMatchFile) {
  const RefFile& file = reference();
  ASSERT_TRUE(file.error.empty()) << file.error;
  std::set<std::string> in_file;
  for (const Case& c : file.cases) in_file.insert(c.op);
  for (const std::string& op : in_file) {
    const int entries =
        static_cast<int>(funcs().count(op) + modules().count(op) + key_models().count(op));
    EXPECT_EQ(entries, 1) << "op '" << op << "' in " << file.path << " has " << entries
                          << " table entries";
  }
  for (const auto& [op, fn] : funcs())
    EXPECT_TRUE(in_file.count(op)) << "op '" << op << "' in funcs() has no case";
  for (const auto& [op, m] : modules())
    EXPECT_TRUE(in_file.count(op)) << "op '" << op << "' in modules() has no case";
  for (const auto& [op, m] : key_models())
    EXPECT_TRUE(in_file.count(op)) << "op '" << op << "' in key_models() has no case";
}

// A key case: the soma model's state_dict() has torch's keys, shapes and dtypes.
void check_keys(const Case& c) {
  const auto it = key_models().find(c.op);
  ASSERT_NE(it, key_models().end()) << c.label() << ": no model for op '" << c.op << "'";
  const nn::StateDict state = it->second()->state_dict();
  std::set<std::string> expected_keys;
  for (const RefTensor& k : c.keys) {
    expected_keys.insert(k.key);
    const auto found = state.find(k.key);
    if (found == state.end()) {
      ADD_FAILURE() << c.label() << ": torch key \"" << k.key << "\" is missing from soma's";
      continue;
    }
    EXPECT_EQ(found->second.shape(), k.shape) << c.label() << ", \"" << k.key << "\"";
    EXPECT_EQ(found->second.dtype(), k.dtype) << c.label() << ", \"" << k.key << "\"";
  }
  for (const auto& [key, t] : state)
    EXPECT_TRUE(expected_keys.count(key))
        << c.label() << ": soma key \"" << key << "\" is not in torch's state_dict";
  EXPECT_EQ(state.size(), c.keys.size()) << c.label();
}

class NnGoldenTest : public ::testing::TestWithParam<size_t> {};

TEST_P(NnGoldenTest, MatchesTorch) {
  const Case& c = reference().cases.at(GetParam());
  if (!c.keys.empty()) return check_keys(c);

  // Inputs; those with a grad line require grad.
  std::set<int> with_grad;
  for (const RefTensor& g : c.grads) with_grad.insert(g.index);
  std::vector<Tensor> inputs;
  for (const RefTensor& r : c.inputs) {
    Tensor t = golden::make_tensor(r);
    if (with_grad.count(r.index)) t.requires_grad_(true);
    inputs.push_back(t);
  }
  for (int k : with_grad)
    ASSERT_LT(static_cast<size_t>(k), inputs.size()) << c.label() << ": grad of a missing input";

  // The module (torch's parameters loaded by key) or the function.
  std::shared_ptr<nn::Module> module;
  std::vector<Tensor> outs;
  try {
    if (const auto m = modules().find(c.op); m != modules().end()) {
      module = m->second.make(c.dtype);
      nn::StateDict state;
      for (const RefTensor& p : c.params) state[p.key] = golden::make_tensor(p);
      module->load_state_dict(state);  // strict: torch's keys are exactly soma's
      outs = m->second.run(*module, inputs);
    } else if (const auto f = funcs().find(c.op); f != funcs().end()) {
      ASSERT_TRUE(c.params.empty()) << c.label() << ": parameters for a functional op";
      outs = {f->second(inputs)};
    } else {
      FAIL() << c.label() << ": op '" << c.op << "' is in no table";
    }
  } catch (const std::exception& e) {
    FAIL() << c.label() << ": forward threw: " << e.what();
  }

  ASSERT_EQ(outs.size(), c.outs.size()) << c.label() << ": number of outputs";
  bool outs_ok = true;
  for (size_t k = 0; k < outs.size(); ++k) {
    const std::string err = compare(c, "output " + std::to_string(k), outs[k], c.outs[k]);
    EXPECT_TRUE(err.empty()) << err;
    outs_ok = outs_ok && outs[k].defined() && outs[k].shape() == c.outs[k].shape;
  }
  if (!outs_ok) return;

  try {
    if (c.has_gout)
      outs[0].backward(golden::make_tensor(c.gout));
    else
      outs.back().backward();
  } catch (const std::exception& e) {
    FAIL() << c.label() << ": backward threw: " << e.what();
  }
  for (const RefTensor& g : c.grads) {
    const std::string what =
        "grad of input " + g.key + " " + soma::shape_str(c.inputs[g.index].shape);
    const std::string err = compare(c, what, inputs[g.index].grad(), g);
    EXPECT_TRUE(err.empty()) << err;
  }
  if (!module) return;
  const auto named = module->named_parameters();
  EXPECT_EQ(named.size(), c.param_grads.size()) << c.label() << ": parameters vs pgrad lines";
  for (const RefTensor& g : c.param_grads) {
    const auto p =
        std::find_if(named.begin(), named.end(), [&](const auto& kv) { return kv.first == g.key; });
    if (p == named.end()) {
      ADD_FAILURE() << c.label() << ": no parameter \"" << g.key << "\"";
      continue;
    }
    const std::string what = "grad of \"" + g.key + "\" " + soma::shape_str(g.shape);
    const std::string err = compare(c, what, p->second.grad(), g);
    EXPECT_TRUE(err.empty()) << err;
  }
}

// Inference: the module cases' outputs again under NoGradGuard, batch 1 to 4 (whole cases of
// up to 4 rows, and the first 1..4 rows of the others), where nn::Linear runs its packed
// small-batch kernel (kernels/cpu/small_gemm.h) instead of the GEMM the training forward uses.
TEST(NnGoldenInference, SmallBatchForwardsMatchTorch) {
  int compared = 0;
  int64_t layer_runs = 0;
  const int64_t runs_before = soma::detail::small_linear_run_count();
  for (const Case& c : reference().cases) {
    const auto m = modules().find(c.op);
    if (!c.keys.empty() || m == modules().end() || c.inputs.empty() || c.outs.empty()) continue;
    std::shared_ptr<nn::Module> module = m->second.make(c.dtype);
    nn::StateDict state;
    for (const RefTensor& p : c.params) state[p.key] = golden::make_tensor(p);
    module->load_state_dict(state);
    const Tensor x = golden::make_tensor(c.inputs[0]);
    const Tensor expected = golden::make_tensor(c.outs[0]);
    if (x.dim() != 2 || expected.dim() != 2) continue;
    // The module's Linear layers: each runs once per forward.
    std::function<int64_t(const nn::Module&)> count = [&](const nn::Module& m) {
      int64_t n = dynamic_cast<const nn::Linear*>(&m) != nullptr;
      for (const auto& child : m.children()) n += count(*child);
      return n;
    };
    const int64_t linears = count(*module);
    soma::NoGradGuard no_grad;
    for (int64_t rows = 1; rows <= std::min<int64_t>(4, x.size(0)); ++rows) {
      (void)(*module)(x.slice(0, 0, rows));  // a weight's first sighting runs the GEMM
      const Tensor got = (*module)(x.slice(0, 0, rows));
      RefTensor want = c.outs[0];
      want.shape[0] = rows;
      want.values.resize(static_cast<size_t>(rows * expected.size(1)));
      const std::string err =
          compare(c, "no-grad output, first " + std::to_string(rows) + " rows", got, want);
      EXPECT_TRUE(err.empty()) << err;
      compared += c.dtype == soma::kFloat32;
      // The first call on a new weight runs the GEMM, every later one the packed kernel.
      layer_runs += c.dtype == soma::kFloat32 ? (rows == 1 ? 1 : 2) * linears : 0;
    }
  }
  EXPECT_GE(compared, 20);  // the float32 Linear, Seq and MLP cases
  // Every float32 Linear layer took the packed kernel but on its weight's first call.
  if (soma::kernels::Kernel<soma::kernels::LinearSmallF32>::selected_backend() == "avx512")
    EXPECT_EQ(soma::detail::small_linear_run_count() - runs_before, layer_runs);
}

std::vector<size_t> case_indices() {
  std::vector<size_t> idx(reference().cases.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  return idx;
}

std::string case_test_name(const ::testing::TestParamInfo<size_t>& info) {
  const Case& c = reference().cases.at(info.param);
  return c.name + "_" + c.dtype_str();
}

// A missing or empty file gives no instances; NnGoldenFile.LoadsCases then fails.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(NnGoldenTest);
INSTANTIATE_TEST_SUITE_P(Torch, NnGoldenTest, ::testing::ValuesIn(case_indices()), case_test_name);

}  // namespace
