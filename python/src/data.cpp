// soma.data from Python: datasets (TensorDataset over tensors or NumPy arrays, Python datasets
// with __len__ and __getitem__, Subset, random_split), the DataLoader, the batch transforms, and
// the IDX / Fashion-MNIST / CSV readers.
//
// The GIL: the loader advances (builds batches, waits for its workers) with the GIL released; a
// Python dataset or transform is called by whichever thread needs it with the GIL taken, so
// C++ workers never touch Python without it.
#include "soma_py.h"

namespace soma::python {
namespace {

namespace T = soma::data::transforms;

// A tensor from a tensor or anything soma.tensor accepts (NumPy arrays share memory when they
// can: soma.from_numpy).
Tensor as_tensor(py::handle h) {
  if (py::isinstance<Tensor>(h)) return h.cast<Tensor>();
  if (py::hasattr(h, "__array_interface__") && py::hasattr(h, "dtype")) {
    try {  // shares the array's memory
      return py::module_::import("soma").attr("from_numpy")(h).cast<Tensor>();
    } catch (const py::error_already_set&) {
    } catch (const Error&) {
    }
  }
  return tensor_from_data(h, std::nullopt);  // a copy
}

// A Python dataset: __len__ and __getitem__(i) -> (x, y) (tensors, arrays or numbers).
class PyDataset : public data::Dataset {
 public:
  explicit PyDataset(py::object ds) : ds_(std::make_shared<PyRef>(std::move(ds))) {}
  int64_t size() const override {
    py::gil_scoped_acquire g;
    return py::len(ds_->get());
  }
  data::Example get(int64_t index) const override {
    py::gil_scoped_acquire g;
    py::object item = ds_->get().attr("__getitem__")(index);
    if (py::isinstance<py::tuple>(item) || py::isinstance<py::list>(item)) {
      py::sequence s = item;
      SOMA_CHECK(s.size() == 2, "DataLoader: a dataset item must be (x, y) or x, got ", s.size(),
                 " values at index ", index);
      return {as_tensor(s[0]), as_tensor(s[1])};
    }
    return {as_tensor(item), Tensor()};
  }

 private:
  std::shared_ptr<PyRef> ds_;
};

// A Python callable as a batch transform (x -> x), called with the GIL.
class PyStage : public T::Stage {
 public:
  explicit PyStage(py::object fn) : fn_(std::make_shared<PyRef>(std::move(fn))) {}
  Tensor apply(const Tensor& x, const T::Context&) const override {
    py::gil_scoped_acquire g;
    return as_tensor(fn_->get()(x));
  }

 private:
  std::shared_ptr<PyRef> fn_;
};

std::shared_ptr<const data::Dataset> dataset_of(py::handle ds) {
  if (py::isinstance<data::Dataset>(ds)) return ds.cast<std::shared_ptr<data::Dataset>>();
  SOMA_CHECK(py::hasattr(ds, "__len__") && py::hasattr(ds, "__getitem__"),
             "DataLoader: the dataset must be a soma.data.Dataset or have __len__ and "
             "__getitem__, got ",
             std::string(py::str(ds.get_type().attr("__name__"))));
  return std::make_shared<PyDataset>(py::reinterpret_borrow<py::object>(ds));
}

T::Transform transform_of(py::handle h) {
  if (h.is_none()) return {};
  if (py::isinstance<T::Transform>(h)) return h.cast<T::Transform>();
  SOMA_CHECK(PyCallable_Check(h.ptr()),
             "DataLoader: transform must be a soma.data.transforms "
             "stage or a callable, got ",
             std::string(py::str(h.get_type().attr("__name__"))));
  return T::Transform(std::make_shared<const PyStage>(py::reinterpret_borrow<py::object>(h)));
}

/// The Python iterator over one pass of a loader.
struct LoaderIter {
  std::shared_ptr<data::DataLoader> loader;
  data::DataLoader::Iterator it;
  bool started = false;
  int64_t epoch = 0;  // the epoch this pass runs

  LoaderIter(std::shared_ptr<data::DataLoader> l) : loader(std::move(l)) {}
  LoaderIter(LoaderIter&&) = default;
  LoaderIter(const LoaderIter&) = delete;
  // A pass left early (a `break`): its workers stop with the GIL released (one inside a
  // Python dataset's __getitem__ needs it to finish), and the next pass reshuffles, as a new
  // torch iterator does (the C++ loader keeps the epoch of a pass left early, for resume).
  ~LoaderIter() {
    if (!started || it == data::DataLoader::Iterator() || !loader) return;
    if (Py_IsInitialized() && PyGILState_Check()) {
      py::gil_scoped_release release;
      it = data::DataLoader::Iterator();
    } else {
      it = data::DataLoader::Iterator();
    }
    if (loader->epoch() == epoch) loader->set_epoch(epoch + 1);
  }
};

py::object batch_object(const data::Batch& b) {
  if (!b.y.defined()) return wrap(b.x);
  return py::make_tuple(b.x, b.y);
}

}  // namespace

void bind_data(py::module_& m) {
  py::module_ d = m.def_submodule("data", "soma.data: datasets, DataLoader, transforms, readers.");

  py::class_<data::Dataset, std::shared_ptr<data::Dataset>>(
      d, "Dataset",
      "The base of soma's datasets; any Python object with __len__ and "
      "__getitem__ works as one too.")
      .def("__len__", &data::Dataset::size)
      .def("__getitem__", [](const data::Dataset& ds, int64_t i) -> py::object {
        if (i < 0) i += ds.size();
        SOMA_CHECK(i >= 0 && i < ds.size(), "Dataset: index ", i, " out of range for ", ds.size(),
                   " samples");
        data::Example e = ds.get(i);
        if (!e.y.defined()) return wrap(e.x);
        return py::make_tuple(e.x, e.y);
      });
  py::class_<data::TensorDataset, data::Dataset, std::shared_ptr<data::TensorDataset>>(
      d, "TensorDataset",
      "(x[i], y[i]) for tensors or NumPy arrays x [N, ...] and y [N, ...] "
      "(torch.utils.data.TensorDataset of two tensors; arrays are shared, not copied).")
      .def(py::init([](const py::args& tensors) {
        SOMA_CHECK(tensors.size() == 2, "TensorDataset: takes two tensors (inputs, targets), got ",
                   tensors.size());
        return std::make_shared<data::TensorDataset>(as_tensor(tensors[0]), as_tensor(tensors[1]));
      }))
      .def_property_readonly(
          "tensors", [](const data::TensorDataset& ds) { return py::make_tuple(ds.x(), ds.y()); });
  py::class_<data::Subset, data::Dataset, std::shared_ptr<data::Subset>>(
      d, "Subset", "The samples of a dataset at given indices.")
      .def(py::init([](py::object ds, std::vector<int64_t> indices) {
             return std::make_shared<data::Subset>(dataset_of(ds), std::move(indices));
           }),
           py::arg("dataset"), py::arg("indices"))
      .def_property_readonly("indices", &data::Subset::indices);
  d.def(
      "random_split",
      [](py::object ds, std::vector<int64_t> lengths, uint64_t seed) {
        return data::random_split(dataset_of(ds), lengths, seed);
      },
      py::arg("dataset"), py::arg("lengths"), py::arg("seed") = 0,
      "Disjoint Subsets of the given lengths from a permutation drawn with `seed` "
      "(torch.utils.data.random_split; soma takes a seed rather than a generator).");
  d.def("train_val_split", &data::train_val_split, py::arg("dataset"), py::arg("val_fraction"),
        py::arg("seed") = 0,
        "(train, validation) TensorDatasets: round(N * val_fraction) samples go to validation.");

  // ---- transforms ----------------------------------------------------------------------------
  py::module_ t = d.def_submodule("transforms", "soma.data.transforms (torchvision's names).");
  py::class_<T::Transform>(t, "Transform", "A batch transform x [N, ...] -> x [N, ...].")
      .def(
          "__call__", [](const T::Transform& tr, const Tensor& x) { return tr(x); }, py::arg("x"));
  t.def(
      "Normalize",
      [](std::vector<double> mean, std::vector<double> std, double scale) {
        return T::Transform(T::Normalize(std::move(mean), std::move(std), scale));
      },
      py::arg("mean"), py::arg("std"), py::arg("scale") = 1.0,
      "((x * scale) - mean[c]) / std[c] per channel (scale 1/255 for uint8 pixels).");
  t.def(
      "RandomCrop",
      [](int64_t size, int64_t padding) { return T::Transform(T::RandomCrop(size, padding)); },
      py::arg("size"), py::arg("padding") = 0, "Zero-pad then crop size x size at random.");
  t.def(
      "RandomHorizontalFlip", [](double p) { return T::Transform(T::RandomHorizontalFlip(p)); },
      py::arg("p") = 0.5);
  t.def(
      "Reshape", [](std::vector<int64_t> shape) { return T::Transform(T::Reshape(shape)); },
      py::arg("sample_shape"), "Views each sample with a new shape.");
  t.def(
      "Lambda", [](py::object fn) { return transform_of(fn); }, py::arg("fn"),
      "A Python function of the batch x.");
  t.def(
      "Compose",
      [](py::iterable stages) {
        std::vector<T::Transform> v;
        for (py::handle s : stages) v.push_back(transform_of(s));
        return T::Transform(T::Compose(std::move(v)));
      },
      py::arg("transforms"));

  // ---- DataLoader -----------------------------------------------------------------------------
  py::class_<LoaderIter>(d, "_LoaderIterator")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", [](LoaderIter& it) -> py::object {
        {
          py::gil_scoped_release release;  // workers may need the GIL (Python datasets)
          if (!it.started) {
            it.epoch = it.loader->epoch();
            it.it = it.loader->begin();
            it.started = true;
          } else {
            ++it.it;
          }
        }
        if (it.it == it.loader->end()) throw py::stop_iteration();
        return batch_object(*it.it);
      });
  py::class_<data::DataLoader, std::shared_ptr<data::DataLoader>>(
      d, "DataLoader",
      "Mini-batches (x, y) of a dataset (torch.utils.data.DataLoader's arguments; the shuffle "
      "order of epoch e depends only on (seed, e)).")
      .def(py::init([](py::object dataset, int64_t batch_size, bool shuffle, int64_t num_workers,
                       bool drop_last, uint64_t seed, py::object transform,
                       int64_t prefetch_factor) {
             data::DataLoaderOptions o;
             o.batch_size = batch_size;
             o.shuffle = shuffle;
             o.num_workers = num_workers;
             o.drop_last = drop_last;
             o.seed = seed;
             o.transform = transform_of(transform);
             o.prefetch_factor = prefetch_factor;
             return std::make_shared<data::DataLoader>(dataset_of(dataset), o);
           }),
           py::arg("dataset"), py::arg("batch_size") = 1, py::arg("shuffle") = false,
           py::arg("num_workers") = 0, py::arg("drop_last") = false, py::kw_only(),
           py::arg("seed") = 0, py::arg("transform") = py::none(), py::arg("prefetch_factor") = 2)
      .def("__iter__", [](std::shared_ptr<data::DataLoader> self) { return LoaderIter(self); })
      .def("__len__", &data::DataLoader::size, "Batches per epoch.")
      .def_property_readonly("epoch", &data::DataLoader::epoch)
      .def("set_epoch", &data::DataLoader::set_epoch, py::arg("epoch"));

  // ---- readers and statistics ------------------------------------------------------------------
  d.def("read_idx", &data::read_idx, py::arg("path"),
        "An IDX file (MNIST's format, plain or .gz) as a tensor.");
  d.def(
      "load_mnist",
      [](const std::string& dir, const std::string& split) {
        data::MnistSplit s = data::load_mnist(dir, split);
        return py::make_tuple(s.images, s.labels);
      },
      py::arg("root") = "/usr/share/datasets/fashion-mnist", py::arg("split") = "train",
      "(images uint8 [N, 28, 28], labels int64 [N]) of an MNIST-format split ('train' or "
      "'test'); the default root is Debian's Fashion-MNIST.");
  d.def(
      "FashionMNIST",
      [](const std::string& root, bool train) {
        data::MnistSplit s = data::load_mnist(root, train ? "train" : "test");
        return std::make_shared<data::TensorDataset>(s.images, s.labels);
      },
      py::arg("root") = "/usr/share/datasets/fashion-mnist", py::arg("train") = true,
      "Fashion-MNIST as a TensorDataset of uint8 images [N, 28, 28] and int64 labels.");
  d.def(
      "read_csv",
      [](const std::string& path, std::optional<std::string> label_column, int64_t label_index,
         const std::string& delimiter) {
        SOMA_CHECK(delimiter.size() == 1, "read_csv: delimiter must be one character, got '",
                   delimiter, "'");
        data::CsvOptions o;
        if (label_column) o.label_column = *label_column;
        o.label_index = label_index;
        o.delimiter = delimiter[0];
        data::CsvData c = data::read_csv(path, o);
        return py::make_tuple(c.features, c.labels, c.feature_names);
      },
      py::arg("path"), py::arg("label_column") = py::none(), py::arg("label_index") = -1,
      py::arg("delimiter") = ",",
      "(features float32 [N, F], labels int64 [N], feature names) of a CSV file with a header.");
  py::class_<data::Normalization>(d, "Normalization",
                                  "Standardisation statistics; transform() applies them.")
      .def_static("fit", &data::Normalization::fit, py::arg("x"))
      .def_static("fit_per_feature", &data::Normalization::fit_per_feature, py::arg("x"))
      .def_readwrite("mean", &data::Normalization::mean)
      .def_readwrite("std", &data::Normalization::std)
      .def_readwrite("scale", &data::Normalization::scale)
      .def_readwrite("feature_mean", &data::Normalization::feature_mean)
      .def_readwrite("feature_std", &data::Normalization::feature_std)
      .def("transform", [](const data::Normalization& n) { return T::Transform(n.transform()); });
}

}  // namespace soma::python
