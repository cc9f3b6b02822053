"""python/soma/_soma.pyi is valid Python and what python/gen_stubs.py makes of the bindings."""
import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_stub_parses_and_names_the_api():
    tree = ast.parse((ROOT / "soma" / "_soma.pyi").read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"Tensor", "tensor", "zeros", "matmul", "from_numpy", "from_dlpack", "Error"} <= names


def test_stub_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "gen_stubs.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
