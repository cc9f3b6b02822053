// Which data `soma` reads: Fashion-MNIST or other IDX files, or a CSV file. For training also
// the seeded validation split, the normalisation statistics, the class count and the loaders.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "soma/data/dataloader.h"
#include "soma/data/dataset.h"

namespace soma::cli {

struct Data {
  Tensor x;          // [N, F] uint8 (images) or float32 (CSV)
  Tensor y;          // [N] int64
  int64_t side = 0;  // image side (28) or 0
};

/// The IDX files in `dir` (split "train" or "test"), or the CSV file `csv` when given.
Data load_data(const std::string& dir, const std::string& csv, const std::string& label_column,
               const std::string& split);

/// A DataLoader transform that normalises the inputs.
data::transforms::Transform normalizer(const data::Normalization& norm);

struct TrainData {
  data::TensorDataset train_set, val_set;  // the seeded split of the training data
  Data test;                               // the test split (CSV: the held-out part)
  data::Normalization norm;                // fitted on train_set
  int64_t in_features = 0, classes = 0;
  std::vector<std::string> class_names;  // Fashion-MNIST's, for the report; else none
  data::DataLoader train_loader, val_loader, test_loader;
  double load_seconds = 0;
};

/// The data of the run: this rank's shard of the training and validation loaders under
/// mpirun (`world` ranks).
TrainData select_data(const TrainConfig& c, int world, int rank);

}  // namespace soma::cli
