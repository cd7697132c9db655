"""What the property tests of the parse core's sinks share: each sink run over the same
bytes, and each one's output in a form the others can be compared with.

* ``row_of``: a Route as the columns sink's row must read (the mapping, written from the
  Route side);
* ``columns`` / ``structs``: (routes, other records, error) through either sink;
* ``packed_from_structs``: the FIB sink's rules written again over Route records in plain
  Python, the reference its packed keys are checked against.

Used by test_sinks.py (every capture) and test_sink_properties.py (Hypothesis-made
replies). pyarrow is only needed when ``columns`` runs.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import nodestatus
from nodestatus import Route, _birdparse, _rtnl
from nodestatus.fibcheck import protocol_rule

__all__ = ("row_of", "columns", "structs", "packed_from_structs", "ifindex_half_known")


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


# --------------------------------------------------------------------------- the FIB sink

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


def ifindex_half_known(records):
    """Interface names -> kernel indexes for half the interfaces the routes use (the other
    half are unknown to the kernel: the FIB sink's 0xFFFFFFFF)."""
    names = sorted({h.interface for r in records if isinstance(r, Route) for h in r.nexthops
                    if h.interface})
    return {n: i + 1 for i, n in enumerate(names[: len(names) // 2])}
