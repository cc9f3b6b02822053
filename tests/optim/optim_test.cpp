// soma::optim without PyTorch: resuming from a saved state is bit-exact for every optimizer,
// bad options are errors naming the optimizer, the option and the value, parameters without a
// gradient are skipped, and load_state_dict rejects state that does not fit, naming the key.
// (The trajectories, schedules and clipping against torch are in optim_golden_test.cpp.)
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace optim = soma::optim;
namespace F = soma::nn::functional;
using soma::Tensor;

// The model of the golden trajectories, Sequential(Linear(6, 8), Tanh(), Linear(8, 3)), with
// weights drawn from `seed`.
std::shared_ptr<nn::Sequential> make_model(soma::DType dtype, uint64_t seed) {
  soma::manual_seed(seed);
  return std::make_shared<nn::Sequential>(nn::Linear(6, 8, {.dtype = dtype}), nn::Tanh(),
                                          nn::Linear(8, 3, {.dtype = dtype}));
}

struct Batch {
  Tensor x, y;
};
Batch make_batch(soma::DType dtype) {
  soma::manual_seed(42);
  return {soma::randn({16, 6}).to(dtype),
          soma::tensor(std::vector<int64_t>{0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 1, 0, 2, 2, 0, 1})};
}

void train(nn::Module& model, optim::Optimizer& opt, const Batch& b, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    F::cross_entropy(model(b.x), b.y).backward();
    opt.step();
  }
}

nn::StateDict deep_copy(const nn::StateDict& state) {
  nn::StateDict out;
  for (const auto& [k, v] : state) out[k] = v.detach().clone();
  return out;
}

// ---- resume: save after 20 steps, load into fresh model + optimizer, 30 more == 50 in one go --
using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(nn::Module&)>;

template <typename Options>
std::vector<optim::ParamGroup<Options>> weights_and_biases(nn::Module& m, Options weights,
                                                           Options biases) {
  std::vector<optim::ParamGroup<Options>> groups = {{{}, weights}, {{}, biases}};
  for (const auto& [key, p] : m.named_parameters())
    groups[key.ends_with("weight") ? 0 : 1].params.push_back(p);
  return groups;
}

struct ResumeCase {
  std::string name;
  MakeOptimizer make;          // the options of the run
  MakeOptimizer make_default;  // the same optimizer type with default options
};

template <typename Opt, typename Options>
ResumeCase resume_case(std::string name, Options o) {
  return {std::move(name), [o](nn::Module& m) { return std::make_unique<Opt>(m.parameters(), o); },
          [](nn::Module& m) { return std::make_unique<Opt>(m.parameters()); }};
}

std::vector<ResumeCase> resume_cases() {
  using optim::AdamOptions, optim::SGDOptions;
  return {
      resume_case<optim::SGD>("SGD_plain", SGDOptions{.lr = 0.1}),
      resume_case<optim::SGD>(
          "SGD_nesterov_wd",
          SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}),
      resume_case<optim::SGD>("SGD_momentum_dampening",
                              SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1}),
      resume_case<optim::Adam>("Adam_default", AdamOptions{.lr = 1e-2, .weight_decay = {}}),
      resume_case<optim::Adam>("Adam_amsgrad_wd",
                               AdamOptions{.lr = 1e-2, .weight_decay = 0.01, .amsgrad = true}),
      resume_case<optim::AdamW>("AdamW_default", AdamOptions{.lr = 1e-2, .weight_decay = {}}),
      resume_case<optim::AdamW>("AdamW_amsgrad",
                                AdamOptions{.lr = 1e-2, .weight_decay = {}, .amsgrad = true}),
      resume_case<optim::RMSprop>("RMSprop_plain", optim::RMSpropOptions{.lr = 1e-2}),
      resume_case<optim::RMSprop>(
          "RMSprop_centered_momentum_wd",
          optim::RMSpropOptions{
              .lr = 1e-2, .weight_decay = 0.01, .momentum = 0.9, .centered = true}),
      resume_case<optim::Adagrad>("Adagrad_plain", optim::AdagradOptions{.lr = 0.1}),
      resume_case<optim::Adagrad>(
          "Adagrad_lrdecay_wd_init",
          optim::AdagradOptions{
              .lr = 0.1, .lr_decay = 0.01, .weight_decay = 0.01, .initial_accumulator_value = 0.1}),
      resume_case<optim::Adadelta>("Adadelta_plain", optim::AdadeltaOptions{.lr = 1.0}),
      resume_case<optim::Adadelta>(
          "Adadelta_rho_wd", optim::AdadeltaOptions{.lr = 1.0, .rho = 0.95, .weight_decay = 0.01}),
      {"SGD_groups",
       [](nn::Module& m) {
         return std::make_unique<optim::SGD>(
             weights_and_biases(m, SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01},
                                SGDOptions{.lr = 0.05, .momentum = 0.9}));
       },
       [](nn::Module& m) {
         return std::make_unique<optim::SGD>(weights_and_biases(m, SGDOptions{}, SGDOptions{}));
       }},
      {"Adam_groups",
       [](nn::Module& m) {
         return std::make_unique<optim::Adam>(
             weights_and_biases(m, AdamOptions{.lr = 1e-2, .weight_decay = 0.01},
                                AdamOptions{.lr = 5e-3, .weight_decay = 0.0}));
       },
       [](nn::Module& m) {
         return std::make_unique<optim::Adam>(weights_and_biases(m, AdamOptions{}, AdamOptions{}));
       }},
  };
}

// Every parameter of `a` equals the one of `b` bit for bit (compared with ==).
void expect_bitwise_equal(const nn::Module& a, const nn::Module& b, const std::string& what) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size()) << what;
  for (size_t i = 0; i < pa.size(); ++i) {
    const std::vector<double> va = pa[i].second.to_vector<double>();
    const std::vector<double> vb = pb[i].second.to_vector<double>();
    ASSERT_EQ(va.size(), vb.size()) << what << ", " << pa[i].first;
    int64_t differ = 0, first = -1;
    for (size_t j = 0; j < va.size(); ++j) {
      if (!(va[j] == vb[j])) {
        if (first < 0) first = static_cast<int64_t>(j);
        ++differ;
      }
    }
    EXPECT_EQ(differ, 0) << what << ", \"" << pa[i].first << "\": " << differ
                         << " elements differ; first at flat index " << first << ": "
                         << (first >= 0 ? va[first] : 0.0) << " vs "
                         << (first >= 0 ? vb[first] : 0.0);
  }
}

void check_resume(const ResumeCase& c, soma::DType dtype, bool fresh_with_defaults) {
  const std::string what = c.name + " " + std::string(soma::dtype_name(dtype)) +
                           (fresh_with_defaults ? " (resumed into default options)" : "");
  const Batch batch = make_batch(dtype);
  // The uninterrupted run: 50 steps, saving model and optimizer after 20.
  auto model = make_model(dtype, 7);
  auto opt = c.make(*model);
  train(*model, *opt, batch, 20);
  const nn::StateDict saved_model = deep_copy(model->state_dict());
  const optim::OptimizerState saved_opt = opt->state_dict();
  train(*model, *opt, batch, 30);

  // The resumed run: another initialisation, overwritten by the saved state.
  auto resumed = make_model(dtype, 99);
  resumed->load_state_dict(saved_model);
  auto resumed_opt = fresh_with_defaults ? c.make_default(*resumed) : c.make(*resumed);
  resumed_opt->load_state_dict(saved_opt);
  train(*resumed, *resumed_opt, batch, 30);

  expect_bitwise_equal(*model, *resumed, what);
  // The optimizer states agree too (options included: restored by load_state_dict).
  const optim::OptimizerState sa = opt->state_dict(), sb = resumed_opt->state_dict();
  ASSERT_EQ(sa.size(), sb.size()) << what;
  for (const auto& [key, t] : sa) {
    const auto it = sb.find(key);
    ASSERT_NE(it, sb.end()) << what << ": resumed optimizer has no \"" << key << "\"";
    EXPECT_EQ(t.to_vector<double>(), it->second.to_vector<double>())
        << what << ", \"" << key << "\"";
  }
}

TEST(OptimResume, SaveLoadContinuesBitExact) {
  for (const ResumeCase& c : resume_cases())
    for (soma::DType dtype : {soma::kFloat32, soma::kFloat64}) check_resume(c, dtype, false);
}

// The fresh optimizer is built with default options: load_state_dict restores the saved ones.
TEST(OptimResume, LoadRestoresOptions) {
  for (const ResumeCase& c : resume_cases()) check_resume(c, soma::kFloat32, true);
}

// ---- bad options: one row each; the message names the optimizer, the option and the value ---
struct BadCall {
  std::string label;
  std::function<void()> call;
  std::vector<std::string> expected;  // substrings of the message
};

std::vector<Tensor> one_param() {
  return {soma::zeros({2}).requires_grad_(true)};
}

std::vector<BadCall> bad_calls() {
  using namespace optim;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {
      // learning rates
      {"SGD lr -0.1", [] { SGD(one_param(), {.lr = -0.1}); }, {"SGD", "learning rate", "-0.1"}},
      {"SGD lr nan", [nan] { SGD(one_param(), {.lr = nan}); }, {"SGD", "learning rate", "nan"}},
      {"Adam lr -1", [] { Adam(one_param(), {.lr = -1.0}); }, {"Adam", "learning rate", "-1"}},
      {"AdamW lr -1", [] { AdamW(one_param(), {.lr = -1.0}); }, {"AdamW", "learning rate", "-1"}},
      {"RMSprop lr -1",
       [] { RMSprop(one_param(), {.lr = -1.0}); },
       {"RMSprop", "learning rate", "-1"}},
      {"Adagrad lr -1",
       [] { Adagrad(one_param(), {.lr = -1.0}); },
       {"Adagrad", "learning rate", "-1"}},
      {"Adadelta lr -1",
       [] { Adadelta(one_param(), {.lr = -1.0}); },
       {"Adadelta", "learning rate", "-1"}},
      {"set_lr -0.5",
       [] {
         SGD opt(one_param(), {.lr = 0.1});
         opt.set_lr(-0.5);
       },
       {"SGD", "learning rate", "-0.5"}},
      {"param group lr -2",
       [] {
         SGD opt(one_param(), {.lr = 0.1});
         opt.add_param_group({one_param(), {.lr = -2.0}});
       },
       {"SGD", "learning rate", "-2"}},
      // betas
      {"Adam beta1 1.0", [] { Adam(one_param(), {.beta1 = 1.0}); }, {"Adam", "beta1", "1"}},
      {"Adam beta2 -0.1", [] { Adam(one_param(), {.beta2 = -0.1}); }, {"Adam", "beta2", "-0.1"}},
      {"AdamW beta1 1.5", [] { AdamW(one_param(), {.beta1 = 1.5}); }, {"AdamW", "beta1", "1.5"}},
      // nesterov
      {"SGD nesterov without momentum",
       [] { SGD(one_param(), {.lr = 0.1, .nesterov = true}); },
       {"SGD", "nesterov", "momentum=0"}},
      {"SGD nesterov with dampening",
       [] { SGD(one_param(), {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
       {"SGD", "nesterov", "dampening=0.1"}},
      // eps
      {"Adam eps -1e-8", [] { Adam(one_param(), {.eps = -1e-8}); }, {"Adam", "eps", "-1e-08"}},
      {"RMSprop eps -1e-8",
       [] { RMSprop(one_param(), {.eps = -1e-8}); },
       {"RMSprop", "eps", "-1e-08"}},
      {"Adagrad eps -1e-10",
       [] { Adagrad(one_param(), {.eps = -1e-10}); },
       {"Adagrad", "eps", "-1e-10"}},
      {"Adadelta eps -1e-6",
       [] { Adadelta(one_param(), {.eps = -1e-6}); },
       {"Adadelta", "eps", "-1e-06"}},
      // weight decay
      {"SGD weight_decay -0.01",
       [] { SGD(one_param(), {.lr = 0.1, .weight_decay = -0.01}); },
       {"SGD", "weight_decay", "-0.01"}},
      {"Adam weight_decay -0.01",
       [] { Adam(one_param(), {.weight_decay = -0.01}); },
       {"Adam", "weight_decay", "-0.01"}},
      {"AdamW weight_decay -0.01",
       [] { AdamW(one_param(), {.weight_decay = -0.01}); },
       {"AdamW", "weight_decay", "-0.01"}},
      {"RMSprop weight_decay -0.01",
       [] { RMSprop(one_param(), {.weight_decay = -0.01}); },
       {"RMSprop", "weight_decay", "-0.01"}},
      {"Adagrad weight_decay -0.01",
       [] { Adagrad(one_param(), {.weight_decay = -0.01}); },
       {"Adagrad", "weight_decay", "-0.01"}},
      {"Adadelta weight_decay -0.01",
       [] { Adadelta(one_param(), {.weight_decay = -0.01}); },
       {"Adadelta", "weight_decay", "-0.01"}},
      // momentum, dampening, alpha, rho
      {"SGD momentum -0.9",
       [] { SGD(one_param(), {.lr = 0.1, .momentum = -0.9}); },
       {"SGD", "momentum", "-0.9"}},
      {"SGD dampening -0.1",
       [] { SGD(one_param(), {.lr = 0.1, .momentum = 0.9, .dampening = -0.1}); },
       {"SGD", "dampening", "-0.1"}},
      {"RMSprop momentum -0.9",
       [] { RMSprop(one_param(), {.momentum = -0.9}); },
       {"RMSprop", "momentum", "-0.9"}},
      {"RMSprop alpha -0.5",
       [] { RMSprop(one_param(), {.alpha = -0.5}); },
       {"RMSprop", "alpha", "-0.5"}},
      {"Adadelta rho 1.5", [] { Adadelta(one_param(), {.rho = 1.5}); }, {"Adadelta", "rho", "1.5"}},
      // Adagrad
      {"Adagrad lr_decay -0.1",
       [] { Adagrad(one_param(), {.lr_decay = -0.1}); },
       {"Adagrad", "lr_decay", "-0.1"}},
      {"Adagrad initial_accumulator_value -0.1",
       [] { Adagrad(one_param(), {.initial_accumulator_value = -0.1}); },
       {"Adagrad", "initial_accumulator_value", "-0.1"}},
      // schedulers
      {"StepLR step_size 0",
       [] {
         SGD opt(one_param(), {.lr = 0.1});
         StepLR(opt, {.step_size = 0});
       },
       {"StepLR", "step_size", "0"}},
      {"LinearLR start_factor 0",
       [] {
         SGD opt(one_param(), {.lr = 0.1});
         LinearLR(opt, {.start_factor = 0.0});
       },
       {"LinearLR", "start_factor", "0"}},
      {"CosineAnnealingLR T_max 0",
       [] {
         SGD opt(one_param(), {.lr = 0.1});
         CosineAnnealingLR(opt, {.T_max = 0});
       },
       {"CosineAnnealingLR", "T_max", "0"}},
      {"ReduceLROnPlateau factor 1.5",
       [] {
         SGD opt(one_param(), {.lr = 0.1});
         ReduceLROnPlateau(opt, {.factor = 1.5});
       },
       {"ReduceLROnPlateau", "factor", "1.5"}},
      // clipping
      {"clip_grad_norm_ max_norm -1",
       [] { nn::utils::clip_grad_norm_(one_param(), -1.0); },
       {"clip_grad_norm_", "max_norm", "-1"}},
      {"clip_grad_value_ clip_value -0.5",
       [] { nn::utils::clip_grad_value_(one_param(), -0.5); },
       {"clip_grad_value_", "clip_value", "-0.5"}},
  };
}

TEST(OptimBadOptions, ThrowNamingOptionAndValue) {
  for (const BadCall& b : bad_calls()) {
    try {
      b.call();
      ADD_FAILURE() << b.label << ": no error";
    } catch (const soma::Error& e) {
      const std::string msg = e.what();
      for (const std::string& s : b.expected)
        EXPECT_TRUE(msg.find(s) != std::string::npos)
            << b.label << ": message \"" << msg << "\" does not contain \"" << s << "\"";
    } catch (const std::exception& e) {
      ADD_FAILURE() << b.label << ": threw a non-soma::Error: " << e.what();
    }
  }
}

// ---- parameters without a gradient --------------------------------------------------------
// Options that would move a parameter even with a zero gradient (weight decay, momentum), so a
// parameter that was not skipped would change.
std::vector<std::pair<std::string, MakeOptimizer>> skip_cases() {
  using namespace optim;
  auto params = [](nn::Module& m) { return m.parameters(); };
  return {
      {"SGD",
       [=](nn::Module& m) {
         return std::make_unique<SGD>(params(m),
                                      SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
       }},
      {"Adam",
       [=](nn::Module& m) {
         return std::make_unique<Adam>(params(m), AdamOptions{.weight_decay = 0.1});
       }},
      {"AdamW", [=](nn::Module& m) { return std::make_unique<AdamW>(params(m)); }},
      {"RMSprop",
       [=](nn::Module& m) {
         return std::make_unique<RMSprop>(params(m),
                                          RMSpropOptions{.weight_decay = 0.1, .momentum = 0.9});
       }},
      {"Adagrad",
       [=](nn::Module& m) {
         return std::make_unique<Adagrad>(params(m), AdagradOptions{.weight_decay = 0.1});
       }},
      {"Adadelta",
       [=](nn::Module& m) {
         return std::make_unique<Adadelta>(params(m), AdadeltaOptions{.weight_decay = 0.1});
       }},
  };
}

TEST(OptimStep, SkipsParametersWithoutGradient) {
  for (const auto& [name, make] : skip_cases()) {
    // Two layers; only the second gets gradients (the first's output is detached).
    nn::Sequential model(nn::Linear(3, 4), nn::Linear(4, 2));
    soma::manual_seed(3);
    const Tensor x = soma::randn({5, 3});
    auto opt = make(model);
    const nn::StateDict before = deep_copy(model.state_dict());
    for (int i = 0; i < 3; ++i) {
      opt->zero_grad();
      const Tensor h = model[0](x).detach();
      (model[1](h) * model[1](h)).sum().backward();
      ASSERT_FALSE(model.named_parameters()[0].second.grad().defined()) << name;
      opt->step();
    }
    const nn::StateDict after = model.state_dict();
    for (const std::string key : {"0.weight", "0.bias"})
      EXPECT_EQ(after.at(key).to_vector<float>(), before.at(key).to_vector<float>())
          << name << ": \"" << key << "\" changed without a gradient";
    for (const std::string key : {"1.weight", "1.bias"})
      EXPECT_NE(after.at(key).to_vector<float>(), before.at(key).to_vector<float>())
          << name << ": \"" << key << "\" did not move";
    // Per-parameter step counts: 0 for the skipped ones, 3 for the others.
    const optim::OptimizerState state = opt->state_dict();
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(state.at("state." + std::to_string(i) + ".step").item<int64_t>(), i < 2 ? 0 : 3)
          << name << ", parameter " << i;
  }
}

// ---- load_state_dict errors ---------------------------------------------------------------
struct StateFixture {
  nn::Sequential model{nn::Linear(3, 4), nn::Linear(4, 2)};
  optim::Adam opt{model.parameters(), {.lr = 1e-2, .amsgrad = true}};
  StateFixture() {
    soma::manual_seed(5);
    const Tensor x = soma::randn({5, 3});
    opt.zero_grad();
    model(x).sum().backward();
    opt.step();
  }
};

// Runs load_state_dict(state) and checks it throws a soma::Error containing every substring,
// and that the optimizer's state is unchanged.
void expect_load_error(StateFixture& f, const optim::OptimizerState& state,
                       const std::vector<std::string>& expected, const std::string& label) {
  const optim::OptimizerState before = f.opt.state_dict();
  try {
    f.opt.load_state_dict(state);
    ADD_FAILURE() << label << ": no error";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    for (const std::string& s : expected)
      EXPECT_NE(msg.find(s), std::string::npos)
          << label << ": message \"" << msg << "\" does not contain \"" << s << "\"";
  }
  const optim::OptimizerState after = f.opt.state_dict();
  ASSERT_EQ(after.size(), before.size()) << label << ": state changed by a failed load";
  for (const auto& [k, v] : before)
    EXPECT_EQ(after.at(k).to_vector<double>(), v.to_vector<double>())
        << label << ": \"" << k << "\" changed by a failed load";
}

TEST(OptimStateDict, Keys) {
  StateFixture f;
  const optim::OptimizerState s = f.opt.state_dict();
  for (const std::string key :
       {"param_groups.0.lr", "param_groups.0.beta1", "param_groups.0.beta2", "param_groups.0.eps",
        "param_groups.0.weight_decay", "param_groups.0.amsgrad", "state.0.step", "state.0.exp_avg",
        "state.0.exp_avg_sq", "state.0.max_exp_avg_sq", "state.3.max_exp_avg_sq"})
    EXPECT_TRUE(s.count(key)) << "no \"" << key << "\"";
  EXPECT_EQ(s.at("state.0.exp_avg").shape(), (soma::Shape{4, 3}));
  EXPECT_EQ(s.at("state.3.step").item<int64_t>(), 1);
}

TEST(OptimStateDict, WrongShapedBufferNamesKey) {
  StateFixture f;
  optim::OptimizerState s = f.opt.state_dict();
  s["state.0.exp_avg"] = soma::zeros({3, 4});
  expect_load_error(f, s, {"state.0.exp_avg", "[3, 4]", "[4, 3]"}, "exp_avg [3, 4]");
}

TEST(OptimStateDict, WrongDtypeBufferNamesKey) {
  StateFixture f;
  optim::OptimizerState s = f.opt.state_dict();
  s["state.2.exp_avg_sq"] = soma::zeros({2, 4}, soma::kFloat64);
  expect_load_error(f, s, {"state.2.exp_avg_sq", "float64"}, "exp_avg_sq float64");
}

TEST(OptimStateDict, MissingKeyNamesKey) {
  StateFixture f;
  for (const std::string key : {"param_groups.0.lr", "param_groups.0.beta2", "state.1.step"}) {
    optim::OptimizerState s = f.opt.state_dict();
    s.erase(key);
    expect_load_error(f, s, {key}, "without " + key);
  }
}

TEST(OptimStateDict, UnexpectedKeyNamesKey) {
  StateFixture f;
  optim::OptimizerState s = f.opt.state_dict();
  s["state.0.momentum_buffer"] = soma::zeros({4, 3});
  expect_load_error(f, s, {"state.0.momentum_buffer"}, "extra momentum_buffer");
}

TEST(OptimStateDict, OtherParameterCountIsAnError) {
  StateFixture f;
  nn::Linear small(3, 4);
  optim::Adam other(small.parameters());
  expect_load_error(f, other.state_dict(), {"group 0", "2", "4"}, "2 parameters into 4");
}

TEST(OptimStateDict, InvalidOptionInStateIsAnError) {
  StateFixture f;
  optim::OptimizerState s = f.opt.state_dict();
  s["param_groups.0.lr"] = soma::full({}, -1.0, soma::kFloat64);
  expect_load_error(f, s, {"Adam", "learning rate", "-1"}, "lr -1 in the state");
}

}  // namespace
