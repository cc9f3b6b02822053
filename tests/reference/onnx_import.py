#!/usr/bin/python3
"""PyTorch-exported ONNX fixtures for soma::onnx::load (tests/onnx/import_test.cpp and the CLI
test tests/onnx/cli_import_test.sh).

Run:   /usr/bin/python3 tests/reference/onnx_import.py [--skip-fashion]
Writes into tests/reference/onnx/ (checked in): for each model NAME, NAME.onnx (exported by
torch.onnx.export with a dynamic batch) and NAME.txt, the golden input and torch's output:
    # comment lines
    input  <dims...>
    <values, one line>
    output <dims...>
    <values, one line>
The golden batch (5, or 3) differs from the traced example's batch (2), so a graph that kept
the traced batch size fails. Values are printed with 9 significant digits (float32 exact).

Models (small; each .onnx < 200 KB):
  mlp        Linear/ReLU/Linear/GELU(Erf chain)/Linear/Sigmoid/Linear/LeakyRelu/Tanh/Linear/
             Softmax; opset 13; Gemm nodes
  cnn_bn     Conv/BatchNorm/ReLU/MaxPool/Conv(stride 2, no bias)/BatchNorm/ELU/AvgPool/
             ConvTranspose/Conv/AdaptiveAvgPool(1)/Flatten/Linear/LogSoftmax; opset 17,
             exported with training=TrainingMode.PRESERVE on an eval-mode model so that the
             BatchNormalization nodes stay (an EVAL export folds them into the convolutions);
             the script checks that the file has them
  view       Conv/ReLU then x.view(x.size(0), -1) (the Shape/Gather/Unsqueeze/Concat/Reshape
             chain) and Linear; opset 14
  div255     x / 255 (a Div by a Constant), Flatten, Linear, LayerNorm (LayerNormalization at
             opset 17), ReLU, Linear, then x - x.mean(1, keepdim) (ReduceMean), Pow, Sqrt;
             opset 17
  preset     the CLI's `--arch cnn` network (its layer list read from
             tools/soma/model_builder.cpp), built as its torch twin (docs/interop.md) and exported
             as a torch user would (eval mode: BatchNorm folded into the convolutions); opset 17
  layer_list a JSON layer list (the form `soma train --arch FILE.json` takes) built the same
             way: Conv2d/BatchNorm2d/ReLU/MaxPool2d/Dropout2d/Flatten/Linear/BatchNorm1d/GELU/
             Dropout/Linear; opset 17
  dense_layer  the course's user-defined layer (parameters w [in, out] and b [out], forward
             x @ w + b: MatMul and Add), twice with a ReLU between; opset 15
  fashion_cnn  a small CNN trained for one epoch on Fashion-MNIST (x / 255, normalisation,
             Conv/BatchNorm/ReLU/MaxPool twice, x.view(x.size(0), -1), Linear), for the CLI
             test: its predictions for the 10,000 test images go to
             fashion_cnn_predictions.txt, its accuracy into the first line.
  fashion_mlp_static  an MLP (x / 255, Linear/ReLU/Linear, Softmax) trained for one epoch on
             Fashion-MNIST and exported as torch does without dynamic_axes: a static batch of
             1 and probabilities, not logits, as its output; for the CLI test (chunks of the
             static batch; log of a final Softmax). Its predictions, accuracy and negative
             log-likelihood go to fashion_mlp_static_predictions.txt.
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
FASHION = "/usr/share/datasets/fashion-mnist"


def fmt(t):
    return " ".join("%.9g" % v for v in t.detach().reshape(-1).tolist())


def write_case(name, model, example, golden_input, opset, training=None, note="",
               max_size=200_000):
    model.eval()
    path = os.path.join(OUT, name + ".onnx")
    kwargs = {}
    if training is not None:
        kwargs["training"] = training
    torch.onnx.export(model, example, path, opset_version=opset, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kwargs)
    with torch.no_grad():
        out = model(golden_input)
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.write("# %s: torch %s, opset %d. %s\n" % (name, torch.__version__, opset, note))
        f.write("input %s\n%s\n" % (" ".join(map(str, golden_input.shape)), fmt(golden_input)))
        f.write("output %s\n%s\n" % (" ".join(map(str, out.shape)), fmt(out)))
    size = os.path.getsize(path)
    assert size < max_size, (path, size)
    return path


def op_types(path):
    import onnx
    return [n.op_type for n in onnx.load(path).graph.node]


class ViewNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class Div255(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(36, 16)
        self.norm = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 6)

    def forward(self, x):
        x = torch.flatten(x / 255, 1)
        x = self.fc2(F.relu(self.norm(self.fc1(x))))
        c = x - x.mean(1, keepdim=True)
        return c / torch.sqrt(torch.pow(c, 2).mean(1, keepdim=True) + 1.0)


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = (x / 255 - 0.2860) / 0.3530
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.view(x.size(0), -1))


class FashionMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return F.softmax(self.fc2(F.relu(self.fc1(x / 255))), dim=1)


class MyDenseLayer(nn.Module):
    """The lecture's user-defined layer: its own parameters, forward x @ w + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in, n_out) * 0.3)
        self.b = nn.Parameter(torch.randn(n_out) * 0.1)

    def forward(self, x):
        return torch.matmul(x, self.w) + self.b


def twin(layers):
    """A torch.nn.Sequential from a soma layer list (docs/interop.md, the torch twin)."""
    return nn.Sequential(*[getattr(nn, s["type"])(**{k: v for k, v in s.items() if k != "type"})
                           for s in layers])


def cli_cnn_preset():
    """The `soma train --arch cnn` layer list, as tools/soma/model_builder.cpp spells it."""
    import json
    import re
    src = open(os.path.join(HERE, "..", "..", "tools", "soma", "model_builder.cpp")).read()
    return json.loads(re.search(r'kCnnPreset = R"\((.*?)\)";', src, re.S).group(1))


LAYER_LIST = [
    {"type": "Conv2d", "in_channels": 2, "out_channels": 6, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm2d", "num_features": 6},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel_size": 2},
    {"type": "Dropout2d", "p": 0.2},
    {"type": "Flatten"},
    {"type": "Linear", "in_features": 96, "out_features": 16},
    {"type": "BatchNorm1d", "num_features": 16},
    {"type": "GELU"},
    {"type": "Dropout", "p": 0.3},
    {"type": "Linear", "in_features": 16, "out_features": 4},
]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def warm_batchnorm(model, x):
    """A few train-mode forwards so the running statistics are not the initial 0 / 1."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    model.eval()


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    mlp = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 24), nn.GELU(),
                        nn.Linear(24, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.LeakyReLU(0.2),
                        nn.Tanh(), nn.Linear(16, 5), nn.Softmax(dim=1))
    p = write_case("mlp", mlp, torch.randn(2, 12), torch.randn(5, 12), 13)
    assert "Gemm" in op_types(p) and "Erf" in op_types(p), op_types(p)

    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False),
                        nn.BatchNorm2d(6), nn.ELU(), nn.AvgPool2d(2, ceil_mode=True),
                        nn.ConvTranspose2d(6, 5, 3, stride=2, padding=1, output_padding=1),
                        nn.Conv2d(5, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    warm_batchnorm(cnn, torch.randn(8, 3, 12, 12) * 2 + 0.5)
    p = write_case("cnn_bn", cnn, torch.randn(2, 3, 12, 12), torch.randn(3, 3, 12, 12), 17,
                   training=torch.onnx.TrainingMode.PRESERVE,
                   note="BatchNormalization kept (TrainingMode.PRESERVE, eval model).")
    ops = op_types(p)
    assert ops.count("BatchNormalization") == 2, ops
    assert "ConvTranspose" in ops and "GlobalAveragePool" in ops, ops

    view = ViewNet()
    p = write_case("view", view, torch.randn(2, 2, 6, 6), torch.randn(5, 2, 6, 6), 14)
    ops = op_types(p)
    for op in ("Shape", "Gather", "Unsqueeze", "Concat", "Reshape"):
        assert op in ops, (op, ops)

    div = Div255()
    p = write_case("div255", div, torch.rand(2, 1, 6, 6) * 255,
                   torch.floor(torch.rand(5, 1, 6, 6) * 256), 17)
    ops = op_types(p)
    assert "Div" in ops and "LayerNormalization" in ops and "ReduceMean" in ops, ops

    preset = twin(cli_cnn_preset())
    warm_batchnorm(preset, torch.randn(16, 1, 28, 28))
    write_case("preset", preset, torch.randn(2, 1, 28, 28), torch.randn(3, 1, 28, 28), 17,
               note="soma train --arch cnn's layers as their torch twin.", max_size=2_000_000)

    layer_list = twin(LAYER_LIST)
    warm_batchnorm(layer_list, torch.randn(16, 2, 8, 8))
    p = write_case("layer_list", layer_list, torch.randn(2, 2, 8, 8), torch.randn(5, 2, 8, 8), 17,
                   note="A JSON layer list's torch twin.")
    assert "Conv" in op_types(p) and "Gemm" in op_types(p), op_types(p)

    dense = nn.Sequential(MyDenseLayer(10, 8), nn.ReLU(), MyDenseLayer(8, 3))
    p = write_case("dense_layer", dense, torch.randn(2, 10), torch.randn(5, 10), 15,
                   note="The user-defined MyDenseLayer (x @ w + b), twice.")
    assert "MatMul" in op_types(p) and "Add" in op_types(p), op_types(p)

    if "--skip-fashion" in sys.argv or not os.path.exists(FASHION):
        return
    # fashion_cnn: one epoch of Adam on the training images, then the test predictions.
    torch.manual_seed(1)
    torch.set_num_threads(1)
    xtr = torch.tensor(read_idx(FASHION + "/train-images-idx3-ubyte.gz"),
                       dtype=torch.float32).unsqueeze(1)
    ytr = torch.tensor(read_idx(FASHION + "/train-labels-idx1-ubyte.gz"), dtype=torch.int64)
    xte = torch.tensor(read_idx(FASHION + "/t10k-images-idx3-ubyte.gz"),
                       dtype=torch.float32).unsqueeze(1)
    yte = torch.tensor(read_idx(FASHION + "/t10k-labels-idx1-ubyte.gz"), dtype=torch.int64)
    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    perm = torch.randperm(xtr.shape[0])
    for i in range(0, xtr.shape[0], 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
        opt.step()
    model.eval()
    path = os.path.join(OUT, "fashion_cnn.onnx")
    torch.onnx.export(model, xte[:2], path, opset_version=17, input_names=["input"],
                      output_names=["logits"], training=torch.onnx.TrainingMode.PRESERVE,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    assert op_types(path).count("BatchNormalization") == 2
    with torch.no_grad():
        logits = torch.cat([model(xte[i:i + 1000]) for i in range(0, 10000, 1000)])
    pred = logits.argmax(1)
    acc = (pred == yte).float().mean().item()
    with open(os.path.join(OUT, "fashion_cnn_predictions.txt"), "w") as f:
        f.write("# fashion_cnn.onnx on the 10000 Fashion-MNIST test images: accuracy %.4f "
                "loss %.4f (torch %s)\n" % (acc, F.cross_entropy(logits, yte).item(),
                                           torch.__version__))
        f.write("".join("%d\n" % v for v in pred.tolist()))
    print("fashion_cnn accuracy %.4f" % acc)

    # fashion_mlp_static: one epoch of Adam on the NLL of its probabilities; exported with no
    # dynamic_axes (batch 1, as torch.onnx.export writes by default).
    torch.manual_seed(2)
    mlp = FashionMLP()
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    flat_tr, flat_te = xtr.reshape(-1, 784), xte.reshape(-1, 784)
    perm = torch.randperm(xtr.shape[0])
    for i in range(0, xtr.shape[0], 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        F.nll_loss(torch.log(mlp(flat_tr[idx])), ytr[idx]).backward()
        opt.step()
    mlp.eval()
    path = os.path.join(OUT, "fashion_mlp_static.onnx")
    torch.onnx.export(mlp, flat_te[:1], path, opset_version=17, input_names=["input"],
                      output_names=["probabilities"])
    assert op_types(path)[-1] == "Softmax", op_types(path)
    with torch.no_grad():
        prob = mlp(flat_te)
    pred = prob.argmax(1)
    acc = (pred == yte).float().mean().item()
    nll = F.nll_loss(torch.log(prob.clamp_min(1.17549435e-38)), yte).item()
    with open(os.path.join(OUT, "fashion_mlp_static_predictions.txt"), "w") as f:
        f.write("# fashion_mlp_static.onnx on the 10000 Fashion-MNIST test images: accuracy %.4f "
                "loss %.4f (negative log-likelihood; torch %s)\n" % (acc, nll, torch.__version__))
        f.write("".join("%d\n" % v for v in pred.tolist()))
    print("fashion_mlp_static accuracy %.4f loss %.4f" % (acc, nll))


if __name__ == "__main__":
    main()
