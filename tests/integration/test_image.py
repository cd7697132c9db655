"""The container image (image/build.sh, ``make image``) built from the wheel under test, and run.

``podman run`` cannot start containers on this machine (crun fails to set rlimits), so commands
run with ``buildah run --isolation chroot``: the image's filesystem, user and environment on
the host's network, so an etcd on 127.0.0.1 is reachable as a cluster's would be. The image is
built once per session under a tag of its own and removed at the end; the cached Debian base
(image/build.sh) stays for the next build.

Cases: what the image is (non-root by default, no compiler or pip, the version under test);
``nodestatus status --sample-fallback -o json`` in the image gives what the tested wheel gives
on the host; ``nodestatus agent --once --datastore etcdv3`` in the image, as root like the
DaemonSet, reads a real BIRD 1.6.8 through Calico's socket directory (bind-mounted) and writes
the status of its node's CalicoNodeStatus into a real etcd, leaving another node's alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import pytest

import nodestatus

from .fixtures.bird import DEMO_ROUTES, demo_config, demo_topology
from .fixtures.etcd import EtcdServer, etcd, etcd_factory  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.image]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "image" / "build.sh"
#: Calico's layout, as in calicoctl's etcd mode (sinks/etcd.py writes the same).
PREFIX = "/calico/resources/v3/projectcalico.org/caliconodestatuses/"
UID = "10001"


@pytest.fixture(scope="session")
def image(require) -> Iterator[str]:
    """The tag of an image built from ``$NODESTATUS_WHEEL`` (set by ``make test``)."""
    require(os.geteuid() == 0, "building an image needs root (debootstrap, podman, buildah)")
    for tool in ("debootstrap", "podman", "buildah"):
        require(shutil.which(tool), f"{tool} is not installed (scripts/install-system-deps.sh)")
    wheel = os.environ.get("NODESTATUS_WHEEL", "")
    require(wheel and Path(wheel).is_file(),
            "$NODESTATUS_WHEEL names no wheel (`make test` builds one and sets it)")
    tag = f"localhost/nodestatus-test:{uuid.uuid4().hex[:12]}"
    try:
        proc = subprocess.run(["bash", str(BUILD), "--wheel", wheel, "--tag", tag],
                              env=dict(os.environ, PYTHON=sys.executable),
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"image/build.sh failed:\n{proc.stdout}\n{proc.stderr}"
        yield tag
    finally:
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, timeout=300)


@pytest.fixture
def container(image) -> Iterator[str]:
    """A working container of the image (``buildah from``), removed after the test."""
    name = f"nodestatus-test-{uuid.uuid4().hex[:12]}"
    subprocess.run(["buildah", "from", "--name", name, image], check=True,
                   capture_output=True, timeout=300)
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, timeout=300)


def run_in(container: str, *argv: str, user: str = "", volumes: Sequence[str] = (),
           timeout: float = 120) -> subprocess.CompletedProcess:
    cmd: List[str] = ["buildah", "run", "--isolation", "chroot"]
    if user:
        cmd += ["--user", user]
    for volume in volumes:
        cmd += ["--volume", volume]
    return subprocess.run([*cmd, container, "--", *argv], capture_output=True, text=True,
                          timeout=timeout)


def image_config(image: str) -> Dict:
    out = subprocess.run(["buildah", "inspect", "--type", "image", image], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return json.loads(out)["OCIv1"]["config"]


# -- what the image is ---------------------------------------------------------------------------
def test_image_runs_unprivileged_without_build_tools(image, container):
    config = image_config(image)
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["nodestatus"]
    assert run_in(container, "id", "-u").stdout.strip() == UID
    proc = run_in(container, "nodestatus", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"nodestatus {nodestatus.__version__}"
    tools = run_in(container, "sh", "-c", "for t in gcc cc c++ make pip pip3; do "
                   "command -v $t; done; true")
    assert tools.returncode == 0, tools.stderr
    assert tools.stdout.split() == [], f"build tools in the final stage: {tools.stdout}"


# -- status from the bundled sample --------------------------------------------------------------
def _without_time(doc: Dict) -> Dict:
    doc["status"].pop("lastUpdated")
    return doc


def test_status_from_sample_matches_the_tested_wheel(container):
    argv = ["status", "--sample-fallback", "--node", "node1", "-o", "json"]
    proc = run_in(container, "nodestatus", *argv)
    assert proc.returncode == 0, proc.stderr
    assert "bundled sample" in proc.stderr
    got = json.loads(proc.stdout)
    assert got["kind"] == "CalicoNodeStatus" and got["spec"]["node"] == "node1"
    bgp, routes = got["status"]["bgp"], got["status"]["routes"]
    assert bgp["peersV4"] and bgp["peersV6"] and routes["routesV4"] and routes["routesV6"]
    # the same command with the wheel under test, outside the image
    host = subprocess.run([sys.executable, "-m", "nodestatus", *argv], capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert host.returncode == 0, host.stderr
    assert _without_time(got) == _without_time(json.loads(host.stdout))


# -- the agent against a real etcd and a real BIRD ----------------------------------------------
def _resource(name: str, node: str) -> Dict:
    """A CalicoNodeStatus as calicoctl stores it in etcd (no resourceVersion, no status)."""
    return {"kind": "CalicoNodeStatus", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {"node": node, "classes": ["Agent", "BGP", "Routes"],
                     "updatePeriodSeconds": 0}}


def test_agent_once_writes_status_to_etcd(container, etcd: EtcdServer, bird_factory, netns):
    node_ns, _peer_ns = demo_topology(netns)
    bird = bird_factory(node_ns, "1.6", demo_config())
    socket_dir = Path(bird.socket(4)).parent
    assert Path(bird.socket(6)).parent == socket_dir and Path(bird.socket(4)).name == "bird.ctl"
    etcd.put(PREFIX + "node1-status", _resource("node1-status", "node1"))
    etcd.put(PREFIX + "node2-status", _resource("node2-status", "node2"))
    other = etcd.read(PREFIX + "node2-status")

    # As the DaemonSet runs it: root (BIRD's sockets are root's), Calico's socket directory.
    proc = run_in(container, "nodestatus", "agent", "--once", "--node", "node1",
                  "--datastore", "etcdv3", "--etcd-endpoints", etcd.url,
                  user="0:0", volumes=[f"{socket_dir}:/run/calico"])
    assert proc.returncode == 0, proc.stderr
    assert "status written" in proc.stderr

    doc = etcd.read_json(PREFIX + "node1-status")
    assert doc["spec"] == _resource("node1-status", "node1")["spec"]
    status = doc["status"]
    assert status["agent"]["birdV4"]["state"] == "Ready"
    assert status["agent"]["birdV6"]["state"] == "Ready"
    assert status["agent"]["birdV4"]["routerID"] == demo_config().router_id
    routes = {fam: {r["destination"] for r in status["routes"][f"routesV{fam}"]}
              for fam in (4, 6)}
    for route in DEMO_ROUTES:
        assert route.prefix in routes[route.family], (route, routes)
    after = etcd.read(PREFIX + "node2-status")
    assert (after["value"], after["mod_revision"]) == (other["value"], other["mod_revision"])
