"""The ONNX checker on exported models (Debian python3-onnx): check_model(full_check=True),
which also runs strict shape inference. Usage: /usr/bin/python3 check_model.py MODEL.onnx...
Exit 0 when every model passes; otherwise the checker's message and exit 1."""
import sys

import onnx

failed = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
    except Exception as e:  # the checker's ValidationError and shape-inference errors
        print(f"{path}: {e}")
        failed = 1
sys.exit(failed)
