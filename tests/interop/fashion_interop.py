#!/usr/bin/python3
"""Fashion-MNIST interop between `soma train` and PyTorch (needs /usr/bin/python3 + torch).

  fashion_interop.py soma-to-torch SOMA RUN_DIR   # RUN_DIR/model.safetensors from soma train
      loads the soma model into the same torch.nn.Sequential, runs the test split in torch and
      compares with `soma predict`: argmax agreement must be >= 99.9 % (it prints the rate and
      torch's accuracy).
  fashion_interop.py torch-to-soma SOMA OUT_DIR
      trains a 784-128-10 MLP in torch for one epoch, writes it as OUT_DIR/model.safetensors with
      the metadata soma needs, and checks `soma eval` prints torch's test accuracy to 4 decimals.
Exit status 0 when the check holds.
"""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_safetensors import read_safetensors, write_safetensors  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist/"


def idx(name, offset):
    return np.frombuffer(gzip.open(DATA + name).read(), np.uint8, offset=offset)


def test_split():
    x = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float64)
    y = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return x, y


def build(meta):
    layers, width = [], meta["in_features"]
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
    for h in meta["hidden"]:
        layers += [nn.Linear(width, h), acts[meta["activation"]]()]
        if meta["dropout"] > 0:
            layers.append(nn.Dropout(meta["dropout"]))
        width = h
    layers.append(nn.Linear(width, meta["classes"]))
    return nn.Sequential(*layers)


def normalise(x, n):
    return torch.tensor((x * n["scale"] - n["mean"]) / n["std"], dtype=torch.float32)


def soma_to_torch(soma, run):
    tensors, meta = read_safetensors(os.path.join(run, "model.safetensors"))
    meta = json.loads(meta["soma.model"])
    model = build(meta)
    model.load_state_dict(tensors)  # strict: same names and shapes as torch.nn.Sequential
    model.eval()
    x, y = test_split()
    with torch.no_grad():
        torch_pred = model(normalise(x, meta["normalization"])).argmax(1).numpy()
    out = subprocess.run([soma, "predict", "--model", os.path.join(run, "model.safetensors")],
                         check=True, capture_output=True, text=True).stdout.split()
    soma_pred = np.array([int(v) for v in out])
    agree = float((soma_pred == torch_pred).mean())
    print(f"argmax agreement {agree:.5f} over {len(y)} test images; "
          f"torch accuracy {(torch_pred == y).mean():.4f}, soma accuracy {(soma_pred == y).mean():.4f}")
    return agree >= 0.999


def torch_to_soma(soma, out):
    xtr = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float64)
    ytr = torch.tensor(idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
    norm = {"mean": float((xtr / 255).mean()), "std": float((xtr / 255).std()), "scale": 1 / 255}
    meta = {"in_features": 784, "hidden": [128], "classes": 10, "activation": "relu",
            "dropout": 0.0, "normalization": norm}
    torch.manual_seed(0)
    model = build(meta)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xt = normalise(xtr, norm)
    for i in range(0, len(xt), 128):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[i:i + 128]), ytr[i:i + 128]).backward()
        opt.step()
    model.eval()
    x, y = test_split()
    with torch.no_grad():
        acc = (model(normalise(x, norm)).argmax(1).numpy() == y).mean()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.safetensors")
    write_safetensors(path, model.state_dict(), {"soma.model": json.dumps(meta)})
    line = subprocess.run([soma, "eval", "--model", path], check=True, capture_output=True,
                          text=True).stdout
    soma_acc = float(line.split("accuracy")[1].split()[0])
    print(f"torch accuracy {acc:.4f}; soma eval: {line.strip()}")
    return f"{soma_acc:.4f}" == f"{acc:.4f}"


if __name__ == "__main__":
    mode, soma, path = sys.argv[1:4]
    ok = soma_to_torch(soma, path) if mode == "soma-to-torch" else torch_to_soma(soma, path)
    sys.exit(0 if ok else 1)
