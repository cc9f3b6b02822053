"""soma.quantization: int8 inference with torch.ao.quantization's eager-mode names.

    import soma.quantization as q
    qmodel = q.quantize_dynamic(model)            # every nn.Linear -> int8 DynamicQuantLinear

    prepared = q.prepare(cnn)                      # Conv2d+BatchNorm2d folded, ReLU fused, observers
    for x, _ in calibration_loader:
        prepared(x)
    qcnn = q.convert(prepared)                     # QuantizedConv2d / QuantizedLinear

Weights are symmetric per output channel (int8), inputs uint8 with a per-batch (dynamic) or
calibrated (static) scale and zero point, products exact int32 sums (AVX-512 VNNI where the CPU
has it), outputs float32. Each function returns a copy (copy.deepcopy, so a Sequential stays a
soma.nn.Sequential) and leaves its argument alone. docs/quantization.md has the details.
"""
import copy as _copy

from .._soma import quantization as _C
from .._soma.quantization import (DynamicQuantLinear, HistogramObserver, MinMaxObserver,  # noqa: F401
                                  Observed, Observer, QuantizedConv2d, QuantizedLinear,
                                  choose_qparams, is_quantized)
from ..nn import Sequential as _Sequential

for _cls in (DynamicQuantLinear, HistogramObserver, MinMaxObserver, Observed, Observer,
             QuantizedConv2d, QuantizedLinear):
    _cls.__module__ = "soma.quantization"
for _cls in (DynamicQuantLinear, Observed, QuantizedConv2d, QuantizedLinear):
    _cls.__deepcopy__ = lambda self, memo: self.clone()  # C++ modules: a deep clone()
del _cls


def _copy_of(model, single):
    """A deep copy whose children can be swapped in place; a lone layer is wrapped."""
    if model is None:
        raise TypeError("soma.quantization: model is None")
    if single(model):
        return _Sequential(_copy.deepcopy(model)), True
    return _copy.deepcopy(model), False


def quantize_dynamic(model):
    """A copy of `model` with every nn.Linear replaced by an int8 DynamicQuantLinear (a ReLU
    right after one in a Sequential fused into it), as torch.ao.quantization.quantize_dynamic(
    model, {nn.Linear}, dtype=torch.qint8) with per-channel weights; the copy is in eval mode."""
    from ..nn import Linear
    if isinstance(model, Linear):
        return _C.quantize_dynamic(model)
    new, _ = _copy_of(model, lambda m: False)
    _C._quantize_dynamic_(new)
    return new


def prepare(model, observer="histogram"):
    """A calibration copy of `model` (eval mode): Conv2d+BatchNorm2d folded, ReLU fused, an
    observer ('histogram' or 'minmax') on each Conv2d's and Linear's input. Run calibration
    batches through it, then convert(). A lone Conv2d or Linear comes back in a Sequential."""
    from ..nn import Conv2d, Linear
    new, _ = _copy_of(model, lambda m: isinstance(m, (Conv2d, Linear)))
    _C._prepare_(new, observer)
    return new


def convert(prepared):
    """The int8 model of a prepared, calibrated one: QuantizedConv2d / QuantizedLinear with the
    calibrated input scales."""
    new = _copy.deepcopy(prepared)
    _C._convert_(new)
    return new
