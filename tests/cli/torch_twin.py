#!/usr/bin/python3
"""The torch twin of a `soma train` model file, as docs/interop.md builds it (needs torch).

  torch_twin.py MODEL.safetensors ROWS.csv [LABEL_COLUMN]
      builds torch.nn.Sequential from the file's JSON layer list, loads its weights, and prints
      one predicted class per CSV row (the rows' features as soma reads them: every column but
      the label column, default the last), like `soma predict`.
  torch_twin.py MODEL.safetensors --idx IMAGES-idx3-ubyte[.gz]
      the same for the images of an IDX file.
"""
import gzip
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from torch_safetensors import read_safetensors  # noqa: E402  (no `safetensors` package needed)


def torch_twin(path):
    # --- docs/interop.md, "The torch twin of any soma model" (keep the two in step) ---
    tensors, metadata = read_safetensors(path)
    meta = json.loads(metadata["soma.model"])
    layers = [getattr(torch.nn, s["type"])(**{k: v for k, v in s.items() if k != "type"})
              for s in meta["layers"]]
    model = torch.nn.Sequential(*layers)
    model.load_state_dict(tensors)
    model.eval()
    return model, meta


def inputs(rows, meta):  # rows [N, F]: raw features (pixels 0..255 for IDX images)
    n, shape = meta["normalization"], meta["input_shape"]
    stat = [1] * (len(shape) - 1)  # one mean/std for all, per feature column, or per channel
    mean = torch.tensor(n["mean"], dtype=torch.float64).reshape(-1, *stat)
    std = torch.tensor(n["std"], dtype=torch.float64).reshape(-1, *stat)
    x = torch.tensor(rows, dtype=torch.float64).reshape(-1, *shape)
    return ((x * n["scale"] - mean) / std).float()


def main():
    model, meta = torch_twin(sys.argv[1])
    if sys.argv[2] == "--idx":
        opener = gzip.open if sys.argv[3].endswith(".gz") else open
        with opener(sys.argv[3], "rb") as f:
            raw = f.read()
        rows = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, int(np.prod(meta["input_shape"])))
    else:
        with open(sys.argv[2]) as f:
            header = f.readline().strip().split(",")
            label = header.index(sys.argv[3]) if len(sys.argv) > 3 else len(header) - 1
            data = np.array([[float(v) for v in line.strip().split(",")] for line in f if line.strip()])
        rows = np.delete(data, label, axis=1)
    with torch.no_grad():
        pred = model(inputs(rows, meta)).argmax(1)
    sys.stdout.write("".join(f"{int(p)}\n" for p in pred))


if __name__ == "__main__":
    main()
