"""The FIB check against real kernel tables: BIRD 1.6.8 (``bird`` + ``bird6``) exports static
routes to the main table of a test namespace, then the table is changed behind BIRD's back
with ``ip`` and :func:`nodestatus.fibcheck.check_fib` must report exactly what was changed.

The node namespace has two veths to a peer namespace (``eth0``: 10.0.0.1/24 + fd00::1/64,
``eth1``: 10.0.1.1/24 + fd00:1::1/64; the peer is .2 / ::2), so every gateway resolves.
BIRD's kernel protocol exports with ``krt_metric = 100`` (BIRD 1.6 otherwise installs IPv4
routes at metric 0, and nothing could win over them): that leaves room for another protocol's
route at a better metric (shadowing) and for a ``proto bird`` route at a better metric.

BIRD repairs the kernel table at every kernel scan, so the tests that change the table by
hand run their daemon with ``scan time 600``; only the in-sync and churn tests scan every 2 s.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from nodestatus.fibcheck import FibFamilyReport, FibReport, check_fib
from nodestatus.render import render_fib

from .fixtures.bird import BirdConfig, BirdNode, StaticRoute, demo_topology, query
from .fixtures.netns import NetnsRegistry

pytestmark = [pytest.mark.integration, pytest.mark.bird, pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[2]
KRT_METRIC = 100

# IPv4 (family 4) and IPv6 (family 6) — per family the same roles, so the by-hand cases can
# be run on both: plain unicast, a gateway to change, a blackhole that stays, an unreachable,
# a blackhole to turn into unicast, a route to shadow, a weighted multipath.
FAM = {
    4: dict(
        gw="10.0.0.2", other_gw="10.0.1.2",
        unicast="10.10.0.0/16", change="10.11.0.0/16", blackhole="10.12.0.0/16",
        unreachable="10.13.0.0/16", blackhole2="10.14.0.0/16", shadow="10.16.0.0/16",
        multipath="10.30.0.0/16", stale="10.99.0.0/16", connected=2,
    ),
    6: dict(
        gw="fd00::2", other_gw="fd00:1::2",
        unicast="2001:db8:10::/48", change="2001:db8:11::/48", blackhole="fd10:244:1::/122",
        unreachable="2001:db8:12::/48", blackhole2="fd10:244:2::/122",
        shadow="2001:db8:16::/48", multipath="2001:db8:30::/48", stale="2001:db8:99::/48",
        connected=None,
    ),
}


def static_routes(family: int) -> List[StaticRoute]:
    f = FAM[family]
    return [
        StaticRoute(f["unicast"], via=((f["gw"], None),)),
        StaticRoute(f["change"], via=((f["gw"], None),)),
        StaticRoute(f["blackhole"], "blackhole"),
        StaticRoute(f["unreachable"], "unreachable"),
        StaticRoute(f["blackhole2"], "blackhole"),
        StaticRoute(f["shadow"], via=((f["gw"], None),)),
        StaticRoute(f["multipath"], via=((f["gw"], 2), (f["other_gw"], 1))),
    ]


N_BIRD = {4: len(static_routes(4)), 6: len(static_routes(6))}


class FibBirdConfig(BirdConfig):
    """The fixture's config with ``krt_metric`` set by the kernel export filter."""

    def render(self, version: str, family: int, log_path: Optional[str] = None) -> str:
        text = super().render(version, family, log_path)
        assert "  export all;\n" in text
        return text.replace("  export all;\n",
                            f"  export filter {{ krt_metric = {KRT_METRIC}; accept; }};\n")


# ------------------------------------------------------------------------------ helpers


def kernel_json(registry: NetnsRegistry, ns: str, family: int, *args: str) -> List[dict]:
    return json.loads(registry.ip(ns, f"-{family}", "-j", "route", "show", *args) or "[]")


def bird_kernel_routes(registry: NetnsRegistry, ns: str, family: int) -> Dict[str, dict]:
    """The ``proto bird`` routes of the main table, by prefix (``ip -j``)."""
    return {r["dst"]: r for r in kernel_json(registry, ns, family, "proto", "bird")}


def wait_exported(registry: NetnsRegistry, ns: str, want: Dict[int, int],
                  timeout: float = 60.0) -> None:
    """Wait until the kernel holds ``want[family]`` proto-bird routes per family (and the
    multipath routes their two next hops: BIRD 1.6 appends IPv6 next hops one by one)."""
    deadline = time.monotonic() + timeout
    while True:
        have = {fam: bird_kernel_routes(registry, ns, fam) for fam in want}
        ok = all(len(have[fam]) >= n for fam, n in want.items())
        for fam in want:
            mp = have[fam].get(FAM[fam]["multipath"])
            if mp is not None and len(mp.get("nexthops", ())) != 2:
                ok = False
        if ok:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"BIRD did not export {want} routes: "
                               f"{ {f: len(v) for f, v in have.items()} }")
        time.sleep(0.1)


def family_report(report: FibReport, family: int) -> FibFamilyReport:
    assert [f.family for f in report.families] == [family], report
    return report.families[0]


def check(node: BirdNode, family: int, **kw) -> FibFamilyReport:
    report = check_fib(socket=node.socket(family), netns=node.ns, families=(family,), **kw)
    rep = family_report(report, family)
    assert report.in_sync == rep.in_sync
    return rep


def counts(rep: FibFamilyReport) -> Tuple[int, int, int, int, int]:
    return rep.agree, rep.missing, rep.extra, rep.mismatched, rep.shadowed


def kinds(rep: FibFamilyReport) -> List[Tuple[str, str]]:
    return [(d.kind, d.prefix) for d in rep.differences]


@pytest.fixture
def fib_node(netns: NetnsRegistry, bird_factory):
    """``start(scan_time=2, routes=…) -> (registry, node)``: the two-namespace topology and
    BIRD 1.6.8 exporting the static routes; returns once the kernel holds all of them."""

    def start(scan_time: int = 2, routes: Optional[Sequence[StaticRoute]] = None,
              want: Optional[Dict[int, int]] = None, timeout: float = 60.0):
        node_ns, _peer = demo_topology(netns)
        if routes is None:
            routes = static_routes(4) + static_routes(6)
        cfg = FibBirdConfig(router_id="192.0.2.10", routes=routes, kernel_scan_time=scan_time)
        node = bird_factory(node_ns, "1.6", cfg)
        node.wait_up()
        wait_exported(netns, node_ns, want or N_BIRD, timeout=timeout)
        return netns, node

    return start


# ------------------------------------------------------------------------------ (a) in sync


@pytest.mark.parametrize("family", [4, 6])
def test_in_sync_after_bird_synced(fib_node, family):
    registry, node = fib_node(scan_time=2)
    # krt_metric made it to the kernel (the premise of the shadowing cases)
    assert {r.get("metric") for r in bird_kernel_routes(registry, node.ns, family).values()} \
        == {KRT_METRIC}
    rep = check(node, family)
    assert rep.differences == []
    assert rep.in_sync
    assert counts(rep) == (N_BIRD[family], 0, 0, 0, 0)
    assert rep.bird_routes == N_BIRD[family]
    assert rep.family == family and rep.table == 254 and rep.netns == node.ns
    assert rep.bird_source == node.socket(family)
    if family == 4:   # BIRD's 7 and the two connected routes of eth0/eth1
        assert rep.kernel_routes == N_BIRD[4] + FAM[4]["connected"]
    else:
        assert rep.kernel_routes >= N_BIRD[6]
    assert rep.linkdown == [] and rep.monitor_overflow is False
    # both families at once, over each daemon's socket: the other family is skipped
    both = check_fib(socket=node.socket(family), netns=node.ns)
    assert [f.family for f in both.families] == [family] and both.in_sync


# ------------------------------------------------------------------------------ (b)-(d)


@pytest.mark.parametrize("family", [4, 6])
def test_route_deleted_behind_birds_back_is_missing(fib_node, family):
    registry, node = fib_node(scan_time=600)
    prefix = FAM[family]["unicast"]
    registry.ip(node.ns, f"-{family}", "route", "del", prefix, "proto", "bird")
    assert prefix not in bird_kernel_routes(registry, node.ns, family)
    rep = check(node, family)
    assert kinds(rep) == [("missing", prefix)]
    assert counts(rep) == (N_BIRD[family] - 1, 1, 0, 0, 0)
    d = rep.differences[0]
    assert d.kernel == [] and d.bird["type"] == "unicast"
    assert [h["gateway"] for h in d.bird["nexthops"]] == [FAM[family]["gw"]]
    assert d.bird["nexthops"][0]["dev"] == "eth0"
    assert not rep.in_sync


@pytest.mark.parametrize("family", [4, 6])
def test_stale_proto_bird_route_is_extra(fib_node, family):
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    registry.ip(node.ns, f"-{family}", "route", "add", f["stale"], "via", f["gw"],
                "proto", "bird")
    rep = check(node, family)
    assert kinds(rep) == [("extra", f["stale"])]
    assert counts(rep) == (N_BIRD[family], 0, 1, 0, 0)
    d = rep.differences[0]
    assert d.bird is None
    assert [h["gateway"] for h in d.kernel[0]["nexthops"]] == [f["gw"]]
    assert d.kernel[0]["protocol"] == "bird"


@pytest.mark.parametrize("family", [4, 6])
def test_gateway_changed_by_hand_is_mismatch(fib_node, family):
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    registry.ip(node.ns, f"-{family}", "route", "replace", f["change"], "via", f["other_gw"],
                "proto", "bird", "metric", str(KRT_METRIC))
    assert bird_kernel_routes(registry, node.ns, family)[f["change"]]["gateway"] == f["other_gw"]
    rep = check(node, family)
    assert kinds(rep) == [("mismatch", f["change"])]
    assert counts(rep) == (N_BIRD[family] - 1, 0, 0, 1, 0)
    d = rep.differences[0]
    assert [h["gateway"] for h in d.bird["nexthops"]] == [f["gw"]]
    assert [h["gateway"] for h in d.kernel[0]["nexthops"]] == [f["other_gw"]]
    assert d.kernel[0]["nexthops"][0]["dev"] == "eth1"
    assert "gateway" in d.reason


@pytest.mark.parametrize("family", [4, 6])
def test_gateway_replaced_without_metric_wins_and_is_mismatch(fib_node, family):
    """`ip route replace PREFIX via OTHER proto bird` without BIRD's metric adds a second
    proto-bird route at metric 0 (IPv6: 1024): the kernel forwards by the better metric."""
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    metric = "0" if family == 4 else "1"
    registry.ip(node.ns, f"-{family}", "route", "replace", f["change"], "via", f["other_gw"],
                "proto", "bird", "metric", metric)
    rows = [r for r in kernel_json(registry, node.ns, family, "proto", "bird")
            if r["dst"] == f["change"]]
    assert sorted(r.get("metric", 0) for r in rows) == [int(metric), KRT_METRIC]
    rep = check(node, family)
    assert kinds(rep) == [("mismatch", f["change"])]
    assert counts(rep) == (N_BIRD[family] - 1, 0, 0, 1, 0)
    d = rep.differences[0]
    assert len(d.kernel) == 2


# ------------------------------------------------------------------------------ (e) types


@pytest.mark.parametrize("family", [4, 6])
def test_blackhole_in_sync_and_blackhole_replaced_by_unicast(fib_node, family):
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    kroutes = bird_kernel_routes(registry, node.ns, family)
    assert kroutes[f["blackhole"]]["type"] == "blackhole"
    assert kroutes[f["unreachable"]]["type"] == "unreachable"
    rep = check(node, family)
    assert rep.differences == [] and counts(rep) == (N_BIRD[family], 0, 0, 0, 0)

    registry.ip(node.ns, f"-{family}", "route", "replace", f["blackhole2"], "via", f["gw"],
                "proto", "bird", "metric", str(KRT_METRIC))
    assert bird_kernel_routes(registry, node.ns, family)[f["blackhole2"]].get("type",
                                                                               "unicast") \
        == "unicast"
    rep = check(node, family)
    assert kinds(rep) == [("mismatch", f["blackhole2"])]
    assert counts(rep) == (N_BIRD[family] - 1, 0, 0, 1, 0)
    d = rep.differences[0]
    assert d.bird["type"] == "blackhole" and d.kernel[0]["type"] == "unicast"
    assert d.reason == "type unicast in the kernel, BIRD has blackhole"


# ------------------------------------------------------------------------------ (f) ECMP


@pytest.mark.parametrize("family", [4, 6])
def test_multipath_in_sync_with_weights(fib_node, family):
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    mp = bird_kernel_routes(registry, node.ns, family)[f["multipath"]]
    hops = {(h["gateway"], h["dev"], h.get("weight", 1)) for h in mp["nexthops"]}
    if family == 4:
        assert hops == {(f["gw"], "eth0", 2), (f["other_gw"], "eth1", 1)}
    else:
        # BIRD 1.6's bird6 appends IPv6 next hops one by one: the kernel gets no weights
        assert hops == {(f["gw"], "eth0", 1), (f["other_gw"], "eth1", 1)}
    rep = check(node, family)
    assert rep.differences == [], render_fib(FibReport(families=[rep]), "wide")
    assert counts(rep) == (N_BIRD[family], 0, 0, 0, 0)


@pytest.mark.parametrize("family", [4, 6])
def test_multipath_next_hop_removed_is_mismatch(fib_node, family):
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    if family == 4:
        registry.ip(node.ns, "-4", "route", "replace", f["multipath"], "proto", "bird",
                    "metric", str(KRT_METRIC), "nexthop", "via", f["gw"], "dev", "eth0",
                    "weight", "2")
    else:   # IPv6 next hops can be deleted one at a time
        registry.ip(node.ns, "-6", "route", "del", f["multipath"], "via", f["other_gw"],
                    "dev", "eth1", "proto", "bird", "metric", str(KRT_METRIC))
    kroute = bird_kernel_routes(registry, node.ns, family)[f["multipath"]]
    assert kroute.get("gateway") == f["gw"] and "nexthops" not in kroute
    rep = check(node, family)
    assert kinds(rep) == [("mismatch", f["multipath"])]
    assert counts(rep) == (N_BIRD[family] - 1, 0, 0, 1, 0)
    d = rep.differences[0]
    assert len(d.bird["nexthops"]) == 2 and len(d.kernel[0]["nexthops"]) == 1
    assert d.reason == "1 next hops in the kernel, BIRD has 2"


def test_multipath_weight_changed_is_mismatch(fib_node):
    registry, node = fib_node(scan_time=600)
    f = FAM[4]
    registry.ip(node.ns, "-4", "route", "replace", f["multipath"], "proto", "bird",
                "metric", str(KRT_METRIC), "nexthop", "via", f["gw"], "dev", "eth0",
                "weight", "1", "nexthop", "via", f["other_gw"], "dev", "eth1", "weight", "1")
    rep = check(node, 4)
    assert kinds(rep) == [("mismatch", f["multipath"])]
    assert counts(rep) == (N_BIRD[4] - 1, 0, 0, 1, 0)
    d = rep.differences[0]
    assert sorted(h["weight"] for h in d.bird["nexthops"]) == [1, 2]
    assert sorted(h["weight"] for h in d.kernel[0]["nexthops"]) == [1, 1]


# ------------------------------------------------------------------------------ (g) shadowed


@pytest.mark.parametrize("family", [4, 6])
def test_route_shadowed_by_static_at_better_metric(fib_node, family):
    registry, node = fib_node(scan_time=600)
    f = FAM[family]
    registry.ip(node.ns, f"-{family}", "route", "add", f["shadow"], "via", f["other_gw"],
                "proto", "static", "metric", "1")
    rows = sorted((r.get("metric", 0), r["protocol"])
                  for r in kernel_json(registry, node.ns, family) if r["dst"] == f["shadow"])
    assert rows == [(1, "static"), (KRT_METRIC, "bird")]
    rep = check(node, family)
    assert kinds(rep) == [("shadowed", f["shadow"])]
    assert counts(rep) == (N_BIRD[family] - 1, 0, 0, 0, 1)
    d = rep.differences[0]
    assert sorted((k["protocol"], k["metric"]) for k in d.kernel) == [("bird", KRT_METRIC),
                                                                       ("static", 1)]
    # a static route at a worse metric does not shadow
    registry.ip(node.ns, f"-{family}", "route", "del", f["shadow"], "proto", "static",
                "metric", "1")
    registry.ip(node.ns, f"-{family}", "route", "add", f["shadow"], "via", f["other_gw"],
                "proto", "static", "metric", "500")
    rep = check(node, family)
    assert rep.differences == [] and counts(rep) == (N_BIRD[family], 0, 0, 0, 0)


# ------------------------------------------------------------------------------ (h) churn


def _bulk_routes(family: int, n: int) -> List[StaticRoute]:
    if family == 4:
        gws = ("10.0.0.2", "10.0.1.2")
        return [StaticRoute(f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}/32",
                            via=((gws[i % 2], None),)) for i in range(n)]
    gws = ("fd00::2", "fd00:1::2")
    return [StaticRoute(f"2001:db8:{0x1000 + i // 65536:x}:{i % 65536:x}::/64",
                        via=((gws[i % 2], None),)) for i in range(n)]


class Churn(threading.Thread):
    """Runs ``ip -n NS -batch`` over ``files`` in a loop until stopped (every file leaves
    the table as it found it once the whole round has run)."""

    def __init__(self, registry: NetnsRegistry, ns: str, family: int,
                 files: Sequence[Path]) -> None:
        super().__init__(daemon=True, name=f"churn{family}")
        self.registry, self.ns, self.family, self.files = registry, ns, family, files
        self.stop_event = threading.Event()
        self.rounds = 0
        self.error: Optional[BaseException] = None

    @classmethod
    def unrelated(cls, registry, ns, family, workdir: Path, n: int,
                  bird_prefixes: Sequence[str]) -> "Churn":
        """Adds and deletes ``n`` unrelated ``proto static`` routes, plus ``proto static``
        duplicates at a worse metric of some of BIRD's prefixes (they touch BIRD's keys in
        the monitor and make them tuples in the dump, without changing what wins)."""
        gw = FAM[family]["gw"]
        if family == 4:
            unrelated = [f"172.{16 + i // 65536}.{(i // 256) % 256}.{i % 256}/32"
                         for i in range(n)]
        else:
            unrelated = [f"2001:db8:ffff:{i:x}::/64" for i in range(n)]
        adds = [f"route add {p} via {gw} proto static" for p in unrelated]
        adds += [f"route add {p} via {gw} proto static metric 500" for p in bird_prefixes]
        dels = [f"route del {p} proto static" for p in unrelated]
        dels += [f"route del {p} proto static metric 500" for p in bird_prefixes]
        add_file, del_file = workdir / f"add{family}", workdir / f"del{family}"
        add_file.write_text("\n".join(adds) + "\n")
        del_file.write_text("\n".join(dels) + "\n")
        return cls(registry, ns, family, [add_file, del_file])

    @classmethod
    def flips(cls, registry, ns, family, workdir: Path,
              bird_routes: Sequence[StaticRoute]) -> "Churn":
        """Moves some of BIRD's own routes to the other gateway and straight back: a dump
        can catch one moved (a real, transient mismatch that the re-check must clear)."""
        lines = []
        for r in bird_routes:
            gw = r.via[0][0]
            other = [g for g in (FAM[family]["gw"], FAM[family]["other_gw"]) if g != gw][0]
            lines.append(f"route replace {r.prefix} via {other} proto bird metric {KRT_METRIC}")
            lines.append(f"route replace {r.prefix} via {gw} proto bird metric {KRT_METRIC}")
        path = workdir / f"flip{family}"
        path.write_text("\n".join(lines) + "\n")
        return cls(registry, ns, family, [path])

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                for path in self.files:
                    self.registry.ip(self.ns, f"-{self.family}", "-batch", str(path))
                self.rounds += 1
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> "Churn":
        self.start()
        while self.rounds < 1 and self.is_alive():
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.join(60)
        assert not self.is_alive()


def explain(registry: NetnsRegistry, ns: str, rep: FibFamilyReport, phase: str) -> str:
    """A failure message: the report, and what `ip` says now about the first differences."""
    text = f"{phase}:\n" + render_fib(FibReport(families=[rep]), "wide")[:2500]
    for d in rep.differences[:3]:
        now = registry.ip(ns, f"-{rep.family}", "route", "show", "exact", d.prefix).strip()
        text += f"\nip now, {d.prefix}: {now or '(none)'}"
    return text


@pytest.mark.parametrize("family,n_bird", [(4, 20_000), (6, 10_000)])
def test_heavy_churn_during_the_dump_no_false_reports(fib_node, tmp_path, family, n_bird):
    bulk = _bulk_routes(family, n_bird)
    routes = static_routes(family) + bulk
    n = len(routes)
    # scan time 600: BIRD's kernel scan would see the flips below and rewrite its routes
    # for real (BIRD 1.6.8's bird6 then deletes and re-adds thousands of them: true
    # differences while it lasts); here only the churn changes the table
    registry, node = fib_node(scan_time=600, routes=routes, want={family: n}, timeout=120)
    quiet = check(node, family)
    assert quiet.differences == [] and counts(quiet) == (n, 0, 0, 0, 0)
    assert quiet.rechecked == 0 and quiet.kernel_routes >= n

    # unrelated churn, and BIRD's own prefixes touched at a worse metric
    with Churn.unrelated(registry, node.ns, family, tmp_path, 3000, [r.prefix for r in bulk[::40]]) \
            as churn:
        reports = [check(node, family) for _ in range(8)]
        rounds_during = churn.rounds
    assert churn.error is None, churn.error
    assert rounds_during >= 2, "the churn did not overlap the checks"
    # BIRD's own routes flipping to another gateway and back: transient mismatches. IPv4
    # only: flipping bird6's IPv6 routes by hand makes BIRD 1.6.8 delete and re-add its
    # whole IPv6 table (~10k RTM_DELROUTE seen by a raw monitor, even with scan time 600),
    # so routes really are missing while that lasts.
    flip_reports: List[FibFamilyReport] = []
    flip_rounds = 0
    if family == 4:
        with Churn.flips(registry, node.ns, family, tmp_path, bulk[1::20]) as flips:
            flip_reports = [check(node, family) for _ in range(20)]
            flip_rounds = flips.rounds
        assert flips.error is None, flips.error
        assert flip_rounds >= 2, "the flips did not overlap the checks"
    for rep in reports:
        assert rep.differences == [], explain(registry, node.ns, rep, "unrelated churn")
        assert counts(rep) == (n, 0, 0, 0, 0)
    # A flip is a real change: one that was already there when the monitor opened and not
    # yet undone when the dump ended (the `ip -batch` process lost its CPU in between) was
    # the kernel's state for the whole dump and is rightly reported. Anything else is false.
    flipped = {r.prefix: r.via[0][0] for r in bulk[1::20]}
    caught = 0
    for rep in flip_reports:
        for d in rep.differences:
            ok = (d.kind == "mismatch" and d.prefix in flipped and len(d.kernel) == 1
                  and [h["gateway"] for h in d.kernel[0]["nexthops"]] != [flipped[d.prefix]])
            assert ok, explain(registry, node.ns, rep, "flips")
            caught += 1
        assert rep.agree + rep.mismatched == n and rep.missing == rep.extra == rep.shadowed == 0
    for rep in reports + flip_reports:
        assert rep.bird_routes == n
        assert isinstance(rep.rechecked, int) and rep.rechecked >= 0
    rechecked = [r.rechecked for r in reports + flip_reports]
    print(f"IPv{family} churn: {rounds_during} + {flip_rounds} churn rounds over "
          f"{len(rechecked)} checks; rechecked {rechecked}, of them settled per prefix "
          f"{[r.settled_by_lookup for r in reports + flip_reports]}, re-dumps "
          f"{[r.redumps for r in reports + flip_reports]}; flips caught for a whole "
          f"dump {caught}; overflow "
          f"{[r.monitor_overflow for r in reports + flip_reports]}, seconds "
          f"{[round(r.seconds, 3) for r in reports + flip_reports]}")
    for rep in reports + flip_reports:   # a round is settled per prefix or by a dump, whole
        assert 0 <= rep.settled_by_lookup <= rep.rechecked
        assert (rep.redumps == 0) == (rep.settled_by_lookup == rep.rechecked)
    # the flips were caught by some dumps and cleared by the re-check: a flipped route is
    # one proto-bird route at any moment, so a per-prefix lookup settles each, never a dump
    if family == 4:
        assert sum(r.rechecked for r in flip_reports) > 0
        assert [(r.settled_by_lookup, r.redumps) for r in flip_reports] == \
            [(r.rechecked, 0) for r in flip_reports]

    # a real difference made during the churn is still reported, and only it (a proto static
    # route at a better metric: BIRD's kernel scan leaves other protocols' routes alone)
    victim = bulk[8]      # via the first gateway: the static route goes via the other
    registry.ip(node.ns, f"-{family}", "route", "add", victim.prefix, "via",
                FAM[family]["other_gw"], "proto", "static", "metric", "1")
    with Churn.unrelated(registry, node.ns, family, tmp_path, 3000, ()) as churn2:
        rep = check(node, family)
    assert churn2.error is None, churn2.error
    assert kinds(rep) == [("shadowed", victim.prefix)]
    assert counts(rep) == (n - 1, 0, 0, 0, 1)


# ------------------------------------------------------------------------------ (i) the CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed package's CLI (never src/: the suite tests the wheel)."""
    return subprocess.run([sys.executable, "-m", "nodestatus", "fib-check", *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=120)


def test_cli_live_exit_codes(fib_node):
    registry, node = fib_node(scan_time=600)
    for family in (4, 6):
        proc = run_cli("--socket", node.socket(family), "--netns", node.ns, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["in_sync"] is True
        (fam,) = out["families"]
        assert fam["family"] == family and fam["agree"] == N_BIRD[family]
        assert fam["differences"] == []
    proc = run_cli("--socket", node.socket(4), "--netns", node.ns)     # wide
    assert proc.returncode == 0 and proc.stdout.startswith("FIB check: IPv4 7/7 agree (in sync)")

    registry.ip(node.ns, "-4", "route", "add", FAM[4]["stale"], "via", FAM[4]["gw"],
                "proto", "bird")
    proc = run_cli("--socket", node.socket(4), "--netns", node.ns, "--family", "4", "-o", "json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["in_sync"] is False
    (fam,) = out["families"]
    assert [(d["kind"], d["prefix"]) for d in fam["differences"]] == [("extra", FAM[4]["stale"])]
    assert fam["extra"] == 1
    proc = run_cli("--socket", node.socket(4), "--netns", node.ns, "-o", "yaml")
    assert proc.returncode == 1 and "kind: extra" in proc.stdout
    proc = run_cli("--socket", node.socket(4), "--netns", node.ns, "-o", "wide")
    assert proc.returncode == 1
    assert any(line.split()[:2] == ["extra", FAM[4]["stale"]] for line in proc.stdout.splitlines())


def test_cli_offline_captures(fib_node, tmp_path):
    registry, node = fib_node(scan_time=600)
    files = {}
    for family in (4, 6):
        (tmp_path / f"routes{family}.txt").write_bytes(query(node.socket(family), "show route"))
        (tmp_path / f"kernel{family}.json").write_text(
            registry.ip(node.ns, f"-{family}", "-j", "route", "show"))
        files[family] = (str(tmp_path / f"routes{family}.txt"),
                         str(tmp_path / f"kernel{family}.json"))
    for family in (4, 6):
        routes, kjson = files[family]
        proc = run_cli("--routes", routes, "--kernel-json", kjson, "-o", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (fam,) = json.loads(proc.stdout)["families"]
        assert fam["family"] == family and fam["agree"] == N_BIRD[family], fam
        assert fam["netns"] is None and fam["bird_source"] == routes
    # a capture taken after a route was deleted behind BIRD's back
    registry.ip(node.ns, "-4", "route", "del", FAM[4]["unicast"], "proto", "bird")
    (tmp_path / "kernel4-after.json").write_text(registry.ip(node.ns, "-4", "-j", "route", "show"))
    proc = run_cli("--routes", files[4][0], "--kernel-json", str(tmp_path / "kernel4-after.json"),
                   "-o", "json")
    assert proc.returncode == 1, proc.stderr
    (fam,) = json.loads(proc.stdout)["families"]
    assert [(d["kind"], d["prefix"]) for d in fam["differences"]] == \
        [("missing", FAM[4]["unicast"])]
    assert (fam["agree"], fam["missing"]) == (N_BIRD[4] - 1, 1)
    # the same capture against the live kernel table in the netns
    proc = run_cli("--routes", files[4][0], "--netns", node.ns, "-o", "json")
    assert proc.returncode == 1, proc.stderr
    (fam,) = json.loads(proc.stdout)["families"]
    assert [(d["kind"], d["prefix"]) for d in fam["differences"]] == \
        [("missing", FAM[4]["unicast"])]


@pytest.mark.parametrize("args", [
    ("--socket", "/nonexistent.ctl", "--routes", "/nonexistent.txt"),
    ("--table", "-1"),
    ("--family", "5"),
    ("-o", "xml"),
    ("--no-such-option",),
])
def test_cli_bad_arguments_exit_2(args):
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr
