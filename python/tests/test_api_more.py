"""The rest of the training API: ModelCheckpoint, CSVLogger, History, ProgressBar, the types
fit hands out (TrainState, EvalResult, History), Dataset / Subset, ModuleList, Dropout2d, the
handle and context types, OnnxModel, the Optimizer base and ParamGroup."""
import csv

import pytest
import soma
import soma.nn as nn
import soma.nn.functional as F


def data(n=60):
    soma.manual_seed(0)
    y = soma.randint(0, 2, (n,))
    x = soma.randn(n, 3) + y.float().unsqueeze(1) * 2
    return x, y


def test_checkpoint_logger_history_and_state(tmp_path, capsys):
    x, y = data()
    train = soma.data.DataLoader(soma.data.TensorDataset(x[:40], y[:40]), 10)
    val = soma.data.DataLoader(soma.data.TensorDataset(x[40:], y[40:]), 20)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = soma.optim.Adam(model.parameters(), lr=0.05)
    assert isinstance(opt, soma.optim.Optimizer)
    ckpt = soma.train.ModelCheckpoint(str(tmp_path / "e{epoch}.safetensors"))
    best = soma.train.ModelCheckpoint(str(tmp_path / "best.safetensors"), save_best_only=True)
    log = soma.train.CSVLogger(str(tmp_path / "log.csv"))
    extra = soma.train.History()
    states = []

    class Peek(soma.train.Callback):
        def on_epoch_end(self, state, epoch, logs):
            assert isinstance(state, soma.train.TrainState)
            states.append((state.epoch, state.epochs, state.batches_per_epoch,
                           state.samples_per_epoch, state.has_validation,
                           state.model is model, round(state.running_loss, 6)))

    h = soma.fit(model, opt, nn.CrossEntropyLoss(), train, epochs=3, validation=val,
                 callbacks=[ckpt, best, log, extra, Peek(), soma.train.ProgressBar(redraw=False)],
                 verbose=False)
    assert isinstance(h, soma.train.History) and h["loss"] == extra["loss"]
    assert ckpt.saves == 3 and ckpt.last_path.endswith("e3.safetensors")
    assert 1 <= best.saves <= 3 and best.best == min(h["val_loss"])
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(h["val_loss"])
    assert states[0][:6] == (0, 3, 4, 40, True, True)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 3 and "val_acc" in out
    back = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    soma.load(str(tmp_path / "e3.safetensors"), model=back)
    assert soma.equal(back(x), model(x))
    r = soma.evaluate(model, val, F.cross_entropy)
    assert isinstance(r, soma.train.EvalResult) and r.loss == pytest.approx(h["val_loss"][-1])
    assert repr(r).startswith("EvalResult(loss=") and h.to_csv().startswith("epoch,loss")


def test_dataset_base_and_subset():
    ds = soma.data.TensorDataset(soma.arange(10).float().unsqueeze(1), soma.arange(10))
    assert isinstance(ds, soma.data.Dataset)
    sub = soma.data.Subset(ds, [9, 0, 9])
    assert isinstance(sub, soma.data.Dataset) and len(sub) == 3
    assert [sub[i][1].item() for i in range(3)] == [9, 0, 9]
    assert [yb.tolist() for _, yb in soma.data.DataLoader(sub, 2)] == [[9, 0], [9]]
    with pytest.raises(soma.Error):
        soma.data.Subset(ds, [10])[0]


def test_module_list_dropout2d_and_hook_handle(torch):
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(layers.parameters()) == 6
    assert sorted(layers.state_dict())[:2] == ["0.bias", "0.weight"]
    layers.append(nn.ReLU())
    assert type(layers[-1]) is nn.ReLU and len(layers[1:3]) == 2
    d = nn.Dropout2d(0.5)
    x = soma.ones(4, 8, 3, 3)
    y = d(x)
    per_channel = y.reshape(4, 8, 9)
    kept = per_channel.sum(2)  # each channel all dropped (0) or all kept (9 * 2)
    assert set(kept.reshape(-1).tolist()) <= {0.0, 18.0}
    assert soma.equal(d.eval()(x), x)
    h = layers[0].register_forward_hook(lambda m, i, o: None)
    assert isinstance(h, nn.ModuleHookHandle)
    h.remove()
    h.remove()  # a second remove does nothing


def test_function_ctx_type_and_param_group():
    seen = []

    class Twice(soma.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(isinstance(ctx, soma.autograd.FunctionCtx))
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = soma.ones(2, requires_grad=True)
    Twice.apply(x).sum().backward()
    assert seen == [True] and x.grad.tolist() == [2.0, 2.0]
    group = soma.optim.SGD([x], lr=0.3).param_groups[0]
    assert isinstance(group, soma.optim.ParamGroup)
    assert group["lr"] == 0.3 and "momentum" in group.keys() and "params" in group
    assert "'lr': 0.3" in repr(group)


def test_onnx_model_type(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Softmax(1))
    path = str(tmp_path / "m.onnx")
    soma.onnx.export(model, soma.randn(2, 3), path)
    m = soma.onnx.load(path)
    assert isinstance(m, soma.onnx.OnnxModel) and m.num_nodes() >= 2
    assert m.output_op() == "Softmax" and m.producer.startswith("soma")
    (out,) = m.run([soma.randn(5, 3)])
    assert out.shape == (5, 4)
    with soma.no_grad():
        m.parameters()[0].add_(1.0)
    soma.onnx.save(m, str(tmp_path / "tuned.onnx"))
    again = soma.onnx.load(str(tmp_path / "tuned.onnx"))
    assert soma.equal(again.parameters()[0], m.parameters()[0])
