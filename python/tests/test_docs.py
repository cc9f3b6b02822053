"""The ```python blocks of docs/python.md and of README.md run, in order, one namespace per
file: the documentation cannot fall out of step with the bindings."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def blocks(path):
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("doc", ["docs/python.md", "README.md"])
def test_code_blocks_run(doc):
    found = blocks(ROOT / doc)
    assert found, f"{doc} has no python blocks"
    namespace = {}
    for i, code in enumerate(found):
        exec(compile(code, f"{doc} block {i + 1}", "exec"), namespace)


def test_block_extraction_can_fail(tmp_path):
    p = tmp_path / "x.md"
    p.write_text("text\n```python\nraise ValueError('doc block')\n```\n")
    with pytest.raises(ValueError, match="doc block"):
        exec(blocks(p)[0], {})
