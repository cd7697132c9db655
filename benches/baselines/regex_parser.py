"""Baseline: a pure-Python line-regex parser, the way Calico's node agent and pybird read BIRD.

Split the reply into lines, strip the 4-digit code / the one-space continuation, then one
``re.match`` per line; route fields are collected and turned into the same
``nodestatus.structs.Route`` / ``Nexthop`` / ``BgpAttrs`` records the Cython core builds, so a
benchmark group compares equal work (``tests/unit/test_bench_baseline.py`` checks that).

It handles what ``benches/gen_dump.py`` produces (1.6 raw framing, ``show route [all]``), not
every BIRD output.
"""
from __future__ import annotations

import re
from typing import List, Optional

from nodestatus.structs import BgpAttrs, Nexthop, Route

__all__ = ("label", "parse_routes")

label = "regex-baseline"

_FRAME = re.compile(r"(?:(\d{4})([ -])| )(.*)\Z", re.S)
_ROUTE = re.compile(
    r"(\S+)?\s+"
    r"(?:via (\S+) on (\S+)|dev (\S+)|(blackhole|unreachable|prohibited|multipath))"
    r" \[(\S+) ([^\]]+?)(?: from (\S+))?\]"
    r"(?: ([*!]))?"
    r" \((\d+)(?:/(\d+))?\)"
    r"(?: \[(?:AS(\d+))?([ie?])?\])?\Z"
)
_VIA = re.compile(r"\tvia (\S+) on (\S+)(?: weight (\d+))?\Z")
_TYPE = re.compile(r"\tType: (\S+) (\S+) (\S+)\Z")
_ATTR = re.compile(r"\t([^\t.:]+\.[^:]+): ?(.*)\Z")
_WRAP = re.compile(r"\t\t(.*)\Z")
_COMM = re.compile(r"\((\d+),(\d+)\)")
_LCOMM = re.compile(r"\((\d+), (\d+), (\d+)\)")

_BGP_TYPED = frozenset(
    ("BGP.origin", "BGP.as_path", "BGP.next_hop", "BGP.med", "BGP.local_pref",
     "BGP.community", "BGP.large_community")
)


def _as_path(text: str) -> tuple:
    out: list = []
    aset: Optional[list] = None
    for tok in text.split():
        if tok == "{":
            aset = []
        elif tok == "}":
            out.append(frozenset(aset or ()))
            aset = None
        elif aset is not None:
            aset.append(int(tok))
        else:
            out.append(int(tok))
    return tuple(out)


def _bgp(attrs: dict) -> BgpAttrs:
    kw: dict = {}
    v = attrs.get("BGP.origin")
    if v is not None:
        kw["origin"] = v
    v = attrs.get("BGP.as_path")
    if v is not None:
        kw["as_path"] = _as_path(v)
    v = attrs.get("BGP.next_hop")
    if v is not None:
        kw["next_hop"] = tuple(v.split())
    v = attrs.get("BGP.med")
    if v is not None:
        kw["med"] = int(v)
    v = attrs.get("BGP.local_pref")
    if v is not None:
        kw["local_pref"] = int(v)
    v = attrs.get("BGP.community")
    if v is not None:
        kw["communities"] = tuple((int(a), int(b)) for a, b in _COMM.findall(v))
    v = attrs.get("BGP.large_community")
    if v is not None:
        kw["large_communities"] = tuple(
            (int(a), int(b), int(c)) for a, b, c in _LCOMM.findall(v))
    return BgpAttrs(**kw)


class _Pending:
    __slots__ = ("m", "prefix", "nexthops", "source", "cast", "scope", "attrs", "last")

    def __init__(self, m, prefix):
        self.m = m
        self.prefix = prefix
        self.nexthops: List[Nexthop] = []
        self.source = self.cast = self.scope = None
        self.attrs: Optional[dict] = None
        self.last: Optional[str] = None

    def build(self) -> Route:
        (_net, gw, iface, dev, kind, proto, since, from_, mark, pref, metric,
         asn, origin) = self.m.groups()
        if gw is not None:
            nexthops = (Nexthop(gw, iface, None, False, None),)
            rtype = "unicast"
        elif dev is not None:
            nexthops = (Nexthop(None, dev, None, False, None),)
            rtype = "unicast"
        elif kind == "multipath":
            nexthops = tuple(self.nexthops)
            rtype = "unicast"
        else:
            nexthops = ()
            rtype = kind
        bgp = other = None
        if self.attrs is not None:
            if any(k in _BGP_TYPED for k in self.attrs):
                bgp = _bgp(self.attrs)
            other = {k: v for k, v in self.attrs.items() if k not in _BGP_TYPED} or None
        return Route(
            self.prefix, None, rtype, nexthops, proto, since, from_,
            mark == "*", mark == "!",
            int(pref), int(metric) if metric is not None else None, None, None,
            origin, int(asn) if asn is not None else None, None,
            self.source, self.cast, self.scope, bgp, other,
        )


def parse_routes(data: bytes) -> List[Route]:
    """``show route [all]`` raw socket bytes → ``Route`` records, in dump order."""
    routes: List[Route] = []
    cur: Optional[_Pending] = None
    last_prefix: Optional[str] = None
    code = None
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        if not line:
            continue
        f = _FRAME.match(line)
        if f is None:
            raise ValueError("not a BIRD reply line: %r" % line)
        if f.group(1) is not None:
            code = f.group(1)
            if f.group(2) == " ":  # final line
                break
        payload = f.group(3)
        if code == "1007":
            m = _ROUTE.match(payload)
            if m is not None:
                if cur is not None:
                    routes.append(cur.build())
                prefix = m.group(1) or last_prefix
                last_prefix = prefix
                cur = _Pending(m, prefix)
                continue
            m = _VIA.match(payload)
            if m is not None and cur is not None:
                w = m.group(3)
                cur.nexthops.append(
                    Nexthop(m.group(1), m.group(2), int(w) if w is not None else None, False, None))
                continue
            raise ValueError("unexpected route line: %r" % payload)
        elif code == "1008":
            m = _TYPE.match(payload)
            if m is not None and cur is not None:
                cur.source, cur.cast, cur.scope = m.groups()
                continue
            raise ValueError("unexpected Type line: %r" % payload)
        elif code == "1012":
            if cur is None:
                raise ValueError("attribute outside a route: %r" % payload)
            m = _WRAP.match(payload)
            if m is not None and cur.last is not None:
                cur.attrs[cur.last] += " " + m.group(1)
                continue
            m = _ATTR.match(payload)
            if m is not None:
                if cur.attrs is None:
                    cur.attrs = {}
                cur.last = m.group(1)
                cur.attrs[cur.last] = m.group(2)
                continue
            raise ValueError("unexpected attribute line: %r" % payload)
    if cur is not None:
        routes.append(cur.build())
    return routes
