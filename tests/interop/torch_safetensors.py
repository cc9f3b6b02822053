#!/usr/bin/python3
"""safetensors interop between soma and PyTorch, without the `safetensors` package.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}) and the raw data; the
two functions below are a complete reader and writer for the dtypes soma uses.

  # (a) load a soma-written model into the same torch.nn.Sequential and print its logits
  torch_safetensors.py logits model.safetensors inputs.txt \
      --arch "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))"
  # (b) write a torch model's weights as safetensors (and its logits for some inputs)
  torch_safetensors.py write out.safetensors --seed 0 --arch "..." [--inputs in.txt --logits out.txt]

inputs.txt / logits: one row of numbers per line (a [B, in] / [B, out] float32 matrix), written
with 9 significant digits (float32 round-trips).

tests/interop/torch_linear.safetensors and torch_linear_expected.txt were made with
  /usr/bin/python3 tests/interop/torch_safetensors.py make-fixture tests/interop
and tests/interop/torch_lowp.safetensors and torch_lowp_expected.txt (int8, int32, bfloat16,
float16 and the older dtypes, read by tests/io/safetensors_test.cpp) with
  /usr/bin/python3 tests/interop/torch_safetensors.py make-lowp-fixture tests/interop
"""
import argparse
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "BOOL": torch.bool,
          "U8": torch.uint8, "I8": torch.int8, "I32": torch.int32, "BF16": torch.bfloat16,
          "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[info["dtype"]]) if e > b else \
            torch.empty(0, dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"])
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    names = {v: k for k, v in DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        # numpy has no bfloat16: its bytes are those of the same-size int16 view
        blob = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_matrix(path):
    with open(path) as f:
        rows = [[float(x) for x in line.split()] for line in f if line.strip()]
    return torch.tensor(rows, dtype=torch.float32)


def format_matrix(m):
    return "".join(" ".join("%.9g" % v for v in row) + "\n" for row in m.tolist())


def build(arch):
    return eval(arch, {"nn": nn, "torch": torch})  # the test passes a trusted literal


def cmd_logits(args):
    model = build(args.arch)
    tensors, _ = read_safetensors(args.model)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    with torch.no_grad():
        sys.stdout.write(format_matrix(model(read_matrix(args.inputs))))


def cmd_write(args):
    torch.manual_seed(args.seed)
    model = build(args.arch)
    write_safetensors(args.out, model.state_dict(), {"format": "pt"})
    if args.inputs:
        model.eval()
        with torch.no_grad():
            logits = model(read_matrix(args.inputs))
        with open(args.logits, "w") as f:
            f.write(format_matrix(logits))


FIXTURE_ARCH = "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))"


def cmd_make_fixture(args):
    """torch_linear.safetensors and torch_linear_expected.txt: arch, inputs and torch's logits."""
    torch.manual_seed(1234)
    model = build(FIXTURE_ARCH)
    write_safetensors(args.dir + "/torch_linear.safetensors", model.state_dict(),
                      {"format": "pt"})
    x = torch.randn(5, 4)
    with torch.no_grad():
        logits = model(x)
    with open(args.dir + "/torch_linear_expected.txt", "w") as f:
        f.write("# written by torch_safetensors.py make-fixture (torch %s)\n" % torch.__version__)
        f.write("# arch: %s\n" % FIXTURE_ARCH)
        f.write("inputs %d %d\n" % tuple(x.shape) + format_matrix(x))
        f.write("logits %d %d\n" % tuple(logits.shape) + format_matrix(logits))


def cmd_make_lowp_fixture(args):
    """torch_lowp.safetensors: one tensor per dtype, values chosen to exercise each format
    (bfloat16/float16 rounding, subnormals, inf, NaN, -0, int8/int32 extremes), and
    torch_lowp_expected.txt: 'name dtype ndim dims... values...' per tensor (floats as %.9g, which
    reads back exactly; NaN as nan), the table the C++ test compares against."""
    floats = torch.tensor([0.0, -0.0, 1.0, -1.5, 0.1, 3.14159, 65504.0, 70000.0, 2**-24, 1e-40,
                           float("inf"), float("-inf"), float("nan"), 1 + 2**-8, 1 + 3 * 2**-8,
                           -2.5e-5], dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    tensors = {
        "bf16": floats.to(torch.bfloat16).reshape(4, 4),
        "f16": floats.to(torch.float16).reshape(2, 8),
        "bf16_randn": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        "f16_randn": torch.randn(5, 3, generator=g).to(torch.float16),
        "i8": torch.tensor([-128, -1, 0, 1, 127, 42], dtype=torch.int8).reshape(2, 3),
        "i32": torch.tensor([-2**31, -1, 0, 1, 2**31 - 1, 123456789], dtype=torch.int32),
        "f32": torch.tensor([1.5, -2.25], dtype=torch.float32),
        "i64": torch.tensor([[-(2**40)], [7]], dtype=torch.int64),
        "f64": torch.tensor([1e-300, -0.5], dtype=torch.float64),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "bf16_scalar": torch.tensor(-3.5, dtype=torch.bfloat16),
        "f16_empty": torch.zeros(0, 2, dtype=torch.float16),
    }
    write_safetensors(args.dir + "/torch_lowp.safetensors", tensors, {"format": "pt"})
    names = {v: k for k, v in DTYPES.items()}
    back, _ = read_safetensors(args.dir + "/torch_lowp.safetensors")
    with open(args.dir + "/torch_lowp_expected.txt", "w") as f:
        f.write("# written by torch_safetensors.py make-lowp-fixture (torch %s)\n" %
                torch.__version__)
        f.write("# name dtype ndim dims... values... (row-major; floats %.9g)\n")
        for name in sorted(tensors):
            t = tensors[name]
            assert torch.equal(back[name], t) or t.is_floating_point(), name  # NaN != NaN
            vals = t.reshape(-1).tolist()
            fmt = (lambda v: "%.9g" % v) if t.is_floating_point() else (lambda v: str(int(v)))
            f.write(" ".join([name, names[t.dtype], str(t.dim())] + [str(d) for d in t.shape] +
                             [fmt(v) for v in vals]) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("logits")
    a.add_argument("model")
    a.add_argument("inputs")
    a.add_argument("--arch", required=True)
    w = sub.add_parser("write")
    w.add_argument("out")
    w.add_argument("--arch", required=True)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--inputs")
    w.add_argument("--logits")
    m = sub.add_parser("make-fixture")
    m.add_argument("dir")
    lp = sub.add_parser("make-lowp-fixture")
    lp.add_argument("dir")
    args = p.parse_args()
    {"logits": cmd_logits, "write": cmd_write, "make-fixture": cmd_make_fixture,
     "make-lowp-fixture": cmd_make_lowp_fixture}[args.cmd](args)


if __name__ == "__main__":
    main()
