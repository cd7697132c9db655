"""Two captures → what changed: routes added, removed or changed, protocols whose state moved.

``nodestatus diff OLD NEW`` runs here. Routes are keyed by ``(table, prefix, protocol,
from)``; BIRD may hold several routes under one key (add-path, several static
alternatives), so within a key identical routes pair first and the rest pair in capture
order, the surplus being added or removed. ``since`` is not compared: it is a time of
day whose text depends on the capture's ``timeformat``. Protocols are keyed by name and
compared on state, BGP state and the info column.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

import msgspec

from .errors import InputError
from .inputs import open_input, require_bird
from .records import Parser, record_batches
from .structs import BgpAttrs, Protocol, Record, Route

__all__ = ("Change", "Diff", "diff_records", "diff_files", "render")

RouteKey = Tuple[Optional[str], str, Optional[str], Optional[str]]
#: Route fields compared (besides the key); ``bgp`` and ``attrs`` are compared per item.
ROUTE_FIELDS = ("type", "nexthops", "primary", "sync_error", "preference", "metric",
                "metric2", "info_flags", "bgp_origin", "bgp_origin_as", "info", "source",
                "cast", "scope")
PROTOCOL_FIELDS = ("proto", "table", "state", "bgp_state", "info")
_BGP_FIELDS = BgpAttrs.__struct_fields__


class Change(msgspec.Struct, omit_defaults=True):
    """One difference. ``kind`` route|protocol, ``change`` added|removed|changed; ``fields``
    lists ``{field, old, new}`` for a change."""

    kind: str
    change: str
    key: Dict[str, Any]
    old: Any = None
    new: Any = None
    fields: List[Dict[str, Any]] = []


@dataclass
class Diff:
    changes: List[Change] = field(default_factory=list)
    compared: Tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        return not self.changes

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for c in self.changes:
            k = f"{c.kind}s {c.change}"
            out[k] = out.get(k, 0) + 1
        return out


def route_key(r: Route) -> RouteKey:
    return (r.table, r.prefix, r.protocol, r.from_)


def _route_fields(old: Route, new: Route) -> List[Dict[str, Any]]:
    out = []
    for f in ROUTE_FIELDS:
        a, b = getattr(old, f), getattr(new, f)
        if a != b:
            out.append({"field": f, "old": a, "new": b})
    ob, nb = old.bgp, new.bgp
    if ob != nb:
        if ob is None or nb is None:
            out.append({"field": "bgp", "old": ob, "new": nb})
        else:
            for f in _BGP_FIELDS:
                a, b = getattr(ob, f), getattr(nb, f)
                if a != b:
                    out.append({"field": f"bgp.{f}", "old": a, "new": b})
    oa, na = old.attrs or {}, new.attrs or {}
    if oa != na:
        for name in sorted(set(oa) | set(na)):
            if oa.get(name) != na.get(name):
                out.append({"field": f"attrs.{name}", "old": oa.get(name),
                            "new": na.get(name)})
    return out


def _key_dict(key: RouteKey) -> Dict[str, Any]:
    table, prefix, protocol, frm = key
    d: Dict[str, Any] = {"table": table, "prefix": prefix, "protocol": protocol}
    if frm is not None:
        d["from"] = frm
    return d


def _group(routes: Iterable[Route]) -> Dict[RouteKey, List[Route]]:
    out: Dict[RouteKey, List[Route]] = {}
    for r in routes:
        out.setdefault(route_key(r), []).append(r)
    return out


def _comparable(r: Route) -> Route:
    return msgspec.structs.replace(r, since=None)


def diff_routes(old: Iterable[Route], new: Iterable[Route]) -> List[Change]:
    a, b = _group(old), _group(new)
    changes: List[Change] = []
    for key in list(a) + [k for k in b if k not in a]:
        olds, news = list(a.get(key, ())), list(b.get(key, ()))
        # identical alternatives pair first (ignoring `since`), whatever their order
        news_cmp = [_comparable(r) for r in news]
        rest_old = []
        for r in olds:
            c = _comparable(r)
            if c in news_cmp:
                i = news_cmp.index(c)
                del news_cmp[i], news[i]
            else:
                rest_old.append(r)
        kd = _key_dict(key)
        for o, n in zip(rest_old, news):
            fields = _route_fields(o, n)
            if fields:
                changes.append(Change("route", "changed", kd, o, n, fields))
        for o in rest_old[len(news):]:
            changes.append(Change("route", "removed", kd, old=o))
        for n in news[len(rest_old):]:
            changes.append(Change("route", "added", kd, new=n))
    return changes


def diff_protocols(old: Iterable[Protocol], new: Iterable[Protocol]) -> List[Change]:
    a = {p.name: p for p in old}
    b = {p.name: p for p in new}
    changes: List[Change] = []
    for name in list(a) + [n for n in b if n not in a]:
        o, n = a.get(name), b.get(name)
        key = {"name": name}
        if n is None:
            changes.append(Change("protocol", "removed", key, old=o))
        elif o is None:
            changes.append(Change("protocol", "added", key, new=n))
        else:
            fields = [{"field": f, "old": getattr(o, f), "new": getattr(n, f)}
                      for f in PROTOCOL_FIELDS if getattr(o, f) != getattr(n, f)]
            if fields:
                changes.append(Change("protocol", "changed", key, o, n, fields))
    return changes


def diff_records(old: List[Any], new: List[Any]) -> Diff:
    """Compare what two captures hold; a kind is compared when either side has it."""
    ro = [r for r in old if type(r) is Route]
    rn = [r for r in new if type(r) is Route]
    po = [r for r in old if type(r) is Protocol]
    pn = [r for r in new if type(r) is Protocol]
    d = Diff()
    kinds = []
    if ro or rn:
        kinds.append("routes")
        d.changes += diff_routes(ro, rn)
    if po or pn:
        kinds.append("protocols")
        d.changes += diff_protocols(po, pn)
    d.compared = tuple(kinds)
    return d


def _read(path: str, command: Optional[str]) -> List[Record]:
    with open_input(path) as inp:
        require_bird(inp)
        out: List[Record] = []
        for batch in record_batches(inp, Parser(command=command)):
            out.extend(batch)
        return out


def diff_files(old: str, new: str, *, command: Optional[str] = None) -> Diff:
    """Compare two captures (paths, ``-``, FIFOs; compressed or not). ``InputError`` when
    one cannot be read, is cut, or holds nothing comparable."""
    recs = [_read(old, command), _read(new, command)]
    kinds = [({type(x) for x in r} & {Route, Protocol}) for r in recs]
    for path, k in zip((old, new), kinds):
        if not k:
            raise InputError("holds no routes or protocols to compare", source=path)
    if not (kinds[0] & kinds[1]):
        raise InputError(f"holds different kinds of records than {old} (routes vs "
                         "protocols): nothing to compare", source=new)
    return diff_records(recs[0], recs[1])


# --------------------------------------------------------------------------- output


def _hops(hops) -> str:
    return ", ".join(
        (f"via {h.gateway} on {h.interface}" if h.gateway else f"dev {h.interface}")
        + (f" weight {h.weight}" if h.weight is not None else "") for h in hops) or "-"


def _nh_text(r: Route) -> str:
    if not r.nexthops:
        return r.type
    return ", ".join(
        (f"via {h.gateway} on {h.interface}" if h.gateway else f"dev {h.interface}")
        + (f" weight {h.weight}" if h.weight is not None else "") for h in r.nexthops)


def _val(v: Any) -> str:
    if isinstance(v, (bytes, str)):
        return str(v)
    return msgspec.json.encode(v).decode()


def _key_text(c: Change) -> str:
    k = c.key
    if c.kind == "protocol":
        return f"protocol {k['name']}"
    t = f"{k['table']} " if k.get("table") else ""
    frm = f" from {k['from']}" if k.get("from") else ""
    return f"{t}{k['prefix']} [{k['protocol']}{frm}]"


def render(d: Diff, fmt: str) -> bytes:
    enc = msgspec.json.Encoder()
    if fmt == "ndjson":
        return enc.encode_lines(d.changes)
    if fmt == "json":
        doc = {"identical": d.identical, "compared": list(d.compared), "counts": d.counts(),
               "changes": d.changes}
        return msgspec.json.format(enc.encode(doc), indent=2) + b"\n"
    if fmt == "wide":
        lines = []
        for c in d.changes:
            if c.kind == "route" and c.change != "changed":
                r = c.new if c.change == "added" else c.old
                mark = "+" if c.change == "added" else "-"
                star = " *" if r.primary else ""
                lines.append(f"{mark} {_key_text(c)} {_nh_text(r)}{star}")
            elif c.kind == "protocol" and c.change != "changed":
                p = c.new if c.change == "added" else c.old
                mark = "+" if c.change == "added" else "-"
                lines.append(f"{mark} {_key_text(c)} {p.proto} {p.state} {p.info}".rstrip())
            else:
                lines.append(f"~ {_key_text(c)}")
                for f in c.fields:
                    if f["field"] == "nexthops":
                        lines.append(f"    nexthops: {_hops(f['old'])} -> {_hops(f['new'])}")
                        continue
                    lines.append(f"    {f['field']}: {_val(f['old'])} -> {_val(f['new'])}")
        counts = d.counts()
        lines.append("identical" if d.identical else
                     ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        return ("\n".join(lines) + "\n").encode()
    raise ValueError(f"unknown output format {fmt!r}")
