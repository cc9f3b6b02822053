"""The package imports, and a few Tensor basics against NumPy."""
import subprocess
import sys

import pytest
import soma


def test_import_does_not_load_numpy_or_torch():
    out = subprocess.run([sys.executable, "-c",
                          "import sys, soma; print('numpy' in sys.modules, 'torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_dtype_objects():
    assert repr(soma.float32) == "soma.float32"
    assert soma.tensor([1.5]).dtype is soma.float32
    assert soma.tensor([1]).dtype is soma.int64
    assert soma.tensor([True]).dtype is soma.bool
    assert soma.float64.is_floating_point and not soma.uint8.is_floating_point
    assert soma.float64.itemsize == 8


def test_values_round_trip(np):
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    t = soma.tensor(data.tolist())
    assert t.shape == (3, 4)
    assert np.array_equal(np.array(t.tolist(), dtype=np.float32), data)


def test_add_and_error_names_op():
    a = soma.ones(2, 3)
    assert (a + a).tolist() == [[2.0] * 3] * 2
    with pytest.raises(soma.Error, match="add") as e:
        a + soma.ones(4)
    assert isinstance(e.value, RuntimeError)
