// Self-contained SVG figures for the examples (no plotting library): line charts, class maps
// of 2-D classifiers, heat maps with paths, and panels side by side. Header-only, examples
// only; every figure is one <svg> string written by write_file().
//
//   plot::Chart c{.title = "loss", .xlabel = "epoch", .ylabel = "loss"};
//   c.series.push_back({.name = "train", .x = epochs, .y = losses});
//   plot::write_file("loss.svg", plot::page({plot::line_chart(c)}));
#pragma once

#include <soma/io/file.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace plot {

inline const std::vector<std::string> kColors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                 "#9467bd", "#8c564b", "#e377c2", "#17becf"};

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::string color = "";  // empty: the next of kColors
  bool dashed = false;
  bool markers = false;  // a dot at every point
};

struct Chart {
  std::string title, xlabel, ylabel;
  std::vector<Series> series{};
  bool log_y = false;
  std::vector<std::pair<double, std::string>> vlines{};  // dashed vertical markers
  double width = 420, height = 300;
};

inline std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else
      o += c;
  }
  return o;
}

inline std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// Plot area inside a w x h panel, and the data -> pixel maps.
struct Frame {
  double w, h, left = 58, right = 12, top = 28, bottom = 42;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  bool log_y = false;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (w - left - right); }
  double py(double y) const {
    const double t = log_y ? (std::log10(y) - std::log10(y0)) / (std::log10(y1) - std::log10(y0))
                           : (y - y0) / (y1 - y0);
    return h - bottom - t * (h - top - bottom);
  }
};

inline std::string axes(const Frame& f, const std::string& title, const std::string& xl,
                        const std::string& yl) {
  std::ostringstream s;
  s << "<rect x='0' y='0' width='" << f.w << "' height='" << f.h << "' fill='white'/>";
  s << "<text x='" << f.w / 2 << "' y='18' text-anchor='middle' font-size='13' "
    << "font-weight='bold'>" << esc(title) << "</text>";
  s << "<rect x='" << f.left << "' y='" << f.top << "' width='" << f.w - f.left - f.right
    << "' height='" << f.h - f.top - f.bottom << "' fill='none' stroke='#444'/>";
  for (int i = 0; i <= 4; ++i) {
    const double x = f.x0 + (f.x1 - f.x0) * i / 4;
    s << "<text x='" << f.px(x) << "' y='" << f.h - f.bottom + 14
      << "' text-anchor='middle' font-size='10'>" << num(x) << "</text>";
    const double y =
        f.log_y ? std::pow(10, std::log10(f.y0) + (std::log10(f.y1) - std::log10(f.y0)) * i / 4)
                : f.y0 + (f.y1 - f.y0) * i / 4;
    s << "<text x='" << f.left - 4 << "' y='" << f.py(y) + 3
      << "' text-anchor='end' font-size='10'>" << num(y) << "</text>";
  }
  s << "<text x='" << (f.left + f.w - f.right) / 2 << "' y='" << f.h - 8
    << "' text-anchor='middle' font-size='11'>" << esc(xl) << "</text>";
  s << "<text transform='translate(12," << (f.top + f.h - f.bottom) / 2
    << ") rotate(-90)' text-anchor='middle' font-size='11'>" << esc(yl) << "</text>";
  return s.str();
}

inline std::string polyline(const Frame& f, const Series& r, const std::string& color) {
  std::ostringstream s;
  s << "<polyline fill='none' stroke='" << color << "' stroke-width='1.8'"
    << (r.dashed ? " stroke-dasharray='5,3'" : "") << " points='";
  for (size_t i = 0; i < r.x.size(); ++i) {
    if (!std::isfinite(r.y[i]) || (f.log_y && r.y[i] <= 0)) continue;
    const double y = std::clamp(r.y[i], f.y0, f.y1);
    s << f.px(r.x[i]) << ',' << f.py(y) << ' ';
  }
  s << "'/>";
  if (r.markers)
    for (size_t i = 0; i < r.x.size(); ++i)
      if (std::isfinite(r.y[i]) && r.y[i] >= f.y0 && r.y[i] <= f.y1)
        s << "<circle cx='" << f.px(r.x[i]) << "' cy='" << f.py(r.y[i]) << "' r='2.2' fill='"
          << color << "'/>";
  return s.str();
}

inline std::string legend(const Frame& f, const std::vector<Series>& series) {
  std::ostringstream s;
  double y = f.top + 12;
  for (size_t i = 0; i < series.size(); ++i, y += 14) {
    const std::string c = series[i].color.empty() ? kColors[i % kColors.size()] : series[i].color;
    const double x = f.w - f.right - 110;
    s << "<line x1='" << x << "' y1='" << y - 4 << "' x2='" << x + 16 << "' y2='" << y - 4
      << "' stroke='" << c << "' stroke-width='2'"
      << (series[i].dashed ? " stroke-dasharray='5,3'" : "") << "/>";
    s << "<text x='" << x + 20 << "' y='" << y << "' font-size='10'>" << esc(series[i].name)
      << "</text>";
  }
  return s.str();
}

/// One panel: a line chart of every series, with a legend and the vertical markers.
inline std::string line_chart(const Chart& c) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& r : c.series)
    for (size_t i = 0; i < r.x.size(); ++i) {
      if (!std::isfinite(r.y[i]) || (c.log_y && r.y[i] <= 0)) continue;
      x0 = std::min(x0, r.x[i]), x1 = std::max(x1, r.x[i]);
      y0 = std::min(y0, r.y[i]), y1 = std::max(y1, r.y[i]);
    }
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  if (!c.log_y) {
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
  }
  Frame f{c.width, c.height};
  f.x0 = x0, f.x1 = x1, f.y0 = y0, f.y1 = y1, f.log_y = c.log_y;
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << c.width << "' height='" << c.height
    << "' font-family='sans-serif'>" << axes(f, c.title, c.xlabel, c.ylabel);
  for (const auto& [x, label] : c.vlines) {
    s << "<line x1='" << f.px(x) << "' y1='" << f.top << "' x2='" << f.px(x) << "' y2='"
      << f.h - f.bottom << "' stroke='#555' stroke-dasharray='3,3'/>";
    s << "<text x='" << f.px(x) - 3 << "' y='" << f.h - f.bottom - 6
      << "' text-anchor='end' font-size='10'>" << esc(label) << "</text>";
  }
  for (size_t i = 0; i < c.series.size(); ++i)
    s << polyline(f, c.series[i],
                  c.series[i].color.empty() ? kColors[i % kColors.size()] : c.series[i].color);
  s << legend(f, c.series) << "</svg>";
  return s.str();
}

/// A 2-D classifier's picture: the plane [lo, hi]^2 coloured by predict(x1, x2) on a grid of
/// cells x cells, with the data points on top (class ids index kColors).
inline std::string class_map(const std::string& title, double lo, double hi, int cells,
                             const std::function<int(double, double)>& predict,
                             const std::vector<double>& px, const std::vector<double>& py,
                             const std::vector<int>& label, double size = 300) {
  Frame f{size, size + 20};
  f.left = 10, f.right = 10, f.top = 28, f.bottom = 12;
  f.x0 = lo, f.x1 = hi, f.y0 = lo, f.y1 = hi;
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << f.w << "' height='" << f.h
    << "' font-family='sans-serif'><rect width='100%' height='100%' fill='white'/>"
    << "<text x='" << f.w / 2 << "' y='18' text-anchor='middle' font-size='13' "
    << "font-weight='bold'>" << esc(title) << "</text>";
  const double step = (hi - lo) / cells;
  const double cw = (f.w - f.left - f.right) / cells, ch = (f.h - f.top - f.bottom) / cells;
  for (int i = 0; i < cells; ++i)
    for (int j = 0; j < cells; ++j) {
      const int k = predict(lo + (i + 0.5) * step, lo + (j + 0.5) * step);
      s << "<rect x='" << f.px(lo + i * step) << "' y='" << f.py(lo + (j + 1) * step) << "' width='"
        << cw + 0.5 << "' height='" << ch + 0.5 << "' fill='"
        << kColors[static_cast<size_t>(k) % kColors.size()] << "' fill-opacity='0.25'/>";
    }
  for (size_t i = 0; i < px.size(); ++i)
    s << "<circle cx='" << f.px(px[i]) << "' cy='" << f.py(py[i]) << "' r='2' fill='"
      << kColors[static_cast<size_t>(label[i]) % kColors.size()] << "'/>";
  s << "<rect x='" << f.left << "' y='" << f.top << "' width='" << f.w - f.left - f.right
    << "' height='" << f.h - f.top - f.bottom << "' fill='none' stroke='#444'/></svg>";
  return s.str();
}

/// A heat map of z(x, y) on [x0, x1] x [y0, y1] (cells x cells, log-scaled bands that read as
/// filled contours), with paths drawn on top (series x/y are points of the plane).
inline std::string contour(const std::string& title, const std::string& xl, const std::string& yl,
                           double x0, double x1, double y0, double y1, int cells,
                           const std::function<double(double, double)>& z,
                           const std::vector<Series>& paths, double size = 420) {
  Frame f{size, size};
  f.x0 = x0, f.x1 = x1, f.y0 = y0, f.y1 = y1;
  std::vector<double> v(static_cast<size_t>(cells * cells));
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < cells; ++i)
    for (int j = 0; j < cells; ++j) {
      const double val = std::log10(
          z(x0 + (i + 0.5) * (x1 - x0) / cells, y0 + (j + 0.5) * (y1 - y0) / cells) + 1e-12);
      v[static_cast<size_t>(i * cells + j)] = val;
      lo = std::min(lo, val), hi = std::max(hi, val);
    }
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << f.w << "' height='" << f.h
    << "' font-family='sans-serif'>" << axes(f, title, xl, yl);
  const double cw = (f.w - f.left - f.right) / cells, ch = (f.h - f.top - f.bottom) / cells;
  for (int i = 0; i < cells; ++i)
    for (int j = 0; j < cells; ++j) {
      const double t = (v[static_cast<size_t>(i * cells + j)] - lo) / (hi - lo + 1e-12);
      const int band = static_cast<int>(t * 12);  // 12 levels of log10(loss)
      const int g = 255 - band * 17;
      char color[16];
      std::snprintf(color, sizeof color, "#%02x%02xff", g, g);
      s << "<rect x='" << f.left + i * cw << "' y='" << f.h - f.bottom - (j + 1) * ch << "' width='"
        << cw + 0.5 << "' height='" << ch + 0.5 << "' fill='" << color << "'/>";
    }
  std::vector<Series> colored = paths;
  for (size_t i = 0; i < colored.size(); ++i)
    if (colored[i].color.empty()) colored[i].color = kColors[(i + 1) % kColors.size()];
  for (size_t i = 0; i < colored.size(); ++i) {
    Series p = colored[i];
    p.markers = true;
    // Clip to the frame (a diverging path leaves it).
    for (size_t k = 0; k < p.x.size(); ++k)
      if (p.x[k] < x0 || p.x[k] > x1 || p.y[k] < y0 || p.y[k] > y1) {
        p.x.resize(k), p.y.resize(k);
        break;
      }
    s << polyline(f, p, p.color);
  }
  s << legend(f, colored) << "</svg>";
  return s.str();
}

/// Panels side by side (each an <svg> from above) in one <svg>.
inline std::string page(const std::vector<std::string>& panels, double width_each = 420,
                        double height = 320) {
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width_each * panels.size()
    << "' height='" << height << "'>";
  for (size_t i = 0; i < panels.size(); ++i)
    s << "<g transform='translate(" << width_each * i << ",0)'>" << panels[i] << "</g>";
  s << "</svg>\n";
  return s.str();
}

/// Writes `text` to `path` atomically (soma::io::atomic_write: a temporary file renamed into
/// place), creating its directory; false and the error on failure.
inline bool write_file(const std::filesystem::path& path, const std::string& text) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  try {
    soma::io::atomic_write(path.string(), text);
  } catch (const soma::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return false;
  }
  std::printf("wrote %s\n", path.string().c_str());
  return true;
}

/// The output directory: the value of --out DIR in argv, or ".".
inline std::filesystem::path out_dir(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--out") return argv[i + 1];
  return ".";
}

inline bool has_flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == flag) return true;
  return false;
}

}  // namespace plot
