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
