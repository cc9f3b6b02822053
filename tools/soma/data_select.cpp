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
namespace {

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

// A DataLoader worker thread helps only when the compute pool leaves a core free; with
// every core busy it competes with the pool (-5 % samples/s on 2 cores, docs/PERFORMANCE.md).
// Under mpirun the ranks on a node share its cores.
bool spare_core() {
  const int cores = available_cpus() / dist::local_size();
  return get_num_threads() < cores;
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

TrainData select_data(const TrainConfig& c, int world, int rank) {
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
  // Images: one mean/std for all pixels; CSV columns: one per feature (their scales differ).
  const data::Normalization norm = c.csv.empty()
                                       ? data::Normalization::fit(train_set.x())
                                       : data::Normalization::fit_per_feature(train_set.x());
  const int64_t max_label = all.y.max().item<int64_t>();
  constexpr int64_t kMaxClasses = int64_t{1} << 20;
  SOMA_CHECK(max_label < kMaxClasses, "train: label ", max_label, " means ", max_label + 1,
             " classes; labels are class ids 0..N-1 with N at most ", kMaxClasses);
  const int64_t classes = std::max<int64_t>(2, max_label + 1);
  data::DataLoader train_loader(train_set, {.batch_size = c.batch_size,
                                            .shuffle = true,
                                            .seed = c.seed,
                                            .drop_last = false,
                                            .num_workers = spare_core() ? 1 : 0,
                                            .transform = normalizer(norm),
                                            .num_replicas = world,
                                            .rank = rank});
  data::DataLoader val_loader(
      val_set,
      {.batch_size = 1024, .transform = normalizer(norm), .num_replicas = world, .rank = rank});
  data::DataLoader test_loader(data::TensorDataset(test.x, test.y),
                               {.batch_size = 1024, .transform = normalizer(norm)});
  return TrainData{
      .train_set = train_set,
      .val_set = val_set,
      .test = test,
      .norm = norm,
      .in_features = all.x.size(1),
      .classes = classes,
      .class_names = c.csv.empty() && classes == 10 ? kFashionNames : std::vector<std::string>{},
      .train_loader = std::move(train_loader),
      .val_loader = std::move(val_loader),
      .test_loader = std::move(test_loader),
      .load_seconds = load_clock.seconds()};
}

}  // namespace soma::cli
