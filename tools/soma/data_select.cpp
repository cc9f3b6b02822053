#include "data_select.h"

#include <algorithm>
#include <future>
#include <thread>

#include "soma/core/clock.h"
#include "soma/core/error.h"
#include "soma/core/threading.h"
#include "soma/data/csv.h"
#include "soma/data/idx.h"
#include "soma/dist/dist.h"

namespace soma::cli {

const std::vector<std::string>& fashion_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

namespace {

// A DataLoader worker thread helps only when the compute pool leaves a core free; with
// every core busy it competes with the pool (-5 % samples/s on 2 cores, docs/PERFORMANCE.md).
// Under mpirun the ranks on a node share its cores.
bool spare_core() {
  const int cores = available_cpus() / dist::local_size();
  return get_num_threads() < cores;
}

constexpr int64_t kCropPadding = 2;  // --augment crop: zeros on every side, then a random crop

// The per-sample shape of the model's inputs (see select_data).
std::vector<int64_t> sample_shape(const TrainConfig& c, const Data& all, bool flat_model) {
  const int64_t features = all.x.size(1);
  if (!c.input_shape.empty()) {
    int64_t n = 1;
    for (int64_t d : c.input_shape) n *= d;
    SOMA_CHECK(n == features, "train: --input-shape ", c.input_shape, " has ", n,
               " elements, the samples of ", c.csv.empty() ? c.data : c.csv, " have ", features);
    if (c.arch != "mlp") return c.input_shape;  // the MLP's samples stay flat
  }
  if (all.side > 0 && !flat_model) return {1, all.side, all.side};
  return {features};
}

// The image view of flat samples for --augment: --input-shape C,H,W, or IDX images.
std::vector<int64_t> image_view(const TrainConfig& c, const Data& all) {
  if (c.input_shape.size() == 3) return c.input_shape;
  if (all.side > 0) return {1, all.side, all.side};
  return {};
}

// CSV statistics: one mean/std per feature column of flat samples, or per channel (the first
// dimension of the sample shape) for images.
data::Normalization fit_csv(const Tensor& x, const std::vector<int64_t>& shape) {
  if (shape.size() <= 1) return data::Normalization::fit_per_feature(x);
  const int64_t n = x.size(0), channels = shape[0], per_channel = x.size(1) / channels;
  return data::Normalization::fit_per_feature(x.reshape({n, channels, per_channel})
                                                  .permute({0, 2, 1})
                                                  .contiguous()
                                                  .reshape({n * per_channel, channels}));
}

}  // namespace

Data load_data(const std::string& dir, const std::string& csv, const std::string& label_column,
               const std::string& split) {
  Data d;
  if (!csv.empty()) {
    data::CsvOptions o;
    o.label_column = label_column;
    data::CsvData c = data::read_csv(csv, o);
    d.x = c.features;
    d.y = c.labels;
    return d;
  }
  data::MnistSplit m = data::load_mnist(dir, split);
  SOMA_CHECK(m.images.dim() == 3 && m.images.size(1) == m.images.size(2), "data: ", dir,
             ": expected square images, got shape ", m.images.shape());
  d.side = m.images.size(1);
  d.x = m.images.reshape({m.images.size(0), -1});
  d.y = m.labels;
  return d;
}

data::transforms::Transform normalizer(const data::Normalization& norm) {
  return norm.transform();
}

data::transforms::Transform model_input(const data::Normalization& norm,
                                        const std::vector<int64_t>& input_shape,
                                        const std::vector<std::string>& augment,
                                        const std::vector<int64_t>& image) {
  namespace T = data::transforms;
  const bool flat = input_shape.size() <= 1;
  if (flat && augment.empty()) return normalizer(norm);
  const std::vector<int64_t> view = flat ? image : input_shape;  // what the augmentation sees
  std::vector<T::Transform> stages;
  if (view.size() > 1) stages.push_back(T::Reshape(view));
  for (const std::string& a : augment) {
    SOMA_CHECK(view.size() == 3, "train: --augment ", a,
               " needs images: IDX data, or CSV data with --input-shape C,H,W");
    if (a == "crop") {
      SOMA_CHECK(view[1] == view[2], "train: --augment crop needs square images, got ", view);
      stages.push_back(T::RandomCrop(view[1], kCropPadding));
    } else if (a == "flip") {
      stages.push_back(T::RandomHorizontalFlip(0.5));
    } else {
      detail::fail("train: unknown --augment '", a, "'");
    }
  }
  if (flat) {  // per-feature statistics apply to flat rows
    stages.push_back(T::Reshape(input_shape));
    stages.push_back(normalizer(norm));
  } else {
    stages.push_back(normalizer(norm));
  }
  return T::Compose(std::move(stages));
}

TrainData select_data(const TrainConfig& c, int world, int rank, bool flat_model) {
  // A seeded validation split of the training set; normalisation from the training part.
  const detail::Stopwatch load_clock;
  // The test split decompresses on a second thread while the training split does on this one.
  std::future<Data> test_future;
  if (c.csv.empty())
    test_future =
        std::async(std::launch::async, [&c] { return load_data(c.data, "", "", "test"); });
  Data all = load_data(c.data, c.csv, c.label_column, "train");
  Data test = test_future.valid() ? test_future.get() : Data{};
  auto [train_set, val_set] =
      data::train_val_split(data::TensorDataset(all.x, all.y), c.validation, c.seed);
  if (!c.csv.empty()) test = Data{val_set.x(), val_set.y(), 0};  // CSV: the held-out part
  const std::vector<int64_t> shape = sample_shape(c, all, flat_model);
  // Images: one mean/std for all pixels; CSV columns: one per feature (their scales differ),
  // or one per channel.
  SOMA_CHECK(c.augment.empty() || image_view(c, all).size() == 3 || shape.size() == 3,
             "train: --augment ", c.augment.front(),
             " needs images: IDX data, or CSV data with --input-shape C,H,W");
  const data::Normalization norm =
      c.csv.empty() ? data::Normalization::fit(train_set.x()) : fit_csv(train_set.x(), shape);
  const data::transforms::Transform input = model_input(norm, shape);
  const int64_t max_label = all.y.max().item<int64_t>();
  constexpr int64_t kMaxClasses = int64_t{1} << 20;
  SOMA_CHECK(max_label < kMaxClasses, "train: label ", max_label, " means ", max_label + 1,
             " classes; labels are class ids 0..N-1 with N at most ", kMaxClasses);
  const int64_t classes = std::max<int64_t>(2, max_label + 1);
  data::DataLoader train_loader(
      train_set, {.batch_size = c.batch_size,
                  .shuffle = true,
                  .seed = c.seed,
                  .drop_last = false,
                  .num_workers = spare_core() ? 1 : 0,
                  .transform = model_input(norm, shape, c.augment, image_view(c, all)),
                  .num_replicas = world,
                  .rank = rank});
  data::DataLoader val_loader(
      val_set, {.batch_size = kEvalBatch, .transform = input, .num_replicas = world, .rank = rank});
  data::DataLoader test_loader(data::TensorDataset(test.x, test.y),
                               {.batch_size = kEvalBatch, .transform = input});
  return TrainData{.train_set = train_set,
                   .val_set = val_set,
                   .test = test,
                   .norm = norm,
                   .input_shape = shape,
                   .input = input,
                   .in_features = all.x.size(1),
                   .classes = classes,
                   .class_names = c.csv.empty() && classes == 10 ? fashion_class_names()
                                                                 : std::vector<std::string>{},
                   .train_loader = std::move(train_loader),
                   .val_loader = std::move(val_loader),
                   .test_loader = std::move(test_loader),
                   .load_seconds = load_clock.seconds()};
}

}  // namespace soma::cli
