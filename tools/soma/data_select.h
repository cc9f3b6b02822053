// Which data `soma` reads: Fashion-MNIST or other IDX files, or a CSV file. For training also
// the seeded validation split, the normalisation statistics, the class count and the loaders.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "soma/data/dataloader.h"
#include "soma/data/dataset.h"

namespace soma::cli {

/// The batch of every evaluation pass (validation, test, `soma eval` and `predict`): the largest
/// batch of a convolutional model sets the peak memory (its first layer's activations at 1024
/// images are 100 MB per tensor), and evaluation speed per image hardly depends on the batch
/// past a few hundred.
inline constexpr int64_t kEvalBatch = 256;

struct Data {
  Tensor x;          // [N, F] uint8 (images) or float32 (CSV)
  Tensor y;          // [N] int64
  int64_t side = 0;  // image side (28) or 0
};

/// The IDX files in `dir` (split "train" or "test"), or the CSV file `csv` when given.
Data load_data(const std::string& dir, const std::string& csv, const std::string& label_column,
               const std::string& split);

/// Fashion-MNIST's ten class names (the report's and `soma export`'s for IDX data).
const std::vector<std::string>& fashion_class_names();
/// A DataLoader transform that normalises the inputs.
data::transforms::Transform normalizer(const data::Normalization& norm);

/// What turns rows of data [N, F] into a model's inputs [N, input_shape...]: the reshape (for
/// a shape of rank > 1), the augmentation (--augment: "crop" is RandomCrop(H, padding 2),
/// "flip" RandomHorizontalFlip(0.5), on the raw pixels; flat samples are viewed as `image`
/// [C, H, W] for them) and the normalisation. For flat inputs without augmentation it is
/// normalizer(norm) itself.
data::transforms::Transform model_input(const data::Normalization& norm,
                                        const std::vector<int64_t>& input_shape,
                                        const std::vector<std::string>& augment = {},
                                        const std::vector<int64_t>& image = {});

struct TrainData {
  data::TensorDataset train_set, val_set;  // the seeded split of the training data
  Data test;                               // the test split (CSV: the held-out part)
  data::Normalization norm;                // fitted on train_set
  std::vector<int64_t> input_shape;        // one sample as the model sees it: [F] or [C, H, W]
  data::transforms::Transform input;       // model_input() without augmentation: test inputs
  int64_t in_features = 0, classes = 0;
  std::vector<std::string> class_names;  // Fashion-MNIST's, for the report; else none
  data::DataLoader train_loader, val_loader, test_loader;
  double load_seconds = 0;
};

/// The data of the run: this rank's shard of the training and validation loaders under
/// mpirun (`world` ranks). The samples' shape is --input-shape when given (except for --arch
/// mlp, whose samples are flat: there it is the image view for --augment), else [1, side, side]
/// for IDX images unless `flat_model` (a model whose first layer is a Linear), else [F].
/// Normalisation: IDX images one mean/std; CSV one per feature column (flat samples) or one per
/// channel (dimension 0 of --input-shape).
TrainData select_data(const TrainConfig& c, int world, int rank, bool flat_model = true);

}  // namespace soma::cli
