"""The reporter (``nodestatus.agent.Agent``) against a real etcd (Debian etcd-server 3.4) and the
real BIRD 1.6.8 Calico-shaped cluster (fixtures/calico_cluster.py).

The agent for ``node1`` runs in a background thread with an :class:`EtcdSink` and
``collect_live`` bound to node1's two control sockets; it is stopped at teardown. Resources are
created, changed and deleted directly in etcd as calicoctl stores them (compact JSON at
``/calico/resources/v3/projectcalico.org/caliconodestatuses/<name>``, no resourceVersion), and
every assertion is on what etcd holds, read back independently (the fixture's etcdctl / JSON
gateway helpers, never EtcdSink). Expectations come from the fixture's configuration (node
addresses, blocks, peer protocol names). Timing checks poll with generous bounds.

Cases: create; update (classes, period 1 s refresh on a BIRD change, period 0 = no refresh but a
spec change still reports at once); delete; a resource of another node (and one moved away);
a conflicting writer (real CAS conflicts in etcd, and an overwrite between rounds); etcd
killed and restarted mid-run; a status larger than etcd's ``--max-request-bytes``; and the CLI
(``--once``, and the long-running form stopped with SIGTERM).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

import nodestatus
from nodestatus.agent import Agent
from nodestatus.sinks.etcd import PREFIX, REQUEST_OVERHEAD, EtcdSink
from nodestatus.sources import collect_live

from .fixtures.bird import BirdDaemon, binaries, require_bird
from .fixtures.calico_cluster import (  # noqa: F401  (fixtures)
    Cluster,
    ClusterNode,
    calico_cluster_16,
    peer_name,
)
from .fixtures.etcd import EtcdServer, etcd, etcd_factory  # noqa: F401  (fixtures)
from .fixtures.netns import NetnsRegistry

pytestmark = [pytest.mark.integration, pytest.mark.etcd, pytest.mark.bird, pytest.mark.netns]

ALL = ["Agent", "BGP", "Routes"]
SRC = Path(nodestatus.__file__).resolve().parents[1]
#: Upper bound for "at once" (a spec change reported): one watch event + one BIRD round.
AT_ONCE = 8.0
#: Upper bound for a session change to reach etcd with a 1 s period (BIRD notices a
#: disabled peer within a second; a couple of periods; a loaded 2-core machine).
REFRESH = 15.0


# -- helpers -----------------------------------------------------------------------------------
def key(name: str) -> str:
    return PREFIX + name


def resource(name: str, node: str = "node1", classes=ALL, period: int = 10,
             **extra) -> dict:
    """The value calicoctl stores: the full v3 document without metadata.resourceVersion."""
    doc = {
        "kind": "CalicoNodeStatus",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": name, "uid": f"uid-{name}",
                     "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"classes": list(classes), "node": node, "updatePeriodSeconds": period},
    }
    doc.update(extra)
    return doc


def wait_for(fn: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``fn`` until it returns something truthy; fail with the last value after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s (last: {str(last)[:2000]})")
        time.sleep(interval)


def stays(fn: Callable[[], bool], seconds: float, what: str, interval: float = 0.25) -> None:
    """``fn`` holds for the whole of ``seconds`` (a negative check: nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert fn(), f"{what}: broke after {seconds - (deadline - time.monotonic()):.1f}s"
        time.sleep(interval)


def doc_of(server: EtcdServer, name: str) -> Optional[dict]:
    return server.read_json(key(name))


def status_of(server: EtcdServer, name: str) -> Optional[dict]:
    doc = doc_of(server, name)
    return None if doc is None else doc.get("status")


def peers(status: Optional[dict], fam: int) -> Dict[str, dict]:
    return {p["peerIP"]: p for p in ((status or {}).get("bgp") or {}).get(f"peersV{fam}") or []}


def routes(status: Optional[dict], fam: int) -> List[dict]:
    return list(((status or {}).get("routes") or {}).get(f"routesV{fam}") or [])


def agent_state(status: Optional[dict], fam: int) -> str:
    return (((status or {}).get("agent") or {}).get(f"birdV{fam}") or {}).get("state", "")


def established(server: EtcdServer, name: str, peer_ip: str, fam: int = 4) -> Optional[bool]:
    """None while there is no status or no such peer, else whether the peer is Established."""
    st = status_of(server, name)
    if not st or peer_ip not in peers(st, fam):
        return None
    return peers(st, fam)[peer_ip]["state"] == "Established"


def bird_session(node: ClusterNode, protocol: str, fam: int = 4) -> str:
    """``state info`` of one protocol from a raw ``show protocols`` (not the parser)."""
    proto, state, info = node.protocol_table(fam).get(protocol, ("", "absent", ""))
    return f"{state} {info}".strip()


def restore_cluster(cluster: Cluster) -> None:
    for n in cluster:
        for fam in n.families():
            for proto in n.peers[fam]["mesh"]:
                n.query(f"enable {proto}", fam)
    cluster.wait_established(60)
    cluster.wait_routes(30)


def check_full_status(cluster: Cluster, st: dict) -> None:
    """node1's status with every class, derived from the fixture's configuration."""
    me = cluster.node(1)
    others = [n for n in cluster if n is not me]
    assert st["lastUpdated"].endswith("Z") and "T" in st["lastUpdated"]
    for fam in (4, 6):
        bird = st["agent"][f"birdV{fam}"]
        assert bird["state"] == "Ready", bird
        assert bird["routerID"] == me.ipv4, bird            # bird6 also uses the IPv4 id
        assert "1.6.8" in bird["version"], bird
        got = peers(st, fam)
        for o in others:
            p = got[o.address[fam]]
            assert p["type"] == "NodeMesh" and p["state"] == "Established", p
        assert st["bgp"][f"numberEstablishedV{fam}"] == len(others)
        # the non-Calico session (upstream_rr, 10.77.0.102) is not a Calico peer
        assert "10.77.0.102" not in got
        dests = {r["destination"]: r for r in routes(st, fam) if r["type"] == "FIB"}
        for o in others:
            r = dests[o.blocks[fam]]
            assert r["gateway"] == o.address[fam], r
            assert r["learnedFrom"] == {"sourceType": "NodeMesh", "peerIP": o.address[fam]}, r
        assert me.blocks[fam] in dests                      # the node's own blackhole block


class AgentThread:
    """One Agent running ``run()`` in a daemon thread."""

    def __init__(self, sink: EtcdSink, node: str, collect, watch_timeout: float = 0.5) -> None:
        self.sink = sink
        self.agent = Agent(sink, node, collect, watch_timeout=watch_timeout)
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name=f"agent-{node}", daemon=True)

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as exc:  # reported at teardown
            self.error = exc

    def start(self) -> "AgentThread":
        self.thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and self.error is None

    def stop(self, timeout: float = 15.0) -> float:
        t0 = time.monotonic()
        self.agent.stop()
        self.thread.join(timeout)
        return time.monotonic() - t0


class InterferingSink(EtcdSink):
    """EtcdSink whose next ``write_status`` first runs a hook: another writer changing the
    document in etcd between the agent's read and its compare-and-swap (a real conflict)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_write: List[Callable[[], None]] = []
        self.write_attempts = 0

    def write_status(self, stored, status):
        self.write_attempts += 1
        if self.before_write:
            self.before_write.pop(0)()
        return super().write_status(stored, status)


@pytest.fixture
def cluster(calico_cluster_16: Cluster) -> Cluster:
    missing = calico_cluster_16.not_established()
    if missing:               # a previous test left something behind: put it back first
        restore_cluster(calico_cluster_16)
    return calico_cluster_16


@pytest.fixture
def node1(cluster: Cluster) -> ClusterNode:
    return cluster.node(1)


@pytest.fixture
def node1_collect(node1: ClusterNode):
    return lambda classes: collect_live(classes, node1.sockets[4], node1.sockets[6])


@pytest.fixture
def start_agent(node1_collect, caplog):
    """``start(server, sink_cls=EtcdSink, collect=node1's BIRD, **sink_options)`` → a running
    :class:`AgentThread` for node1. Every agent is stopped and its sink closed at teardown,
    which also checks that it stopped promptly and never died."""
    caplog.set_level(logging.INFO, logger="nodestatus")
    runners: List[AgentThread] = []

    def start(server: EtcdServer, sink_cls=EtcdSink, collect=None, node: str = "node1",
              **options) -> AgentThread:
        options.setdefault("timeout", 5.0)
        sink = sink_cls(server.url, **options)
        runner = AgentThread(sink, node, collect or node1_collect)
        runners.append(runner)
        return runner.start()

    yield start
    problems = []
    for r in runners:
        took = r.stop()
        r.sink.close()
        if r.thread.is_alive():
            problems.append(f"agent thread still running {took:.1f}s after stop()")
        elif took > 10:
            problems.append(f"agent took {took:.1f}s to stop")
        if r.error is not None:
            problems.append(f"agent thread died: {r.error!r}")
    assert not problems, problems


def agent_records(caplog, level: int = logging.DEBUG, msg: Optional[str] = None):
    return [r for r in caplog.records if r.name.startswith("nodestatus")
            and r.levelno >= level and (msg is None or r.getMessage() == msg)]


# -- create ----------------------------------------------------------------------------------------
def test_create_reports_full_status(etcd, cluster, start_agent, caplog):
    start_agent(etcd)
    t0 = time.monotonic()
    created = etcd.put(key("node1-status"), resource("node1-status", period=60))
    st = wait_for(lambda: status_of(etcd, "node1-status"), 10, "status written")
    latency = time.monotonic() - t0
    check_full_status(cluster, st)
    got = etcd.read(key("node1-status"))
    doc = json.loads(got["value"])
    assert got["mod_revision"] > created
    assert got["create_revision"] == created            # updated in place, not re-created
    # the rest of the document untouched, and no resourceVersion stored (calicoctl's layout)
    want = resource("node1-status", period=60)
    assert doc["spec"] == want["spec"] and doc["metadata"] == want["metadata"]
    assert doc["kind"] == "CalicoNodeStatus" and doc["apiVersion"] == "projectcalico.org/v3"
    assert "resourceVersion" not in doc["metadata"]
    # compact JSON like calicoctl (no spaces after separators)
    assert b'": ' not in got["value"] and b'", "' not in got["value"]
    print(f"status in etcd {latency:.2f}s after create")
    # nothing changes in BIRD: the status is not rewritten (write only on change)
    stays(lambda: etcd.read(key("node1-status"))["mod_revision"] == got["mod_revision"], 2.5,
          "no rewrite without a change")
    assert not agent_records(caplog, logging.ERROR)


def test_existing_resources_one_bird_query(etcd, cluster, start_agent):
    """Resources already there when the agent starts are all due at once: one BIRD query
    serves them all (the union of their classes)."""
    names = [f"node1-s{i}" for i in range(5)]
    classes = [["Agent"], ["BGP"], ["Routes"], ALL, ["Agent", "Routes"]]
    for name, cls in zip(names, classes):
        etcd.put(key(name), resource(name, classes=cls, period=300))
    runner = start_agent(etcd)
    wait_for(lambda: all(status_of(etcd, n) for n in names), 15, "every status written")
    assert runner.agent.bird_queries == 1 and runner.agent.writes == 5
    for name, cls in zip(names, classes):
        st = status_of(etcd, name)
        assert bool(agent_state(st, 4)) == ("Agent" in cls)
        assert bool(peers(st, 4)) == ("BGP" in cls)
        assert bool(routes(st, 4)) == ("Routes" in cls)


def test_invalid_resources_skipped(etcd, cluster, start_agent, caplog):
    bad_spec = resource("node1-bad", classes=["Agent", "Nonsense"], period=1)
    etcd.put(key("node1-bad"), bad_spec)
    etcd.put(key("node1-junk"), b"{not json")
    rev_bad = etcd.read(key("node1-bad"))["mod_revision"]
    runner = start_agent(etcd)
    etcd.put(key("node1-good"), resource("node1-good", period=1))
    wait_for(lambda: status_of(etcd, "node1-good"), 10, "the valid resource served")
    stays(lambda: etcd.read(key("node1-bad"))["mod_revision"] == rev_bad, 2.0,
          "invalid resource not written")
    assert etcd.read(key("node1-junk"))["value"] == b"{not json"
    skipped = {r.fields["resource"] for r in agent_records(caplog, logging.WARNING,
                                                           "skipping invalid resource")}
    assert skipped >= {"node1-bad", "node1-junk"}
    # fixed by the user: served at once
    etcd.put(key("node1-bad"), resource("node1-bad", classes=["Agent"], period=1))
    wait_for(lambda: agent_state(status_of(etcd, "node1-bad"), 4) == "Ready", AT_ONCE,
             "fixed resource served")
    assert runner.alive


# -- update: classes -------------------------------------------------------------------------------
def test_update_classes_reports_at_once(etcd, cluster, start_agent):
    runner = start_agent(etcd)
    name = "node1-status"
    etcd.put(key(name), resource(name, period=300))
    first = wait_for(lambda: status_of(etcd, name), 10, "first status")
    check_full_status(cluster, first)

    # only BGP (a long period: only the spec change can explain a prompt write)
    t0 = time.monotonic()
    etcd.put(key(name), resource(name, classes=["BGP"], period=300))
    st = wait_for(lambda: (s := status_of(etcd, name)) and not routes(s, 4) and s, AT_ONCE,
                  "status for classes [BGP]")
    print(f"classes [BGP] reported after {time.monotonic() - t0:.2f}s")
    assert routes(st, 6) == []
    assert agent_state(st, 4) == agent_state(st, 6) == ""          # agent emptied
    assert peers(st, 4)["10.77.0.2"]["state"] == "Established"
    assert st["bgp"]["numberEstablishedV4"] == 2 and st["bgp"]["numberEstablishedV6"] == 2
    assert doc_of(etcd, name)["spec"]["classes"] == ["BGP"]       # spec untouched

    # only Agent: BGP and routes emptied, agent back
    etcd.put(key(name), resource(name, classes=["Agent"], period=300))
    st = wait_for(lambda: (s := status_of(etcd, name)) and agent_state(s, 4) and s, AT_ONCE,
                  "status for classes [Agent]")
    assert agent_state(st, 4) == agent_state(st, 6) == "Ready"
    assert not peers(st, 4) and not peers(st, 6) and not routes(st, 4) and not routes(st, 6)
    assert st.get("bgp", {}).get("numberEstablishedV4", 0) == 0

    # Routes and Agent (no BGP): routes back, peers still empty
    etcd.put(key(name), resource(name, classes=["Agent", "Routes"], period=300))
    st = wait_for(lambda: (s := status_of(etcd, name)) and routes(s, 4) and s, AT_ONCE,
                  "status for classes [Agent, Routes]")
    assert agent_state(st, 4) == "Ready" and not peers(st, 4)
    assert cluster.node(2).blocks[4] in {r["destination"] for r in routes(st, 4)}
    assert runner.agent.bird_queries >= 4


# -- update: period ----------------------------------------------------------------------------
def test_short_period_refreshes_on_bird_change(etcd, cluster, node1, start_agent):
    node2 = cluster.node(2)
    mesh_on_node2 = peer_name("Mesh", node1.ipv4)            # node2's session to node1
    start_agent(etcd)
    name = "node1-fast"
    etcd.put(key(name), resource(name, period=1))
    wait_for(lambda: established(etcd, name, node2.ipv4), 10, "mesh to node2 Established")
    before = status_of(etcd, name)
    try:
        t0 = time.monotonic()
        cluster.disable_protocol(node2, mesh_on_node2)
        st = wait_for(lambda: established(etcd, name, node2.ipv4) is False and
                      status_of(etcd, name), REFRESH, "peer node2 down in etcd")
        print(f"session down reflected after {time.monotonic() - t0:.2f}s (period 1s)")
        p = peers(st, 4)[node2.ipv4]
        assert p["type"] == "NodeMesh" and p["state"] != "Established"
        assert st["bgp"]["numberEstablishedV4"] == 1
        assert st["lastUpdated"] >= before["lastUpdated"]
        # node2's block is no longer learned over the mesh
        wait_for(lambda: node2.blocks[4] not in {
            r["destination"] for r in routes(status_of(etcd, name), 4)}, REFRESH,
            "node2's block gone from the routes")
        # IPv6 untouched
        assert peers(st, 6)[node2.ipv6]["state"] == "Established"
    finally:
        cluster.enable_protocol(node2, mesh_on_node2)
    t1 = time.monotonic()
    wait_for(lambda: established(etcd, name, node2.ipv4), 45, "peer node2 back in etcd")
    print(f"session up reflected after {time.monotonic() - t1:.2f}s")
    cluster.wait_established(30)
    cluster.wait_routes(30)
    wait_for(lambda: node2.blocks[4] in {
        r["destination"] for r in routes(status_of(etcd, name), 4)}, REFRESH,
        "node2's block back in the routes")


def test_period_zero_no_refresh_but_spec_change_reports(etcd, cluster, node1, start_agent):
    node2 = cluster.node(2)
    mesh_on_node2 = peer_name("Mesh", node1.ipv4)
    mesh_on_node1 = peer_name("Mesh", node2.ipv4)
    start_agent(etcd)
    name = "node1-once"
    etcd.put(key(name), resource(name, period=0))
    wait_for(lambda: established(etcd, name, node2.ipv4), 10, "mesh to node2 Established")
    rev = etcd.read(key(name))["mod_revision"]
    try:
        cluster.disable_protocol(node2, mesh_on_node2)
        wait_for(lambda: not bird_session(node1, mesh_on_node1).endswith("Established"),
                 REFRESH, "node1's BIRD sees the session down")
        # period 0: no refresh, the change is not reflected
        stays(lambda: etcd.read(key(name))["mod_revision"] == rev, 5.0,
              "status unchanged with period 0")
        assert established(etcd, name, node2.ipv4) is True
        # a spec change still reports at once (and shows the current state)
        t0 = time.monotonic()
        etcd.put(key(name), resource(name, classes=["Agent", "BGP"], period=0))
        st = wait_for(lambda: established(etcd, name, node2.ipv4) is False and
                      status_of(etcd, name), AT_ONCE, "spec change reported")
        print(f"spec change (period 0) reported after {time.monotonic() - t0:.2f}s")
        assert not routes(st, 4) and agent_state(st, 4) == "Ready"
        assert st["bgp"]["numberEstablishedV4"] == 1
        rev = etcd.read(key(name))["mod_revision"]
    finally:
        cluster.enable_protocol(node2, mesh_on_node2)
    cluster.wait_established(45)
    # the session is back in BIRD, but period 0 still writes nothing
    stays(lambda: etcd.read(key(name))["mod_revision"] == rev, 3.0,
          "status unchanged after the session came back")
    assert established(etcd, name, node2.ipv4) is False


# -- delete -------------------------------------------------------------------------------------
def test_delete_stops_reporter(etcd, cluster, start_agent, caplog):
    runner = start_agent(etcd)
    etcd.put(key("node1-a"), resource("node1-a", period=1))
    etcd.put(key("node1-b"), resource("node1-b", period=1))
    wait_for(lambda: status_of(etcd, "node1-a") and status_of(etcd, "node1-b"), 10,
             "both statuses")
    etcd.delete(key("node1-a"))
    wait_for(lambda: "node1-a" not in runner.agent.reporters, AT_ONCE, "reporter stopped")
    # with a 1 s period, a live reporter would have re-created the key by now
    stays(lambda: etcd.read(key("node1-a")) is None, 4.0, "deleted key stays deleted")
    # the other resource is still served: a spec change on it is reported
    etcd.put(key("node1-b"), resource("node1-b", classes=["Agent"], period=1))
    wait_for(lambda: (s := status_of(etcd, "node1-b")) and not routes(s, 4), AT_ONCE,
             "node1-b still served")
    assert runner.alive
    stopping = agent_records(caplog, msg="stopping reporter")
    assert [r.fields for r in stopping] == [{"resource": "node1-a", "reason": "deleted"}]
    assert not agent_records(caplog, logging.WARNING), \
        [r.getMessage() for r in agent_records(caplog, logging.WARNING)]


def test_delete_and_recreate(etcd, cluster, start_agent):
    start_agent(etcd)
    etcd.put(key("node1-r"), resource("node1-r", period=0))
    wait_for(lambda: status_of(etcd, "node1-r"), 10, "status")
    etcd.delete(key("node1-r"))
    created = etcd.put(key("node1-r"), resource("node1-r", classes=["Agent"], period=0))
    st = wait_for(lambda: status_of(etcd, "node1-r"), AT_ONCE, "re-created resource served")
    assert agent_state(st, 4) == "Ready" and not routes(st, 4)
    assert etcd.read(key("node1-r"))["create_revision"] == created


# -- other node ---------------------------------------------------------------------------------
def test_resource_of_another_node_never_written(etcd, cluster, start_agent, caplog):
    start_agent(etcd)
    rev2 = etcd.put(key("node2-status"), resource("node2-status", node="node2", period=1))
    etcd.put(key("node1-status"), resource("node1-status", period=1))
    wait_for(lambda: status_of(etcd, "node1-status"), 10, "node1's status")
    stays(lambda: etcd.read(key("node2-status"))["mod_revision"] == rev2, 3.0,
          "node2's resource untouched")
    assert doc_of(etcd, "node2-status") == resource("node2-status", node="node2", period=1)

    # a resource moved from node1 to node2: its reporter stops, nothing more is written
    moved = etcd.put(key("node1-status"), resource("node1-status", node="node2", period=1))
    stays(lambda: etcd.read(key("node1-status"))["mod_revision"] == moved, 4.0,
          "moved resource not written")
    assert doc_of(etcd, "node1-status") == resource("node1-status", node="node2", period=1)
    stopping = [r.fields for r in agent_records(caplog, msg="stopping reporter")]
    assert stopping == [{"resource": "node1-status", "reason": "node is node2"}]
    # and moved back: served again at once
    etcd.put(key("node1-status"), resource("node1-status", period=1))
    wait_for(lambda: status_of(etcd, "node1-status"), AT_ONCE, "served again")
    assert etcd.read(key("node2-status"))["mod_revision"] == rev2


# -- conflicting writer -------------------------------------------------------------------------
def test_conflicting_writer(etcd, cluster, start_agent, caplog):
    name = "node1-status"
    runner = start_agent(etcd, sink_cls=InterferingSink)
    sink: InterferingSink = runner.sink
    etcd.put(key(name), resource(name, period=1))
    wait_for(lambda: status_of(etcd, name), 10, "first status")

    # 1. between the agent's read and its write, another client replaces the document:
    #    same spec, a label added, a bogus status. The agent's CAS fails, it re-reads, and
    #    its next write succeeds, keeping the other writer's metadata and spec.
    bogus = {"lastUpdated": "2001-01-01T00:00:00Z", "agent": {"birdV4": {"state": "Bogus"}}}
    other1 = resource(name, classes=["Agent", "BGP"], period=1, status=bogus)
    other1["metadata"]["labels"] = {"writer": "other"}
    revs: Dict[str, int] = {}
    sink.before_write.append(lambda: revs.setdefault("other1", etcd.put(key(name), other1)))
    etcd.put(key(name), resource(name, classes=["Agent", "BGP"], period=1))  # triggers a write
    wait_for(lambda: "other1" in revs, AT_ONCE, "the agent tried to write")
    doc = wait_for(lambda: (d := doc_of(etcd, name)) and agent_state(d["status"], 4) == "Ready"
                   and d, AT_ONCE, "agent's write after the conflict")
    got = etcd.read(key(name))
    assert got["mod_revision"] > revs["other1"]
    assert doc["metadata"]["labels"] == {"writer": "other"}          # the other writer's
    assert doc["spec"] == other1["spec"]                             # spec untouched
    st = doc["status"]
    assert st["lastUpdated"] != bogus["lastUpdated"]
    assert not routes(st, 4) and peers(st, 4)[cluster.node(2).ipv4]["state"] == "Established"
    assert any(r.getMessage() == "conflict: re-reading" for r in caplog.records)

    # 2. the other writer changes the spec in that window: the agent serves the new spec
    other2 = resource(name, classes=["Agent"], period=1)
    sink.before_write.append(lambda: revs.setdefault("other2", etcd.put(key(name), other2)))
    etcd.put(key(name), resource(name, classes=["Routes"], period=1))
    wait_for(lambda: "other2" in revs, AT_ONCE, "the agent tried to write again")
    doc = wait_for(lambda: (d := doc_of(etcd, name)) and d.get("status") and d, AT_ONCE,
                   "agent's write for the other writer's spec")
    assert doc["spec"] == other2["spec"]
    assert agent_state(doc["status"], 4) == "Ready"
    assert not routes(doc["status"], 4) and not peers(doc["status"], 4)
    assert etcd.read(key(name))["mod_revision"] > revs["other2"]
    conflicts = [r for r in caplog.records if r.getMessage() == "conflict: re-reading"]
    assert len(conflicts) >= 2

    # 3. an overwrite between rounds (status dropped, spec changed): seen on the watch,
    #    reported at once with the new spec
    other3 = resource(name, classes=ALL, period=1)
    rev3 = etcd.put(key(name), other3)
    doc = wait_for(lambda: (d := doc_of(etcd, name)) and d.get("status") and d, AT_ONCE,
                   "status written back")
    assert doc["spec"] == other3["spec"] and etcd.read(key(name))["mod_revision"] > rev3
    check_full_status(cluster, doc["status"])
    assert runner.alive


# -- etcd restart --------------------------------------------------------------------------------
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_etcd_restart_mid_run(etcd, cluster, start_agent, caplog, kill):
    runner = start_agent(etcd)
    etcd.put(key("node1-a"), resource("node1-a", period=1))
    wait_for(lambda: status_of(etcd, "node1-a"), 10, "first status")
    t0 = time.monotonic()
    etcd.restart(kill=kill, down_for=2.0)
    # created and changed just after etcd came back, while the agent is still backing off
    created = etcd.put(key("node1-b"), resource("node1-b", classes=["BGP"], period=1))
    etcd.put(key("node1-a"), resource("node1-a", classes=["Agent"], period=1))
    st_b = wait_for(lambda: status_of(etcd, "node1-b"), 45, "resource created after restart")
    st_a = wait_for(lambda: (s := status_of(etcd, "node1-a")) and not routes(s, 4) and s, 45,
                    "changed resource reported after restart")
    print(f"recovered {time.monotonic() - t0:.2f}s after the restart began (down 2s)")
    assert etcd.read(key("node1-b"))["create_revision"] == created
    assert peers(st_b, 4)[cluster.node(2).ipv4]["state"] == "Established" and \
        not routes(st_b, 4)
    assert agent_state(st_a, 4) == "Ready" and not peers(st_a, 4)
    warnings = [r.getMessage() for r in agent_records(caplog, logging.WARNING)]
    assert any("datastore" in w for w in warnings), warnings
    assert runner.alive
    # and it keeps watching: a later change is still served promptly
    etcd.put(key("node1-b"), resource("node1-b", classes=["Agent", "BGP"], period=1))
    wait_for(lambda: agent_state(status_of(etcd, "node1-b"), 4) == "Ready", AT_ONCE,
             "change after recovery")


# -- size limit ----------------------------------------------------------------------------------
BIG_V4 = 3000
DUP_V4 = 40          # prefixes also in static2: a second, non-best (RIB) route each
BIG_V6 = 200


def _big_config(family: int, log_path: str) -> str:
    if family == 4:
        prefixes = [f"10.{100 + i // 250}.{i % 250}.0/24" for i in range(BIG_V4)]
    else:
        prefixes = [f"2001:db8:{i:x}::/48" for i in range(BIG_V6)]
    dups = prefixes[:DUP_V4] if family == 4 else []
    lines = [f'log "{log_path}" all;', "router id 10.99.0.1;", "",
             "protocol device device1 { scan time 10; }", "",
             "protocol kernel kernel1 {", "  persist no;", "  scan time 10;",
             "  import none;", "  export none;", "}", "",
             "protocol static static1 {"]
    lines += [f"  route {p} blackhole;" for p in prefixes]
    lines += ["}", "", "protocol static static2 {", "  preference 50;"]
    lines += [f"  route {p} unreachable;" for p in dups]
    lines += ["}", ""]
    return "\n".join(lines)


def _route_total(daemon: BirdDaemon) -> int:
    """Routes in master from a raw ``show route count`` (e.g. ``3040 of 3040 routes for
    3000 networks``), without the parser under test."""
    for line in daemon.query("show route count").decode().splitlines():
        body = line[5:] if line[:4].isdigit() else line
        if " of " in body and "routes for" in body:
            return int(body.split()[0])
    raise AssertionError("no route count in the reply")


@pytest.fixture
def big_bird(netns: NetnsRegistry, tmp_path_factory, require) -> Dict[int, BirdDaemon]:
    """A separate BIRD 1.6 node (bird + bird6) with BIG_V4 + DUP_V4 IPv4 and BIG_V6 IPv6
    static routes in master, nothing exported to the kernel."""
    require_bird(require, "1.6")
    ns = netns.add("big")
    workdir = tmp_path_factory.mktemp("bigbird")
    bins = binaries("1.6")
    daemons = {}
    for fam, name in ((4, "bird"), (6, "bird6")):
        daemons[fam] = BirdDaemon(netns, ns, bins[fam],
                                  _big_config(fam, str(workdir / f"{name}.log")),
                                  workdir, name).start()
    # static routes are in master as soon as the protocols are up
    wait_for(lambda: _route_total(daemons[4]) == BIG_V4 + DUP_V4, 15, "IPv4 routes loaded")
    wait_for(lambda: _route_total(daemons[6]) == BIG_V6, 15, "IPv6 routes loaded")
    yield daemons
    for d in daemons.values():
        d.stop()


def test_status_exceeding_size_limit(etcd_factory, big_bird, start_agent, caplog):
    limit = 16 * 1024
    server = etcd_factory(max_request_bytes=limit)
    collect = lambda classes: collect_live(classes, big_bird[4].socket_path,  # noqa: E731
                                           big_bird[6].socket_path)
    runner = start_agent(server, collect=collect, max_request_bytes=limit)
    name = "node1-big"
    server.put(key(name), resource(name, period=1))
    st = wait_for(lambda: status_of(server, name), 20, "trimmed status written")
    got = server.read(key(name))
    assert len(got["value"]) <= limit - REQUEST_OVERHEAD
    # agent and BGP always
    assert agent_state(st, 4) == agent_state(st, 6) == "Ready"
    assert st["agent"]["birdV4"]["routerID"] == "10.99.0.1"
    assert "bgp" in st and st["bgp"]["numberEstablishedV4"] == 0
    # some routes, FIB first: only best routes kept, and IPv4 ones before any IPv6
    kept4, kept6 = routes(st, 4), routes(st, 6)
    assert kept4, "no routes kept at all"
    assert all(r["type"] == "FIB" for r in kept4 + kept6), \
        [r for r in kept4 + kept6 if r["type"] != "FIB"][:3]
    assert not kept6 or len(kept4) == BIG_V4                    # v6 only after every v4 FIB
    total = BIG_V4 + DUP_V4 + BIG_V6
    assert total == _route_total(big_bird[4]) + _route_total(big_bird[6])
    left = [r for r in agent_records(caplog, msg="status too large: routes left out")]
    assert left, [r.getMessage() for r in caplog.records]
    assert left[-1].fields["resource"] == name
    assert left[-1].fields["left_out"] == total - len(kept4) - len(kept6)
    print(f"kept {len(kept4)} + {len(kept6)} routes of {total} "
          f"({len(got['value'])} bytes stored, limit {limit})")
    # not wedged: no write was refused, and with nothing changing in BIRD the trimmed status
    # is only refreshed (its lastUpdated, at most once a period: the heartbeat), never
    # rebuilt into something else
    assert not [r for r in agent_records(caplog, logging.WARNING)
                if r.getMessage() != "status too large: routes left out"]
    stamps = set()

    def same_trimmed_status() -> bool:
        now = status_of(server, name)
        stamps.add(now["lastUpdated"])
        return {k: v for k, v in now.items() if k != "lastUpdated"} == \
            {k: v for k, v in st.items() if k != "lastUpdated"}

    stays(same_trimmed_status, 3.5, "trimmed status kept as it is")
    assert len(stamps) <= 5, stamps             # period 1 s: one refresh a second at most
    # and a spec change is still written at once
    server.put(key(name), resource(name, classes=["Agent", "BGP"], period=1))
    st = wait_for(lambda: (s := status_of(server, name)) and not routes(s, 4) and s, AT_ONCE,
                  "spec change written")
    assert agent_state(st, 4) == "Ready"
    assert runner.alive


# -- CLI -----------------------------------------------------------------------------------------
def _cli_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    for var in ("ETCD_ENDPOINTS", "NODENAME", "DATASTORE_TYPE",
                "NODESTATUS_ETCD_MAX_REQUEST_BYTES"):
        env.pop(var, None)
    return env


def _cli_argv(server: EtcdServer, node: ClusterNode, *extra: str) -> List[str]:
    return [sys.executable, "-m", "nodestatus", "agent", "--node", node.name,
            "--datastore", "etcdv3", "--etcd-endpoints", server.url,
            "--socket4", node.sockets[4], "--socket6", node.sockets[6], *extra]


def _json_lines(text: str) -> List[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_cli_once(etcd, cluster, node1):
    etcd.put(key("node1-status"), resource("node1-status", period=0))
    etcd.put(key("node2-status"), resource("node2-status", node="node2", period=0))
    rev2 = etcd.read(key("node2-status"))["mod_revision"]
    t0 = time.monotonic()
    proc = subprocess.run(_cli_argv(etcd, node1, "--once"), env=_cli_env(),
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    print(f"agent --once took {took:.2f}s")
    check_full_status(cluster, status_of(etcd, "node1-status"))
    assert etcd.read(key("node2-status"))["mod_revision"] == rev2
    logs = _json_lines(proc.stderr)
    msgs = [entry.get("msg") for entry in logs]
    assert "status written" in msgs and msgs[-1] == "agent stopped", proc.stderr
    assert logs[-1]["writes"] == 1 and logs[-1]["bird_queries"] == 1


def test_cli_once_etcd_unreachable(etcd, cluster, node1):
    url = etcd.url
    etcd.stop()
    proc = subprocess.run(_cli_argv(etcd, node1, "--once"), env=_cli_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert url in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_cli_long_running_stops_on_sigterm(etcd, cluster, node1):
    etcd.put(key("node1-status"), resource("node1-status", period=1))
    proc = subprocess.Popen(_cli_argv(etcd, node1), env=_cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: status_of(etcd, "node1-status") or proc.poll() is not None, 30,
                 "status from the CLI agent")
        assert proc.poll() is None, proc.communicate()[1]
        # still serving: a spec change is reported by the running process
        etcd.put(key("node1-status"), resource("node1-status", classes=["Agent"], period=1))
        wait_for(lambda: (s := status_of(etcd, "node1-status")) and not routes(s, 4), AT_ONCE,
                 "spec change served by the CLI agent")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"agent exited {took:.2f}s after SIGTERM")
    assert proc.returncode == 0, err
    assert took < 5, f"took {took:.1f}s to stop"
    logs = _json_lines(err)
    assert logs and logs[-1]["msg"] == "agent stopped", err
    assert logs[-1]["writes"] >= 2
    assert "Traceback" not in err


def test_cli_once_selector_matched_on_etcd_labels(etcd, cluster, node1):
    """etcd has no server-side selector: the agent matches --selector on metadata.labels
    itself. Unlabelled (calico-node's) resources of this node are left alone; an invalid
    resource the selector gives this agent makes --once exit 1."""
    labelled = resource("node1-ours", period=0)
    labelled["metadata"]["labels"] = {"status-reporter": "nodestatus"}
    etcd.put(key("node1-ours"), labelled)
    etcd.put(key("node1-calicos"), resource("node1-calicos", period=0))
    rev_calico = etcd.read(key("node1-calicos"))["mod_revision"]
    argv = _cli_argv(etcd, node1, "--once", "--selector", "status-reporter in (nodestatus)")
    proc = subprocess.run(argv, env=_cli_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    check_full_status(cluster, status_of(etcd, "node1-ours"))
    assert doc_of(etcd, "node1-ours")["metadata"]["labels"] == labelled["metadata"]["labels"]
    assert etcd.read(key("node1-calicos"))["mod_revision"] == rev_calico
    assert status_of(etcd, "node1-calicos") is None
    # an invalid resource of this node that the selector hands to this agent: exit 1
    bad = resource("node1-bad", classes=["Agent", "Nonsense"], period=0)
    bad["metadata"]["labels"] = {"status-reporter": "nodestatus"}
    etcd.put(key("node1-bad"), bad)
    proc = subprocess.run(argv + ["--log-format", "text"], env=_cli_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    line, = [x for x in proc.stderr.splitlines() if "skipping invalid resource" in x]
    assert "resource=node1-bad" in line and "Nonsense" in line
    assert "Traceback" not in proc.stderr
