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
        ".grid{display:flex;flex-wrap:wrap;gap:10px}.grid "
        "figure{margin:0;text-align:center;font-size:11px}"
        "canvas{image-rendering:pixelated;border:1px solid "
        "#ccc}pre{background:#f6f6f6;padding:10px;"
        "overflow:auto}</style></head><body>\n";
  os << "<h1>" << escape(d.title) << "</h1>\n";
  os << "<h2>Metrics</h2><pre id=\"metrics\">" << escape(d.metrics_json) << "</pre>\n";
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
      os << "<figure><canvas class=\"img\" width=\"" << d.image_side << "\" height=\""
         << d.image_side << "\" style=\"width:" << d.image_side * 3 << "px\" data-px=\"";
      static const char* hex = "0123456789abcdef";
      for (uint8_t p : m.pixels) os << hex[p >> 4] << hex[p & 15];
      os << "\"></canvas><figcaption>true: " << escape(name(m.truth))
         << "<br>predicted: " << escape(name(m.predicted)) << "</figcaption></figure>\n";
    }
    os << "</div>\n";
  } else {
    os << "<p>(inputs are not images, or nothing was misclassified)</p>\n";
  }
  os << "<h2>Model</h2><pre id=\"summary\">" << escape(d.summary) << "</pre>\n";
  os << "<h2>Configuration</h2><pre id=\"config\">" << escape(d.config_json) << "</pre>\n";
  os << "<script>\nfor (const c of document.querySelectorAll('canvas.img')) {\n"
        "  const s = c.width, px = c.dataset.px, ctx = c.getContext('2d'), im = "
        "ctx.createImageData(s, s);\n"
        "  for (let i = 0; i < s * s; ++i) { const v = 255 - parseInt(px.substr(2 * i, 2), 16);\n"
        "    im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = v; im.data[4 * i + 3] = "
        "255; }\n"
        "  ctx.putImageData(im, 0, 0); c.dataset.drawn = '1';\n}\n"
        "document.body.dataset.ready = '1';\n</script>\n</body></html>\n";
  return os.str();
}

}  // namespace soma::cli
