"""`cmake --install` puts a working package in the prefix's Python directory (run by ctest,
which names the build tree in SOMA_PY_BUILD_DIR)."""
import os
import subprocess
import sys

import pytest


def test_installed_package_imports(tmp_path):
    if os.environ.get("SOMA_PY_SANITIZE"):
        pytest.skip("not under the sanitizers (make sanitize skips the install tests too; "
                    "under the preloaded ASan runtime this test hung, not investigated)")
    build = os.environ.get("SOMA_PY_BUILD_DIR")
    site = os.environ.get("SOMA_PY_INSTALL_DIR")
    if not build or not site:
        if os.environ.get("CI"):
            pytest.fail("SOMA_PY_BUILD_DIR / SOMA_PY_INSTALL_DIR unset: run through ctest")
        pytest.skip("run through ctest (python.pytest sets SOMA_PY_BUILD_DIR) to test the install")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build, "--prefix", str(prefix)], check=True,
                   capture_output=True)
    pkg = prefix / site / "soma"
    assert (pkg / "__init__.py").exists() and list(pkg.glob("_soma*.so"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(prefix / site)
    code = ("import soma; x = soma.ones(2, requires_grad=True); (x * 3).sum().backward(); "
            "print(soma.__file__); print(x.grad.tolist())")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    assert out[0].startswith(str(pkg)) and out[1] == "[3.0, 3.0]"
