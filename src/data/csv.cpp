// CSV reader: header row, numeric features, integer labels.
#include "soma/data/csv.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <new>

#include "soma/core/error.h"
#include "soma/io/file.h"

namespace soma::data {

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Splits one line into trimmed cells; a cell wrapped in double quotes loses them ("" -> ").
std::vector<std::string> split_line(const std::string& line, char delim) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"' && trim(cell).empty()) {
      quoted = true;
      cell.clear();
    } else if (c == delim) {
      cells.push_back(trim(cell));
      cell.clear();
    } else {
      cell += c;
    }
  }
  cells.push_back(trim(cell));
  return cells;
}

// The whole of `s` as a double (a leading '+' allowed); false when it is not a number.
bool parse_number(const std::string& s, double& v) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  if (b == e) return false;
  const auto [ptr, ec] = std::from_chars(b, e, v);
  if (ec == std::errc::result_out_of_range) {
    v = std::numeric_limits<double>::infinity();  // reported as out of range by the caller
    return ptr == e;
  }
  return ec == std::errc() && ptr == e;
}

CsvData read_csv_impl(const std::string& path, const CsvOptions& options) {
  std::error_code ec;
  SOMA_CHECK(!std::filesystem::is_directory(path, ec), "read_csv: ", path,
             " is a directory, not a CSV file");
  // The whole file first: io::read_file reports every failure (cannot open, a read error such
  // as EIO, a file too large for memory) where a stream would only stop early.
  std::string text;
  try {
    text = io::read_file(path);
  } catch (const Error& e) {
    soma::detail::fail("read_csv: ", e.what());
  }
  std::string line;
  int64_t line_no = 0;
  size_t pos = 0;
  // The next non-blank line, without a trailing '\r'; false at the end of the file.
  auto next_line = [&]() {
    while (pos < text.size()) {
      const size_t nl = text.find('\n', pos);
      const size_t end = nl == std::string::npos ? text.size() : nl;
      line.assign(text, pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!trim(line).empty()) return true;
    }
    return false;
  };

  SOMA_CHECK(next_line(), "read_csv: ", path, ": empty file (expected a header row)");
  const std::vector<std::string> header = split_line(line, options.delimiter);
  const auto ncols = static_cast<int64_t>(header.size());
  auto column_name = [&](int64_t c) {
    return "column " + std::to_string(c + 1) + " (\"" + header[static_cast<size_t>(c)] + "\")";
  };

  int64_t label_col = -1;
  if (!options.label_column.empty()) {
    for (int64_t c = 0; c < ncols; ++c)
      if (header[static_cast<size_t>(c)] == options.label_column) label_col = c;
    if (label_col < 0) {
      std::string names;
      for (const std::string& h : header) names += (names.empty() ? "\"" : ", \"") + h + "\"";
      soma::detail::fail("read_csv: ", path, ":", line_no, ": label column \"",
                         options.label_column, "\" not found in the header (columns: ", names, ")");
    }
  } else {
    label_col = options.label_index < 0 ? ncols + options.label_index : options.label_index;
    SOMA_CHECK(label_col >= 0 && label_col < ncols, "read_csv: ", path, ":", line_no,
               ": label column index ", options.label_index, " is out of range for ", ncols,
               " columns");
  }
  SOMA_CHECK(ncols >= 2, "read_csv: ", path, ":", line_no,
             ": no feature columns (the header has only the label column \"",
             header[static_cast<size_t>(label_col)], "\")");

  CsvData out;
  for (int64_t c = 0; c < ncols; ++c)
    if (c != label_col) out.feature_names.push_back(header[static_cast<size_t>(c)]);
  std::vector<float> features;
  std::vector<int64_t> labels;
  while (next_line()) {
    const std::vector<std::string> cells = split_line(line, options.delimiter);
    SOMA_CHECK(static_cast<int64_t>(cells.size()) == ncols, "read_csv: ", path, ":", line_no,
               ": ragged row: expected ", ncols, " cells (as in the header), got ", cells.size());
    for (int64_t c = 0; c < ncols; ++c) {
      const std::string& cell = cells[static_cast<size_t>(c)];
      double v = 0.0;
      SOMA_CHECK(parse_number(cell, v), "read_csv: ", path, ":", line_no, ": ", column_name(c),
                 ": non-numeric value \"", cell, "\"");
      if (c == label_col) {
        SOMA_CHECK(std::isfinite(v) && v == std::floor(v) && v <= 9.0e15, "read_csv: ", path, ":",
                   line_no, ": ", column_name(c), ": label \"", cell, "\" is not an integer");
        SOMA_CHECK(v >= 0.0, "read_csv: ", path, ":", line_no, ": ", column_name(c), ": label ",
                   cell, " is negative (labels are class ids 0, 1, ...)");
        labels.push_back(static_cast<int64_t>(v));
      } else {
        SOMA_CHECK(!std::isnan(v), "read_csv: ", path, ":", line_no, ": ", column_name(c),
                   ": feature is NaN (\"", cell, "\")");
        const auto f = static_cast<float>(v);
        SOMA_CHECK(std::isfinite(f), "read_csv: ", path, ":", line_no, ": ", column_name(c),
                   ": feature \"", cell, "\" is infinite or outside the float32 range");
        features.push_back(f);
      }
    }
  }
  const auto n = static_cast<int64_t>(labels.size());
  SOMA_CHECK(n > 0, "read_csv: ", path, ": no data rows after the header");
  out.features = tensor(features, {n, ncols - 1});
  out.labels = tensor(labels, {n});
  return out;
}

}  // namespace

CsvData read_csv(const std::string& path, const CsvOptions& options) {
  try {
    return read_csv_impl(path, options);
  } catch (const std::bad_alloc&) {  // the rows of a huge file
    soma::detail::fail("read_csv: ", path, ": out of memory while reading the rows");
  }
}

}  // namespace soma::data
