"""Every name soma binds (module functions, Tensor methods and properties, soma.autograd) is
used by at least one test file here: a new binding without a test fails this check."""
import pathlib
import re

import soma

HERE = pathlib.Path(__file__).parent


def bound_names():
    names = {n for n in dir(soma) if not n.startswith("_") and n not in {"annotations"}}
    names |= {n for n in vars(soma.Tensor) if not n.startswith("_")}
    names |= set(soma.autograd.__all__)
    # Sub-modules and attributes that are not functions to call.
    return names - {"autograd"}


def test_every_bound_name_is_used_by_a_test():
    text = "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != "test_coverage.py")
    missing = sorted(n for n in bound_names() if not re.search(r"\b" + re.escape(n) + r"\b", text))
    assert not missing, f"bound but never used in python/tests: {missing}"


def test_the_check_can_fail():
    assert "no_such_binding" not in bound_names()
    text = "x = 1"
    assert not re.search(r"\bzeros\b", text)
