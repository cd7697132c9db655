"""The agent end to end on the Kubernetes backend, against the fake API server (no
kube-apiserver can be installed here), in both CRD shapes: Calico's own (no status
subresource, the default) and a variant with one.

BIRD's answers come from the lab capture (tests/data/captures/calico-lab-node1) for the
in-process agent; the CLI runs use socket paths that do not exist (both daemons NotReady,
which is a status, not an error). The same flows against a real BIRD are in
tests/integration/test_agent_kube.py.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

import nodestatus  # noqa: E402
from fakes.kube_api import PREFIX, FakeKubeAPI  # noqa: E402
from fakes.kubelet import free_port, probe  # noqa: E402
from nodestatus import cli  # noqa: E402
from nodestatus.agent import FIGHT_AFTER, Agent  # noqa: E402
from nodestatus.sinks.kube import KubeSink  # noqa: E402
from nodestatus.sinks.selector import Selector  # noqa: E402
from nodestatus.sources import collect_dumps  # noqa: E402

LAB = Path(__file__).resolve().parent.parent / "data" / "captures" / "calico-lab-node1"
DATA = collect_dumps(*[[str(LAB / f"v{f}" / n) for n in ("show_status.raw",
                                                      "show_protocols_all.raw", "show_route.raw")]
                       for f in (4, 6)])
SRC = Path(nodestatus.__file__).resolve().parents[1]
ALL = ["Agent", "BGP", "Routes"]
CALICO_STATUS = {"lastUpdated": "2024-01-01T00:00:00Z",
                 "agent": {"birdV4": {"state": "Ready", "version": "v0.3.3+birdv1.6.8"}},
                 "bgp": {"numberEstablishedV4": 0, "numberNotEstablishedV4": 0,
                         "numberEstablishedV6": 0, "numberNotEstablishedV6": 0}}


def _wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _spec(node="node1", classes=ALL, period=0):
    return {"node": node, "classes": list(classes), "updatePeriodSeconds": period}


def _without_rv(obj):
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("resourceVersion", None)
    return obj


@pytest.fixture(params=[False, True], ids=["calico-crd", "with-status-subresource"])
def api(request):
    fake = FakeKubeAPI(status_subresource=request.param).start()
    yield fake
    fake.stop()


class Running:
    def __init__(self, api, **agent_kw):
        self.api = api
        self.calls = []
        self.sink = KubeSink(host=api.url, request_timeout=5,
                             selector=agent_kw.get("selector"))
        self.agent = Agent(self.sink, "node1", self.collect, watch_timeout=0.2, **agent_kw)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)

    def collect(self, classes):
        self.calls.append(tuple(classes))
        return DATA

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.agent.stop()
        self.thread.join(timeout=10)
        self.sink.close()
        assert not self.thread.is_alive()


def test_agent_on_kubernetes(api):
    with Running(api) as run:
        api.create("mine", _spec(classes=["BGP"]))
        api.create("theirs", _spec(node="node2", classes=["BGP"]))
        assert _wait(lambda: "status" in api.objects["mine"])
        st = api.objects["mine"]["status"]
        assert st["bgp"]["numberEstablishedV4"] == 2 and st["lastUpdated"].endswith("Z")
        assert [p["peerIP"] for p in st["bgp"]["peersV4"]][:2] == ["10.77.0.2", "10.77.0.3"]
        assert "status" not in api.objects["theirs"]
        want_path = f"{PREFIX}/mine/status" if api.status_subresource else f"{PREFIX}/mine"
        assert {p for p, *_ in api.accepted_puts()} == {want_path}
        # a spec change reports at once even with period 0
        api.update("mine", spec=_spec(classes=["Agent"]))
        assert _wait(lambda: api.objects["mine"].get("status", {}).get("agent", {})
                     .get("birdV4", {}).get("state") == "Ready")
        assert api.objects["mine"]["spec"] == _spec(classes=["Agent"])   # spec never rewritten
        api.delete("mine")
        assert _wait(lambda: "mine" not in run.agent.reporters)
        assert not [p for p in api.puts if p[1] == "theirs"]


def test_once_with_a_conflict_on_the_first_write(api):
    """The "done when" case (in process): a conflict on the first write is re-read and
    written in the same round; --once succeeds; nothing else changes."""
    api.create("node1-status", _spec(), labels={"owner": "ops"})
    api.create("node2-status", _spec(node="node2"), status=CALICO_STATUS)
    theirs = copy.deepcopy(api.objects["node2-status"])

    def calico_node_writes(name):
        api.update(name, status=CALICO_STATUS)   # lands between our read and our write

    api.before_put.append(calico_node_writes)
    sink = KubeSink(host=api.url)
    agent = Agent(sink, "node1", lambda classes: DATA)
    try:
        assert agent.run(once=True) is True
    finally:
        sink.close()
    codes = [code for path, name, body, code in api.puts]
    assert codes == [409, 200]
    mine = api.objects["node1-status"]
    assert mine["status"]["bgp"]["numberEstablishedV4"] == 2
    assert mine["status"]["agent"]["birdV4"]["version"] != "v0.3.3+birdv1.6.8"   # ours
    assert mine["spec"] == _spec() and mine["metadata"]["labels"] == {"owner": "ops"}
    assert mine["metadata"]["generation"] == 1
    assert api.objects["node2-status"] == theirs


@pytest.fixture
def calico_api():
    fake = FakeKubeAPI().start()                  # Calico's CRD: no status subresource
    yield fake
    fake.stop()


def _agent_once(api, tmp_path, *extra) -> int:
    """``nodestatus agent --once`` for node1 in this process, BIRD's sockets absent."""
    return cli.main(["agent", "--once", "--node", "node1", *extra,
                     "--kubeconfig", api.kubeconfig(tmp_path / "kubeconfig"),
                     "--socket4", str(tmp_path / "none4"), "--socket6", str(tmp_path / "none6")])


def test_cli_once_on_calicos_crd(calico_api, tmp_path, capsys):
    """The "done when" case through the command line: Calico's CRD shape, a conflict on
    the first write, another node's resource: exit 0, this node's status filled, every
    spec and the other resource untouched."""
    api = calico_api
    api.create("node1-status", _spec(classes=["Agent"]))
    api.create("node2-status", _spec(node="node2"))
    before = {n: _without_rv(o) for n, o in api.objects.items()}
    api.before_put.append(lambda name: api.update(name, status=CALICO_STATUS))
    code = _agent_once(api, tmp_path, "--datastore", "kubernetes")
    err = capsys.readouterr().err
    assert code == 0, err
    mine = api.objects["node1-status"]
    assert mine["status"]["agent"]["birdV4"]["state"] == "NotReady"
    assert mine["status"]["agent"]["birdV6"]["state"] == "NotReady"
    assert [(p, c) for p, n, b, c in api.puts] == [(f"{PREFIX}/node1-status", 409),
                                                   (f"{PREFIX}/node1-status", 200)]
    after = {n: _without_rv(o) for n, o in api.objects.items()}
    assert after["node2-status"] == before["node2-status"]
    assert after["node1-status"]["spec"] == before["node1-status"]["spec"]
    assert after["node1-status"]["metadata"] == before["node1-status"]["metadata"]
    logs = [json.loads(line) for line in err.splitlines()]
    assert [x["msg"] for x in logs if x["level"] != "debug"][-1] == "agent stopped"
    assert any(x["msg"] == "conflict: re-reading" for x in logs)


def test_cli_once_fails_when_a_resource_is_not_reported(calico_api, tmp_path, capsys):
    api = calico_api
    api.create("node1-good", _spec())
    api.create("node1-bad", _spec(classes=["Agent", "Nope"]))
    code = _agent_once(api, tmp_path, "--log-format", "text")
    err = capsys.readouterr().err
    assert code == 1, err
    assert "status" in api.objects["node1-good"]
    # text logs carry the resource and the reason (issue 10)
    line, = [x for x in err.splitlines() if "skipping invalid resource" in x]
    assert "resource=node1-bad" in line and "unknown class 'Nope'" in line
    line, = [x for x in err.splitlines() if "not every resource" in x]
    assert 'resources=["node1-bad"]' in line


def test_cli_once_when_the_crd_is_missing(calico_api, tmp_path, capsys):
    calico_api.crd_installed = False
    code = _agent_once(calico_api, tmp_path)
    err = capsys.readouterr().err
    assert code == 1 and "is not installed" in err and "Traceback" not in err


# -- beside calico-node -------------------------------------------------------------------
def test_selector_leaves_calico_nodes_resources_alone():
    api = FakeKubeAPI().start()
    try:
        with Running(api, selector=Selector.parse("reporter=nodestatus")) as run:
            api.create("calico", _spec(period=1))                   # calico-node's to fill
            api.create("ours", _spec(period=1), labels={"reporter": "nodestatus"})
            assert _wait(lambda: "status" in api.objects["ours"])
            time.sleep(1.5)
            assert "status" not in api.objects["calico"]
            assert set(run.agent.reporters) == {"ours"}
            api.update("ours", labels={"reporter": "calico-node"})  # handed over
            assert _wait(lambda: not run.agent.reporters)
            n = len(api.accepted_puts("ours"))
            time.sleep(1.5)
            assert len(api.accepted_puts("ours")) == n
        assert not api.accepted_puts("calico")
    finally:
        api.stop()


def test_another_writer_is_noticed_once_and_not_fought(api, caplog):
    """calico-node's reporter rewrites the status after each of ours (and once even between
    our read and our write): one warning naming the resource and the likely cause; after
    it, no write sooner than the resource's period and no conflict retries."""
    caplog.set_level(logging.INFO, logger="nodestatus")
    period = 1
    api.after_put.append(lambda name: api.update(name, status=dict(
        CALICO_STATUS, lastUpdated=time.strftime("%H:%M:%S"))))
    with Running(api):
        api.create("node1-status", _spec(period=period))
        assert _wait(lambda: [r for r in caplog.records
                              if r.getMessage().startswith("another writer")],
                     timeout=period * (FIGHT_AFTER + 4))
        t_warned = time.monotonic()
        api.before_put.append(lambda name: api.update(name, status=CALICO_STATUS))
        time.sleep(period * 3.5)
        puts_after = [p for p in api.puts]
    warned = [r for r in caplog.records if r.getMessage().startswith("another writer")]
    assert len(warned) == 1
    assert warned[0].fields["resource"] == "node1-status"
    assert "calico-node" in warned[0].fields["likely_cause"]
    ours = [p for p in puts_after if p[1] == "node1-status"]
    stamps = [r.created for r in caplog.records if r.getMessage() in ("status written",
                                                                      "conflict: re-reading")
              and r.created >= time.time() - (time.monotonic() - t_warned)]
    # after the warning: at most one attempt per period (no in-round conflict retries)
    assert all(b - a >= period * 0.8 for a, b in zip(stamps, stamps[1:])), stamps
    assert 409 in [p[3] for p in ours]                 # the injected conflict happened


# -- health over HTTP ---------------------------------------------------------------------
def test_cli_health_endpoints(tmp_path):
    """/healthz answers 200 while the loop runs; /readyz 503 with no BIRD socket answering
    (the datastore alone is not enough). The ready case with a real BIRD is in the
    integration tests."""
    api = FakeKubeAPI().start()
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p))
    env.pop("DATASTORE_TYPE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodestatus", "agent", "--node", "node1",
         "--kubeconfig", api.kubeconfig(tmp_path / "kubeconfig"), "--health-addr", f"127.0.0.1:{port}",
         "--socket4", str(tmp_path / "none4"), "--socket6", str(tmp_path / "none6")],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: probe(port, "/healthz")[0] or proc.poll() is not None, 15)
        assert proc.poll() is None, proc.communicate()[1]
        code, body = probe(port, "/healthz")
        assert code == 200 and body["ok"] is True
        assert _wait(lambda: probe(port, "/readyz")[1]["datastore_answered_seconds_ago"]
                     is not None)
        code, body = probe(port, "/readyz")
        assert code == 503 and body["ok"] is False
        assert body["bird_answered_seconds_ago"] is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert json.loads(err.splitlines()[0])["health_addr"] == f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        api.stop()
