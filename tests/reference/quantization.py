"""Reference values for soma's dynamic int8 quantization (tests/quantization/dynamic_test.cpp),
from torch 1.13's own quantization (engine onednn, the x86 engine in Debian's build).

  /usr/bin/python3 tests/reference/quantization.py > tests/reference/quantization_reference.txt

Lines (floats printed with 9 significant digits, which float32 round-trips; the qparams scale
with 17, since torch keeps it a double):
  qparams <min> <max> <scale> <zero_point>      torch._choose_qparams_per_tensor, full 8 bits
  case <name> <in> <out> <bias 0|1> <rows>      one Linear, then its tensors, then "end":
  weight/bias/x <floats>                        the float Linear and an input
  qweight <ints> / wscale <floats>              quantize_dynamic's int8 weights and scales
                                                (per_channel_dynamic_qconfig)
  observer <kind> <batches> then "x <floats>" per batch, then
  "range <min> <max>" and "qparams <scale> <zero_point>" and "end": MinMaxObserver over all
  batches; HistogramObserver over one batch whose min and max are whole numbers (torch's
  histc takes int(min) and int(max) as its range, so soma's exact range agrees only then)
  y <floats>                                    torch.ops.quantized.linear_dynamic(x,
                                                reduce_range=False): soma uses 0..255 as
                                                onednn does without the reduced range
"""

import torch
import torch.nn as nn
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

torch.backends.quantized.engine = "onednn"


def floats(t):
    return " ".join("%.9g" % v for v in t.flatten().tolist())


def ints(t):
    return " ".join(str(int(v)) for v in t.flatten().tolist())


def qparams_lines():
    cases = [(-1.0, 1.0), (0.0, 1.0), (-3.5, 0.0), (-0.25, 7.0), (0.0, 0.0), (1e-7, 2e-7),
             (-1e-6, 1e-6), (2.0, 5.0), (-5.0, -2.0), (-123.456, 0.001), (-0.001, 99.9),
             (-1e-3, 1e-3), (0.3, 0.3)]
    out = []
    for lo, hi in cases:
        t = torch.tensor([lo, hi], dtype=torch.float32)
        scale, zp = torch._choose_qparams_per_tensor(t, False)
        # the scale is a double in torch (17 digits round-trip it); soma keeps its float32 value
        out.append("qparams %.9g %.9g %.17g %d" % (t[0].item(), t[1].item(), scale, zp))
    return out


def linear_case(name, n_in, n_out, bias, rows, gen, x_scale=1.0, x_shift=0.0, w_scale=1.0):
    lin = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=gen) * w_scale / n_in ** 0.5)
        if bias:
            lin.bias.copy_(torch.randn(n_out, generator=gen) * 0.1)
        if n_out > 2:
            lin.weight[1].zero_()  # an all-zero row: the scale falls back to float32's eps
    x = torch.randn(rows, n_in, generator=gen) * x_scale + x_shift
    model = nn.Sequential(lin)
    q = quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    qw, _ = q[0]._packed_params._weight_bias()
    y = torch.ops.quantized.linear_dynamic(x, q[0]._packed_params._packed_params,
                                           reduce_range=False)
    lines = ["case %s %d %d %d %d" % (name, n_in, n_out, int(bias), rows),
             "weight " + floats(lin.weight.detach())]
    if bias:
        lines.append("bias " + floats(lin.bias.detach()))
    lines += ["x " + floats(x), "qweight " + ints(qw.int_repr()),
              "wscale " + floats(qw.q_per_channel_scales().float()), "y " + floats(y), "end"]
    return lines


def observer_case(kind, batches):
    from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver
    obs = MinMaxObserver() if kind == "minmax" else HistogramObserver()
    lines = ["observer %s %d" % (kind, len(batches))]
    for b in batches:
        obs(b)
        lines.append("x " + floats(b))
    if kind == "minmax":
        lo, hi = obs.min_val, obs.max_val
    else:
        lo, hi = obs._non_linear_param_search()
    scale, zp = obs.calculate_qparams()
    lines += ["range %.9g %.9g" % (float(lo), float(hi)),
              "qparams %.9g %d" % (float(scale), int(zp)), "end"]
    return lines


def main():
    gen = torch.Generator().manual_seed(20261203)
    lines = qparams_lines()
    lines += linear_case("small", 5, 3, True, 2, gen)
    lines += linear_case("odd", 37, 13, True, 7, gen)
    lines += linear_case("no_bias", 64, 17, False, 5, gen)
    lines += linear_case("positive_input", 33, 9, True, 4, gen, x_shift=3.0)
    lines += linear_case("wide", 785, 20, True, 3, gen, x_scale=2.0, w_scale=3.0)
    lines += linear_case("one_row", 100, 31, True, 1, gen)
    g = gen
    lines += observer_case("minmax", [torch.randn(50, generator=g), torch.randn(30, generator=g) * 3,
                                      torch.rand(20, generator=g) + 0.5])
    lines += observer_case("minmax", [torch.rand(40, generator=g) + 0.25])
    heavy = torch.randn(4000, generator=g)
    heavy[0], heavy[1] = -4.0, 6.0  # outliers at whole numbers: the range torch's histc uses
    lines += observer_case("histogram", [heavy.clamp(-4.0, 6.0)])
    relu_like = torch.relu(torch.randn(3000, generator=g) * 2)
    relu_like[5] = 9.0
    lines += observer_case("histogram", [relu_like.clamp(0.0, 9.0)])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
