"""Smoke tests of the Calico-shaped 3-node cluster (fixtures/calico_cluster.py) on BIRD 1.6.8
and 2.0.12: the mesh comes up, the raw control-socket replies parse with ``nodestatus.parse``
into what a Calico node shows, and the kernel got the other nodes' blocks. Only the raw query
helper and the parser are used (no status assembly)."""
from __future__ import annotations

import time
from typing import Dict, List

import pytest

import nodestatus
from nodestatus import ErrorReply, BirdStatus, Protocol, Route, Unsupported

from .fixtures.calico_cluster import (  # noqa: F401  (fixtures)
    Cluster,
    ClusterNode,
    calico_cluster_16,
    calico_cluster_20,
)

pytestmark = [pytest.mark.integration, pytest.mark.bird, pytest.mark.netns]

NOT_UP = {"Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Passive"}


@pytest.fixture(scope="module", params=["1.6", "2.0"], ids=["bird-1.6.8", "bird-2.0.12"])
def cluster(request) -> Cluster:
    name = "calico_cluster_16" if request.param == "1.6" else "calico_cluster_20"
    return request.getfixturevalue(name)


# -- helpers ---------------------------------------------------------------------------------------
def parse_clean(raw: bytes) -> list:
    records = nodestatus.parse(raw)
    bad = [r for r in records if isinstance(r, (ErrorReply, Unsupported))]
    assert not bad, (bad, raw.decode(errors="replace"))
    return records


def family(prefix: str) -> int:
    return 6 if ":" in prefix else 4


def protocols(node: ClusterNode, fam: int, command: str = "show protocols all") -> Dict[str, Protocol]:
    return {p.name: p for p in parse_clean(node.query(command, fam)) if isinstance(p, Protocol)}


def routes(node: ClusterNode, fam: int) -> Dict[str, List[Route]]:
    """``show route`` of the daemon serving ``fam``, only that family's routes, by prefix."""
    out: Dict[str, List[Route]] = {}
    for r in parse_clean(node.query("show route", fam)):
        if isinstance(r, Route) and family(r.prefix) == fam:
            out.setdefault(r.prefix, []).append(r)
    return out


def static_name(cluster: Cluster, fam: int) -> str:
    return "static6" if cluster.version == "2.0" and fam == 6 else "static1"


def kernel_name(cluster: Cluster, fam: int) -> str:
    return "kernel6" if cluster.version == "2.0" and fam == 6 else "kernel1"


# -- tests -----------------------------------------------------------------------------------------
def test_cluster_came_up_fast(cluster):
    t = cluster.timings
    print(f"BIRD {cluster.version} cluster timings: " + ", ".join(f"{k}={v:.2f}s" for k, v in t.items()))
    assert t["established"] < 20, t
    for n in cluster:
        assert n.sockets[4] and n.sockets[6]
        assert (n.sockets[4] == n.sockets[6]) == (cluster.version == "2.0")


def test_show_status(cluster):
    node = cluster.node(1)
    for fam in node.families():
        (status,) = [r for r in parse_clean(node.query("show status", fam)) if isinstance(r, BirdStatus)]
        assert status.router_id == node.ipv4
        assert status.version and status.version.startswith(cluster.version)
        assert status.state == "up"
        assert status.graceful_restart_recovery is False


def test_show_protocols_all_node1(cluster):
    node = cluster.node(1)
    for daemon_fam in node.families():
        protos = protocols(node, daemon_fam)
        fams = (daemon_fam,) if cluster.version == "1.6" else (4, 6)
        base = {"kernel1": "Kernel", "device1": "Device", "direct1": "Direct", "static1": "Static"}
        if cluster.version == "2.0":
            base.update(kernel6="Kernel", static6="Static")
        for name, kind in base.items():
            assert protos[name].proto == kind and protos[name].state == "up", protos[name]
        for fam in fams:
            for name in node.peers[fam]["mesh"]:
                p = protos[name]
                assert p.proto == "BGP" and p.state == "up"
                assert p.bgp_state == "Established", p
                assert p.bgp is not None
                assert p.bgp.neighbor_address == node.neighbors[name]
                assert p.bgp.neighbor_as == 64512  # (1.6 prints no "Local AS")
            assert {n.replace("Mesh_", "") for n in node.peers[fam]["mesh"]} == (
                {"10_77_0_2", "10_77_0_3"} if fam == 4 else {"fd77__2", "fd77__3"})
            for name in node.peers[fam]["global"] + node.peers[fam]["node"]:
                p = protos[name]
                assert p.proto == "BGP"
                assert p.state != "up"
                assert p.bgp_state in NOT_UP, p
                assert p.bgp is not None and p.bgp.neighbor_address == node.neighbors[name]
            assert protos[node.peers[fam]["global"][0]].bgp.neighbor_as == 65001
        if 4 in fams:
            (extra,) = node.peers[4]["extra"]
            assert extra == "upstream_rr"
            assert protos[extra].proto == "BGP"
            assert protos[extra].bgp_state == "Established"
            assert protos[extra].bgp.neighbor_address == "10.77.0.102"
        # exactly the expected BGP protocols, nothing else
        want = {n for fam in fams for kind in ("mesh", "global", "node", "extra")
                for n in node.peers[fam][kind]}
        assert {n for n, p in protos.items() if p.proto == "BGP"} == want


def test_show_route_node1(cluster):
    node = cluster.node(1)
    for fam in (4, 6):
        table = routes(node, fam)
        for other in cluster:
            block = other.blocks[fam]
            (route,) = table[block]
            assert route.primary is True and route.sync_error is False
            if other is node:
                assert route.protocol == static_name(cluster, fam)
                assert route.type == "blackhole" and route.nexthops == ()
            else:
                assert route.protocol == f"Mesh_{other.address[fam].replace('.', '_').replace(':', '_')}"
                assert route.type == "unicast"
                assert [(nh.gateway, nh.interface) for nh in route.nexthops] == [
                    (other.address[fam], node.interface)]
                assert route.bgp_origin == "i"
        (wl,) = table[node.workloads[fam]]
        assert wl.protocol == kernel_name(cluster, fam) and wl.primary
        assert [(nh.gateway, nh.interface) for nh in wl.nexthops] == [(None, node.workload_interface)]
        subnet = "10.77.0.0/24" if fam == 4 else "fd77::/64"
        (direct,) = table[subnet]
        assert direct.protocol == "direct1" and direct.primary


def test_workload_routes_stay_local(cluster):
    """calico_aggr(): the /32 (/128) under the block (metric 1024) is not sent to the mesh."""
    for node in cluster:
        for fam in (4, 6):
            table = routes(node, fam)
            for other in cluster:
                if other is not node:
                    assert other.workloads[fam] not in table
                    assert other.blocks[fam] in table


def test_kernel_has_other_blocks(cluster):
    node = cluster.node(1)
    for fam in (4, 6):
        kernel = node.kernel_routes(fam)
        by_dst: Dict[str, List[dict]] = {}
        for r in kernel:
            by_dst.setdefault(r["dst"], []).append(r)
        for other in cluster:
            got = [r for r in by_dst.get(other.blocks[fam], []) if r.get("protocol") == "bird"]
            assert len(got) == 1, (other.blocks[fam], by_dst.get(other.blocks[fam]))
            (r,) = got
            if other is node:
                assert r.get("type") == "blackhole"
            else:
                assert r.get("gateway") == other.address[fam]
                assert r.get("dev") == node.interface


def test_other_nodes_mesh_and_extra_session(cluster):
    node2 = cluster.node(2)
    protos = protocols(node2, 4, "show protocols")
    assert protos["downstream_n1"].proto == "BGP"
    assert protos["downstream_n1"].info.startswith("Established")
    assert protos["Mesh_10_77_0_1"].info.startswith("Established")
    node3 = cluster.node(3)
    assert node3.peers[4]["extra"] == []
    for fam in node3.families():
        protos = protocols(node3, fam, "show protocols")
        assert not any(p.name in ("upstream_rr", "downstream_n1") for p in protos.values())


def test_disable_and_kill_helpers(cluster):
    """Last: disable a mesh session, see the peer leave Established, re-enable; SIGKILL a node
    and restart it; the mesh comes back."""
    node1 = cluster.node(1)
    cluster.disable_protocol(3, "Mesh_10_77_0_1", 4)
    deadline = time.monotonic() + 10
    while True:
        p = protocols(node1, 4, "show protocols")["Mesh_10_77_0_3"]
        if not p.info.startswith("Established"):
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.1)
    p3 = protocols(cluster.node(3), 4, "show protocols")["Mesh_10_77_0_1"]
    assert p3.state == "down"
    cluster.enable_protocol(3, "Mesh_10_77_0_1", 4)
    cluster.wait_established(30)

    cluster.kill_daemon(3)
    assert all(d.proc.poll() is not None for d in cluster.node(3).daemons.values())
    for fam in cluster.node(3).families():
        cluster.start_daemon(3, fam)
    t = cluster.wait_established(30)
    print(f"BIRD {cluster.version}: mesh back {t:.2f}s after SIGKILL + restart of node3")
    cluster.wait_routes(15)
