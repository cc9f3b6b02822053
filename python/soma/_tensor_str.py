"""repr(tensor) in torch's format (a port of torch/_tensor_str.py's defaults: precision 4,
threshold 1000, edgeitems 3, linewidth 80), with soma's dtype names:

    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
"""
import math

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


def _flat_values(t):
    return t.reshape(-1).tolist() if t.dim() > 0 else [t.item()]


class _Formatter:
    def __init__(self, values, floating):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        if not floating:
            for v in values:
                self.max_width = max(self.max_width, len(str(v)))
            return
        finite = [v for v in values if math.isfinite(v) and v != 0]
        if not finite:
            return
        absv = [abs(v) for v in finite]
        vmin, vmax = min(absv), max(absv)
        for v in finite:
            if v != math.ceil(v):
                self.int_mode = False
                break
        if self.int_mode:
            if vmax / vmin > 1000.0 or vmax > 1.0e8:
                self.sci_mode = True
                for v in finite:
                    self.max_width = max(self.max_width, len(f"{v:.{PRECISION}e}"))
            else:
                for v in finite:
                    self.max_width = max(self.max_width, len(f"{v:.0f}") + 1)
        else:
            if vmax / vmin > 1000.0 or vmax > 1.0e8 or vmin < 1.0e-4:
                self.sci_mode = True
                for v in finite:
                    self.max_width = max(self.max_width, len(f"{v:.{PRECISION}e}"))
            else:
                for v in finite:
                    self.max_width = max(self.max_width, len(f"{v:.{PRECISION}f}"))

    def format(self, v):
        if self.floating:
            if self.sci_mode:
                ret = f"{v:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                ret = f"{v:.0f}"
                if not (math.isinf(v) or math.isnan(v)):
                    ret += "."
            else:
                ret = f"{v:.{PRECISION}f}"
        else:
            ret = str(v)
        return (self.max_width - len(ret)) * " " + ret


def _summarized_values(t):
    """The values the formatter sees when the tensor is summarized (edge items only)."""
    if t.dim() == 0:
        return [t.item()]
    if t.dim() == 1:
        if t.size(0) > 2 * EDGEITEMS:
            return t[:EDGEITEMS].tolist() + t[-EDGEITEMS:].tolist()
        return t.tolist()
    n = t.size(0)
    rows = list(range(EDGEITEMS)) + list(range(n - EDGEITEMS, n)) if n > 2 * EDGEITEMS \
        else range(n)
    out = []
    for i in rows:
        out += _summarized_values(t[i])
    return out


def _vector_str(t, indent, summarize, fmt):
    element_length = fmt.max_width + 2
    per_line = max(1, int(math.floor((LINEWIDTH - indent) / element_length)))
    if summarize and t.size(0) > 2 * EDGEITEMS:
        data = ([fmt.format(v) for v in t[:EDGEITEMS].tolist()] + [" ..."] +
                [fmt.format(v) for v in t[-EDGEITEMS:].tolist()])
    else:
        data = [fmt.format(v) for v in t.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(t, indent, summarize, fmt):
    dim = t.dim()
    if dim == 0:
        return fmt.format(t.item())
    if dim == 1:
        return _vector_str(t, indent, summarize, fmt)
    n = t.size(0)
    if summarize and n > 2 * EDGEITEMS:
        slices = ([_tensor_str_with_formatter(t[i], indent + 1, summarize, fmt)
                   for i in range(EDGEITEMS)] + ["..."] +
                  [_tensor_str_with_formatter(t[i], indent + 1, summarize, fmt)
                   for i in range(n - EDGEITEMS, n)])
    else:
        slices = [_tensor_str_with_formatter(t[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _tensor_str(t, indent):
    if t.numel() == 0:
        return "[]"
    summarize = t.numel() > THRESHOLD
    values = _summarized_values(t) if summarize else _flat_values(t)
    fmt = _Formatter(values, t.dtype.is_floating_point)
    return _tensor_str_with_formatter(t, indent, summarize, fmt)


def _add_suffixes(tensor_str, suffixes, indent):
    parts = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def _str(t):
    from . import Tensor, float32, int64, bool as bool_, no_grad
    plain = type(t) is Tensor
    prefix = "tensor(" if plain else type(t).__name__ + "("
    indent = len(prefix)
    suffixes = []
    with no_grad():
        view = t.detach()
        if view.numel() == 0:
            if view.dim() != 1:
                suffixes.append("size=" + str(tuple(view.shape)))
            if view.dtype is not float32:
                suffixes.append("dtype=" + repr(view.dtype))
            body = "[]"
        else:
            if view.dtype not in (float32, int64, bool_):
                suffixes.append("dtype=" + repr(view.dtype))
            body = _tensor_str(view, indent)
    if t.grad_fn is not None:
        suffixes.append("grad_fn=<" + t.grad_fn.name() + ">")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
