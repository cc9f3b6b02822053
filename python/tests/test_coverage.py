"""Every name soma binds (module functions, Tensor methods and properties, soma.autograd) is
used by at least one test file here: a new binding without a test fails this check."""
import pathlib
import re

import soma

HERE = pathlib.Path(__file__).parent


def module_names(mod):
    if hasattr(mod, "__all__"):
        return set(mod.__all__)
    return {n for n, o in vars(mod).items() if not n.startswith("_") and
            (getattr(o, "__module__", "") or "").startswith("soma")}


def bound_names():
    names = {n for n in dir(soma) if not n.startswith("_")}
    names |= {n for n in vars(soma.Tensor) if not n.startswith("_")}
    # Every submodule of the package (soma.autograd, and those bound later: soma.nn, ...).
    subs = {n for n, o in vars(soma).items() if type(o) is type(soma) and
            o.__name__.startswith("soma.")}
    for n in subs:
        names |= module_names(getattr(soma, n))
    return names - subs


def test_every_bound_name_is_used_by_a_test():
    text = "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != "test_coverage.py")
    missing = sorted(n for n in bound_names() if not re.search(r"\b" + re.escape(n) + r"\b", text))
    assert not missing, f"bound but never used in python/tests: {missing}"


def test_the_check_can_fail():
    assert "no_such_binding" not in bound_names()
    text = "x = 1"
    assert not re.search(r"\bzeros\b", text)
