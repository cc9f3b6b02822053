// Compares soma's optimizers: trains the same 2-64-3 MLP from the same initial weights on a
// generated 3-arm spiral (as examples/spiral.cpp) with SGD, SGD + momentum, Adam, RMSprop,
// Adagrad and Adadelta, full batch, and writes the loss curves as
//   optimizers_loss.csv   epoch, then one column of losses per optimizer
//   optimizers_loss.svg   a self-contained line chart: one polyline per optimizer, axes, legend
// into the current directory (or --out DIR). Fails unless every optimizer lowers the loss.
//
//   optimizers                 300 epochs
//   optimizers --small         60 epochs (the ctest entry)
//   optimizers --out plots     write the files into plots/
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace nn = soma::nn;
namespace optim = soma::optim;
namespace fs = std::filesystem;

constexpr int64_t kClasses = 3;
constexpr int64_t kPointsPerClass = 300;
constexpr int64_t kHidden = 64;

struct Spiral {
  soma::Tensor x;  // [N, 2] float32
  soma::Tensor y;  // [N] int64 class ids
};

// cs231n's spiral: class j, point i of P: r = i / (P - 1), angle = 4j + 4r + N(0, 0.2^2),
// x = (r sin angle, r cos angle). The noise is drawn with soma's generator, class by class, as
// in examples/mlp.cpp, so examples/python/lecture1.py draws the same spiral.
Spiral make_spiral() {
  const soma::Tensor r =
      soma::arange(kPointsPerClass, soma::kFloat32) / double(kPointsPerClass - 1);
  std::vector<soma::Tensor> xs;
  std::vector<int64_t> label;
  for (int64_t j = 0; j < kClasses; ++j) {
    const soma::Tensor angle = r * 4.0 + 4.0 * double(j) + soma::randn({kPointsPerClass}) * 0.2;
    xs.push_back(soma::stack({r * soma::sin(angle), r * soma::cos(angle)}, 1));
    label.insert(label.end(), static_cast<size_t>(kPointsPerClass), j);
  }
  return {soma::cat(xs), soma::tensor(label, {kClasses * kPointsPerClass})};
}

std::shared_ptr<nn::Sequential> make_model() {
  nn::Linear first(2, kHidden);  // initialised first, then the second layer (as in Python)
  nn::Linear second(kHidden, kClasses);
  return std::make_shared<nn::Sequential>(std::move(first), nn::ReLU(), std::move(second));
}

struct Run {
  std::string name;
  std::string color;  // SVG stroke
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<soma::Tensor>)> make;
  std::vector<double> losses;  // loss before each epoch's step, then the final loss
  double accuracy = 0.0;
};

std::vector<Run> runs() {
  using namespace optim;
  auto run = [](std::string name, std::string color, auto make) {
    return Run{std::move(name), std::move(color), make, {}, 0.0};
  };
  return {
      run("SGD", "#1f77b4",
          [](std::vector<soma::Tensor> p) {
            return std::make_unique<SGD>(std::move(p), SGDOptions{.lr = 0.5});
          }),
      run("SGD+momentum", "#ff7f0e",
          [](std::vector<soma::Tensor> p) {
            return std::make_unique<SGD>(std::move(p), SGDOptions{.lr = 0.1, .momentum = 0.9});
          }),
      run("Adam", "#2ca02c",
          [](std::vector<soma::Tensor> p) {
            return std::make_unique<Adam>(std::move(p),
                                          AdamOptions{.lr = 1e-2, .weight_decay = {}});
          }),
      run("RMSprop", "#d62728",
          [](std::vector<soma::Tensor> p) {
            return std::make_unique<RMSprop>(std::move(p), RMSpropOptions{.lr = 1e-2});
          }),
      run("Adagrad", "#9467bd",
          [](std::vector<soma::Tensor> p) {
            return std::make_unique<Adagrad>(std::move(p), AdagradOptions{.lr = 0.1});
          }),
      run("Adadelta", "#8c564b",
          [](std::vector<soma::Tensor> p) {
            return std::make_unique<Adadelta>(std::move(p), AdadeltaOptions{.lr = 1.0});
          }),
  };
}

// Full-batch training from `init`; records the losses and the final training accuracy.
void train(Run& run, const nn::StateDict& init, const Spiral& data, int epochs) {
  auto model = make_model();
  model->load_state_dict(init);
  auto opt = run.make(model->parameters());
  for (int epoch = 0; epoch < epochs; ++epoch) {
    opt->zero_grad();
    soma::Tensor loss = nn::functional::cross_entropy((*model)(data.x), data.y);
    run.losses.push_back(loss.item<double>());
    loss.backward();
    opt->step();
  }
  soma::NoGradGuard no_grad;
  const soma::Tensor logits = (*model)(data.x);
  run.losses.push_back(nn::functional::cross_entropy(logits, data.y).item<double>());
  const std::vector<int64_t> pred = soma::argmax(logits, 1).to_vector<int64_t>();
  const std::vector<int64_t> label = data.y.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == label[i];
  run.accuracy = static_cast<double>(correct) / static_cast<double>(label.size());
}

// Writes `text` to `path` through a temporary file in the same directory and a rename, so a
// reader never sees a half-written file.
bool write_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", tmp.c_str());
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::fprintf(stderr, "cannot rename %s to %s: %s\n", tmp.c_str(), path.c_str(),
                 ec.message().c_str());
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

std::string csv(const std::vector<Run>& runs) {
  std::ostringstream out;
  out.precision(9);
  out << "epoch";
  for (const Run& r : runs) out << "," << r.name;
  out << "\n";
  for (size_t e = 0; e < runs[0].losses.size(); ++e) {
    out << e;
    for (const Run& r : runs) out << "," << r.losses[e];
    out << "\n";
  }
  return out.str();
}

// A line chart: x = epoch, y = loss from 0 to the largest loss; one polyline per run.
std::string svg(const std::vector<Run>& runs) {
  const double width = 760, height = 460, left = 70, right = 190, top = 40, bottom = 60;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const size_t points = runs[0].losses.size();
  const double x_max = static_cast<double>(points - 1);
  double y_max = 0;
  for (const Run& r : runs)
    for (double l : r.losses) y_max = std::max(y_max, std::isfinite(l) ? l : 0.0);
  y_max = y_max > 0 ? y_max * 1.05 : 1.0;
  auto px = [&](double x) { return left + plot_w * x / x_max; };
  auto py = [&](double y) { return top + plot_h * (1.0 - std::min(y, y_max) / y_max); };

  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" "
    << "font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << left + plot_w / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
    << "Training loss on the 3-arm spiral (2-64-3 MLP, full batch)</text>\n";
  // grid and tick labels
  for (int i = 0; i <= 5; ++i) {
    const double yv = y_max * i / 5, y = py(yv);
    s << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + plot_w << "\" y2=\"" << y
      << "\" stroke=\"#e0e0e0\"/>\n";
    s << "<text x=\"" << left - 8 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << yv
      << "</text>\n";
    const double xv = std::round(x_max * i / 5), x = px(xv);
    s << "<line x1=\"" << x << "\" y1=\"" << top + plot_h << "\" x2=\"" << x << "\" y2=\""
      << top + plot_h + 5 << "\" stroke=\"black\"/>\n";
    s << "<text x=\"" << x << "\" y=\"" << top + plot_h + 20 << "\" text-anchor=\"middle\">"
      << static_cast<long long>(xv) << "</text>\n";
  }
  // axes and their titles
  s << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\""
    << top + plot_h << "\" stroke=\"black\"/>\n";
  s << "<line x1=\"" << left << "\" y1=\"" << top + plot_h << "\" x2=\"" << left + plot_w
    << "\" y2=\"" << top + plot_h << "\" stroke=\"black\"/>\n";
  s << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 15
    << "\" text-anchor=\"middle\">epoch</text>\n";
  s << "<text transform=\"translate(18," << top + plot_h / 2
    << ") rotate(-90)\" text-anchor=\"middle\">cross-entropy loss</text>\n";
  // curves
  for (const Run& r : runs) {
    s << "<polyline fill=\"none\" stroke=\"" << r.color << "\" stroke-width=\"1.8\" points=\"";
    for (size_t e = 0; e < r.losses.size(); ++e)
      s << (e ? " " : "") << px(static_cast<double>(e)) << "," << py(r.losses[e]);
    s << "\"/>\n";
  }
  // legend
  const double lx = left + plot_w + 20;
  for (size_t i = 0; i < runs.size(); ++i) {
    const double ly = top + 10 + 22.0 * static_cast<double>(i);
    s << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 24 << "\" y2=\"" << ly
      << "\" stroke=\"" << runs[i].color << "\" stroke-width=\"3\"/>\n";
    s << "<text x=\"" << lx + 32 << "\" y=\"" << ly + 4 << "\">" << runs[i].name << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  bool small = false;
  fs::path out_dir = ".";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--small") == 0) {
      small = true;
    } else if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--small] [--out DIR]\n", argv[0]);
      return 2;
    }
  }
  const int epochs = small ? 60 : 300;

  soma::manual_seed(0);  // the spiral's noise, then the initial weights
  const Spiral data = make_spiral();
  nn::StateDict init;  // the same initial weights for every optimizer
  for (const auto& [key, t] : make_model()->state_dict()) init[key] = t.detach().clone();

  std::printf("optimizers: %lld spiral points, MLP 2-%lld-3, %d full-batch epochs\n",
              static_cast<long long>(data.x.shape()[0]), static_cast<long long>(kHidden), epochs);
  std::vector<Run> all = runs();
  bool ok = true;
  for (Run& r : all) {
    train(r, init, data, epochs);
    const double first = r.losses.front(), last = r.losses.back();
    const bool lowered = std::isfinite(last) && last < first;
    std::printf("  %-13s loss %.4f -> %.4f  accuracy %5.1f%%%s\n", r.name.c_str(), first, last,
                100.0 * r.accuracy, lowered ? "" : "  FAIL: the loss did not decrease");
    ok = ok && lowered;
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const fs::path csv_path = out_dir / "optimizers_loss.csv";
  const fs::path svg_path = out_dir / "optimizers_loss.svg";
  if (!write_file(csv_path, csv(all)) || !write_file(svg_path, svg(all))) return 1;
  std::printf("wrote %s and %s\n", csv_path.c_str(), svg_path.c_str());
  if (!ok) {
    std::printf("FAIL: not every optimizer lowered the loss\n");
    return 1;
  }
  return 0;
}
