"""Live BIRD 1.6.8 (bird + bird6) and 2.0.12 daemons in a namespace: their control-socket
replies parse into the records the config predicts, and the kernel got the static routes."""
from __future__ import annotations

import threading
import time
from typing import Dict, List, Sequence, Tuple

import pytest

import nodestatus
from nodestatus import ErrorReply, BirdStatus, Protocol, Route, RouteCount, Unsupported

from .fixtures.bird import (
    DEMO_ROUTES,
    BirdConfig,
    BirdNode,
    demo_topology,
    require_bird,
    start_node,
)
from .fixtures.netns import NetnsRegistry, require_netns

pytestmark = [pytest.mark.integration, pytest.mark.bird, pytest.mark.netns]

ROUTER_ID = "192.0.2.61"
# demo_topology(): node eth0 10.0.0.1/24 fd00::1/64 and eth1 10.0.1.1/24 fd00:1::1/64; the peer
# namespace holds .2 / ::2 on the other veth ends.
ROUTES = DEMO_ROUTES
CONFIG = BirdConfig(router_id=ROUTER_ID, routes=ROUTES)
DIRECT = {
    4: {"10.0.0.0/24": "eth0", "10.0.1.0/24": "eth1"},
    6: {"fd00::/64": "eth0", "fd00:1::/64": "eth1"},
}
INTERFACE_OF = {"10.0.0.2": "eth0", "10.0.1.2": "eth1", "fd00::2": "eth0", "fd00:1::2": "eth1"}
RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE = 1, 6, 7
RTPROT_BIRD = 12


@pytest.fixture(scope="module", params=["1.6", "2.0"], ids=["bird-1.6.8", "bird-2.0.12"])
def node(request, require, tmp_path_factory):
    version = request.param
    require_netns(require)
    require_bird(require, version)
    registry = NetnsRegistry()
    try:
        ns, _ = demo_topology(registry)
        workdir = tmp_path_factory.mktemp(f"bird{version.replace('.', '')}")
        live = start_node(registry, ns, version, CONFIG, workdir)
        live.wait_up()
        yield live
    finally:
        registry.cleanup()


# -- helpers ---------------------------------------------------------------------------------
def daemons(node: BirdNode) -> Tuple[int, ...]:
    """The families with their own socket: 1.6 has bird and bird6, 2.0 one daemon for both."""
    return (4, 6) if node.version == "1.6" else (4,)


def families_of(node: BirdNode, fam: int) -> Tuple[int, ...]:
    """Families whose routes the daemon serving ``fam`` shows."""
    return (fam,) if node.version == "1.6" else (4, 6)


def parse_clean(raw: bytes) -> list:
    records = nodestatus.parse(raw)
    bad = [r for r in records if isinstance(r, (ErrorReply, Unsupported))]
    assert not bad, (bad, raw.decode(errors="replace"))
    return records


def expected_protocols(node: BirdNode) -> Dict[str, str]:
    names = {"device1": "Device", "direct1": "Direct", "kernel1": "Kernel", "static1": "Static"}
    if node.version == "2.0":
        names.update(kernel6="Kernel", static6="Static")
    return names


def static_protocol(node: BirdNode, family: int) -> str:
    return "static6" if node.version == "2.0" and family == 6 else "static1"


def family(prefix: str) -> int:
    return 6 if ":" in prefix else 4


def check_routes(node: BirdNode, routes: Sequence[Route], families: Sequence[int]) -> None:
    by_prefix: Dict[str, List[Route]] = {}
    for r in routes:
        by_prefix.setdefault(r.prefix, []).append(r)
    for spec in ROUTES:
        if spec.family not in families:
            continue
        assert spec.prefix in by_prefix, (spec.prefix, sorted(by_prefix))
        (route,) = by_prefix[spec.prefix]
        assert route.protocol == static_protocol(node, spec.family)
        assert route.primary is True
        assert route.sync_error is False
        if node.version == "2.0":
            assert route.table == f"master{spec.family}"
        if spec.dest:
            assert route.type == spec.dest
            assert route.nexthops == ()
        else:
            assert route.type == "unicast"
            got = sorted((nh.gateway, nh.interface, nh.weight) for nh in route.nexthops)
            want = sorted((gw, INTERFACE_OF[gw], w) for gw, w in spec.via)
            assert got == want
    for fam in families:
        for prefix, ifname in DIRECT[fam].items():
            (route,) = by_prefix[prefix]
            assert route.protocol == "direct1"
            assert route.type == "unicast"
            assert route.primary is True
            assert [(nh.gateway, nh.interface) for nh in route.nexthops] == [(None, ifname)]
    want_total = sum(1 for s in ROUTES if s.family in families) + sum(len(DIRECT[f]) for f in families)
    assert len(routes) == want_total, sorted(by_prefix)


# -- tests -----------------------------------------------------------------------------------
def test_show_status(node):
    for fam in daemons(node):
        (status,) = [r for r in parse_clean(node.query("show status", fam)) if isinstance(r, BirdStatus)]
        assert status.router_id == ROUTER_ID
        assert status.version is not None and status.version.startswith(node.version)
        assert status.state == "up"
        assert status.graceful_restart_recovery is False
        assert status.server_time and status.last_reboot and status.last_reconfiguration


def test_show_protocols(node):
    for fam in daemons(node):
        records = parse_clean(node.query("show protocols", fam))
        protocols = {p.name: p for p in records if isinstance(p, Protocol)}
        assert {n: p.proto for n, p in protocols.items()} == expected_protocols(node)
        assert {p.state for p in protocols.values()} == {"up"}
        assert not any(p.detail for p in protocols.values())


def test_show_protocols_all(node):
    for fam in daemons(node):
        records = parse_clean(node.query("show protocols all", fam))
        protocols = {p.name: p for p in records if isinstance(p, Protocol)}
        assert {n: p.proto for n, p in protocols.items()} == expected_protocols(node)
        assert {p.state for p in protocols.values()} == {"up"}
        # 2.0's device protocol prints an empty detail block (``1006-`` only), which the
        # parser leaves as detail=False; every other protocol has detail lines.
        assert all(p.detail for p in protocols.values()
                   if not (node.version == "2.0" and p.proto == "Device"))
        for sfam in families_of(node, fam):
            static = protocols[static_protocol(node, sfam)]
            if node.version == "1.6":
                counters, preference = static.routes, static.preference
            else:
                (channel,) = static.channels
                assert channel.name == f"ipv{sfam}"
                assert channel.state == "UP"
                counters, preference = channel.routes, channel.preference
            assert preference == 200
            assert counters is not None
            assert counters.imported == sum(1 for s in ROUTES if s.family == sfam)


def test_show_route(node):
    for fam in daemons(node):
        records = parse_clean(node.query("show route", fam))
        routes = [r for r in records if isinstance(r, Route)]
        check_routes(node, routes, families_of(node, fam))


def test_show_route_all(node):
    for fam in daemons(node):
        records = parse_clean(node.query("show route all", fam))
        routes = [r for r in records if isinstance(r, Route)]
        check_routes(node, routes, families_of(node, fam))
        for r in routes:
            assert r.source == ("device" if r.protocol == "direct1" else "static"), r
            assert r.scope == "univ"


def test_show_route_count(node):
    for fam in daemons(node):
        routes = [r for r in parse_clean(node.query("show route", fam)) if isinstance(r, Route)]
        counts = [r for r in parse_clean(node.query("show route count", fam)) if isinstance(r, RouteCount)]
        total = [c for c in counts if c.is_total] if node.version == "2.0" else counts
        assert len(total) == 1, counts
        assert total[0].total == total[0].shown == len(routes)
        assert total[0].networks == len({r.prefix for r in routes})


def test_pipelined_session(node):
    """Several commands written at once on one connection: replies come back in order."""
    commands = ["show status", "show protocols", "show route", "show route count", "show route all"]
    for fam in daemons(node):
        raw = node.daemons[fam].query_pipelined(commands)
        replies = nodestatus.parse_replies(raw)
        assert len(replies) == len(commands)
        kinds = [{type(r).__name__ for r in reply} for reply in replies]
        assert kinds == [{"BirdStatus"}, {"Protocol"}, {"Route"}, {"RouteCount"}, {"Route"}]
        assert replies[0][0].router_id == ROUTER_ID
        assert len(replies[2]) == len(replies[4])


def test_pipelined_reply_code_carryover(node):
    """BIRD 1.6 keeps the last final code across replies: after ``1010 static1 …`` the next
    ``show symbols`` starts without a code (captures/1.6.8/session_last_reply_carryover.txt).
    The framing must still give one reply per command, on 2.0 too."""
    commands = ["show symbols static1", "show symbols", "show status"]
    raw = node.daemons[4].query_pipelined(commands)
    if node.version == "1.6":
        first_line_of_second = raw.split(b"\n")[1]
        assert first_line_of_second[:1] == b" ", raw[:200]
    replies = nodestatus.parse_replies(raw)
    assert len(replies) == len(commands)
    (status,) = [r for r in replies[2] if isinstance(r, BirdStatus)]
    assert status.router_id == ROUTER_ID


def _kernel_routes(ns: str, fam: int) -> Dict[str, object]:
    """The namespace's main table via pyroute2, keyed by ``prefix/len``.

    The netlink socket is opened in a helper thread that ``setns()``-ed into ``ns`` (network
    namespace membership is per thread), with ``flags=0`` so a vanished namespace is an error,
    not silently re-created. ``IPRoute(netns=NAME)`` of pyroute2 0.9.7 intermittently returned
    only the oif-less routes of a namespace here, while ``ip -n NAME route`` showed them all.
    """
    from pyroute2 import IPRoute
    from pyroute2.netns import setns

    result: Dict[str, object] = {}
    error: List[BaseException] = []

    def dump() -> None:
        try:
            setns(ns, flags=0)
            with IPRoute() as ipr:
                for m in ipr.get_routes(family=10 if fam == 6 else 2, table=254):
                    if m.get_attr("RTA_DST"):
                        result[f"{m.get_attr('RTA_DST')}/{m['dst_len']}"] = m
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=dump, name=f"netlink-{ns}")
    thread.start()
    thread.join(30)
    if error:
        raise error[0]
    return result


def test_kernel_got_static_routes(node):
    """kernel1 (and kernel6 on 2.0) export the static routes to the namespace's main table."""
    wanted = {4: ("10.244.1.0/26", "10.10.0.0/16", "10.30.0.0/16"),
              6: ("fd10:244:1::/122", "2001:db8:10::/48", "2001:db8:30::/48")}
    deadline = time.monotonic() + 10
    while True:
        kernel = {fam: _kernel_routes(node.ns, fam) for fam in (4, 6)}
        if all(p in kernel[fam] for fam in (4, 6) for p in wanted[fam]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for fam, (blackhole, via, multipath) in wanted.items():
        table = kernel[fam]
        assert blackhole in table and via in table and multipath in table, sorted(table)
        assert table[blackhole]["type"] == RTN_BLACKHOLE
        assert table[blackhole]["proto"] == RTPROT_BIRD
        assert table[blackhole].get_attr("RTA_GATEWAY") is None
        assert table[via]["type"] == RTN_UNICAST
        assert table[via]["proto"] == RTPROT_BIRD
        assert table[via].get_attr("RTA_GATEWAY") == ("10.0.0.2" if fam == 4 else "fd00::2")
        hops = table[multipath].get_attr("RTA_MULTIPATH")
        assert table[multipath]["proto"] == RTPROT_BIRD
        assert sorted(h.get_attr("RTA_GATEWAY") for h in hops) == sorted(
            gw for gw, _ in next(s.via for s in ROUTES if s.prefix == multipath))
        if fam == 4:  # kernel weight = hops + 1
            assert sorted(h["hops"] + 1 for h in hops) == [1, 2]
        # BIRD 1.6's bird6 installs IPv6 ECMP without the weights (both hops weight 1).
