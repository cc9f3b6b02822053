"""soma.data (datasets, loader, transforms, readers) and soma.train (fit, evaluate, callbacks),
soma.save / soma.load and soma.onnx from Python."""
import os
import signal

import pytest
import soma
import soma.nn as nn
import soma.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"


def blobs(n=200, seed=0):
    """Three Gaussian blobs in 4-d: x float32 [n, 4], y int64 [n]."""
    soma.manual_seed(seed)
    y = soma.randint(0, 3, (n,))
    centers = soma.tensor([[2.0, 0, 0, 1], [0, 2.0, 0, -1], [0, 0, 2.0, 0]])
    return centers[y] + soma.randn(n, 4) * 0.5, y


def test_tensor_dataset_over_numpy_shares_memory(np):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.arange(6, dtype=np.int64)
    ds = soma.data.TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[2]
    assert xi.tolist() == [4.0, 5.0] and yi.item() == 2
    x[2, 0] = 100.0
    assert ds[2][0].tolist() == [100.0, 5.0]  # the array's memory, not a copy
    with pytest.raises(soma.Error, match="two tensors"):
        soma.data.TensorDataset(x)
    with pytest.raises(soma.Error, match="out of range"):
        ds[6]


def test_loader_batches_shuffle_and_drop_last():
    x, y = soma.arange(10).float().reshape(10, 1), soma.arange(10)
    ds = soma.data.TensorDataset(x, y)
    plain = [yb.tolist() for _, yb in soma.data.DataLoader(ds, batch_size=4)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(soma.data.DataLoader(ds, batch_size=4, drop_last=True)) == 2
    a = soma.data.DataLoader(ds, batch_size=3, shuffle=True, seed=7)
    b = soma.data.DataLoader(ds, batch_size=3, shuffle=True, seed=7)
    e0 = [v for _, yb in a for v in yb.tolist()]
    assert e0 == [v for _, yb in b for v in yb.tolist()]  # same seed, same order
    assert sorted(e0) == list(range(10)) and e0 != list(range(10))
    e1 = [v for _, yb in a for v in yb.tolist()]  # the next epoch reshuffles
    assert sorted(e1) == list(range(10)) and e1 != e0
    assert a.epoch == 2


def test_python_dataset_and_transform_with_workers(np):
    class Squares:
        def __len__(self):
            return 9

        def __getitem__(self, i):
            return np.full((2,), i * i, dtype=np.float32), i

    seen = []

    def double(x):
        seen.append(x.shape[0])
        return x * 2

    loader = soma.data.DataLoader(Squares(), batch_size=4, num_workers=2, transform=double)
    xs = [xb for xb, _ in loader]
    assert [x.shape[0] for x in xs] == [4, 4, 1] and sorted(seen) == [1, 4, 4]
    assert xs[1][:, 0].tolist() == [32.0, 50.0, 72.0, 98.0]
    with pytest.raises(soma.Error, match="__len__"):
        soma.data.DataLoader(3)


def test_transforms_and_normalization():
    T = soma.data.transforms
    x = soma.arange(8).float().reshape(2, 1, 2, 2)
    t = T.Compose([T.Normalize([1.0], [2.0]), T.Reshape([4])])
    assert t(x).tolist() == [[-0.5, 0.0, 0.5, 1.0], [1.5, 2.0, 2.5, 3.0]]
    flip = T.RandomHorizontalFlip(1.0)(x)
    assert flip[0, 0].tolist() == [[1.0, 0.0], [3.0, 2.0]]
    n = soma.data.Normalization.fit(soma.tensor([[0, 255]], dtype=soma.uint8))
    assert n.scale == pytest.approx(1 / 255) and n.mean == pytest.approx(0.5)


def test_random_split_and_subset():
    ds = soma.data.TensorDataset(soma.randn(10, 2), soma.arange(10))
    a, b = soma.data.random_split(ds, [7, 3], seed=1)
    ids = sorted(a.indices + b.indices)
    assert len(a) == 7 and len(b) == 3 and ids == list(range(10))
    tr, va = soma.data.train_val_split(ds, 0.2, 0)
    assert (len(tr), len(va)) == (8, 2)


def test_readers(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,2,0\n3,4,1\n")
    x, y, names = soma.data.read_csv(str(csv), label_column="label")
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and y.tolist() == [0, 1] and names == ["a", "b"]
    with pytest.raises(soma.Error, match="d.csv"):
        soma.data.read_csv(str(csv), label_column="nope")
    with pytest.raises(soma.Error, match="missing.idx"):
        soma.data.read_idx(str(tmp_path / "missing.idx"))
    if not os.path.exists(FASHION):
        if os.environ.get("CI"):
            pytest.fail("CI needs Fashion-MNIST (dataset-fashion-mnist)")
        pytest.skip("no Fashion-MNIST in " + FASHION)
    images, labels = soma.data.load_mnist(FASHION, "test")
    assert images.shape == (10000, 28, 28) and images.dtype is soma.uint8
    assert labels.shape == (10000,) and int(labels.max()) == 9
    assert len(soma.data.FashionMNIST(train=False)) == 10000


def make_model():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def test_fit_equals_the_python_loop():
    """soma.fit's epoch is zero_grad, forward, loss, backward, step per batch: a Python loop
    over the same loader from the same weights ends with the same weights, bit for bit."""
    x, y = blobs()
    ds = soma.data.TensorDataset(x, y)
    soma.manual_seed(1)
    a = make_model()
    soma.manual_seed(1)
    b = make_model()
    opt_a = soma.optim.Adam(a.parameters(), lr=1e-2)
    opt_b = soma.optim.Adam(b.parameters(), lr=1e-2)
    h = soma.fit(a, opt_a, nn.CrossEntropyLoss(), soma.data.DataLoader(ds, 32, True, seed=3),
                 epochs=3, verbose=False)
    loader = soma.data.DataLoader(ds, 32, True, seed=3)
    for _ in range(3):
        for xb, yb in loader:
            opt_b.zero_grad()
            F.cross_entropy(b(xb), yb).backward()
            opt_b.step()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and soma.equal(va, vb), ka
    assert len(h) == 3 and h["loss"][2] < h["loss"][0]
    assert {"loss", "accuracy", "lr"} <= set(h.keys())
    assert h.history["accuracy"] == h["accuracy"]


def test_fit_with_validation_callbacks_and_python_loss(capsys):
    x, y = blobs(300)
    train = soma.data.DataLoader(soma.data.TensorDataset(x[:240], y[:240]), 24, True)
    val = soma.data.DataLoader(soma.data.TensorDataset(x[240:], y[240:]), 60)
    model = make_model()
    calls = []

    class Recorder(soma.train.Callback):
        def on_train_begin(self, state):
            calls.append("begin")

        def on_epoch_end(self, state, epoch, logs):
            calls.append((epoch, round(logs["val_accuracy"], 6)))
            if epoch == 3:
                state.stop_training = True

    es = soma.train.EarlyStopping(patience=100)
    h = soma.fit(model, soma.optim.SGD(model.parameters(), lr=0.1), lambda o, t: F.cross_entropy(o, t),
                 train, epochs=10, validation=val, callbacks=[Recorder(), es])
    assert calls[0] == "begin" and [c[0] for c in calls[1:]] == [0, 1, 2, 3]
    assert len(h) == 4 and h["val_accuracy"][-1] > 0.9
    assert "Epoch 4/10" in capsys.readouterr().out
    r = soma.evaluate(model, val, nn.CrossEntropyLoss())
    assert r.samples == 60 and r.accuracy == pytest.approx(h["val_accuracy"][es.best_epoch])


def test_early_stopping_restores_the_best_weights():
    x, y = blobs(120)
    train = soma.data.DataLoader(soma.data.TensorDataset(x, y), 120)
    model = make_model()
    es = soma.train.EarlyStopping(monitor="loss", patience=2, mode="max")  # loss goes down: stops
    h = soma.fit(model, soma.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), train,
                 epochs=50, callbacks=[es], verbose=False)
    assert es.stopped_epoch == 2 and es.best_epoch == 0 and len(h) == 3


def test_fit_errors():
    model = make_model()
    opt = soma.optim.SGD(model.parameters(), lr=0.1)
    x, y = blobs(20)
    loader = soma.data.DataLoader(soma.data.TensorDataset(x, y), 10)
    with pytest.raises(soma.Error, match="DataLoader"):
        soma.fit(model, opt, nn.CrossEntropyLoss(), [(x, y)])
    with pytest.raises(soma.Error, match="callbacks"):
        soma.fit(model, opt, nn.CrossEntropyLoss(), loader, callbacks=[3])
    with pytest.raises(soma.Error, match="non-finite loss"):
        soma.fit(model, opt, lambda o, t: F.cross_entropy(o, t) * float("nan"), loader,
                 verbose=False)
    with pytest.raises(ZeroDivisionError):  # a Python error in the loss surfaces as itself
        soma.fit(model, opt, lambda o, t: 1 / 0, loader, verbose=False)


def test_ctrl_c_stops_fit_after_the_batch(np):
    x, y = blobs(200)
    loader = soma.data.DataLoader(soma.data.TensorDataset(x, y), 10)
    model = make_model()
    batches = []

    class Interrupt(soma.train.Callback):
        def on_batch_end(self, state, batch, loss):
            batches.append(batch)
            if batch == 4:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        soma.fit(model, soma.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), loader,
                 epochs=5, callbacks=[Interrupt()], verbose=False)
    assert batches == [0, 1, 2, 3, 4]
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())


def test_ctrl_c_reaches_fit_running_in_cpp():
    """SIGINT while fit runs C++ only (no Python callback, loss or module): the per-batch
    signal check raises KeyboardInterrupt within a batch or two."""
    import threading
    import time
    x, y = blobs(2000)
    loader = soma.data.DataLoader(soma.data.TensorDataset(x, y), 20)
    model = make_model()
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        soma.fit(model, soma.optim.SGD(model.parameters(), lr=0.01), nn.CrossEntropyLoss(),
                 loader, epochs=100000, verbose=False)
    timer.join()
    assert time.perf_counter() - start < 5


def test_fit_releases_the_gil():
    """fit on a worker thread while this thread runs Python: holding the GIL, fit would stop
    this thread for the whole training (C++ never yields it); released, this thread never
    waits much longer than the interpreter's switch interval."""
    import threading
    import time
    soma.manual_seed(0)
    x, y = soma.randn(4096, 256), soma.randint(0, 10, (4096,))
    loader = soma.data.DataLoader(soma.data.TensorDataset(x, y), 512)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = soma.optim.SGD(model.parameters(), lr=0.01)
    window = {}

    def train():
        window["start"] = time.perf_counter()
        soma.fit(model, opt, nn.CrossEntropyLoss(), loader, epochs=4, verbose=False)
        window["end"] = time.perf_counter()

    t = threading.Thread(target=train)
    stamps = []
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    start, end = window["start"], window["end"]
    assert end - start > 0.05, end - start  # fit ran long enough to tell
    points = [start] + [s for s in stamps if start < s < end] + [end]
    longest = max(b - a for a, b in zip(points, points[1:]))
    assert longest < (end - start) / 4, (longest, end - start)


def test_save_load_and_onnx(tmp_path, np):
    model = make_model()
    path = str(tmp_path / "m.safetensors")
    soma.save(model, path)
    other = make_model()
    other.load_state_dict(soma.load(path))
    x = soma.randn(5, 4)
    assert soma.equal(other(x), model(x))
    soma.load(path, model=make_model())
    soma.save(model.state_dict(), path)
    assert sorted(soma.load(path)) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    soma.save(x, path)
    assert soma.equal(soma.load(path), x)
    with pytest.raises(soma.Error, match="save"):
        soma.save([1, 2], path)
    with pytest.raises(soma.Error):
        soma.save(model, str(tmp_path / "no" / "dir" / "m.safetensors"))
    onnx_path = str(tmp_path / "m.onnx")
    soma.onnx.export(model, x[:2], onnx_path, input_names=["features"])
    imported = soma.onnx.load(onnx_path)
    assert isinstance(imported, nn.Module) and imported.opset == 17
    np.testing.assert_allclose(imported(x).detach().numpy(), model(x).detach().numpy(),
                               atol=1e-6)
    with pytest.raises(soma.Error, match="onnx::load"):
        soma.onnx.load(path)  # a safetensors file is not ONNX


def test_plain_functions_and_lambda_callbacks():
    x, y = blobs(100)
    loader = soma.data.DataLoader(soma.data.TensorDataset(x, y), 25)
    model = make_model()
    epochs_seen, batches = [], []
    h = soma.fit(model, soma.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), loader,
                 epochs=10, verbose=False,
                 callbacks=[lambda e, logs: epochs_seen.append((e, logs["loss"])) or e == 2,
                            soma.train.LambdaCallback(on_batch_end=lambda b, l: batches.append(b))])
    assert [e for e, _ in epochs_seen] == [0, 1, 2] and len(h) == 3
    assert epochs_seen[0][1] == h["loss"][0]
    assert batches == [0, 1, 2, 3] * 3


def test_modules_pickle_through_arguments_and_state(tmp_path):
    import pickle
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(32, 3))
    model(soma.randn(4, 1, 4, 4))  # running statistics move
    model.eval()
    back = pickle.loads(pickle.dumps(model))
    x = soma.randn(2, 1, 4, 4)
    assert soma.equal(back(x), model(x)) and not back.training
    assert repr(back) == repr(model)
    with soma.no_grad():
        back[0].weight.add_(1)
    assert not soma.equal(back(x), model(x))  # a copy, not shared
    assert repr(pickle.loads(pickle.dumps(nn.CrossEntropyLoss(label_smoothing=0.2)))) == \
        "CrossEntropyLoss"


def test_break_with_workers_over_a_python_dataset_and_reshuffle():
    import time

    class Slow:
        def __len__(self):
            return 64

        def __getitem__(self, i):
            time.sleep(0.0005)  # a worker is inside __getitem__ when the loop stops
            return soma.tensor([float(i)]), i

    loader = soma.data.DataLoader(Slow(), batch_size=4, num_workers=2, shuffle=True, seed=1)
    firsts = []
    for _ in range(3):
        for _, yb in loader:
            firsts.append(yb.tolist())
            break  # leaves the pass early: must not hang, and the next pass reshuffles
    assert firsts[0] != firsts[1] != firsts[2]
    it = iter(loader)
    next(it)
    del it  # a part-used iterator is freed without a hang
