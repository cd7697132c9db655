"""CalicoNodeStatus from live BIRD daemons: the Calico-shaped 3-node cluster
(fixtures/calico_cluster.py) on BIRD 1.6.8 (bird + bird6) and 2.0.12 (one dual-stack daemon),
read through ``nodestatus.sources.collect_live`` + ``nodestatus.status.build_status`` and
through ``python -m nodestatus status``.

Every expectation is derived from what the fixture configured (node addresses, blocks,
workload routes, peer protocol names and neighbours), never copied from an output. Failure
cases: a missing socket, a daemon SIGKILLed in the middle of a 200k-route reply, a daemon that
accepts and never answers (SIGSTOP), and BGP sessions that go down and come back while the
status is polled. The clusters are module-scoped (this module's own instances); destructive
tests restore them before they end.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

import msgspec
import pytest

import nodestatus
import nodestatus.sources
from nodestatus.birdsock import BirdClient
from nodestatus.errors import BirdClosedError, BirdTimeoutError
from nodestatus.resource import (
    CalicoNodeStatus,
    CalicoNodeStatusSpec,
    ObjectMeta,
    decode_resource,
    encode_json,
    validate,
)
from nodestatus.sources import collect_live
from nodestatus.status import FamilyData, build_status
from nodestatus.structs import Route

from .fixtures.bird import BirdDaemon, binaries, binary_version, require_bird
from .fixtures.calico_cluster import (  # noqa: F401  (fixtures)
    PREFIXLEN,
    Cluster,
    ClusterNode,
    calico_cluster_16,
    calico_cluster_20,
    peer_name,
)
from .fixtures.netns import NetnsRegistry, require_netns

pytestmark = [pytest.mark.integration, pytest.mark.bird, pytest.mark.netns]

CLASSES = ["Agent", "BGP", "Routes"]
PERIOD = 10
FAMILIES = (4, 6)
NOT_ESTABLISHED_STATES = {"Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Close"}
BIRD_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# (type, destination, gateway, interface, sourceType, peerIP)
RouteKey = Tuple[str, str, str, str, str, str]


@pytest.fixture(scope="module", params=["1.6", "2.0"], ids=["bird-1.6.8", "bird-2.0.12"])
def cluster(request) -> Cluster:
    name = "calico_cluster_16" if request.param == "1.6" else "calico_cluster_20"
    return request.getfixturevalue(name)


# -- helpers ---------------------------------------------------------------------------------------
def resource(node: str, classes=CLASSES) -> CalicoNodeStatus:
    """Built like cli.py's ``_resource_from_args`` (no -f): name NODE-status."""
    return validate(CalicoNodeStatus(
        api_version="projectcalico.org/v3", kind="CalicoNodeStatus",
        metadata=ObjectMeta(name=f"{node}-status"),
        spec=CalicoNodeStatusSpec(node=node, classes=list(classes),
                                  update_period_seconds=PERIOD)))


def live(node: ClusterNode, socket4: Optional[str] = None, socket6: Optional[str] = None,
         **kw) -> Tuple[CalicoNodeStatus, FamilyData, FamilyData]:
    v4, v6 = collect_live(CLASSES, socket4 or node.sockets[4], socket6 or node.sockets[6], **kw)
    return build_status(resource(node.name), v4, v6), v4, v6


def peers_of(res: CalicoNodeStatus, fam: int):
    return res.status.bgp.peers_v4 if fam == 4 else res.status.bgp.peers_v6


def counts(res: CalicoNodeStatus, fam: int) -> Tuple[int, int]:
    b = res.status.bgp
    if fam == 4:
        return b.number_established_v4, b.number_not_established_v4
    return b.number_established_v6, b.number_not_established_v6


def routes_of(res: CalicoNodeStatus, fam: int):
    return res.status.routes.routes_v4 if fam == 4 else res.status.routes.routes_v6


def route_keys(res: CalicoNodeStatus, fam: int) -> List[RouteKey]:
    return sorted((r.type, r.destination, r.gateway, r.interface, r.learned_from.source_type,
                   r.learned_from.peer_ip) for r in routes_of(res, fam))


def expected_peers(node: ClusterNode, fam: int) -> Dict[str, str]:
    """{peerIP: type} of the Calico peers the fixture configured on ``node``."""
    out = {}
    for kind, ptype in (("mesh", "NodeMesh"), ("global", "GlobalPeer"), ("node", "NodePeer")):
        for name in node.peers[fam][kind]:
            out[node.neighbors[name]] = ptype
    return out


def subnet(node: ClusterNode, fam: int) -> str:
    return str(ipaddress.ip_interface(f"{node.address[fam]}/{PREFIXLEN[fam]}").network)


def expected_routes(cluster: Cluster, node: ClusterNode, fam: int) -> List[RouteKey]:
    """What ``node``'s BIRD holds for ``fam``: the other nodes' blocks over the mesh, its own
    blackhole block, its workload route learned from the kernel and the eth0 subnet."""
    out: List[RouteKey] = [
        ("FIB", node.blocks[fam], "N/A", "blackhole", "Static", ""),
        ("FIB", node.workloads[fam], "N/A", node.workload_interface, "Kernel", ""),
        ("FIB", subnet(node, fam), "N/A", node.interface, "Direct", ""),
    ]
    for other in cluster:
        if other is not node:
            out.append(("FIB", other.blocks[fam], other.address[fam], node.interface,
                        "NodeMesh", other.address[fam]))
    return sorted(out)


def summary(res: CalicoNodeStatus):
    """What must come back after a disturbance: counts, peers (Established or not), routes."""
    return {fam: (counts(res, fam),
                  sorted((p.peer_ip, p.type, p.state == "Established") for p in peers_of(res, fam)),
                  route_keys(res, fam))
            for fam in FAMILIES}


def poll(node: ClusterNode, cond: Callable[[CalicoNodeStatus], bool], timeout: float,
         what: str, cluster: Optional[Cluster] = None) -> Tuple[CalicoNodeStatus, float]:
    """Rebuild node's status until ``cond`` holds; returns it and the seconds waited."""
    start = time.monotonic()
    while True:
        res = live(node)[0]
        if cond(res):
            return res, time.monotonic() - start
        if time.monotonic() - start > timeout:
            logs = cluster.logs() if cluster else ""
            raise AssertionError(f"{what}: not reached after {timeout}s; last status:\n"
                                 f"{encode_json(res).decode()}\n{logs}")
        time.sleep(0.1)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The installed package's CLI (the suite tests the wheel, never src/)."""
    return subprocess.run([sys.executable, "-m", "nodestatus", "status", *args],
                          capture_output=True, text=True, timeout=timeout)


def cli_args(node: ClusterNode, socket4: str, socket6: str, output: str) -> List[str]:
    return ["--node", node.name, "--period", str(PERIOD), "--socket4", socket4,
            "--socket6", socket6, "-o", output]


def without_last_updated(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    assert RFC3339_UTC.match(doc["status"].pop("lastUpdated")), doc
    return doc


def lib_doc(res: CalicoNodeStatus) -> dict:
    return without_last_updated(json.loads(encode_json(res)))


# -- 1. the library, against what the cluster configured ------------------------------------------
def test_agent(cluster):
    node = cluster.node(1)
    t0 = datetime.datetime.now()
    res, v4, v6 = live(node)
    assert res.api_version == "projectcalico.org/v3" and res.kind == "CalicoNodeStatus"
    assert res.spec == resource(node.name).spec and res.metadata.name == f"{node.name}-status"
    validate(res)
    assert RFC3339_UTC.match(res.status.last_updated)
    for fam, daemon in ((4, res.status.agent.bird_v4), (6, res.status.agent.bird_v6)):
        want_version = binary_version(binaries(cluster.version)[fam])
        assert want_version and want_version.startswith(cluster.version)
        assert daemon.state == "Ready", daemon
        assert daemon.version == want_version, daemon
        assert daemon.router_id == node.ipv4, daemon
        for stamp in (daemon.last_boot_time, daemon.last_reconfiguration_time):
            assert BIRD_TIME.match(stamp), daemon
            # BIRD prints local time; the daemon booted during this module
            booted = datetime.datetime.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")
            assert t0 - datetime.timedelta(minutes=15) <= booted <= t0 + datetime.timedelta(minutes=1)
    assert v4.reachable and v6.reachable
    assert v4.source == node.sockets[4] and v6.source == node.sockets[6]


def test_bgp_peers(cluster):
    node = cluster.node(1)
    res, v4, v6 = live(node)
    for fam in FAMILIES:
        want = expected_peers(node, fam)
        got = peers_of(res, fam)
        assert sorted((p.peer_ip, p.type) for p in got) == sorted(want.items())
        assert len(got) == len(want), "a peer is listed twice"
        for p in got:
            assert p.since, p
            if p.type == "NodeMesh":
                assert p.state == "Established", p
            else:   # Global_/Node_ peers point at addresses nobody holds
                assert p.state in NOT_ESTABLISHED_STATES, p
            assert (":" in p.peer_ip) == (fam == 6), p
        mesh = len(node.peers[fam]["mesh"])
        others = len(node.peers[fam]["global"]) + len(node.peers[fam]["node"])
        assert (mesh, others) == (len(cluster.nodes) - 1, 2)    # what the fixture builds
        assert counts(res, fam) == (mesh, others)
    # the non-Calico session is Established but no Calico peer; the parsed model keeps it
    (extra,) = node.peers[4]["extra"]
    extra_ip = node.neighbors[extra]
    assert all(p.peer_ip != extra_ip for fam in FAMILIES for p in peers_of(res, fam))
    assert extra in {p.name for p in v4.protocols if p.proto == "BGP"}
    (p_extra,) = [p for p in v4.protocols if p.name == extra]
    assert p_extra.state == "up" and p_extra.bgp.neighbor_address == extra_ip
    # each family's model holds only its own BGP protocols (BIRD 2: one daemon, split)
    for data, fam in ((v4, 4), (v6, 6)):
        bgp = {p.name for p in data.protocols if p.proto == "BGP"}
        assert bgp == {n for kind in ("mesh", "global", "node", "extra")
                       for n in node.peers[fam][kind]}


def test_routes(cluster):
    node = cluster.node(1)
    res, v4, v6 = live(node)
    for fam, data in ((4, v4), (6, v6)):
        got = route_keys(res, fam)
        assert got == expected_routes(cluster, node, fam)
        assert all((":" in k[1]) == (fam == 6) for k in got), got
        assert data.route_count == len(got)
    # the non-Calico session imports nothing
    extra_ip = node.neighbors[node.peers[4]["extra"][0]]
    assert not any(r.learned_from.peer_ip == extra_ip or r.gateway == extra_ip
                   for fam in FAMILIES for r in routes_of(res, fam))


def test_rib_alternative_from_kernel(cluster):
    """An alien kernel route for node2's block (higher metric) makes BIRD hold a second,
    non-primary route: a RIB entry learned from the kernel next to the mesh FIB entry."""
    node, node2 = cluster.node(1), cluster.node(2)
    base = {fam: expected_routes(cluster, node, fam) for fam in FAMILIES}
    added = []

    def ip_route(op: str, fam: int) -> None:
        cluster.registry.ip(node.namespace, f"-{fam}", "route", op, node2.blocks[fam], "via",
                            node2.address[fam], "dev", node.interface, "metric", "3000",
                            "proto", "static")
    try:
        for fam in FAMILIES:
            ip_route("add", fam)
            added.append(fam)
        want = {fam: sorted(base[fam] + [("RIB", node2.blocks[fam], node2.address[fam],
                                          node.interface, "Kernel", "")]) for fam in FAMILIES}
        res, waited = poll(node, lambda r: all(route_keys(r, f) == want[f] for f in FAMILIES),
                           15, "RIB alternative for node2's blocks", cluster)
        for fam in FAMILIES:
            (fib,) = [r for r in routes_of(res, fam)
                      if r.destination == node2.blocks[fam] and r.type == "FIB"]
            assert fib.learned_from.source_type == "NodeMesh"
    finally:
        for fam in added:
            ip_route("del", fam)
    poll(node, lambda r: all(route_keys(r, f) == base[f] for f in FAMILIES), 15,
         "RIB alternative gone", cluster)


# -- 2. the CLI ------------------------------------------------------------------------------------
def test_cli_json_matches_library(cluster):
    node = cluster.node(1)
    attempts = []
    for _ in range(5):   # Global_/Node_ peers flip between Connect and Active: retry on a flip
        before = lib_doc(live(node)[0])
        proc = run_cli(*cli_args(node, node.sockets[4], node.sockets[6], "json"))
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        decode_resource(proc.stdout.encode())     # valid resource
        got = without_last_updated(out)
        after = lib_doc(live(node)[0])
        if got in (before, after):
            break
        attempts.append((before, got))
        time.sleep(0.3)
    else:
        before, got = attempts[-1]
        assert got == before
    assert got["metadata"] == {"name": f"{node.name}-status"}
    assert got["spec"] == {"node": node.name, "classes": CLASSES, "updatePeriodSeconds": PERIOD}


def _table_rows(text: str) -> List[List[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def test_cli_wide(cluster):
    node = cluster.node(1)
    proc = run_cli(*cli_args(node, node.sockets[4], node.sockets[6], "wide"),
                   "--netns", node.namespace)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    label = {"NodeMesh": "node-to-node mesh", "GlobalPeer": "global", "NodePeer": "node specific"}
    rows = _table_rows(text)
    peer_rows = [r for r in rows if len(r) == 5 and r[1] in label.values()]
    for fam in FAMILIES:
        want = expected_peers(node, fam)
        mine = sorted((r[0], r[1]) for r in peer_rows if (":" in r[0]) == (fam == 6))
        assert mine == sorted((ip, label[t]) for ip, t in want.items()), text
        mesh, others = len(node.peers[fam]["mesh"]), len(node.peers[fam]["global"]) + \
            len(node.peers[fam]["node"])
        assert f"IPv{fam} BGP status: {mesh} established, {others} not established" in text
        assert f"BIRD IPv{fam}: Ready, version " in text
        assert f"IPv{fam} routes: {len(expected_routes(cluster, node, fam))}" in text
    for r in peer_rows:
        if r[1] == label["NodeMesh"]:
            assert r[2] == "up" and r[4].startswith("Established"), r
        else:
            assert r[2] != "up", r
    extra_ip = node.neighbors[node.peers[4]["extra"][0]]
    assert extra_ip not in text
    assert "+--" in text and "PEER ADDRESS" in text
    # live: one line says whether BIRD's exported routes are in the node's kernel table
    (fib,) = [l for l in text.splitlines() if l.startswith("FIB check:")]
    assert "IPv4 " in fib and "IPv6 " in fib and fib.count("(in sync)") == 2, fib


# -- 3. failures -----------------------------------------------------------------------------------
def test_missing_socket(cluster, tmp_path):
    """A family whose socket is not there is NotReady (exit 0); a BIRD 2 daemon on the other
    family's socket answers for both."""
    node = cluster.node(1)
    missing = str(tmp_path / "nothing-here.ctl")
    full = lib_doc(live(node)[0])
    if cluster.version == "1.6":
        proc = run_cli(*cli_args(node, node.sockets[4], missing, "json"))
        assert proc.returncode == 0, proc.stderr
        st = json.loads(proc.stdout)["status"]
        assert st["agent"]["birdV6"] == {"state": "NotReady"}
        assert st["agent"]["birdV4"] == full["status"]["agent"]["birdV4"]
        bgp = st["bgp"]
        assert (bgp["numberEstablishedV6"], bgp["numberNotEstablishedV6"]) == (0, 0)
        assert "peersV6" not in bgp and "routesV6" not in st["routes"]
        assert sorted(p["peerIP"] for p in bgp["peersV4"]) == sorted(expected_peers(node, 4))
        assert (bgp["numberEstablishedV4"], bgp["numberNotEstablishedV4"]) == (
            len(node.peers[4]["mesh"]), len(node.peers[4]["global"]) + len(node.peers[4]["node"]))
        assert st["routes"]["routesV4"] == full["status"]["routes"]["routesV4"]
        # the library says the same
        res, v4, v6 = live(node, node.sockets[4], missing)
        assert not v6.reachable and v4.reachable
        assert res.status.agent.bird_v6.state == "NotReady"
        assert routes_of(res, 6) == [] and peers_of(res, 6) == []
    else:
        for s4, s6 in ((node.sockets[4], missing), (missing, node.sockets[6])):
            proc = run_cli(*cli_args(node, s4, s6, "json"))
            assert proc.returncode == 0, proc.stderr
            st = without_last_updated(json.loads(proc.stdout))["status"]
            assert st["agent"] == full["status"]["agent"]
            assert st["routes"] == full["status"]["routes"]
            assert {k: v for k, v in st["bgp"].items() if not k.startswith("peers")} == \
                {k: v for k, v in full["status"]["bgp"].items() if not k.startswith("peers")}
            for key in ("peersV4", "peersV6"):
                assert sorted(p["peerIP"] for p in st["bgp"][key]) == \
                    sorted(p["peerIP"] for p in full["status"]["bgp"][key])
    # nothing reachable at all: both NotReady, still exit 0
    proc = run_cli(*cli_args(node, missing, missing + "6", "json"))
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)["status"]
    assert st["agent"] == {"birdV4": {"state": "NotReady"}, "birdV6": {"state": "NotReady"}}
    assert st["bgp"] == {"numberEstablishedV4": 0, "numberNotEstablishedV4": 0,
                         "numberEstablishedV6": 0, "numberNotEstablishedV6": 0}
    assert st.get("routes", {}) == {}


def test_daemon_that_never_answers(cluster):
    """SIGSTOP the daemon serving IPv6 (bird6 on 1.6, the only daemon on 2.0): the kernel
    still accepts the connection, no banner comes, collect_live raises BirdTimeoutError after
    connect_timeout (no partial status even though IPv4 answered on 1.6); the CLI exits 1."""
    node = cluster.node(1)
    daemon = node.daemons[6]
    pid = daemon.proc.pid
    assert daemon.proc.poll() is None
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        with pytest.raises(BirdTimeoutError) as ei:
            collect_live(CLASSES, node.sockets[4], node.sockets[6], connect_timeout=1)
        took = time.monotonic() - t
        assert 0.9 <= took < 4, took
        assert ei.value.socket == node.sockets[6]
        proc = run_cli(*cli_args(node, node.sockets[4], node.sockets[6], "json"), "--timeout", "1")
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert proc.stdout == ""
        assert node.sockets[6] in proc.stderr, proc.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
    res = live(node)[0]    # answers again, nothing lost
    assert res.status.agent.bird_v6.state == "Ready"
    assert route_keys(res, 6) == expected_routes(cluster, node, 6)


def test_sessions_down_and_back(cluster):
    """Disable node2's mesh session towards node1, then stop node2's daemon serving IPv6:
    node1's status loses that peer's Established state and node2's block, and gets both back
    once the session is enabled / the daemon restarted."""
    node1, node2 = cluster.node(1), cluster.node(2)
    base_res = live(node1)[0]
    base = summary(base_res)
    for fam in FAMILIES:
        assert (node2.address[fam], "NodeMesh", True) in base[fam][1]
        assert counts(base_res, fam)[0] == len(node1.peers[fam]["mesh"])
    timings = {}

    def lost(fams):
        def cond(res):
            s = summary(res)
            for fam in FAMILIES:
                if fam not in fams:
                    if s[fam] != base[fam]:
                        return False
                    continue
                (p,) = [p for p in peers_of(res, fam) if p.peer_ip == node2.address[fam]]
                est, not_est = base[fam][0]
                if not (p.state != "Established" and counts(res, fam) == (est - 1, not_est + 1)
                        and node2.blocks[fam] not in {r.destination for r in routes_of(res, fam)}):
                    return False
            return True
        return cond

    def back(res):
        return summary(res) == base

    mesh21 = {fam: peer_name("Mesh", node1.address[fam]) for fam in FAMILIES}
    try:
        cluster.disable_protocol(node2, mesh21[4], 4)
        res, timings["disable->down"] = poll(node1, lost({4}), 15,
                                             "IPv4 mesh peer node2 down", cluster)
        (p,) = [p for p in peers_of(res, 4) if p.peer_ip == node2.ipv4]
        assert p.state in NOT_ESTABLISHED_STATES and p.type == "NodeMesh"
        cluster.enable_protocol(node2, mesh21[4], 4)
        _, timings["enable->back"] = poll(node1, back, 30, "IPv4 mesh peer node2 back", cluster)

        cluster.stop_daemon(node2, 6)
        affected = {6} if cluster.version == "1.6" else {4, 6}
        _, timings["stop->down"] = poll(node1, lost(affected), 15,
                                        f"node2's daemon stopped: peers {affected} down", cluster)
        cluster.start_daemon(node2, 6)
        _, timings["start->back"] = poll(node1, back, 30, "node2's daemon back", cluster)
    finally:
        cluster.enable_protocol(node2, mesh21[4], 4)
        cluster.start_daemon(node2, 6)
        cluster.wait_established(30)
    print(f"BIRD {cluster.version}: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


# -- 3b. a daemon killed in the middle of a big reply -------------------------------------------
BIG_ROUTES = 200_000
BIG_TABLE = "bulktab"


class BigBird:
    """A BIRD 1.6 with BIG_ROUTES static routes in ``bulktab`` and the same in ``master``
    (no kernel protocol: nothing reaches the namespace's kernel)."""

    def __init__(self, registry: NetnsRegistry, workdir: Path) -> None:
        ns = registry.add("big")
        peer = registry.add("bigpeer")
        registry.veth(ns, "eth0", peer, "eth0")
        registry.addr(ns, "eth0", "10.0.0.1/24")
        gws = [f"10.0.0.{i}" for i in range(2, 40)]
        routes = "\n".join(
            f"  route 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32 via {gws[i % len(gws)]};"
            for i in range(BIG_ROUTES))
        config = (f"router id 192.0.2.99;\n"
                  f"protocol device device1 {{ scan time 10; }}\n"
                  f'protocol direct direct1 {{ interface "eth*"; }}\n'
                  f"table {BIG_TABLE};\n"
                  f"protocol static bulk {{\n  table {BIG_TABLE};\n{routes}\n}}\n"
                  f"protocol static bulkmaster {{\n{routes}\n}}\n")
        self.daemon = BirdDaemon(registry, ns, binaries("1.6")[4], config, workdir, "bird")

    @property
    def socket(self) -> str:
        return self.daemon.socket_path

    def ensure_running(self) -> None:
        """(Re)start it and wait until both tables are loaded."""
        if self.daemon.proc is None or self.daemon.proc.poll() is not None:
            self.daemon.start(timeout=60)
        deadline = time.monotonic() + 60
        for table in (BIG_TABLE, "master"):
            while True:
                with BirdClient(self.socket) as bird:
                    (count,) = bird.query(f"show route table {table} count")
                if count.total >= BIG_ROUTES:
                    break
                assert time.monotonic() < deadline, (table, count)
                time.sleep(0.1)

    def kill(self) -> None:
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait(10)


@pytest.fixture(scope="module")
def big_bird(require, tmp_path_factory) -> Iterator[BigBird]:
    require_netns(require)
    require_bird(require, "1.6")
    registry = NetnsRegistry(prefix="nsl")
    try:
        big = BigBird(registry, tmp_path_factory.mktemp("big"))
        big.ensure_running()
        yield big
    finally:
        registry.cleanup()


def test_stream_daemon_killed_mid_reply(big_bird):
    big_bird.ensure_running()
    before_kill = 1000
    with BirdClient(big_bird.socket, idle_timeout=30) as bird:
        it = bird.stream(f"show route table {BIG_TABLE}")
        n = 0
        for rec in it:
            n += isinstance(rec, Route)
            if n == before_kill:
                break
        big_bird.kill()
        with pytest.raises(BirdClosedError) as ei:
            for rec in it:
                n += isinstance(rec, Route)
    assert before_kill <= n < BIG_ROUTES, n
    assert ei.value.socket == big_bird.socket
    assert ei.value.partial and all(isinstance(r, Route) for r in ei.value.partial)
    assert len(ei.value.partial) < BIG_ROUTES


def test_collect_live_daemon_killed_mid_reply(big_bird, monkeypatch, tmp_path):
    """The kill comes from inside collect_live's route loop (after 20k routes), so it is in
    the middle of the `show route` reply for sure: collect_live raises, no status."""
    big_bird.ensure_running()
    seen = {"routes": 0, "killed": False}
    real_add_route = nodestatus.sources._Collector.add_route

    def add_route(self, route):
        seen["routes"] += 1
        if seen["routes"] == 20_000:
            big_bird.kill()
            seen["killed"] = True
        return real_add_route(self, route)

    monkeypatch.setattr(nodestatus.sources._Collector, "add_route", add_route)
    with pytest.raises(BirdClosedError):
        collect_live(CLASSES, big_bird.socket, str(tmp_path / "no6.ctl"))
    assert seen["killed"] and seen["routes"] < BIG_ROUTES, seen
    monkeypatch.undo()
    # restarted, the same daemon's table is read whole
    big_bird.ensure_running()
    v4, v6 = collect_live(CLASSES, big_bird.socket, str(tmp_path / "no6.ctl"))
    assert v4.route_count >= BIG_ROUTES and not v6.reachable
