"""The typed contract, checked against the installed package in the same run as the rest:
``mypy --strict`` on the README's API (public_api.py), ``mypy.stubtest`` on both extensions
(stubtest-allowlist.txt lists the Cython internals, each with its reason) and plain ``mypy``
on the whole package.

Both run in a temporary directory, so only the installed package (its ``py.typed``, stubs
and annotations) can answer the imports, never src/."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTENSIONS = ("nodestatus._birdparse", "nodestatus._rtnl")


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_public_api_passes_mypy_strict(tmp_path):
    shutil.copy(HERE / "public_api.py", tmp_path / "public_api.py")
    proc = _run(tmp_path, "mypy", "--strict", "public_api.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 1 source file" in proc.stdout


def test_stubs_match_both_extensions(tmp_path):
    proc = _run(tmp_path, "mypy.stubtest", *EXTENSIONS,
                "--allowlist", str(HERE / "stubtest-allowlist.txt"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Success: no issues found in {len(EXTENSIONS)} modules" in proc.stdout


def test_installed_package_passes_mypy(tmp_path):
    """The package's own annotations agree with its code (third-party libraries without
    stubs, pyroute2 and etcd3gw among them, are taken as untyped)."""
    proc = _run(tmp_path, "mypy", "--ignore-missing-imports", "-p", "nodestatus")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout
