"""soma.onnx: export(model, example_input, path) by tracing; load(path) imports an ONNX model
as a module."""
from .._soma.onnx import *  # noqa: F401,F403
