// soma::onnx::load: PyTorch-exported fixtures (tests/reference/onnx_import.py, checked in)
// reproduce torch's outputs to 1e-5 on a batch other than the traced one; soma export -> soma
// load gives the original module's outputs; an imported model fine-tunes and saves; every bad
// file of the table is a soma::Error whose message is checked.
#include <gtest/gtest.h>
#include <soma/onnx/export.h>
#include <soma/onnx/import.h>
#include <soma/soma.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "onnx/proto_reader.h"
#include "onnx/proto_writer.h"

namespace {

namespace fs = std::filesystem;
namespace nn = soma::nn;
namespace F = soma::nn::functional;
namespace pb = soma::onnx::pb;
using soma::Tensor;

const std::string kFixtures = std::string(SOMA_TEST_DATA_DIR) + "/reference/onnx/";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "soma_onnx_import_XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// NAME.txt: "input dims", values, "output dims", values.
std::pair<Tensor, Tensor> golden(const std::string& name) {
  std::ifstream f(kFixtures + name + ".txt");
  EXPECT_TRUE(f.good()) << name;
  std::vector<Tensor> t;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream head(line);
    std::string kind;
    head >> kind;
    soma::Shape shape;
    for (int64_t d; head >> d;) shape.push_back(d);
    std::getline(f, line);
    std::istringstream vals(line);
    std::vector<float> v;
    for (float x; vals >> x;) v.push_back(x);
    t.push_back(soma::tensor(v, shape));
  }
  EXPECT_EQ(t.size(), 2u) << name;
  return {t.at(0), t.at(1)};
}

// |got - want| <= 1e-5 (1 + |want|) everywhere.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<float> g = got.contiguous().to_vector<float>(),
                           w = want.contiguous().to_vector<float>();
  float worst = 0;
  for (size_t i = 0; i < g.size(); ++i)
    worst = std::max(worst, std::abs(g[i] - w[i]) / (1.0f + std::abs(w[i])));
  EXPECT_LE(worst, 1e-5f) << what << ": largest difference " << worst;
}

Tensor eval_output(nn::Module& m, const Tensor& x) {
  soma::NoGradGuard no_grad;
  const bool was = m.is_training();
  m.eval();
  Tensor y = m(x);
  m.train(was);
  return y;
}

// ---- torch's files -------------------------------------------------------------------------
class TorchFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchFixture, ReproducesTorchOutputs) {
  const std::string name = GetParam();
  auto model = soma::onnx::load(kFixtures + name + ".onnx");
  const auto [x, want] = golden(name);
  EXPECT_NE(x.size(0), 2) << "the golden batch must differ from the traced one";
  ASSERT_EQ(model->inputs().size(), 1u);
  EXPECT_EQ(model->inputs()[0].shape[0], -1) << "dynamic batch";
  EXPECT_EQ(model->inputs()[0].dim_names[0], "batch");
  expect_close(eval_output(*model, x), want, name);
  // Another batch size again (the graph keeps none of them).
  const Tensor one = x.narrow(0, 1, 1);
  expect_close(eval_output(*model, one), want.narrow(0, 1, 1), name + " batch 1");
}

INSTANTIATE_TEST_SUITE_P(OnnxImport, TorchFixture,
                         ::testing::Values("mlp", "cnn_bn", "view", "div255", "preset",
                                           "layer_list", "dense_layer"));

TEST(OnnxImport, InitializersAreParametersAndBuffersUnderSanitisedNames) {
  auto cnn = soma::onnx::load(kFixtures + "cnn_bn.onnx");
  EXPECT_EQ(cnn->opset(), 17);
  EXPECT_EQ(cnn->state_key("1.running_mean"), "1_running_mean");
  EXPECT_EQ(cnn->state_key("0.weight"), "0_weight");
  std::set<std::string> params, buffers;
  for (const auto& [k, t] : cnn->named_parameters()) {
    params.insert(k);
    EXPECT_TRUE(t.requires_grad()) << k;
  }
  for (const auto& [k, t] : cnn->named_buffers()) buffers.insert(k);
  EXPECT_TRUE(params.count("0_weight") && params.count("1_weight") && params.count("1_bias"));
  EXPECT_TRUE(buffers.count("1_running_mean") && buffers.count("1_running_var") &&
              buffers.count("5_running_var"));
  EXPECT_FALSE(params.count("1_running_mean"));
  EXPECT_EQ(cnn->state_dict().size(), 17u);  // every initializer
  try {
    cnn->state_key("nope");
    ADD_FAILURE() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no initializer named 'nope'"), std::string::npos);
  }
  std::ostringstream os;
  os << *cnn;
  EXPECT_NE(os.str().find("OnnxModel(pytorch"), std::string::npos) << os.str();
}

TEST(OnnxImport, OutputOpNamesTheLastNode) {
  EXPECT_EQ(soma::onnx::load(kFixtures + "mlp.onnx")->output_op(), "Softmax");
  EXPECT_EQ(soma::onnx::load(kFixtures + "cnn_bn.onnx")->output_op(), "LogSoftmax");
  EXPECT_EQ(soma::onnx::load(kFixtures + "dense_layer.onnx")->output_op(), "Add");
  EXPECT_THROW(soma::onnx::load(kFixtures + "mlp.onnx")->output_op(1), soma::Error);
}

TEST(OnnxImport, ForwardChecksTheInputAgainstTheGraph) {
  auto mlp = soma::onnx::load(kFixtures + "mlp.onnx");
  try {
    (*mlp)(soma::zeros({3, 11}));
    ADD_FAILURE() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("input 'input' has shape [3, 11], the graph declares "
                                         "[-1, 12]"),
              std::string::npos)
        << e.what();
  }
  try {
    (*mlp)(soma::zeros({3, 12}, soma::kInt64));
    ADD_FAILURE() << "no error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("dtype"), std::string::npos) << e.what();
  }
}

// ---- fine-tuning -----------------------------------------------------------------------------
TEST(OnnxImport, FineTunesAndSaves) {
  soma::manual_seed(11);
  TempDir dir;
  auto model = soma::onnx::load(kFixtures + "view.onnx");
  const Tensor x = soma::randn({16, 2, 6, 6});
  const Tensor y = soma::randint(0, 4, {16});
  model->train();
  soma::optim::SGD opt(model->parameters(), {.lr = 0.05});
  float first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    Tensor loss = F::cross_entropy((*model)(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  EXPECT_LT(last, first) << "SGD steps lower the loss";
  const std::string path = dir.file("tuned.safetensors");
  soma::io::save_safetensors(path, model->state_dict());
  auto fresh = soma::onnx::load(kFixtures + "view.onnx");
  const Tensor before = eval_output(*fresh, x);
  fresh->load_state_dict(soma::io::load_safetensors(path).tensors);
  expect_close(eval_output(*fresh, x), eval_output(*model, x), "reloaded");
  EXPECT_FALSE(soma::allclose(before, eval_output(*fresh, x))) << "the weights changed";
  // soma::onnx::save: the file again with the tuned initializers.
  const std::string onnx_path = dir.file("tuned.onnx");
  soma::onnx::save(*model, onnx_path);
  auto tuned = soma::onnx::load(onnx_path);
  expect_close(eval_output(*tuned, x), eval_output(*model, x), "saved .onnx");
  EXPECT_EQ(tuned->num_nodes(), model->num_nodes());
  EXPECT_EQ(tuned->producer(), model->producer());
}

// ---- soma -> ONNX -> soma ----------------------------------------------------------------------
void round_trip(nn::Module& m, const soma::Shape& sample, const std::string& name, int64_t opset) {
  TempDir dir;
  const std::string path = dir.file(name + ".onnx");
  soma::Shape two{2};
  two.insert(two.end(), sample.begin(), sample.end());
  soma::onnx::ExportOptions o;
  o.opset = opset;
  soma::onnx::export_model(m, {soma::randn(two)}, path, o);
  auto loaded = soma::onnx::load(path);
  soma::Shape five{5};
  five.insert(five.end(), sample.begin(), sample.end());
  const Tensor x = soma::randn(five);
  expect_close(eval_output(*loaded, x), eval_output(m, x),
               name + " opset " + std::to_string(opset));
}

void randomise_buffers(nn::Module& m) {
  soma::NoGradGuard no_grad;
  for (auto& [name, b] : m.named_buffers())
    if (soma::is_floating(b.dtype())) b.copy_(soma::rand(b.shape()) + 0.5);
}

TEST(OnnxImport, RoundTripMlp) {
  soma::manual_seed(12);
  nn::Sequential m(nn::Linear(20, 32), nn::ReLU(), nn::Dropout(0.5), nn::Linear(32, 24), nn::GELU(),
                   nn::Linear(24, 16), nn::Sigmoid(), nn::Linear(16, 16), nn::Tanh(),
                   nn::Linear(16, 12), nn::LeakyReLU(0.2), nn::Linear(12, 6), nn::LogSoftmax(1));
  for (int64_t opset : {13, 15, 17}) round_trip(m, {20}, "mlp", opset);
}

TEST(OnnxImport, RoundTripCliCnnPreset) {
  soma::manual_seed(13);
  nn::Sequential m(
      nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::BatchNorm2d(nn::BatchNormOptions(32)),
      nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
      nn::BatchNorm2d(nn::BatchNormOptions(64)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Flatten(), nn::Linear(3136, 128), nn::ReLU(), nn::Dropout(0.3), nn::Linear(128, 10));
  m.load_state_dict(soma::io::load_safetensors(std::string(SOMA_TEST_DATA_DIR) +
                                               "/cli/data/cnn-run/model.safetensors")
                        .tensors);
  round_trip(m, {1, 28, 28}, "cnn", 17);
}

// tests/onnx/layers.json's layers (a JSON layer list of the CLI), as in OnnxExport.LayerList.
TEST(OnnxImport, RoundTripLayerList) {
  soma::manual_seed(14);
  nn::Sequential m(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)),
                   nn::BatchNorm2d(nn::BatchNormOptions(4)), nn::GELU(),
                   nn::AvgPool2d(nn::AvgPool2dOptions(2)),
                   nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 2).stride(2)), nn::Tanh(),
                   nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::AdaptiveAvgPool2d(7),
                   nn::Dropout2d(0.1), nn::Flatten(), nn::LayerNorm({196}), nn::Linear(196, 32),
                   nn::BatchNorm1d(nn::BatchNormOptions(32)), nn::LeakyReLU(0.1), nn::Dropout(0.2),
                   nn::Linear(32, 10));
  randomise_buffers(m);
  round_trip(m, {1, 28, 28}, "layers", 17);  // LayerNormalization
  round_trip(m, {1, 28, 28}, "layers", 13);  // layer_norm decomposed (ReduceMean, Sqrt, ...)
}

struct MyDenseLayer : nn::Module {
  Tensor w, b;
  MyDenseLayer(int64_t in, int64_t out) {
    w = register_parameter("w", soma::randn({in, out}));
    b = register_parameter("b", soma::randn({1, out}));
  }
  Tensor forward(const Tensor& x) override { return soma::relu(soma::matmul(x, w) + b); }
};

TEST(OnnxImport, RoundTripUserDefinedLayer) {
  soma::manual_seed(15);
  nn::Sequential m(MyDenseLayer(2, 16), MyDenseLayer(16, 8), nn::Linear(8, 2));
  round_trip(m, {2}, "dense", 17);
}

// ---- bad files -------------------------------------------------------------------------------
// A small model written with the export's wire-format writer, with knobs for the bad cases.
struct Spec {
  int64_t opset = 17;
  bool with_opset = true;
  int64_t ir_version = 8;
  int64_t input_type = 1;
  std::vector<int64_t> input_dims{-1, 4};
  std::vector<pb::Writer> extra_nodes;
  std::vector<pb::Writer> extra_inits;
  std::string op = "Gemm";
  std::vector<std::string> inputs{"x", "w", "b"};
  std::string output = "y";
  std::vector<int64_t> w_dims{3, 4};
  int64_t w_type = 1;
  bool w_external = false;
  bool no_main = false;
  std::function<void(pb::Writer&)> main_attrs;
};

pb::Writer tensor_msg(const std::string& name, int64_t type, const std::vector<int64_t>& dims,
                      bool external = false) {
  pb::Writer t;
  t.packed_i64(pb::tensor::kDims, dims);
  t.i64(pb::tensor::kDataType, type);
  t.bytes(pb::tensor::kName, name);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  const size_t esize = type == 11 || type == 7 ? 8 : type == 10 ? 2 : 4;
  if (external) {
    pb::Writer e;
    e.bytes(1, "location");
    e.bytes(2, "weights.bin");
    t.message(13, e);
    t.i64(14, 1);
  } else {
    t.bytes(pb::tensor::kRawData, std::string(static_cast<size_t>(n) * esize, '\0'));
  }
  return t;
}

pb::Writer value_info(const std::string& name, int64_t type, const std::vector<int64_t>& dims) {
  pb::Writer shape;
  for (int64_t d : dims) {
    pb::Writer dim;
    if (d == -1)  // a symbolic dim; other negative values are written as they are (bad files)
      dim.bytes(pb::type::kDimParam, "batch");
    else
      dim.i64(pb::type::kDimValue, d);
    shape.message(pb::type::kDim, dim);
  }
  pb::Writer tt;
  tt.i64(pb::type::kElemType, type);
  tt.message(pb::type::kShape, shape);
  pb::Writer ty;
  ty.message(pb::type::kTensorType, tt);
  pb::Writer vi;
  vi.bytes(pb::value_info::kName, name);
  vi.message(pb::value_info::kType, ty);
  return vi;
}

pb::Writer node_msg(const std::string& op, const std::vector<std::string>& ins,
                    const std::vector<std::string>& outs, const std::string& name) {
  pb::Writer n;
  for (const auto& s : ins) n.bytes(pb::node::kInput, s);
  for (const auto& s : outs) n.bytes(pb::node::kOutput, s);
  n.bytes(pb::node::kName, name);
  n.bytes(pb::node::kOpType, op);
  return n;
}

std::string build(const Spec& s) {
  pb::Writer g;
  for (const pb::Writer& n : s.extra_nodes) g.message(pb::graph::kNode, n);
  if (!s.no_main) {
    pb::Writer main = node_msg(s.op, s.inputs, {s.output}, "main");
    pb::Writer tb;
    tb.bytes(pb::attr::kName, "transB");
    tb.i64(pb::attr::kI, 1);
    tb.i64(pb::attr::kType, pb::attr::kInt);
    if (s.main_attrs)
      s.main_attrs(main);
    else if (s.op == "Gemm")
      main.message(pb::node::kAttribute, tb);
    g.message(pb::graph::kNode, main);
  }
  g.bytes(pb::graph::kName, "g");
  g.message(pb::graph::kInitializer, tensor_msg("w", s.w_type, s.w_dims, s.w_external));
  g.message(pb::graph::kInitializer, tensor_msg("b", 1, {3}));
  for (const pb::Writer& t : s.extra_inits) g.message(pb::graph::kInitializer, t);
  g.message(pb::graph::kInput, value_info("x", s.input_type, s.input_dims));
  g.message(pb::graph::kOutput, value_info(s.output, 1, {-1, 3}));
  pb::Writer m;
  m.i64(pb::model::kIrVersion, s.ir_version);
  m.bytes(pb::model::kProducerName, "test");
  m.message(pb::model::kGraph, g);
  if (s.with_opset) {
    pb::Writer o;
    o.bytes(pb::opset_id::kDomain, "");
    o.i64(pb::opset_id::kVersion, s.opset);
    m.message(pb::model::kOpsetImport, o);
  }
  return m.str();
}

// load_bytes must throw a soma::Error containing every one of `parts`.
void expect_error(const std::string& bytes, const std::vector<std::string>& parts,
                  const std::string& what) {
  try {
    soma::onnx::load_bytes(bytes, "bad.onnx");
    ADD_FAILURE() << what << ": loaded without error";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << what << ": '" << p << "' not in: " << msg;
  }
}

TEST(OnnxImport, TheTestModelItselfLoads) {
  auto m = soma::onnx::load_bytes(build({}), "good.onnx");
  EXPECT_EQ((*m)(soma::ones({2, 4})).shape(), (soma::Shape{2, 3}));
}

TEST(OnnxImport, BadFiles) {
  const std::string good = build({});
  const std::string torch_mlp = soma::io::read_file(kFixtures + "mlp.onnx");
  // Truncated: within the first field's varint, inside the graph, and one byte short.
  expect_error(torch_mlp.substr(0, 1), {"onnx::load: bad.onnx: model (byte 1): truncated varint"},
               "truncated 1");
  expect_error(torch_mlp.substr(0, torch_mlp.size() / 2), {"claims", "bytes but only"},
               "truncated half");
  expect_error(torch_mlp.substr(0, torch_mlp.size() - 1), {"bytes but only"}, "truncated -1");
  expect_error(good.substr(0, good.size() - 3), {"onnx::load: bad.onnx"}, "truncated -3");
  expect_error("", {"empty file"}, "empty");
  // Corrupt varint: eleven continuation bytes.
  expect_error(std::string("\x08") + std::string(11, '\xff'), {"corrupt varint"}, "varint");
  // Wrong wire type: graph (field 7) as a varint.
  expect_error(std::string("\x38\x01", 2),
               {"field 7 (graph) has wire type varint, expected "
                "length-delimited"},
               "wire type");
  // A group wire type.
  expect_error(std::string("\x3b", 1), {"start-group"}, "group");
  // Huge length: the graph claims 4 GB.
  expect_error(std::string("\x3a\xff\xff\xff\xff\x0f", 6),
               {"field 7 claims 4294967295 bytes but only 0 remain"}, "huge length");
  // Unknown op, missing initializer, cycle.
  {
    Spec s;
    s.op = "FooBar";
    expect_error(build(s), {"node 0 'main' (FooBar)", "op 'FooBar' is not supported"}, "op");
  }
  {
    Spec s;
    s.inputs = {"x", "w_missing", "b"};
    expect_error(build(s), {"node 0 'main' (Gemm)", "input 1 'w_missing'", "missing initializer"},
                 "missing initializer");
  }
  {
    Spec s;
    s.extra_nodes.push_back(node_msg("Relu", {"c2"}, {"c1"}, "r1"));
    s.extra_nodes.push_back(node_msg("Relu", {"c1"}, {"c2"}, "r2"));
    expect_error(build(s), {"node 0 'r1' (Relu)", "cycle"}, "cycle");
  }
  {
    Spec s;
    s.extra_nodes.push_back(node_msg("Relu", {"x"}, {"x"}, "dup"));
    expect_error(build(s), {"defines 'x', which is already defined"}, "duplicate value");
  }
  {
    // No declared shape: no dry run could bound what a forward allocates.
    Spec s;
    s.input_dims = {};
    expect_error(build(s), {"graph input 'x' has no declared shape"}, "shapeless input");
  }
  // Opsets.
  for (int64_t opset : {12, 18}) {
    Spec s;
    s.opset = opset;
    expect_error(
        build(s),
        {"opset " + std::to_string(opset) + " of the default domain is not supported", "13 to 17"},
        "opset");
  }
  {
    Spec s;
    s.with_opset = false;
    expect_error(build(s), {"no opset_import"}, "no opset");
  }
  // Dtypes.
  {
    Spec s;
    s.w_type = 11;
    expect_error(build(s), {"initializer 0 'w'", "dtype double (11) is not supported"}, "double");
  }
  {
    Spec s;
    s.w_type = 10;
    expect_error(build(s), {"initializer 0 'w'", "dtype float16 (10)"}, "float16");
  }
  {
    Spec s;
    s.input_type = 11;
    expect_error(build(s), {"graph input 0 'x' has dtype double (11)"}, "input double");
  }
  // External data.
  {
    Spec s;
    s.w_external = true;
    expect_error(build(s), {"initializer 0 'w'", "external data"}, "external");
  }
  // Shapes checked at load: w [3, 5] for x [N, 4].
  {
    Spec s;
    s.w_dims = {3, 5};
    expect_error(build(s), {"node 0 'main' (Gemm)", "cannot be multiplied"}, "shapes");
  }
  // Subgraphs (If) are refused.
  {
    Spec s;
    s.main_attrs = [](pb::Writer& n) {
      pb::Writer a;
      a.bytes(pb::attr::kName, "then_branch");
      a.bytes(6, "");
      a.i64(pb::attr::kType, 5);
      n.message(pb::node::kAttribute, a);
    };
    s.op = "If";
    s.inputs = {"x"};
    expect_error(build(s), {"subgraph", "not supported"}, "If");
  }
  // Attributes: unsupported value, wrong type, unknown name.
  {
    Spec s;
    s.op = "Relu";
    s.inputs = {"x"};
    s.main_attrs = [](pb::Writer& n) {
      pb::Writer a;
      a.bytes(pb::attr::kName, "alpha");
      a.f32(pb::attr::kF, 1.0f);
      a.i64(pb::attr::kType, pb::attr::kFloat);
      n.message(pb::node::kAttribute, a);
    };
    expect_error(build(s), {"node 0 'main' (Relu)", "attribute 'alpha' is not supported"},
                 "unknown attribute");
  }
  {
    Spec s;
    s.main_attrs = [](pb::Writer& n) {
      pb::Writer a;
      a.bytes(pb::attr::kName, "transB");
      a.f32(pb::attr::kF, 1.0f);
      a.i64(pb::attr::kType, pb::attr::kFloat);
      n.message(pb::node::kAttribute, a);
    };
    expect_error(build(s), {"attribute 'transB' has type FLOAT", "expects INT"}, "attr type");
  }
  {
    Spec s;
    s.op = "Cast";
    s.inputs = {"x"};
    s.main_attrs = [](pb::Writer& n) {
      pb::Writer a;
      a.bytes(pb::attr::kName, "to");
      a.i64(pb::attr::kI, 11);
      a.i64(pb::attr::kType, pb::attr::kInt);
      n.message(pb::node::kAttribute, a);
    };
    expect_error(build(s), {"(Cast)", "cast to double (11) is not supported"}, "cast");
  }
  // An op of another domain.
  {
    Spec s;
    s.no_main = true;
    pb::Writer n = node_msg("Relu", {"x"}, {"y"}, "custom");
    n.bytes(7, "com.microsoft");
    s.extra_nodes.push_back(n);
    expect_error(build(s), {"node 0 'custom' (Relu)", "domain 'com.microsoft'"}, "domain");
  }
  // A graph output nothing produces.
  {
    Spec s;
    s.output = "nowhere";
    s.no_main = true;
    expect_error(build(s), {"graph output 0 'nowhere' is not produced"}, "output");
  }
  // A tensor whose data does not match its shape.
  {
    Spec s;
    pb::Writer t;
    t.packed_i64(pb::tensor::kDims, {1000000, 1000000});
    t.i64(pb::tensor::kDataType, 1);
    t.bytes(pb::tensor::kName, "huge");
    t.bytes(pb::tensor::kRawData, std::string(16, '\0'));
    s.extra_inits.push_back(t);
    expect_error(build(s), {"initializer 2 'huge'", "raw_data holds 16 bytes"}, "data size");
  }
  // A value too large for the dry run: a broadcast [N, 4] x [4096, 1, 4096].
  {
    Spec s;
    s.no_main = true;
    s.extra_inits.push_back(tensor_msg("big", 1, {4096, 1, 4}));
    s.extra_inits.push_back(tensor_msg("big2", 1, {1, 4096, 4}));
    s.extra_nodes.push_back(node_msg("Mul", {"big", "big2"}, {"y"}, "blowup"));
    expect_error(build(s), {"node 0 'blowup' (Mul)", "elements for one sample"}, "size limit");
  }
  // Gemm's C broadcasts one way only: C [3] does not fit A*B's [N, 1].
  {
    Spec s;
    s.w_dims = {1, 4};
    expect_error(build(s),
                 {"node 0 'main' (Gemm)", "C of shape [3] does not broadcast", "shape [1, 1]"},
                 "Gemm C");
  }
  // Counts capped before they allocate: 2^18 + 1 empty nodes (2 bytes each in the file).
  {
    pb::Writer g;
    for (size_t i = 0; i <= pb::kMaxNodes; ++i) g.bytes(pb::graph::kNode, "");
    pb::Writer m;
    m.i64(pb::model::kIrVersion, 8);
    m.message(pb::model::kGraph, g);
    expect_error(m.str(), {"bad.onnx: graph (byte", "more than 262144 nodes (the reader's limit)"},
                 "node count");
  }
  {
    Spec s;
    s.input_dims = std::vector<int64_t>(65, 1);
    expect_error(build(s), {"graph.input[0]", "more than 64 dims"}, "value rank");
  }
  {
    Spec s;
    s.w_dims = std::vector<int64_t>(65, 1);
    expect_error(build(s), {"graph.initializer[0]", "more than 65 dims"}, "tensor rank");
  }
  {
    Spec s;
    s.input_dims = {-1, -4};  // -4: dim_value -4 (see value_info)
    expect_error(build(s), {"graph.input[0]", "negative dim_value -4"}, "negative dim");
  }
}

}  // namespace
