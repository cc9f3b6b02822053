"""docs/python.md runs: its ```python blocks are executed in order, in one namespace, so the
tutorial cannot rot. A failing block is reported with its number and first line."""
import os
import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"
MNIST = "/usr/share/datasets/fashion-mnist"


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```\s*$", text, flags=re.S | re.M)


def test_docs_has_blocks():
    assert len(python_blocks(DOC.read_text())) >= 8


def test_docs_python_md_runs(tmp_path, monkeypatch):
    pytest.importorskip("numpy")
    if not os.environ.get("CI"):
        pytest.importorskip("torch", reason="docs/python.md's interop block needs torch")
        if not os.path.isdir(MNIST):
            pytest.skip(f"{MNIST} missing (Debian dataset-fashion-mnist)")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, block in enumerate(python_blocks(DOC.read_text()), 1):
        code = compile(block, f"docs/python.md block {i}", "exec")
        try:
            exec(code, namespace)
        except Exception as e:
            first = block.strip().splitlines()[0]
            raise AssertionError(f"docs/python.md block {i} ({first!r}) failed: {e!r}") from e
