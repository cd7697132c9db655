"""One grammar, several sinks: for every capture in tests/data and for Hypothesis-made
replies, the Arrow columns equal the Route records field by field (``row_of`` is the
mapping, written here from the Route side), errors arrive at the same line in both, and
batches cut anywhere change nothing."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import nodestatus
from nodestatus import Route

pa = pytest.importorskip("pyarrow", reason="the [arrow] extra is not installed")

from nodestatus import _birdparse  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"
FILES = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*")
               if p.is_file() and "config" not in p.relative_to(DATA).parts
               and p.suffix not in (".json", ".md") and p.name != "timeformat.conf.txt")


def row_of(r: Route) -> Dict[str, Any]:
    """A Route as the columns sink's row must read (``Table.to_pylist()``)."""
    bgp: Optional[Dict[str, Any]] = None
    if r.bgp is not None:
        b = r.bgp
        path: List[int] = []
        sets = []
        for i, seg in enumerate(b.as_path):
            if isinstance(seg, frozenset):
                sets.append({"position": i, "asns": sorted(seg)})
            else:
                path.append(seg)
        bgp = {
            "origin": b.origin, "as_path": path, "as_path_sets": sets,
            "as_path_truncated": b.as_path_truncated, "as_path_raw": b.as_path_raw,
            "next_hop": list(b.next_hop), "med": b.med, "local_pref": b.local_pref,
            "communities": [{"asn": a, "value": v} for a, v in b.communities],
            "large_communities": [{"global": g, "local1": x, "local2": y}
                                  for g, x, y in b.large_communities],
            "ext_communities": [list(e) for e in b.ext_communities],
            "atomic_aggr": b.atomic_aggr,
            "aggregator": None if b.aggregator is None else
            {"address": b.aggregator[0], "asn": b.aggregator[1]},
            "originator_id": b.originator_id, "cluster_list": list(b.cluster_list),
        }
    return {
        "prefix": r.prefix, "table": r.table, "type": r.type,
        "nexthops": [{"gateway": h.gateway, "interface": h.interface, "weight": h.weight,
                      "onlink": h.onlink, "mpls": h.mpls} for h in r.nexthops],
        "protocol": r.protocol, "since": r.since, "from": r.from_, "primary": r.primary,
        "sync_error": r.sync_error, "preference": r.preference, "metric": r.metric,
        "metric2": r.metric2, "info_flags": r.info_flags, "bgp_origin": r.bgp_origin,
        "bgp_origin_as": r.bgp_origin_as, "info": r.info, "source": r.source,
        "cast": r.cast, "scope": r.scope, "bgp": bgp,
        "attrs": None if r.attrs is None else list(r.attrs.items()),
    }


def _normal(row: Dict[str, Any]) -> Dict[str, Any]:
    if row["bgp"] is not None:                     # an AS_SET's order is not the struct's
        for s in row["bgp"]["as_path_sets"]:
            s["asns"] = sorted(s["asns"])
    return row


def columns(data: bytes, batch_rows: int = 1 << 17, chunk: Optional[int] = None):
    """(rows, other records, error) through the columns sink."""
    sink = _birdparse.column_sink(batch_rows)
    parser = nodestatus.Parser(sink=sink)
    others: list = []
    err = None
    try:
        if chunk:
            for i in range(0, len(data), chunk):
                others += parser.feed(data[i:i + chunk])
        else:
            others += parser.feed(data)
        others += parser.close()
    except nodestatus.ParseError as exc:
        err = exc
        others += [r for r in exc.partial if not isinstance(r, Route)]
    rows = [_normal(r) for b in sink.finish() for r in b.to_pylist()]
    return rows, others, err


def structs(data: bytes):
    try:
        recs = nodestatus.parse(data)
        err = None
    except nodestatus.ParseError as exc:
        recs, err = exc.partial, exc
    routes = [row_of(r) for r in recs if isinstance(r, Route)]
    return routes, [r for r in recs if not isinstance(r, Route)], err


@functools.lru_cache(maxsize=None)
def _raw(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


@pytest.mark.parametrize("rel", FILES)
def test_columns_equal_structs_on_every_capture(rel):
    data = _raw(rel)
    want, want_other, want_err = structs(data)
    got, got_other, got_err = columns(data)
    assert got == want
    assert got_other == want_other
    assert (type(got_err), got_err and got_err.line) == (type(want_err), want_err and want_err.line)


def test_schema_has_every_route_field():
    names = _birdparse.route_schema().names
    assert names == ["from" if f == "from_" else f for f in Route.__struct_fields__]
    assert _birdparse.route_schema(with_reply=True).names[-1] == "reply"


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 64])
def test_batches_cut_anywhere_change_nothing(rows):
    """Batches of any size (alternatives across a cut, templates across a cut)."""
    for rel in ("captures/1.6.8/show_route_all.raw.txt", "captures/2.0.12/show_route.raw.txt",
                "captures/calico-lab-node1/v4/show_route.raw"):
        data = _raw(rel)
        assert columns(data, batch_rows=rows) == columns(data)
        assert columns(data, batch_rows=rows, chunk=5)[0] == columns(data)[0]


# --------------------------------------------------------------------------- the FIB sink

from nodestatus import _rtnl  # noqa: E402
from nodestatus.fibcheck import fib_sink, protocol_rule  # noqa: E402

_KERNEL_TYPE = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibited": 8}


def packed_from_structs(records, ifindex, *, exported, bird2, merge_paths=True):
    """The reference: the FIB sink's rules written over Route records in plain Python."""
    keep = protocol_rule(None)
    out = {4: ({}, {}, []), 6: ({}, {}, [])}
    state = {"last": None, "group": None}

    def key(r):
        try:
            return _rtnl.pack_key(r.prefix)
        except ValueError:
            return None

    def installable(r):
        if r.type not in _KERNEL_TYPE:
            return False
        if r.source == "inherit" or (not bird2 and r.source == "device"):
            return False
        return keep(r.protocol or "", bird2)

    def same_kind(a, b):
        return (a.type == b.type == "unicast" and a.preference == b.preference
                and (a.source or "") == (b.source or "")
                and (a.protocol or "")[:4] == (b.protocol or "")[:4])

    def pack(r, hops, fam):
        weights = bird2 or fam == 4
        rows = [(h.gateway, (ifindex.get(h.interface, 0xFFFFFFFF) if h.interface else 0),
                 h.weight if (weights and h.weight and len(hops) > 1) else 1) for h in hops]
        return _rtnl.pack_expected(r.prefix, _KERNEL_TYPE[r.type], rows)[1]

    def emit():
        last, group = state["last"], state["group"]
        if last is None:
            return
        k = key(last)
        fam = k[0]
        expected, merged, sync = out[fam]
        if last.sync_error:
            sync.append(k)
            return
        expected[k] = pack(last, last.nexthops, fam)
        if merge_paths and group is not None:
            merged[k] = pack(last, [h for r in group for h in r.nexthops], fam)

    for r in records:
        if not isinstance(r, Route) or key(r) is None:
            continue
        last = state["last"]
        if exported:
            if r.primary or last is None or key(r) != key(last):
                emit()
                state["last"], state["group"] = (r if installable(r) else None), None
            continue
        if r.primary:
            emit()
            state["last"], state["group"] = (r if installable(r) else None), None
        elif last is not None and key(r) == key(last) and same_kind(r, last):
            state["group"] = (state["group"] or [last]) + [r]
    emit()
    return out


def _ifindex(records):
    names = sorted({h.interface for r in records if isinstance(r, Route) for h in r.nexthops
                    if h.interface})
    return {n: i + 1 for i, n in enumerate(names[: len(names) // 2])}  # half unknown


@pytest.mark.parametrize("exported", [False, True])
@pytest.mark.parametrize("rel", [f for f in FILES if "route" in f])
def test_fib_keys_equal_the_keys_packed_from_structs(rel, exported):
    data = _raw(rel)
    try:
        records = nodestatus.parse(data)
    except nodestatus.ParseError as exc:       # up to the fault, both sides agree too
        records = exc.partial
    ifindex = _ifindex(records)
    sink = fib_sink(ifindex, exported=exported)
    parser = nodestatus.Parser(sink=sink)
    try:
        parser.feed(data)
        parser.close()
    except nodestatus.ParseError:
        pass
    bird2 = bool(sink.is_bird2)
    assert sink.result() == packed_from_structs(records, ifindex, exported=exported,
                                                bird2=bird2)


@pytest.mark.parametrize("shape", ["calico", "calico6", "fulltable"])
@pytest.mark.parametrize("detail", [False, True])
def test_sinks_agree_on_generated_tables(shape, detail):
    """The benches' seeded tables: alternatives, ECMP multipath, AS_SETs, long community
    lists wrapped on several lines, templates that hit and miss."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
    import gen_dump

    data = gen_dump.generate_uncached(shape, 3000, detail, seed=7)
    want, _, _ = structs(data)
    got, _, err = columns(data, batch_rows=1000)
    assert err is None and got == want
    records = nodestatus.parse(data)
    ifindex = _ifindex(records)
    for exported in (False, True):
        sink = fib_sink(ifindex, exported=exported)
        parser = nodestatus.Parser(sink=sink)
        parser.feed(data)
        parser.close()
        assert sink.result() == packed_from_structs(records, ifindex, exported=exported,
                                                    bird2=False)
