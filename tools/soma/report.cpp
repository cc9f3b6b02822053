#include "report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace soma::cli {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A line chart of the given series (same x = epoch 1..n) as inline SVG.
std::string line_chart(const std::string& title,
                       const std::vector<std::pair<std::string, std::vector<double>>>& series,
                       int64_t marker_epoch, const std::string& marker_label) {
  const double W = 520, H = 300, L = 55, R = 15, T = 30, B = 40;
  double lo = INFINITY, hi = -INFINITY;
  size_t n = 0;
  for (auto& [name, v] : series)
    for (double y : v)
      if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y), n = std::max(n, v.size());
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) hi = lo + 1;
  const double pad = (hi - lo) * 0.05;
  lo -= pad, hi += pad;
  auto sx = [&](double e) { return L + (n > 1 ? (e - 1) / double(n - 1) : 0.5) * (W - L - R); };
  auto sy = [&](double y) { return T + (hi - y) / (hi - lo) * (H - T - B); };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"};
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  os << "<svg class=\"chart\" viewBox=\"0 0 " << W << ' ' << H << "\" width=\"" << W
     << "\" height=\"" << H << "\" role=\"img\" aria-label=\"" << escape(title) << "\">\n";
  os << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">"
     << escape(title) << "</text>\n";
  os << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
     << "\" stroke=\"#333\"/><line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\""
     << H - B << "\" stroke=\"#333\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double y = lo + (hi - lo) * k / 4;
    os << "<text x=\"" << L - 5 << "\" y=\"" << sy(y) + 4
       << "\" text-anchor=\"end\" font-size=\"11\">" << std::setprecision(3) << y
       << std::setprecision(2) << "</text>\n";
  }
  for (size_t e = 1; e <= n; e += std::max<size_t>(1, n / 10))
    os << "<text x=\"" << sx(double(e)) << "\" y=\"" << H - B + 15
       << "\" text-anchor=\"middle\" font-size=\"11\">" << e << "</text>\n";
  os << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 5
     << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& [name, v] = series[s];
    if (v.empty()) continue;
    os << "<polyline class=\"series\" fill=\"none\" stroke-width=\"2\" stroke=\"" << colors[s % 4]
       << "\" points=\"";
    for (size_t i = 0; i < v.size(); ++i)
      if (std::isfinite(v[i])) os << sx(double(i + 1)) << ',' << sy(v[i]) << ' ';
    os << "\"/>\n";
    os << "<rect x=\"" << W - R - 130 << "\" y=\"" << T + 5 + 16 * s
       << "\" width=\"12\" height=\"3\" fill=\"" << colors[s % 4] << "\"/><text x=\"" << W - R - 113
       << "\" y=\"" << T + 10 + 16 * s << "\" font-size=\"12\">" << escape(name) << "</text>\n";
  }
  if (marker_epoch >= 1 && n > 0) {
    const double x = sx(double(marker_epoch));
    os << "<line class=\"marker\" x1=\"" << x << "\" y1=\"" << T << "\" x2=\"" << x << "\" y2=\""
       << H - B << "\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>";
    // label on the side of the line with room, at the bottom (the legend is at the top)
    const bool left = x > (L + W - R) / 2;
    os << "<text x=\"" << (left ? x - 4 : x + 4) << "\" y=\"" << H - B - 6 << "\" text-anchor=\""
       << (left ? "end" : "start") << "\" font-size=\"11\" fill=\"#555\">" << escape(marker_label)
       << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

// A number as the metrics table shows it: `digits` decimals, integers without.
std::string number(const nlohmann::json& v, int digits) {
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (!v.is_number()) return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const double x = v.get<double>();
  if (!std::isfinite(x)) return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << x;
  return os.str();
}

// metrics.json as two tables: the run's numbers, and the accuracy of each class.
std::string metrics_table(const nlohmann::json& m, const std::vector<std::string>& class_names) {
  struct Row {
    const char* key;
    const char* label;
    int digits;
    const char* unit;
  };
  static const Row rows[] = {{"test_accuracy", "test accuracy", 4, ""},
                             {"test_loss", "test loss", 4, ""},
                             {"epochs_run", "epochs run", 0, ""},
                             {"best_epoch", "best epoch (validation loss)", 0, ""},
                             {"best_val_loss", "best validation loss", 4, ""},
                             {"stopped_early", "stopped early", 0, ""},
                             {"train_seconds", "training time", 1, " s"},
                             {"data_seconds", "data loading time", 2, " s"},
                             {"samples_per_second", "training samples per second", 0, ""},
                             {"threads", "threads", 0, ""},
                             {"ranks", "ranks", 0, ""},
                             {"allreduce_seconds", "allreduce time", 2, " s"}};
  std::ostringstream os;
  os << "<table class=\"metrics\" id=\"metrics\">\n";
  std::vector<std::string> shown;
  for (const Row& r : rows) {
    if (!m.contains(r.key)) continue;
    shown.push_back(r.key);
    os << "<tr><th>" << r.label << "</th><td>" << escape(number(m.at(r.key), r.digits)) << r.unit
       << "</td></tr>\n";
  }
  for (const auto& item : m.items()) {  // anything else, as it is
    if (item.key() == "per_class_accuracy" ||
        std::find(shown.begin(), shown.end(), item.key()) != shown.end())
      continue;
    os << "<tr><th>" << escape(item.key()) << "</th><td>" << escape(number(item.value(), 4))
       << "</td></tr>\n";
  }
  os << "</table>\n";
  if (m.contains("per_class_accuracy") && m.at("per_class_accuracy").is_array()) {
    const nlohmann::json& acc = m.at("per_class_accuracy");
    os << "<table class=\"metrics\" id=\"per-class\"><tr><th>class</th><th>test "
          "accuracy</th></tr>\n";
    for (size_t c = 0; c < acc.size(); ++c)
      os << "<tr><td>"
         << escape(c < class_names.size() ? std::to_string(c) + " " + class_names[c]
                                          : std::to_string(c))
         << "</td><td>" << escape(number(acc[c], 4)) << "</td></tr>\n";
    os << "</table>\n";
  }
  return os.str();
}

// Grey images drawn by the page's script: each a canvas with its pixels as hex.
std::string canvas(int64_t height, int64_t width, const std::vector<uint8_t>& pixels, int scale,
                   bool invert) {
  static const char* hex = "0123456789abcdef";
  std::ostringstream os;
  os << "<canvas class=\"img\" width=\"" << width << "\" height=\"" << height
     << "\" style=\"width:" << width * scale << "px\"" << (invert ? " data-invert=\"1\"" : "")
     << " data-px=\"";
  for (uint8_t p : pixels) os << hex[p >> 4] << hex[p & 15];
  os << "\"></canvas>";
  return os.str();
}

std::string image_grids(const std::vector<ImageGrid>& grids) {
  std::ostringstream os;
  for (const ImageGrid& g : grids) {
    // small images (3x3 filters) drawn larger
    const int scale =
        static_cast<int>(std::clamp<int64_t>(84 / std::max<int64_t>(g.width, 1), 2, 16));
    os << "<h3>" << escape(g.title) << "</h3>\n<div class=\"grid\">\n";
    for (size_t i = 0; i < g.images.size(); ++i) {
      os << "<figure>" << canvas(g.height, g.width, g.images[i], scale, false);
      if (i < g.captions.size()) os << "<figcaption>" << escape(g.captions[i]) << "</figcaption>";
      os << "</figure>\n";
    }
    os << "</div>\n";
  }
  return os.str();
}

}  // namespace

std::string render_report(const ReportData& d) {
  auto get = [&](const char* k) {
    auto it = d.history.find(k);
    return it == d.history.end() ? std::vector<double>() : it->second;
  };
  const std::string marker = d.stopped_epoch > 0
                                 ? "best epoch " + std::to_string(d.best_epoch) + " (early stop)"
                                 : "best epoch " + std::to_string(d.best_epoch);
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
     << escape(d.title)
     << "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}h2{margin-top:32px}"
        ".charts{display:flex;flex-wrap:wrap;gap:16px}table.cm{border-collapse:collapse;font-size:"
        "12px}"
        "table.cm td,table.cm th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "table.metrics{border-collapse:collapse;font-size:13px;margin:0 24px 12px 0;"
        "display:inline-table;vertical-align:top}table.metrics th{text-align:left;font-weight:"
        "normal;color:#555;padding:3px 12px 3px 0}table.metrics td{text-align:right;padding:3px "
        "6px;font-variant-numeric:tabular-nums}table.metrics tr{border-bottom:1px solid #eee}"
        ".grid{display:flex;flex-wrap:wrap;gap:10px}.grid "
        "figure{margin:0;text-align:center;font-size:11px}"
        "canvas{image-rendering:pixelated;border:1px solid "
        "#ccc}pre{background:#f6f6f6;padding:10px;"
        "overflow:auto}</style></head><body>\n";
  os << "<h1>" << escape(d.title) << "</h1>\n";
  os << "<h2>Metrics</h2>\n" << metrics_table(d.metrics, d.class_names);
  os << "<h2>Training curves</h2><div class=\"charts\">\n";
  os << line_chart("Loss", {{"train loss", get("loss")}, {"validation loss", get("val_loss")}},
                   d.best_epoch, marker);
  os << line_chart(
      "Accuracy",
      {{"train accuracy", get("accuracy")}, {"validation accuracy", get("val_accuracy")}},
      d.best_epoch, marker);
  os << "</div>\n";
  // confusion matrix, cells shaded by row share
  os << "<h2>Confusion matrix (test set; rows: true class, columns: predicted)</h2>\n<table "
        "class=\"cm\"><tr><th></th>";
  auto name = [&](int64_t c) {
    return c < static_cast<int64_t>(d.class_names.size()) ? d.class_names[c] : std::to_string(c);
  };
  for (int64_t c = 0; c < d.classes; ++c) os << "<th>" << escape(name(c)) << "</th>";
  os << "</tr>\n";
  for (int64_t r = 0; r < d.classes; ++r) {
    int64_t total = 0;
    for (int64_t c = 0; c < d.classes; ++c) total += d.confusion[r * d.classes + c];
    os << "<tr><th>" << escape(name(r)) << "</th>";
    for (int64_t c = 0; c < d.classes; ++c) {
      const int64_t v = d.confusion[r * d.classes + c];
      const double share = total ? double(v) / double(total) : 0.0;
      const int shade = 255 - static_cast<int>(share * 180);
      os << "<td style=\"background:rgb(" << (r == c ? shade : 255) << ',' << (r == c ? 255 : shade)
         << ',' << shade << ")\">" << v << "</td>";
    }
    os << "</tr>\n";
  }
  os << "</table>\n";
  os << "<h2>Misclassified test examples</h2>\n";
  if (d.image_side > 0 && !d.misclassified.empty()) {
    os << "<div class=\"grid\">\n";
    for (size_t i = 0; i < d.misclassified.size(); ++i) {
      const Misclassified& m = d.misclassified[i];
      os << "<figure>" << canvas(d.image_side, d.image_side, m.pixels, 3, true)
         << "<figcaption>true: " << escape(name(m.truth))
         << "<br>predicted: " << escape(name(m.predicted)) << "</figcaption></figure>\n";
    }
    os << "</div>\n";
  } else {
    os << "<p>(inputs are not images, or nothing was misclassified)</p>\n";
  }
  if (!d.filters.empty()) {
    os << "<h2>First layer's filters</h2>\n<p>Grey is 0, white the largest positive weight, "
          "black the most negative.</p>\n"
       << image_grids(d.filters);
  }
  if (!d.feature_maps.empty()) {
    os << "<h2>Feature maps of one test image</h2>\n<p>Every layer whose output is an image "
          "stack [1, C, H, W]: its first channels, each scaled from its minimum (black) to its "
          "maximum (white).</p>\n"
       << image_grids(d.feature_maps);
  }
  os << "<h2>Model</h2><pre id=\"summary\">" << escape(d.summary) << "</pre>\n";
  os << "<h2>Configuration</h2><pre id=\"config\">" << escape(d.config_json) << "</pre>\n";
  os << "<script>\nfor (const c of document.querySelectorAll('canvas.img')) {\n"
        "  const w = c.width, h = c.height, px = c.dataset.px, inv = c.dataset.invert === '1';\n"
        "  const ctx = c.getContext('2d'), im = ctx.createImageData(w, h);\n"
        "  for (let i = 0; i < w * h; ++i) { const g = parseInt(px.substr(2 * i, 2), 16), "
        "v = inv ? 255 - g : g;\n"
        "    im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = v; im.data[4 * i + 3] = "
        "255; }\n"
        "  ctx.putImageData(im, 0, 0); c.dataset.drawn = '1';\n}\n"
        "document.body.dataset.ready = '1';\n</script>\n</body></html>\n";
  return os.str();
}

}  // namespace soma::cli
