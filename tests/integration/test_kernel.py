"""The raw rtnetlink reader against real kernel tables in a test namespace: every route kind
decodes to what `ip -j route show` and pyroute2's own decoder say, links map, the route
monitor reports touched prefixes, and errors name the namespace. Then the re-check of a FIB
check: what a per-prefix lookup (RTM_GETROUTE, RTM_F_FIB_MATCH) proves, and which suspect
differences ``check_family`` settles with it and which it dumps the table again for."""
from __future__ import annotations

import json
import os
import socket
from collections import Counter
from typing import List, Optional, Tuple

import pytest

from nodestatus import _rtnl, kernel
from nodestatus.errors import KernelReadError
from nodestatus.fibcheck import MAX_LOOKUPS, FibFamilyReport, check_family

from .fixtures.netns import NetnsRegistry

pytestmark = [pytest.mark.integration, pytest.mark.netns]

# (prefix, type, protocol, metric, ((gateway, oif, weight), ...)) — one row per kernel route
Row = Tuple[str, int, int, int, Tuple[Tuple[Optional[str], int, int], ...]]

IPV4_ROUTES = [
    "10.10.0.0/16 via 10.0.0.2",
    "10.11.0.0/16 dev eth0",
    "blackhole 10.12.0.0/16",
    "unreachable 10.13.0.0/16",
    "prohibit 10.14.0.0/16",
    "10.15.0.0/16 nexthop via 10.0.0.2 dev eth0 weight 3 nexthop via 10.0.1.2 dev eth1 weight 1",
    "10.16.0.0/16 via 10.0.0.2 table 300",
    "10.17.0.0/16 via 10.0.0.3 proto bird",
    "10.18.0.0/16 via 10.0.0.2 metric 10",
    "10.18.0.0/16 via 10.0.0.3 metric 20 proto bird",
    "10.19.0.7/32 via 10.0.0.2 dev eth0 onlink",
    "default via 10.0.0.1",
]
IPV6_ROUTES = [
    "2001:db8:1::/48 via fd00::2",
    "2001:db8:2::/48 nexthop via fd00::2 dev eth0 nexthop via fd01::2 dev eth1",
    "blackhole 2001:db8:3::/48",
    "unreachable 2001:db8:4::/48",
    "2001:db8:5::/48 via fd00::3 proto bird metric 7",
    "2001:db8:6::/48 via fd00::2 table 300",
]


@pytest.fixture
def kns(netns: NetnsRegistry) -> Tuple[NetnsRegistry, str]:
    """A namespace whose veth pair has both ends inside it (eth0, eth1), with addresses on
    both ends and every route kind the FIB check meets."""
    ns = netns.add("kern")
    netns.veth(ns, "eth0", ns, "eth1")
    netns.addr(ns, "eth0", "10.0.0.1/24", "fd00::1/64")
    netns.addr(ns, "eth1", "10.0.1.1/24", "fd01::1/64")
    for spec in IPV4_ROUTES:
        netns.ip(ns, "route", "add", *spec.split())
    for spec in IPV6_ROUTES:
        netns.ip(ns, "-6", "route", "add", *spec.split())
    return netns, ns


# ------------------------------------------------------------------------------ normalizers


def _prefix(dst: str, family: int) -> str:
    if dst == "default":
        return "0.0.0.0/0" if family == 4 else "::/0"
    return _rtnl.unpack_key(_rtnl.pack_key(dst))


def ours(table: kernel.KernelTable) -> List[Row]:
    rows = []
    for key, kv in table.routes.items():
        for value in _rtnl.values_of(kv):
            d = _rtnl.describe(value, key[0])
            hops = tuple((h["gateway"], h["oif"], h["weight"]) for h in d["nexthops"])
            rows.append((_rtnl.unpack_key(key), d["type_id"], d["protocol_id"], d["metric"],
                         hops))
    return sorted(rows, key=repr)


def _no_hops(rtype: int, hops):
    return () if rtype >= 6 else tuple(sorted(hops, key=_hop_order))


def _hop_order(hop):
    gateway, oif, _ = hop
    raw = socket.inet_pton(socket.AF_INET6 if ":" in gateway else socket.AF_INET, gateway) \
        if gateway else b""
    return (raw.ljust(16, b"\0"), oif)


def from_ip_json(registry: NetnsRegistry, ns: str, family: int, table: int) -> List[Row]:
    """`ip -N -j route show table T`: numeric type/protocol; unicast/boot/metric 0 omitted."""
    index = {name: idx for idx, (name, _flags) in kernel.links(ns).items()}
    text = registry.ip(ns, "-N", f"-{family}", "-j", "route", "show", "table", str(table))
    rows = []
    for r in json.loads(text):
        rtype = int(r.get("type", 1))
        if rtype in (2, 3, 4, 5):
            continue
        hops = [(h.get("gateway"), index[h["dev"]], h.get("weight", 1))
                for h in r.get("nexthops", ())]
        if not hops and ("gateway" in r or "dev" in r):
            hops = [(r.get("gateway"), index[r["dev"]], 1)]
        rows.append((_prefix(r["dst"], family), rtype, int(r.get("protocol", 3)),
                     int(r.get("metric", 0)), _no_hops(rtype, hops)))
    return sorted(rows, key=repr)


def from_pyroute2(ns: str, family: int, table: int) -> List[Row]:
    """pyroute2's own decoding of the same table, read from a thread inside the netns."""
    from pyroute2 import IPRoute

    def read() -> list:
        with IPRoute() as ipr:
            return [
                (r.get("dst"), r["dst_len"], r["type"], r["proto"], r["flags"],
                 r.get("table"), r.get("priority") or 0, r.get("gateway"), r.get("oif"),
                 [(dict(h.get("attrs", ())).get("RTA_GATEWAY"), h["oif"], h["hops"] + 1)
                  for h in (r.get("multipath") or ())])
                for r in ipr.get_routes(family=socket.AF_INET if family == 4
                                        else socket.AF_INET6, table=table)]

    rows = []
    for dst, dst_len, rtype, proto, flags, rtable, metric, gw, oif, mp in kernel._in_netns(ns, read):
        if rtype in (2, 3, 4, 5) or flags & 0x200 or rtable != table:
            continue
        hops = mp or ([(gw, oif or 0, 1)] if gw or oif else [])
        zero = "0.0.0.0" if family == 4 else "::"
        rows.append((_prefix(f"{dst or zero}/{dst_len}", family), rtype, proto, metric,
                     _no_hops(rtype, hops)))
    return sorted(rows, key=repr)


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("family,table", [(4, 254), (4, 300), (6, 254), (6, 300)])
def test_dump_matches_ip_json_and_pyroute2(kns, family, table):
    registry, ns = kns
    got = kernel.dump_routes(family, table, netns=ns)
    assert got.family == family and got.table == table and got.netns == ns
    assert got.n_routes == len(ours(got)) > 0
    assert got.bytes > 0
    rows = ours(got)
    assert rows == from_ip_json(registry, ns, family, table)
    assert rows == from_pyroute2(ns, family, table)


def test_every_route_kind_decodes_as_added(kns):
    _, ns = kns
    v4 = kernel.dump_routes(4, 254, netns=ns)
    links = {name: idx for idx, name in v4.links.items()}
    eth0, eth1 = links["eth0"], links["eth1"]

    def one(table, prefix):
        return _rtnl.describe(table.routes[_rtnl.pack_key(prefix)], table.family)

    hop = lambda gw, oif, w=1: {"gateway": gw, "oif": oif, "weight": w}  # noqa: E731
    assert one(v4, "10.10.0.0/16")["nexthops"] == [hop("10.0.0.2", eth0)]
    assert one(v4, "10.11.0.0/16")["nexthops"] == [hop(None, eth0)]
    for prefix, name in [("10.12.0.0/16", "blackhole"), ("10.13.0.0/16", "unreachable"),
                         ("10.14.0.0/16", "prohibit")]:
        assert (one(v4, prefix)["type"], one(v4, prefix)["nexthops"]) == (name, [])
    assert one(v4, "10.15.0.0/16")["nexthops"] == [hop("10.0.0.2", eth0, 3),
                                                   hop("10.0.1.2", eth1, 1)]
    assert one(v4, "10.17.0.0/16")["protocol"] == "bird"
    assert one(v4, "10.19.0.7/32")["onlink"] is True
    two = v4.routes[_rtnl.pack_key("10.18.0.0/16")]
    assert isinstance(two, tuple)
    assert sorted((_rtnl.describe(v)["metric"], _rtnl.describe(v)["protocol"]) for v in two) \
        == [(10, "boot"), (20, "bird")]
    assert _rtnl.pack_key("10.16.0.0/16") not in v4.routes          # lives in table 300

    v6 = kernel.dump_routes(6, 254, netns=ns)
    assert one(v6, "2001:db8:2::/48")["nexthops"] == [hop("fd00::2", eth0), hop("fd01::2", eth1)]
    assert (one(v6, "2001:db8:3::/48")["type"], one(v6, "2001:db8:3::/48")["nexthops"]) \
        == ("blackhole", [])                                          # oif lo dropped
    bird6 = one(v6, "2001:db8:5::/48")
    assert (bird6["protocol"], bird6["metric"]) == ("bird", 7)


def test_bird_side_packed_like_the_kernel(kns):
    _, ns = kns
    v4 = kernel.dump_routes(4, 254, netns=ns)
    v6 = kernel.dump_routes(6, 254, netns=ns)
    links = {name: idx for idx, name in v4.links.items()}
    expected4 = _rtnl.PackedTable(dict([
        _rtnl.pack_expected("10.17.0.0/16", "unicast", [("10.0.0.3", links["eth0"], 1)]),
        _rtnl.pack_expected("10.18.0.0/16", "unicast", [("10.0.0.2", links["eth0"], 1)]),
        _rtnl.pack_expected("10.99.0.0/16", "blackhole"),
    ]))
    agree, missing, mismatched, extra = _rtnl.compare(expected4, v4.routes)
    assert agree == 1
    assert [_rtnl.unpack_key(k) for k in missing] == ["10.99.0.0/16"]
    assert [_rtnl.unpack_key(k) for k in mismatched] == ["10.18.0.0/16"]   # bird's is via .3
    assert extra == []
    agree, missing, mismatched, extra = _rtnl.compare(_rtnl.PackedTable(), v6.routes)
    assert [_rtnl.unpack_key(k) for k in extra] == ["2001:db8:5::/48"]


def test_one_session_dumps_in_a_thread_what_a_dump_reads(kns):
    """The FIB check enters the namespace once and dumps while BIRD is read: the
    threaded dumps hold what separate dumps hold, and the monitors watch from before."""
    _, ns = kns
    with kernel.Netlink(ns, monitor_families=(4, 6)) as nl:
        pending = nl.dump_in_thread((4, 6))
        got = pending.result()
        assert set(nl.monitors) == {4, 6}
        assert {i: n for i, (n, _f) in nl.links.items()} == kernel.dump_routes(4, netns=ns).links
    for fam in (4, 6):
        alone = kernel.dump_routes(fam, 254, netns=ns)
        assert got[fam].routes == alone.routes
        assert (got[fam].family, got[fam].n_routes) == (fam, alone.n_routes)
        assert got[fam].n_routes > 0


def test_links_match_ip_json(kns):
    registry, ns = kns
    got = kernel.links(ns)
    want = {l["ifindex"]: l["ifname"] for l in json.loads(registry.ip(ns, "-j", "link"))}
    assert {idx: name for idx, (name, _flags) in got.items()} == want
    assert got[1][1] & 1     # lo is IFF_UP


def test_monitor_reports_added_and_deleted_prefixes(kns):
    registry, ns = kns
    with kernel.open_monitor(4, netns=ns, table=254) as monitor:
        assert monitor.changed_keys() == set()
        registry.ip(ns, "route", "add", "10.50.0.0/16", "via", "10.0.0.2")
        registry.ip(ns, "-6", "route", "add", "2001:db8:50::/48", "via", "fd00::2")
        registry.ip(ns, "route", "add", "10.51.0.0/16", "via", "10.0.0.2", "table", "300")
        assert monitor.changed_keys() == {_rtnl.pack_key("10.50.0.0/16")}
        registry.ip(ns, "route", "del", "10.50.0.0/16")
        assert monitor.changed_keys() == {_rtnl.pack_key("10.50.0.0/16")}
    with kernel.open_monitor(6, netns=ns, table=300) as monitor:
        registry.ip(ns, "-6", "route", "del", "2001:db8:6::/48", "table", "300")
        registry.ip(ns, "-6", "route", "del", "2001:db8:1::/48")
        assert monitor.changed_keys() == {_rtnl.pack_key("2001:db8:6::/48")}
    with kernel.open_monitor(4, netns=ns) as monitor:          # default: every table
        registry.ip(ns, "route", "del", "10.16.0.0/16", "table", "300")
        assert monitor.changed_keys() == {_rtnl.pack_key("10.16.0.0/16")}


def test_monitor_overflow_means_recheck_everything(kns, tmp_path):
    """The monitor as it is opened (pyroute2's socket, subscribed), its buffer then shrunk
    to the kernel's minimum: a burst of changes overflows it, and that is said once."""
    registry, ns = kns
    monitor = kernel.open_monitor(4, netns=ns, table=254)
    monitor.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    batch = tmp_path / "routes"
    batch.write_text("".join(f"route add 10.{60 + i // 256}.{i % 256}.0/24 via 10.0.0.2\n"
                             for i in range(2000)))
    registry.ip(ns, "-batch", str(batch))
    with monitor:
        assert monitor.changed_keys() is None
        assert monitor.changed_keys() == set()       # the overflow was reported once


@pytest.mark.parametrize("family", [4, 6])
def test_table_never_created_reads_empty(kns, family):
    _, ns = kns
    got = kernel.dump_routes(family, 1234, netns=ns)
    assert (got.routes, got.n_routes, got.exists) == ({}, 0, False)
    assert kernel.dump_routes(family, 300, netns=ns).exists


def test_missing_netns_is_an_error_not_created():
    name = f"nodestatus-missing-{os.getpid()}"
    with pytest.raises(KernelReadError, match=f"netns {name}"):
        kernel.dump_routes(4, netns=name)
    assert not os.path.exists(f"/run/netns/{name}")


def test_ten_thousand_routes(kns, tmp_path):
    """A smoke run at size (no timing asserted): every route arrives, once."""
    registry, ns = kns
    batch = tmp_path / "routes"
    lines = [f"route add 172.{16 + i // 65536 % 16}.{i // 256 % 256}.{i % 256}/32 "
             f"via 10.0.0.{2 + i % 3} proto bird" for i in range(10_000)]
    batch.write_text("\n".join(lines) + "\n")
    registry.ip(ns, "-batch", str(batch))
    table = kernel.dump_routes(4, 254, netns=ns)
    assert table.n_routes == 10_000 + len([r for r in IPV4_ROUTES if "table" not in r]) + 2
    protocols = Counter(_rtnl.describe(v)["protocol"]
                        for kv in table.routes.values() for v in _rtnl.values_of(kv))
    assert protocols["bird"] == 10_000 + 2
    print(f"\n10k routes: {table.seconds * 1000:.1f} ms, {table.bytes} bytes")


# -------------------------------------------------------------------------- per-prefix lookups


def _answers(ns: str, family: int, prefixes, table: int = 254):
    with kernel.Netlink(ns, monitor_families=(family,), with_links=False) as nl:
        got = nl.fib_match([_rtnl.pack_key(p) for p in prefixes], table)
    return {_rtnl.unpack_key(k): a for k, a in got.items()}


@pytest.mark.parametrize("family,prefixes", [
    (4, ["10.10.0.0/16", "10.11.0.0/16", "10.15.0.0/16", "10.17.0.0/16", "10.19.0.7/32"]),
    (6, ["2001:db8:1::/48", "2001:db8:2::/48", "2001:db8:5::/48"]),
])
def test_lookup_of_a_present_route_is_the_dumps_value(kns, family, prefixes):
    """The reply is decoded like the dump: the same bytes (weights, onlink, metric, protocol),
    from a socket of the namespace read in this thread."""
    _, ns = kns
    dumped = kernel.dump_routes(family, 254, netns=ns).routes
    got = _answers(ns, family, prefixes)
    for prefix in prefixes:
        assert got[prefix].verdict == "route", (prefix, got[prefix])
        assert got[prefix].value == dumped[_rtnl.pack_key(prefix)]
    if family == 4:
        assert _rtnl.describe(got["10.19.0.7/32"].value)["onlink"] is True


def test_lookup_of_default_routes(kns):
    """::/0 is looked up at ::, like any address; 0.0.0.0 is not routed as unicast (the
    kernel answers EHOSTUNREACH whatever the table holds), so IPv4's default never is."""
    registry, ns = kns
    registry.ip(ns, "-6", "route", "add", "default", "via", "fd00::2", "proto", "bird")
    v6 = _answers(ns, 6, ["::/0"])["::/0"]
    assert v6.verdict == "route"
    assert v6.value == kernel.dump_routes(6, 254, netns=ns).routes[_rtnl.pack_key("::/0")]
    v4 = _answers(ns, 4, ["0.0.0.0/0", "127.0.0.0/8", "224.0.0.0/4"])
    assert {a.verdict for a in v4.values()} == {"unknown"}
    assert {a.why for a in v4.values()} == {kernel._NOT_UNICAST}


def test_lookup_answers_the_winner_only(kns):
    """10.18.0.0/16 is in the table twice: the lookup shows the one at the better metric."""
    _, ns = kns
    got = _answers(ns, 4, ["10.18.0.0/16"])["10.18.0.0/16"]
    assert got.verdict == "route"
    assert (_rtnl.describe(got.value)["protocol"], _rtnl.describe(got.value)["metric"]) \
        == ("boot", 10)


def test_lookup_of_an_absent_ipv4_prefix(kns):
    """A less specific answer of the table (here the default route) or ENETUNREACH proves
    that the table has no usable route for the prefix."""
    registry, ns = kns
    got = _answers(ns, 4, ["10.77.0.0/16"])["10.77.0.0/16"]
    assert (got.verdict, got.why) == ("absent", "a less specific route answers: 0.0.0.0/0")
    registry.ip(ns, "route", "del", "default")
    got = _answers(ns, 4, ["10.77.0.0/16"])["10.77.0.0/16"]
    assert (got.verdict, got.value) == ("absent", None)
    assert "ENETUNREACH" in got.why


def test_lookup_ipv6_absent_only_when_nothing_answers(kns):
    """IPv6: ENETUNREACH proves absence; a less specific answer does not, because with
    forwarding off the lookup passes over a route whose gateway failed to answer."""
    registry, ns = kns
    got = _answers(ns, 6, ["2001:db8:77::/48"])["2001:db8:77::/48"]
    assert got.verdict == "absent" and "ENETUNREACH" in got.why
    registry.ip(ns, "-6", "route", "add", "2001:db8::/32", "via", "fd01::2")
    got = _answers(ns, 6, ["2001:db8:77::/48"])["2001:db8:77::/48"]
    assert got.verdict == "unknown" and "2001:db8::/32" in got.why
    # the reason: a route that is there, via a gateway whose neighbour entry failed
    assert "all forwarding off" in registry.ip(ns, "-6", "netconf", "show", "all")
    registry.ip(ns, "-6", "route", "add", "2001:db8:7::/48", "via", "fd00::7")
    assert _answers(ns, 6, ["2001:db8:7::/48"])["2001:db8:7::/48"].verdict == "route"
    registry.ip(ns, "-6", "neigh", "replace", "fd00::7", "dev", "eth0", "nud", "failed")
    got = _answers(ns, 6, ["2001:db8:7::/48"])["2001:db8:7::/48"]
    assert got.verdict == "unknown" and "2001:db8::/32" in got.why
    assert _rtnl.pack_key("2001:db8:7::/48") in kernel.dump_routes(6, 254, netns=ns).routes


def test_lookup_answers_that_prove_nothing(kns):
    registry, ns = kns
    registry.ip(ns, "route", "add", "10.10.0.0/24", "via", "10.0.0.2")
    registry.ip(ns, "route", "add", "throw", "10.44.0.0/16", "table", "300")
    got = _answers(ns, 4, ["10.10.0.0/16", "10.12.0.0/16", "10.13.0.0/16", "10.14.0.0/16",
                           "10.0.0.1/32"])
    assert {p: a.verdict for p, a in got.items()} == dict.fromkeys(got, "unknown")
    assert got["10.10.0.0/16"].why == "a more specific route answers: 10.10.0.0/24"
    assert got["10.12.0.0/16"].why == "EINVAL: a blackhole route answers"
    assert got["10.13.0.0/16"].why == "EHOSTUNREACH: an unreachable route answers"
    assert got["10.14.0.0/16"].why == "EACCES: a prohibit route answers"
    assert got["10.0.0.1/32"].why.startswith("a local, broadcast or multicast route answers")
    v6 = _answers(ns, 6, ["2001:db8:3::/48", "2001:db8:4::/48"])
    assert [a.verdict for a in v6.values()] == ["unknown", "unknown"]
    # table 300, which no policy rule leads to: main answers (10.16.0.0/16 is only in 300,
    # the default route answers), and a lookup that never got to 300 proves nothing of it
    t300 = _answers(ns, 4, ["10.16.0.0/16", "10.44.0.0/16", "10.77.0.0/16"], table=300)
    assert [a.verdict for a in t300.values()] == ["unknown"] * 3
    assert t300["10.16.0.0/16"].why == "a route of another table answers: 0.0.0.0/0"
    assert t300["10.44.0.0/16"].why == "a route of another table answers: 0.0.0.0/0"
    registry.ip(ns, "route", "del", "default")
    t300 = _answers(ns, 4, ["10.44.0.0/16"], table=300)["10.44.0.0/16"]
    assert (t300.verdict, t300.why) == ("unknown", "ENETUNREACH says nothing of table 300 "
                                                   "(not main)")


def test_lookup_follows_the_policy_rules_to_another_table(kns):
    """With a rule to table 300, the answer comes from 300 and says so (RTM_F_LOOKUP_TABLE:
    without it the kernel names main whatever table answered)."""
    registry, ns = kns
    registry.ip(ns, "rule", "add", "to", "10.16.0.0/16", "lookup", "300", "pref", "100")
    registry.ip(ns, "-6", "rule", "add", "to", "2001:db8:6::/48", "lookup", "300", "pref", "100")
    v4 = _answers(ns, 4, ["10.16.0.0/16"], table=300)["10.16.0.0/16"]
    assert v4.verdict == "route"
    assert v4.value == \
        kernel.dump_routes(4, 300, netns=ns).routes[_rtnl.pack_key("10.16.0.0/16")]
    assert _answers(ns, 4, ["10.16.0.0/16"], table=254)["10.16.0.0/16"].verdict == "unknown"
    v6 = _answers(ns, 6, ["2001:db8:6::/48"], table=300)["2001:db8:6::/48"]
    assert v6.verdict == "route"
    assert v6.value == \
        kernel.dump_routes(6, 300, netns=ns).routes[_rtnl.pack_key("2001:db8:6::/48")]


def test_session_without_monitors_has_no_lookup_socket(kns):
    _, ns = kns
    with kernel.Netlink(ns, with_links=False) as nl:
        with pytest.raises(ValueError, match="monitor_families"):
            nl.fib_match([_rtnl.pack_key("10.10.0.0/16")])


# ---------------------------------------------------------------------- check_family re-checks


@pytest.fixture
def rns(netns: NetnsRegistry) -> Tuple[NetnsRegistry, str]:
    """A namespace with nothing of BIRD's in it (each test adds the routes it checks): the
    veth pair of ``kns`` and an IPv4 default route, no IPv6 one."""
    ns = netns.add("recheck")
    netns.veth(ns, "eth0", ns, "eth1")
    netns.addr(ns, "eth0", "10.0.0.1/24", "fd00::1/64")
    netns.addr(ns, "eth1", "10.0.1.1/24", "fd01::1/64")
    netns.ip(ns, "route", "add", "default", "via", "10.0.0.1")
    return netns, ns


def _dev(gateway: str) -> str:
    return "eth0" if gateway.startswith(("10.0.0.", "fd00:")) else "eth1"


def _bird(ns: str, *routes: Tuple[str, str]) -> _rtnl.PackedTable:
    """BIRD's side, packed: ``(prefix, gateway)`` unicast routes."""
    index = {n: i for i, (n, _f) in kernel.links(ns).items()}
    return _rtnl.PackedTable(dict(
        _rtnl.pack_expected(prefix, "unicast", [(gw, index[_dev(gw)], 1)])
        for prefix, gw in routes))


def _put(family: int, prefix: str, gateway: str, *extra: str) -> List[str]:
    """``ip`` arguments: BIRD's kind of route for ``prefix`` via ``gateway``, made so."""
    return [f"-{family}", "route", "replace", prefix, "via", gateway, "dev", _dev(gateway),
            "proto", "bird", *extra]


def _recheck(registry: NetnsRegistry, ns: str, family: int, expected, change: List[List[str]],
             table: int = 254, shrink_monitor: bool = False) -> Tuple[list, FibFamilyReport]:
    """Dump, run ``ip`` ``change`` commands (the churn between the dump and the re-check),
    then compare: the differences of the dump alone, and the re-checked report."""
    merged = _rtnl.PackedTable()
    with kernel.Netlink(ns, monitor_families=(family,), with_links=False) as nl:
        if shrink_monitor:
            nl.monitors[family].sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        kt = nl.dump(family, table)
        for args in change:
            registry.ip(ns, *args)
        alone = check_family(family, expected, merged, table=table, netns=ns, kernel_table=kt)
        rep = check_family(family, expected, merged, table=table, netns=ns, kernel_table=kt,
                           netlink=nl)
    assert alone.rechecked == 0
    return [(d.kind, d.prefix) for d in alone.differences], rep


def _kinds(rep: FibFamilyReport) -> List[Tuple[str, str]]:
    return [(d.kind, d.prefix) for d in rep.differences]


def _cost(rep: FibFamilyReport) -> Tuple[int, int, int]:
    return rep.rechecked, rep.settled_by_lookup, rep.redumps


@pytest.mark.parametrize("family,prefix,wrong,right,other", [
    (4, "10.17.0.0/16", "10.0.0.3", "10.0.0.2", "10.0.1.2"),
    (6, "2001:db8:5::/48", "fd00::3", "fd00::2", "fd01::2"),
])
def test_recheck_route_fixed_after_the_dump_settles_per_prefix(rns, family, prefix, wrong,
                                                               right, other):
    """The dump saw BIRD's route on the wrong gateway; it is put right before the re-check:
    one lookup clears the difference, no second dump. Moved elsewhere instead, it stays a
    mismatch showing the route the kernel has now."""
    registry, ns = rns
    expected = _bird(ns, (prefix, right))
    registry.ip(ns, *_put(family, prefix, wrong))
    alone, rep = _recheck(registry, ns, family, expected, [_put(family, prefix, right)])
    assert alone == [("mismatch", prefix)]
    assert rep.differences == [] and rep.agree == 1
    assert _cost(rep) == (1, 1, 0)

    registry.ip(ns, *_put(family, prefix, wrong))
    alone, rep = _recheck(registry, ns, family, expected, [_put(family, prefix, other)])
    assert alone == [("mismatch", prefix)]
    assert _kinds(rep) == [("mismatch", prefix)] and _cost(rep) == (1, 1, 0)
    assert [h["gateway"] for h in rep.differences[0].kernel[0]["nexthops"]] == [other]
    assert rep.differences[0].kernel[0]["protocol"] == "bird"


@pytest.mark.parametrize("family,prefix,gw", [(4, "10.77.0.0/16", "10.0.0.2"),
                                              (6, "2001:db8:77::/48", "fd00::2")])
def test_recheck_missing_route_settled_per_prefix(rns, family, prefix, gw):
    """Added and deleted again after the dump: still missing, as the lookup proves (IPv4: the
    default route answers; IPv6: nothing does). Added for good: the lookup finds it."""
    registry, ns = rns
    expected = _bird(ns, (prefix, gw))
    alone, rep = _recheck(registry, ns, family, expected,
                          [_put(family, prefix, gw), [f"-{family}", "route", "del", prefix]])
    assert alone == [("missing", prefix)]
    assert _kinds(rep) == [("missing", prefix)] and _cost(rep) == (1, 1, 0)
    alone, rep = _recheck(registry, ns, family, expected, [_put(family, prefix, gw)])
    assert alone == [("missing", prefix)]
    assert rep.differences == [] and _cost(rep) == (1, 1, 0)


def test_recheck_stale_route_removed_after_the_dump(rns):
    """An extra proto-bird route, seen by the dump, deleted before the re-check: the lookup
    proves nothing of a route the dump saw (it may only be unusable): a second dump does."""
    registry, ns = rns
    registry.ip(ns, *_put(4, "10.78.0.0/16", "10.0.0.2"))
    alone, rep = _recheck(registry, ns, 4, _bird(ns), [["route", "del", "10.78.0.0/16"]])
    assert alone == [("extra", "10.78.0.0/16")]
    assert rep.differences == [] and _cost(rep) == (1, 0, 1)


def test_recheck_ipv6_less_specific_answer_dumps_again(rns):
    registry, ns = rns
    registry.ip(ns, "-6", "route", "add", "2001:db8::/32", "via", "fd01::2")
    prefix = "2001:db8:77::/48"
    alone, rep = _recheck(registry, ns, 6, _bird(ns, (prefix, "fd00::2")),
                          [_put(6, prefix, "fd00::2"), ["-6", "route", "del", prefix]])
    assert alone == [("missing", prefix)]
    assert _kinds(rep) == [("missing", prefix)] and _cost(rep) == (1, 0, 1)


def test_recheck_more_specific_route_dumps_again(rns):
    """A /24 inside the suspect /16 answers the lookup: nothing proven, the table is dumped
    again, and the fix made after the first dump is seen."""
    registry, ns = rns
    registry.ip(ns, *_put(4, "10.40.0.0/16", "10.0.0.3"))
    registry.ip(ns, "route", "add", "10.40.0.0/24", "via", "10.0.0.2")
    alone, rep = _recheck(registry, ns, 4, _bird(ns, ("10.40.0.0/16", "10.0.0.2")),
                          [_put(4, "10.40.0.0/16", "10.0.0.2")])
    assert alone == [("mismatch", "10.40.0.0/16")]
    assert rep.differences == [] and _cost(rep) == (1, 0, 1)


def test_recheck_of_another_table_dumps_again(rns):
    """Table 300, which no rule leads to: the lookup answers from main, which proves nothing
    about 300."""
    registry, ns = rns
    registry.ip(ns, *_put(4, "10.41.0.0/16", "10.0.0.3", "table", "300"))
    alone, rep = _recheck(registry, ns, 4, _bird(ns, ("10.41.0.0/16", "10.0.0.2")),
                          [_put(4, "10.41.0.0/16", "10.0.0.2", "table", "300")], table=300)
    assert alone == [("mismatch", "10.41.0.0/16")]
    assert rep.differences == [] and _cost(rep) == (1, 0, 1)


def test_recheck_prefix_with_several_values_dumps_again(rns):
    """BIRD's route at metric 20 under another protocol's at metric 10 (shadowed): the
    lookup would show only the winner, so the table is dumped again."""
    registry, ns = rns
    prefix = "10.18.0.0/16"
    registry.ip(ns, "route", "add", prefix, "via", "10.0.0.2", "metric", "10")
    registry.ip(ns, *_put(4, prefix, "10.0.0.3", "metric", "20"))
    alone, rep = _recheck(registry, ns, 4, _bird(ns, (prefix, "10.0.0.3")), [
        ["route", "change", prefix, "via", "10.0.1.2", "metric", "10"]])
    assert alone == [("shadowed", prefix)]
    assert _kinds(rep) == [("shadowed", prefix)] and _cost(rep) == (1, 0, 1)
    assert [h["gateway"] for k in rep.differences[0].kernel for h in k["nexthops"]
            if k["protocol"] == "boot"] == ["10.0.1.2"]       # the second dump's


def test_recheck_past_max_lookups_dumps_again(rns, tmp_path):
    registry, ns = rns
    prefixes = [f"10.{90 + i // 256}.{i % 256}.0/24" for i in range(MAX_LOOKUPS + 1)]
    expected = _bird(ns, *((p, "10.0.0.2") for p in prefixes))
    batch = tmp_path / "touch"
    batch.write_text("".join(f"route add {p} via 10.0.0.2\nroute del {p}\n" for p in prefixes))
    alone, rep = _recheck(registry, ns, 4, expected, [["-batch", str(batch)]])
    assert alone == [("missing", p) for p in sorted(prefixes)]
    assert rep.missing == len(prefixes) and _cost(rep) == (len(prefixes), 0, 1)


def test_recheck_after_monitor_overflow_dumps_again(rns, tmp_path):
    """An overflowed monitor cannot say what was touched: the re-check dumps everything
    again, never prefix by prefix, and sees the fix made after the first dump."""
    registry, ns = rns
    prefix = "10.17.0.0/16"
    registry.ip(ns, *_put(4, prefix, "10.0.0.3"))
    batch = tmp_path / "burst"
    batch.write_text("".join(f"route add 10.{60 + i // 256}.{i % 256}.0/24 via 10.0.0.2\n"
                             for i in range(2000))
                     + f"route replace {prefix} via 10.0.0.2 dev eth0 proto bird\n")
    alone, rep = _recheck(registry, ns, 4, _bird(ns, (prefix, "10.0.0.2")),
                          [["-batch", str(batch)]], shrink_monitor=True)
    assert alone == [("mismatch", prefix)]
    assert rep.monitor_overflow is True
    assert rep.differences == [] and _cost(rep) == (1, 0, 1)
