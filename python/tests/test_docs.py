"""The ```python blocks of docs/python.md and of README.md run, in order, one namespace per
file, so the documentation cannot fall out of step with the bindings. A failing block is
reported with its number and first line."""
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MNIST = "/usr/share/datasets/fashion-mnist"


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```\s*$", text, flags=re.S | re.M)


def test_docs_has_blocks():
    assert len(python_blocks((ROOT / "docs" / "python.md").read_text())) >= 8


@pytest.mark.parametrize("doc", ["docs/python.md", "README.md"])
def test_code_blocks_run(doc, tmp_path, monkeypatch):
    pytest.importorskip("numpy")
    if not os.environ.get("CI"):  # CI has both; elsewhere say what is missing
        pytest.importorskip("torch", reason="docs/python.md's interop block needs torch")
        if not os.path.isdir(MNIST):
            pytest.skip(f"{MNIST} missing (Debian dataset-fashion-mnist)")
    monkeypatch.chdir(tmp_path)
    found = python_blocks((ROOT / doc).read_text())
    assert found, f"{doc} has no python blocks"
    namespace = {"__name__": "__docs__"}
    for i, block in enumerate(found, 1):
        code = compile(block, f"{doc} block {i}", "exec")
        try:
            exec(code, namespace)
        except Exception as e:
            first = block.strip().splitlines()[0]
            raise AssertionError(f"{doc} block {i} ({first!r}) failed: {e!r}") from e


def test_block_extraction_can_fail(tmp_path):
    p = tmp_path / "x.md"
    p.write_text("text\n```python\nraise ValueError('doc block')\n```\n")
    with pytest.raises(ValueError, match="doc block"):
        exec(python_blocks(p.read_text())[0], {})
