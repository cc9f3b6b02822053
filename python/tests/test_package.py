"""`import soma` alone gives the Python packages soma.nn, soma.optim, ... (not the extension's
submodules of the same names, which lack Sequential, lr_scheduler, transforms, ...)."""
import subprocess
import sys


def test_plain_import_gives_the_python_subpackages():
    code = ("import soma\n"
            "for name in ('nn', 'optim', 'data', 'train', 'onnx'):\n"
            "    print(name, getattr(soma, name).__name__)\n"
            "print(soma.nn.Sequential(soma.nn.Linear(2, 3)).__class__.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:6] == ["nn soma.nn", "optim soma.optim", "data soma.data",
                                         "train soma.train", "onnx soma.onnx", "Sequential"]
