"""``nodestatus agent`` on Kubernetes against the real BIRD 1.6.8 Calico-shaped cluster
(fixtures/calico_cluster.py) and the fake API server (tests/fakes/kube_api.py: no
kube-apiserver can be installed here), serving Calico's own CRD shape: no status
subresource, so the status is written by replacing the whole object.

The issue's "done when" case runs through the command line, as a user would: a conflict is
injected on the first write (calico-node's reporter writing between the agent's read and
its write); ``agent --once`` fills this node's resource from BIRD, exits 0, and leaves the
other node's resource and every spec and metadata untouched. Then the long-running agent
answers its health endpoints over HTTP: ready, since the datastore and BIRD answer.
"""
from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time
from typing import Dict, List

import pytest

from fakes.kube_api import PREFIX, FakeKubeAPI
from fakes.kubelet import free_port, probe

from .fixtures.calico_cluster import ClusterNode, calico_cluster_16  # noqa: F401
from .test_agent_etcd import _cli_env, _json_lines, check_full_status, wait_for
from .test_agent_etcd import cluster, node1  # noqa: F401  (fixtures)

pytest.importorskip("kubernetes")
pytestmark = [pytest.mark.integration, pytest.mark.bird, pytest.mark.netns]

ALL = ["Agent", "BGP", "Routes"]
#: What calico-node's reporter might write: another writer's status.
CALICO_STATUS = {"lastUpdated": "2024-01-01T00:00:00Z",
                 "agent": {"birdV4": {"state": "Ready", "version": "v0.3.3+birdv1.6.8"}},
                 "bgp": {"numberEstablishedV4": 0, "numberNotEstablishedV4": 0,
                         "numberEstablishedV6": 0, "numberNotEstablishedV6": 0}}


@pytest.fixture
def api():
    fake = FakeKubeAPI().start()            # the default: Calico's CRD shape
    assert fake.status_subresource is False
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig(tmp_path, api) -> str:
    return api.kubeconfig(tmp_path / "kubeconfig")


def _argv(kubeconfig: str, node: ClusterNode, *extra: str) -> List[str]:
    return [sys.executable, "-m", "nodestatus", "agent", "--node", node.name,
            "--datastore", "kubernetes", "--kubeconfig", kubeconfig,
            "--socket4", node.sockets[4], "--socket6", node.sockets[6], *extra]


def _spec(node: str, period: int = 0, classes=ALL) -> dict:
    return {"classes": list(classes), "node": node, "updatePeriodSeconds": period}


def _without_version(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("resourceVersion")
    return obj


def test_cli_once_on_calicos_crd_with_a_conflict(api, kubeconfig, cluster, node1):
    api.create("node1-status", _spec("node1"), labels={"team": "network"})
    api.create("node2-status", _spec("node2"), status=CALICO_STATUS)
    before: Dict[str, dict] = {n: _without_version(o) for n, o in api.objects.items()}
    api.before_put.append(lambda name: api.update(name, status=CALICO_STATUS))
    t0 = time.monotonic()
    proc = subprocess.run(_argv(kubeconfig, node1, "--once"), env=_cli_env(),
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    print(f"agent --once on Kubernetes took {took:.2f}s")
    # this node's status, from BIRD, written over the whole-object path after one 409
    assert [(path, code) for path, name, body, code in api.puts] == \
        [(f"{PREFIX}/node1-status", 409), (f"{PREFIX}/node1-status", 200)]
    mine = api.objects["node1-status"]
    check_full_status(cluster, mine["status"])
    # spec and metadata as they were (the other writer touched only the status)
    after = _without_version(mine)
    assert after["spec"] == before["node1-status"]["spec"]
    assert after["metadata"] == before["node1-status"]["metadata"]
    assert after["apiVersion"] == "crd.projectcalico.org/v1"
    # the other node's resource: never written, identical
    assert _without_version(api.objects["node2-status"]) == before["node2-status"]
    msgs = [x.get("msg") for x in _json_lines(proc.stderr)]
    assert "conflict: re-reading" in msgs and msgs[-1] == "agent stopped"
    assert "Traceback" not in proc.stderr


def test_cli_health_ready_with_bird_and_datastore(api, kubeconfig, cluster, node1):
    """/readyz is 200 once the datastore and BIRD answered, even with nothing to report
    (the idle agent asks BIRD for its status); 503 when the datastore goes away."""
    port = free_port()
    proc = subprocess.Popen(_argv(kubeconfig, node1, "--health-addr", f"127.0.0.1:{port}"),
                            env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def ready():
        return probe(port, "/readyz")[0] == 200 or proc.poll() is not None

    try:
        wait_for(ready, 30, "/readyz 200")
        assert proc.poll() is None, proc.communicate()[1]
        code, body = probe(port, "/readyz")
        assert body["bird_answered_seconds_ago"] is not None and body["resources"] == 0
        assert probe(port, "/healthz")[0] == 200
        api.create("node1-status", _spec("node1", period=1))
        wait_for(lambda: "status" in api.objects["node1-status"], 15, "status written")
        api.stop()                                   # the datastore is gone
        wait_for(lambda: probe(port, "/readyz")[0] == 503, 60, "/readyz 503")
        assert probe(port, "/healthz")[0] == 200       # alive: waiting, not stuck
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
