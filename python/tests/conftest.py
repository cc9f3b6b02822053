"""Shared fixtures. Tests that compare with PyTorch take the `torch` fixture: without Debian's
python3-torch they are skipped with the reason, except under CI (CI set, as .ci/run does), where
a missing torch fails them."""
import os

import pytest


@pytest.fixture(scope="session")
def torch():
    try:
        import torch as t
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs torch for the comparisons (scripts/bootstrap.sh --dev installs "
                        f"python3-torch): {e}")
        pytest.skip("torch is not installed (Debian python3-torch; scripts/bootstrap.sh --dev): "
                    "comparison with PyTorch skipped")
    return t


@pytest.fixture(scope="session")
def np():
    import numpy
    return numpy


@pytest.fixture(autouse=True)
def _seed():
    import soma
    soma.manual_seed(0)
    yield
