// read_csv: a good file in several dialects, and every bad case with its line and column.
#include <gtest/gtest.h>

#include "data/data_test_util.h"
#include "soma/soma.h"

namespace {

using soma::data::CsvOptions;
using soma::data::read_csv;
using soma_test::expect_error;
using soma_test::ScratchDir;

TEST(CsvTest, ReadsFeaturesAndLabels) {
  ScratchDir dir;
  const std::string path = dir.write("iris.csv",
                                     "sepal length, \"sepal, width\" ,label\r\n"
                                     "5.1,3.5,0\r\n"
                                     "\r\n"
                                     " +4.9 , -3e-1 , 2.0\r\n"
                                     "1e3,.5,1\r\n");
  const auto data = read_csv(path);
  EXPECT_EQ(data.feature_names, (std::vector<std::string>{"sepal length", "sepal, width"}));
  EXPECT_EQ(data.features.dtype(), soma::kFloat32);
  EXPECT_EQ(data.features.shape(), (soma::Shape{3, 2}));
  EXPECT_EQ(data.features.to_vector<float>(),
            (std::vector<float>{5.1f, 3.5f, 4.9f, -0.3f, 1000.0f, 0.5f}));
  EXPECT_EQ(data.labels.dtype(), soma::kInt64);
  EXPECT_EQ(data.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1}));
}

TEST(CsvTest, LabelByNameOrIndexAndDelimiter) {
  ScratchDir dir;
  const std::string path = dir.write("semi.csv", "y;a;b\n3;1;2\n4;5;6\n");
  for (const CsvOptions& o : {CsvOptions{.label_column = "y", .delimiter = ';'},
                              CsvOptions{.label_index = 0, .delimiter = ';'},
                              CsvOptions{.label_index = -3, .delimiter = ';'}}) {
    const auto data = read_csv(path, o);
    EXPECT_EQ(data.feature_names, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(data.features.to_vector<float>(), (std::vector<float>{1, 2, 5, 6}));
    EXPECT_EQ(data.labels.to_vector<int64_t>(), (std::vector<int64_t>{3, 4}));
  }
  const auto mid = read_csv(path, {.label_column = "a", .delimiter = ';'});
  EXPECT_EQ(mid.feature_names, (std::vector<std::string>{"y", "b"}));
  EXPECT_EQ(mid.features.to_vector<float>(), (std::vector<float>{3, 2, 4, 6}));
}

TEST(CsvTest, EveryBadFileIsAnError) {
  ScratchDir dir;
  struct Case {
    const char* name;
    std::string text;
    const char* label_column;  // CsvOptions fields (a CsvOptions member here trips GCC 12's
    int64_t label_index;       // -Wmaybe-uninitialized in this initializer list)
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"empty", "", "", -1, {"empty file"}},
      {"blank", "\n \n\r\n", "", -1, {"empty file"}},
      {"header_only", "a,b,label\n", "", -1, {"no data rows"}},
      {"ragged", "a,b,label\n1,2,0\n1,2\n", "", -1, {":3:", "expected 3 cells", "got 2"}},
      {"ragged_long", "a,b,label\n1,2,0,4\n", "", -1, {":2:", "expected 3 cells", "got 4"}},
      {"non_numeric",
       "a,b,label\n1,2,0\n\n1,abc,1\n",
       "",
       -1,
       {":4:", "column 2 (\"b\")", "non-numeric", "\"abc\""}},
      {"empty_cell", "a,b,label\n1,,0\n", "", -1, {":2:", "column 2 (\"b\")", "non-numeric"}},
      {"trailing_junk", "a,b,label\n1,2x,0\n", "", -1, {":2:", "column 2", "\"2x\""}},
      {"nan", "a,b,label\nnan,2,0\n", "", -1, {":2:", "column 1 (\"a\")", "NaN"}},
      {"inf", "a,b,label\n1,-inf,0\n", "", -1, {":2:", "column 2 (\"b\")", "infinite"}},
      {"float_range",
       "a,b,label\n1,1e39,0\n",
       "",
       -1,
       {":2:", "column 2 (\"b\")", "float32 range"}},
      {"double_range", "a,b,label\n1,1e999,0\n", "", -1, {":2:", "column 2 (\"b\")", "infinite"}},
      {"label_missing",
       "a,b,label\n1,2,0\n",
       "class",
       -1,
       {":1:", "\"class\" not found", "\"a\", \"b\", \"label\""}},
      {"label_index", "a,b,label\n1,2,0\n", "", 3, {":1:", "index 3", "3 columns"}},
      {"label_fraction",
       "a,b,label\n1,2,0\n1,2,1.5\n",
       "",
       -1,
       {":3:", "column 3 (\"label\")", "\"1.5\"", "not an integer"}},
      {"label_negative",
       "a,b,label\n1,2,-1\n",
       "",
       -1,
       {":2:", "column 3 (\"label\")", "-1", "negative"}},
      {"label_text",
       "a,b,label\n1,2,cat\n",
       "",
       -1,
       {":2:", "column 3 (\"label\")", "non-numeric", "\"cat\""}},
      {"label_nan", "a,b,label\n1,2,nan\n", "", -1, {":2:", "column 3", "not an integer"}},
      {"only_label", "label\n1\n", "", -1, {"no feature columns", "\"label\""}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.write(std::string(c.name) + ".csv", c.text);
    std::vector<std::string> parts = c.parts;
    parts.push_back("read_csv");
    parts.push_back(path);
    const CsvOptions options{.label_column = c.label_column, .label_index = c.label_index};
    expect_error([&] { read_csv(path, options); }, parts);
  }
  expect_error([&] { read_csv(dir.file("missing.csv")); },
               {"read_csv", "cannot open", "missing.csv"});
}

// Failures of the file itself name the path and the reason. Before, read_csv read through an
// unchecked std::ifstream: a read error (EIO from /proc/self/mem) looked like the end of the
// file ("empty file (expected a header row)"), and a path under a regular file said only
// "cannot open".
TEST(DataCsvTest, FileErrorsNameThePathAndTheReason) {
  ScratchDir dir;
  expect_error([] { read_csv("/proc/self/mem"); },
               {"read_csv", "/proc/self/mem", "Input/output error"});
  const std::string file = dir.write("file.csv", "a,label\n1,0\n");
  expect_error([&] { read_csv(file + "/x.csv"); },
               {"read_csv", "cannot open", file + "/x.csv", "Not a directory"});
  expect_error([&] { read_csv(dir.file("missing.csv")); },
               {"read_csv", "cannot open", "missing.csv", "No such file or directory"});
  expect_error([&] { read_csv(dir.path().string()); }, {"read_csv", "is a directory"});
}

// Reading a file with \n, \r\n, blank lines and no final newline from memory gives the same
// rows as before (line numbers count every line).
TEST(DataCsvTest, LineEndingsAndLineNumbers) {
  ScratchDir dir;
  const auto d = read_csv(dir.write("mixed.csv", "a,b,label\r\n1,2,0\n\n  \r\n3,4,1"));
  EXPECT_EQ(d.features.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  expect_error([&] { read_csv(dir.write("bad.csv", "a,label\n1,0\n\n\nx,1\n")); },
               {"bad.csv:5", "non-numeric value \"x\""});
}

}  // namespace
