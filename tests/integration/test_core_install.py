"""The core install as a library user gets it: the wheel under test (``$NODESTATUS_WHEEL``, set
by ``make test``) with no extras, in a fresh virtualenv. It has no datastore client; the
commands that need none work, and ``agent`` and ``exporter`` name the ``pip install`` of the
missing extra in one line with exit 2 (cli.OPTIONAL_MODULES).

Not root and no daemon, but it creates a virtualenv and installs from the package index:
marked ``integration`` to stay out of the fast loop."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodestatus.cli import OPTIONAL_MODULES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def core_bin(tmp_path_factory, require) -> Path:
    """The ``bin/`` of a fresh virtualenv holding ``pip install WHEEL`` (core only)."""
    wheel = os.environ.get("NODESTATUS_WHEEL", "")
    require(wheel and Path(wheel).is_file(),
            "$NODESTATUS_WHEEL names no wheel (`make test` builds one and sets it)")
    venv = tmp_path_factory.mktemp("core") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", wheel],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return venv / "bin"


def run(core_bin: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "DATASTORE_TYPE", "ETCD_ENDPOINTS", "NODENAME")}
    return subprocess.run([str(core_bin / "nodestatus"), *args], capture_output=True,
                          text=True, timeout=120, cwd="/", env=env)


def test_core_install_has_no_datastore_client(core_bin):
    probe = ("import importlib.util, json, sys; "
             "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))")
    proc = subprocess.run([str(core_bin / "python"), "-c", probe, *OPTIONAL_MODULES],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_core_commands_work_without_extras(core_bin):
    proc = run(core_bin, "status", "--sample-fallback", "--node", "node1", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "CalicoNodeStatus" and doc["status"]["bgp"]["peersV4"]


@pytest.mark.parametrize("datastore,extra", [("etcdv3", "etcd"), ("kubernetes", "kube")])
def test_agent_without_its_extra_names_the_install(core_bin, datastore, extra):
    proc = run(core_bin, "agent", "--once", "--node", "node1", "--datastore", datastore)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"nodestatus agent: support for the {datastore} datastore is not "
                               "installed (no module ")
    assert lines[0].endswith(f"pip install 'nodestatus[{extra}]'")


def test_exporter_without_the_metrics_extra_names_the_install(core_bin):
    proc = run(core_bin, "exporter", "--listen", "127.0.0.1:9")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "nodestatus exporter: support for Prometheus metrics is not installed (no module "
        "'prometheus_client'): pip install 'nodestatus[metrics]'"]
