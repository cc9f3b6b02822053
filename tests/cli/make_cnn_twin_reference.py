#!/usr/bin/python3
"""Writes tests/cli/data/cnn-run/torch_predictions.txt, the golden of the ctest cli.cnn_torch_twin.

  make_cnn_twin_reference.py [MODEL.safetensors] [FASHION_MNIST_DIR] [OUT.txt]

Builds the torch twin of a `soma train --arch cnn` model file from its "soma.model" metadata with
tests/cli/torch_twin.py (the code of docs/interop.md, imported, not copied), runs it on the
10,000 Fashion-MNIST test images with the normalisation the file records, and writes one
predicted class per line after a '#' header saying how the file was made. Needs torch.

data/cnn-run/model.safetensors (1,690,224 bytes) is the model file of one short run of soma at
commit bbdaf62, on the first 3000 training / 128 test images of Fashion-MNIST
(`fashion_subset /usr/share/datasets/fashion-mnist fm 3000 128`, tests/cli/lib.sh):

    soma train --data fm --arch cnn --epochs 1 --batch-size 64 --seed 1 --threads 1 --quiet --out run
    cp run/model.safetensors tests/cli/data/cnn-run/model.safetensors
    /usr/bin/python3 tests/cli/make_cnn_twin_reference.py
"""
import gzip
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from torch_twin import inputs, torch_twin  # noqa: E402


def main():
    model_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data", "cnn-run", "model.safetensors")
    data = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(model_path), "torch_predictions.txt")
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    opener = open
    if not os.path.exists(images):
        images, opener = images + ".gz", gzip.open
    with opener(images, "rb") as f:
        raw = f.read()
    model, meta = torch_twin(model_path)
    rows = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, int(np.prod(meta["input_shape"])))
    with torch.no_grad():
        pred = model(inputs(rows, meta)).argmax(1)
    header = (
        "# torch twin predictions for tests/cli/data/cnn-run/model.safetensors on the %d Fashion-MNIST\n"
        "# test images (t10k-images-idx3-ubyte), one class per line; made by\n"
        "# /usr/bin/python3 tests/cli/make_cnn_twin_reference.py (tests/cli/torch_twin.py's twin and\n"
        "# normalisation) with torch %s, numpy %s. Checked by tests/cli/cnn_twin_test.sh.\n"
        % (len(pred), torch.__version__, np.__version__))
    with open(out, "w") as f:
        f.write(header + "".join(f"{int(p)}\n" for p in pred))
    print(f"wrote {out}: {len(pred)} predictions (torch {torch.__version__})")


if __name__ == "__main__":
    main()
