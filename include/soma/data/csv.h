// A CSV reader for tabular classification data: one header row, numeric feature columns and
// one integer label column.
//   sepal_length,sepal_width,petal_length,petal_width,species
//   5.1,3.5,1.4,0.2,0
//   auto data = soma::data::read_csv("iris.csv", {.label_column = "species"});
//   // data.features: float32 [150, 4], data.labels: int64 [150], data.feature_names: 4 names
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::data {

struct CsvOptions {
  std::string label_column{};  // the label column's header name; when empty, label_index
  int64_t label_index = -1;    // the label column's 0-based index (negative counts from the
                               // end: -1 is the last column)
  char delimiter = ',';        // cell separator
};

struct CsvData {
  Tensor features;                         // float32 [N, F]: every column but the label
  Tensor labels;                           // int64 [N]
  std::vector<std::string> feature_names;  // F header names, in column order
};

/// Reads `path`. Cells are trimmed of spaces; a cell in double quotes has them removed ("" is a
/// quote inside); blank lines and a trailing "\r" are ignored. The header row is required and
/// every other cell must be numeric, features finite in float32 range, labels non-negative
/// integers. Errors name the file, the 1-based line and the column (index and header name):
/// unreadable or empty file, no feature column, no data rows, ragged row (expected K cells,
/// got M), non-numeric cell, NaN/inf feature, label column not found, non-integer or negative
/// label.
CsvData read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace soma::data
