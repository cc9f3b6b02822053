"""soma.quantization: int8 inference with torch.ao.quantization's eager-mode names.

    import soma.quantization as q
    qmodel = q.quantize_dynamic(model)            # every nn.Linear -> int8 DynamicQuantLinear
    y = qmodel(x)

    prepared = q.prepare(cnn)                      # Conv2d+BatchNorm2d folded, ReLU fused, observers
    for x, _ in calibration_loader:
        prepared(x)
    qcnn = q.convert(prepared)                     # QuantizedConv2d / QuantizedLinear

Weights are symmetric per output channel (int8), inputs uint8 with a per-batch (dynamic) or
calibrated (static) scale and zero point, products exact int32 sums (AVX-512 VNNI where the CPU
has it), outputs float32. docs/quantization.md has the details.
"""
from .._soma.quantization import *  # noqa: F401,F403
from .._soma.quantization import (DynamicQuantLinear, HistogramObserver, MinMaxObserver,  # noqa: F401
                                  Observed, Observer, QuantizedConv2d, QuantizedLinear,
                                  choose_qparams, convert, is_quantized, prepare,
                                  quantize_dynamic)

for _cls in (DynamicQuantLinear, HistogramObserver, MinMaxObserver, Observed, Observer,
             QuantizedConv2d, QuantizedLinear):
    _cls.__module__ = "soma.quantization"
del _cls
