"""Property tests of the parse core's three sinks (issue 12 §5) on Hypothesis-made replies.

The strategies write what BIRD writes for ``show route [all]``: the format strings of
BIRD 1.6.8 (``rt_show_rte``, ``rta_show``, ``bgp_get_route_info``, ``as_path_format``,
``ea_show_int_set``) and 2.0.12 (``nest/rt-show.c``), as bird-formats.md §1 and
§5 describe them: bird, bird6 and Calico's fork, BIRD 2 with ``Table`` headings; raw socket
framing with several replies in one stream, and the one-shot ``birdc -v`` and ``birdc``
transcripts. Every stream comes with the records it must parse to, written from what the
generator meant to say and not from any sink.

1. the columns sink equals the struct sink field by field, with batches and feed chunks
   cut anywhere;
2. the FIB sink's keys equal ``packed_from_structs``, exported or not;
3. a mutated reply fails alike in both sinks (same error type, same line, the same rows
   before it), and what parsed before the faulty line is all in the error's ``partial``;
4. the struct sink gives exactly the records the generator wrote: the oracle that catches
   what all three sinks would agree on and all get wrong.
"""
from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import nodestatus
from nodestatus import Parser, Route, _birdparse
from nodestatus.errors import TruncatedReplyError
from nodestatus.fibcheck import fib_sink
from nodestatus.structs import (Banner, BgpAttrs, BirdStatus, ErrorReply, Nexthop, RouteCount,
                               Unsupported)
from sinkcheck import columns, ifindex_half_known, packed_from_structs, structs

# Sized for well under a minute for the whole file on a shared 2-core machine.
EXAMPLES = 150
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def arrow():
    """The columns sink needs the [arrow] extra; only its properties skip without it."""
    return pytest.importorskip("pyarrow", reason="the [arrow] extra is not installed")


# --------------------------------------------------------------------------- the daemons


@dataclass(frozen=True)
class Daemon:
    """What printed the stream: 1.6 is one daemon per family (bird, bird6), 2.0 one for
    both with its routes under ``Table <name>:`` headings."""

    version: str
    bird2: bool
    v6: bool = False                   # 1.6: bird6

    @property
    def net_width(self) -> int:
        return 20 if self.bird2 else 18     # "%-18s " / "%-20s "


DAEMONS = (
    Daemon("1.6.8", False), Daemon("1.6.8", False, v6=True),
    Daemon("v0.3.3+birdv1.6.8", False), Daemon("v0.3.3+birdv1.6.8", False, v6=True),
    Daemon("2.0.12", True),
)

# Small pools, so route-line texts repeat (the parser's templates) as on a real node.
GATEWAYS = {4: ("10.0.0.2", "10.0.0.3", "10.0.1.2", "192.0.2.9", "198.51.100.1"),
            6: ("fd00::2", "fd00:1::2", "fe80::1", "2001:db8::1")}
FROM = {4: ("192.0.2.254", "10.0.0.254"), 6: ("fd00::fe", "2001:db8::fe")}
LINK_LOCAL = ("fe80::1", "fe80::5054:ff:fe12:3456")
INTERFACES = ("eth0", "eth1", "eth0.100", "bond0", "tunl0", "vxlan.calico",
              "cali0123456789a", "calie5f4d3c2b1a")
KINDS = ("bgp", "bgp", "bgp", "bgp", "static", "static", "kernel", "direct", "ospf", "rip")
PROTOCOLS = {
    "bgp": ("Mesh_10_0_0_2", "Mesh_10_0_0_3", "Mesh_fd00__2", "Node_10_0_0_7",
            "Global_192_0_2_1", "bgp1", "rr1"),
    "static": ("static1", "static-alt.v4", "static2"),
    "kernel": ("kernel1",),
    "direct": ("direct1",),
    "ospf": ("ospf1",),
    "rip": ("rip1",),
}
PREFERENCE = {"bgp": 100, "static": 200, "kernel": 10, "direct": 240, "ospf": 150, "rip": 120}
SOURCE = {"bgp": "BGP", "static": "static", "kernel": "inherit", "direct": "device",
          "rip": "RIP"}
OSPF_SOURCE = {"I": "OSPF", "IA": "OSPF-IA", "E1": "OSPF-E1", "E2": "OSPF-E2"}
ORIGIN_LETTER = {"IGP": "i", "EGP": "e", "Incomplete": "?"}
TABLES2 = (("master4", 4), ("master6", 6), ("t_calico", 4), ("vrf_blue6", 6))
NOT_FOUND = {False: "Network not in table", True: "Network not found"}

#: Where BIRD cuts a line's value: an AS path is truncated, a community list wraps onto
#: ``\t\t`` lines (``CLI_MSG_SIZE`` 500 less the name and reserve, §5.4).
PATH_LIMIT = {False: 470, True: 475}
WRAP_LIMIT = 470

AsPathItem = Union[int, Tuple[int, ...]]       # an ASN, or an AS_SET's members


# --------------------------------------------------------------------------- lines, streams


@dataclass
class Line:
    """One reply line before framing: ``cli_printf(c, ±code, text)``."""

    code: int
    text: str
    final: bool = False


@dataclass
class Stream:
    """The lines a daemon wrote and the records they must parse to. An ErrorReply's line
    number depends on the framing (birdc hides ``0000`` lines): it is kept as the index of
    its Line until the stream is rendered."""

    daemon: Daemon
    lines: List[Line] = field(default_factory=list)
    expected: List[Any] = field(default_factory=list)

    def add(self, code: int, text: str, final: bool = False) -> None:
        self.lines.append(Line(code, text, final))

    def expect_error(self, code: int, message: str) -> None:
        self.add(code, message, final=True)
        self.expected.append(("error", code, message, len(self.lines) - 1))


@dataclass(frozen=True)
class Capture:
    """A rendered stream: its bytes, the records they must parse to, and which BIRD."""

    data: bytes
    records: List[Any]
    bird2: bool
    framing: str


def render(stream: Stream, framing: str) -> Capture:
    """The bytes on the socket (``cli_printf``: ``DDDD-`` when the code changes, one space
    while it stays, ``DDDD `` on the final line; 1.6 remembers the final code, 2.0 resets
    it) or what birdc prints of them (``client.c server_got_reply``: code 0 hidden, ``-v``
    keeps the codes and widens continuations to five spaces, plain drops both)."""
    shown: List[Optional[str]] = []
    last = 0
    for ln in stream.lines:
        if ln.final:
            raw = "%04d %s" % (ln.code, ln.text)
            last = 0 if stream.daemon.bird2 else ln.code
        elif ln.code == last:
            raw = " " + ln.text
        else:
            raw = "%04d-%s" % (ln.code, ln.text)
            last = ln.code
        if framing == "raw":
            shown.append(raw)
        elif ln.code == 0:
            shown.append(None)
        elif framing == "birdc-v":
            shown.append("     " + raw[1:] if raw[0] == " " else raw)
        else:
            shown.append(ln.text)
    numbers, n = [], 0
    for text in shown:
        n += text is not None
        numbers.append(n)
    records = [ErrorReply(code=r[1], message=r[2], final=True, line=numbers[r[3]])
               if isinstance(r, tuple) else r for r in stream.expected]
    text = "".join(t + "\n" for t in shown if t is not None)
    return Capture(text.encode(), records, stream.daemon.bird2, framing)


# --------------------------------------------------------------------------- values


def _often(value: Any, *others: Any) -> st.SearchStrategy:
    """``value`` three times in four, else one of ``others``."""
    return st.sampled_from((value,) * (3 * len(others)) + others)


def _rarely(draw, one_in: int) -> bool:
    """True once in ``one_in`` draws; shrinks to False (the plain case)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def _net(draw, fam: int) -> str:
    """A net as BIRD prints it: the address masked to its length (BIRD keeps no host bits
    in a table), IPv6 compressed."""
    if fam == 4:
        plen = draw(st.integers(0, 32))
        base = draw(st.sampled_from((0x0A000000, 0x0A100000, 0xC0A80000, None)))
        addr = draw(st.integers(0, 2**32 - 1)) if base is None else \
            base | draw(st.integers(0, 2**20 - 1))
        return str(ipaddress.IPv4Network((addr, plen), strict=False))
    plen = draw(st.sampled_from((0, 32, 48, 64, 112, 122, 128)) | st.integers(0, 128))
    base = draw(st.sampled_from((0x20010DB8 << 96, 0xFD000010_02440000 << 64, 0xFD00 << 112)))
    addr = base | (draw(st.integers(0, 2**64 - 1)) << draw(st.sampled_from((0, 16, 48, 64))))
    addr &= 2**128 - 1
    return str(ipaddress.IPv6Network((addr, plen), strict=False))


def _since_pool(draw, bird2: bool) -> List[str]:
    """Route times in one ``timeformat route`` style (2.0 prints milliseconds); the iso
    long style has a space inside."""
    style = draw(st.sampled_from(("time", "time", "date", "iso long")))
    out = []
    for _ in range(3):
        t = "%02d:%02d:%02d" % (draw(st.integers(0, 23)), draw(st.integers(0, 59)),
                                draw(st.integers(0, 59)))
        if bird2:
            t += ".%03d" % draw(st.integers(0, 999))
        d = "2026-%02d-%02d" % (draw(st.integers(1, 12)), draw(st.integers(1, 28)))
        out.append({"time": t, "date": d, "iso long": d + " " + t}[style])
    return out


def _asn(draw) -> int:
    return draw(st.sampled_from((64512, 65000, 65001, 174, 3356, 4200000000))
                | st.integers(1, 65535) | st.integers(0, 2**32 - 1))


def _as_path(draw) -> List[AsPathItem]:
    """ASNs with AS_SETs here and there (trailing ones too, as aggregation makes them);
    now and then long enough for BIRD to truncate the printed path."""
    n = draw(st.integers(40, 110)) if _rarely(draw, 10) else \
        draw(st.sampled_from((0, 1, 2, 3, 4, 6, 9)))
    path: List[AsPathItem] = []
    for _ in range(n):
        if _rarely(draw, 12):
            # distinct members: a repeated one is test_as_set_with_a_repeated_asn below
            members = (_asn(draw) for _ in range(draw(st.integers(1, 4))))
            path.append(tuple(dict.fromkeys(members)))
        else:
            path.append(_asn(draw))
    return path


def _path_text_16(path: Sequence[AsPathItem], limit: int):
    """B16 ``as_path_format``: ``{ 1 2 }`` sets; once the text passes the limit (checked
    before each ASN and segment) a set is closed and `` ...`` ends the path.
    -> (text, ASNs and frozensets printed, truncated)."""
    out, got, sp = "", [], True
    for item in path:
        if len(out) > limit:
            return out + " ...", got, True
        if isinstance(item, int):
            out += ("" if sp else " ") + str(item)
            got.append(item)
            sp = False
            continue
        out += ("" if sp else " ") + "{"
        sp = False
        members, cut = [], False
        for asn in item:
            if len(out) > limit:
                cut = True
                break
            out += " " + str(asn)
            members.append(asn)
        out += " }"
        got.append(frozenset(members))
        if cut:
            return out + " ...", got, True
    return out, got, False


def _path_text_20(path: Sequence[AsPathItem], limit: int):
    """B20 ``as_path_format``: ``{1 2}`` sets; a path longer than the buffer has its tail
    overwritten with ``...``, which may cut an ASN in half. What stays: every ASN followed
    by something before the cut (digits running into ``...`` are half an ASN, however
    many), and a set whose ``{`` was printed, with the members that stayed."""
    spans: List[Tuple[Any, int, int]] = []      # (item, start, end); sets: (members spans)
    out = ""
    for item in path:
        if out:
            out += " "
        if isinstance(item, int):
            spans.append((item, len(out), len(out) + len(str(item))))
            out += str(item)
            continue
        start = len(out)
        out += "{"
        members = []
        for j, asn in enumerate(item):
            if j:
                out += " "
            members.append((asn, len(out), len(out) + len(str(asn))))
            out += str(asn)
        out += "}"
        spans.append((members, start, len(out)))
    if len(out) <= limit:
        return out, [i if isinstance(i, int) else frozenset(i) for i in path], False
    cut = limit
    got: List[Any] = []
    for item, start, end in spans:
        if isinstance(item, int):
            if end < cut:
                got.append(item)
        elif start < cut:
            got.append(frozenset(a for a, _, e in item if e < cut))
    return out[:cut] + "...", got, True


def _wrapped(head: str, items: Sequence[str]) -> List[str]:
    """B16/B20 ``ea_show_int_set``: the list after its name while it fits, the rest on
    ``\\t\\t`` lines (any number of them)."""
    lines, cur, count, first = [], head, 0, True
    for it in items:
        if count and len(cur) + 1 + len(it) > WRAP_LIMIT:
            lines.append(("\t" if first else "\t\t") + cur)
            first, cur, count = False, it, 1
            continue
        cur += (" " if count else "") + it
        count += 1
    lines.append(("\t" if first else "\t\t") + cur)
    return lines


def _list_size(draw) -> int:
    """Most lists are short; some are long enough to wrap."""
    return draw(st.integers(30, 90)) if _rarely(draw, 8) else draw(st.integers(1, 5))


# --------------------------------------------------------------------------- attributes


@dataclass
class Detail:
    """The ``show route all`` lines of one route and the fields they fill."""

    lines: List[Line] = field(default_factory=list)
    bgp: Optional[BgpAttrs] = None
    attrs: Dict[str, str] = field(default_factory=dict)

    def attr(self, text: str) -> None:
        self.lines.append(Line(1012, text))

    def raw(self, name: str, value: str, wrap: Sequence[str] = ()) -> None:
        self.attr("\t%s: %s" % (name, value))
        for w in wrap:
            self.attr("\t\t" + w)
        self.attrs[name] = " ".join((value,) + tuple(wrap))


def _bgp_detail(draw, det: Detail, d: Daemon, fam: int, path: List[AsPathItem],
                origin: Optional[str], full: bool) -> None:
    """``BGP.*`` lines in attribute-id order; a route learned by BGP has origin, path and
    next hop, a static route may carry any of them (set by an import filter)."""
    typed = False
    kw: Dict[str, Any] = {}
    have = (lambda: True) if full else (lambda: draw(st.booleans()))
    if origin is not None and have():
        det.attr("\tBGP.origin: " + origin)
        kw["origin"], typed = origin, True
    if have():
        fmt = _path_text_20 if d.bird2 else _path_text_16
        text, got, trunc = fmt(path, PATH_LIMIT[d.bird2])
        det.attr("\tBGP.as_path: " + text)
        kw.update(as_path=tuple(got), as_path_truncated=trunc)
        typed = True
    if have():
        hops = [draw(st.sampled_from(GATEWAYS[fam]))]
        if fam == 6 and draw(st.booleans()):
            hops.append(draw(st.sampled_from(LINK_LOCAL)))     # global + link-local
        det.attr("\tBGP.next_hop: " + " ".join(hops))
        kw["next_hop"], typed = tuple(hops), True
    for name in ("med", "local_pref"):
        if draw(st.booleans()):
            v = draw(_often(100, 0, 50, 2**32 - 1) | st.integers(0, 2**32 - 1))
            det.attr("\tBGP.%s: %d" % (name, v))
            kw[name], typed = v, True
    if _rarely(draw, 6):
        det.attr("\tBGP.atomic_aggr: ")                   # opaque, empty: a trailing space
        kw["atomic_aggr"], typed = True, True
    if _rarely(draw, 6):
        asn = _asn(draw)
        det.attr("\tBGP.aggregator: 10.0.0.1 AS%d" % asn)
        kw["aggregator"], typed = ("10.0.0.1", asn), True
    if draw(st.booleans()):
        comms = [(draw(_often(65000, 64512, 0, 65535)), draw(st.integers(0, 65535)))
                 for _ in range(0 if _rarely(draw, 10) else _list_size(draw))]
        for text in _wrapped("BGP.community: ", ["(%d,%d)" % c for c in comms]):
            det.attr(text)                                 # none: "BGP.community: "
        kw["communities"], typed = tuple(comms), True
    if _rarely(draw, 4):
        det.attr("\tBGP.originator_id: 10.0.0.9")
        kw["originator_id"], typed = "10.0.0.9", True
    if _rarely(draw, 4):
        ids = tuple(draw(st.sampled_from(("10.0.0.7", "10.0.0.8", "192.0.2.1")))
                    for _ in range(draw(st.integers(1, 3))))
        det.attr("\tBGP.cluster_list: " + " ".join(ids))
        kw["cluster_list"], typed = ids, True
    if _rarely(draw, 4):
        exts = []
        for _ in range(_list_size(draw)):
            kind = draw(st.sampled_from(("rt", "rt", "ro", "unknown 0x3", "generic")))
            if kind == "ro":
                e = ("ro", "10.0.0.%d" % draw(st.integers(1, 254)),
                     str(draw(st.integers(0, 65535))))
            elif kind == "generic":
                e = ("generic", "0x%x" % draw(st.integers(0x80000000, 2**32 - 1)),
                     "0x%x" % draw(st.integers(0, 2**32 - 1)))
            else:
                e = (kind, str(draw(st.integers(0, 65535))), str(draw(st.integers(0, 2**32 - 1))))
            exts.append(e)
        for text in _wrapped("BGP.ext_community: ", ["(%s)" % ", ".join(e) for e in exts]):
            det.attr(text)
        kw["ext_communities"], typed = tuple(exts), True
    if _rarely(draw, 6):                      # an attribute BIRD does not know
        det.raw("BGP.1f [t]", "01 02 03 fe")
    if _rarely(draw, 4):
        lcs = [(draw(_often(65000, 4200000000) | st.integers(0, 2**32 - 1)),
                draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)))
               for _ in range(_list_size(draw))]
        for text in _wrapped("BGP.large_community: ", ["(%d, %d, %d)" % c for c in lcs]):
            det.attr(text)
        kw["large_communities"], typed = tuple(lcs), True
    if typed:
        det.bgp = BgpAttrs(**kw)


def _other_detail(draw, det: Detail, d: Daemon, kind: str, ospf: Dict[str, Any]) -> None:
    """The attribute lines kept raw (``name -> text``): kernel, OSPF and RIP attributes,
    BIRD 2's generic and user-defined ones (a community-list one wraps like BGP's)."""
    if kind == "kernel":
        det.raw("Kernel.source", str(draw(st.sampled_from((3, 4, 186)))))
        det.raw("Kernel.metric", str(draw(st.sampled_from((0, 1024)))))
        if d.bird2 and draw(st.booleans()):
            det.raw("Kernel.scope", "253")
    elif kind == "ospf":
        det.raw("OSPF.metric1", str(ospf["m1"]))
        if ospf["m2"] is not None:
            det.raw("OSPF.metric2", str(ospf["m2"]))
        if ospf["type"] in ("E1", "E2"):
            det.raw("OSPF.tag", "0x%08x" % ospf["tag"])
        det.raw("OSPF.router_id", ospf["rid"] or "10.0.0.1")
    elif kind == "rip":
        det.raw("RIP.metric", "2")
        det.raw("RIP.tag", "0000")
    if d.bird2 and _rarely(draw, 5):
        det.raw("igp_metric", str(draw(st.integers(0, 2**31 - 1))))
    if d.bird2 and _rarely(draw, 5):
        det.raw("my_custom_attr", str(draw(st.integers(0, 2**31 - 1))))
    if d.bird2 and _rarely(draw, 7):
        items = ["(%d,%d)" % (draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
                 for _ in range(_list_size(draw))]
        lines = _wrapped("my_clist: ", items)
        det.raw("my_clist", lines[0][len("\tmy_clist: "):], [w[2:] for w in lines[1:]])


# --------------------------------------------------------------------------- routes


@dataclass
class RouteText:
    body: str                 # the route line after its net column
    more: List[Line]          # next-hop, Type: and attribute lines
    fields: Dict[str, Any]    # the Route it must parse to, less prefix and table


def _hops(draw, d: Daemon, fam: int, kind: str) -> List[Dict[str, Any]]:
    """1-4 next hops; ``dev`` ones only where BIRD has them (direct, static, kernel) and
    1.6 multipath is ``via`` only; BGP in 1.6 never has more than one."""
    if kind == "direct":
        return [dict(gw=None, iface=draw(st.sampled_from(INTERFACES)))]
    n = draw(st.sampled_from((1, 1, 1, 1, 2, 2, 3, 4)))
    if kind == "bgp" and not d.bird2:
        n = 1
    out, seen = [], set()
    for _ in range(n):
        dev = kind in ("static", "kernel") and (d.bird2 or n == 1) and \
            _rarely(draw, 4)
        hop = dict(gw=None if dev else draw(st.sampled_from(GATEWAYS[fam])),
                   iface=draw(st.sampled_from(INTERFACES)))
        if (hop["gw"], hop["iface"]) not in seen:
            seen.add((hop["gw"], hop["iface"]))
            out.append(hop)
    return out


@dataclass
class Reply:
    """What one reply is being written with."""

    daemon: Daemon
    detail: bool
    since: List[str]


def _destination(draw, d: Daemon, fam: int, kind: str, f: Dict[str, Any]):
    """The dest word(s) of the route line and the next-hop lines after it (1.6 ``via``/
    ``dev`` inline or ``multipath`` + ``\\tvia … weight W``; 2.0 ``unicast`` + a line per
    hop, weight only with several hops and never on a ``dev`` line: B20's format drops
    it). -> (dest, next-hop lines); fills type and nexthops."""
    if kind in ("static", "kernel"):
        rtype = draw(_often("unicast", "blackhole", "unreachable", "prohibited"))
    elif kind == "bgp":
        rtype = draw(_often("unicast", "unreachable"))     # unreachable: unresolvable
    else:
        rtype = "unicast"
    hops = _hops(draw, d, fam, kind) if rtype == "unicast" else []
    lines: List[Line] = []
    nexthops = []
    dest = rtype
    if d.bird2:
        for h in hops:
            mpls = draw(_often(None, "100", "100/200", "16000/16001/16002"))
            onlink = draw(_often(False, True))
            weight = draw(st.integers(1, 256)) if len(hops) > 1 and h["gw"] else None
            text = "\tvia %s on %s" % (h["gw"], h["iface"]) if h["gw"] else "\tdev " + h["iface"]
            text += (" mpls " + mpls if mpls else "") + (" onlink" if onlink else "")
            text += " weight %d" % weight if weight else ""
            lines.append(Line(1007, text))
            nexthops.append(Nexthop(h["gw"], h["iface"], weight, onlink, mpls))
    elif len(hops) > 1:
        dest = "multipath"
        for h in hops:
            weight = draw(st.integers(1, 256))
            lines.append(Line(1007, "\tvia %s on %s weight %d" % (h["gw"], h["iface"], weight)))
            nexthops.append(Nexthop(h["gw"], h["iface"], weight))
    elif hops:
        h = hops[0]
        dest = "via %s on %s" % (h["gw"], h["iface"]) if h["gw"] else "dev " + h["iface"]
        nexthops.append(Nexthop(h["gw"], h["iface"]))
    f.update(type=rtype, nexthops=tuple(nexthops))
    return dest, lines


def _bgp_info(draw, pref: int, rtype: str, path: List[AsPathItem], origin: Optional[str],
              f: Dict[str, Any]) -> str:
    """B16 ``bgp_get_route_info``: `` (pref[-][s][/igp|/-|/?]) [AS<last>o]``, the AS
    being the last of a trailing sequence and ``o`` the origin's letter."""
    flags = draw(_often("", "-", "s", "-s"))
    igp = "/-" if rtype == "unreachable" else draw(_often("", "/?", "metric"))
    if igp == "metric":
        f["metric"] = draw(st.integers(0, 2**31 - 1))
        igp = "/%d" % f["metric"]
    last_as = path[-1] if path and isinstance(path[-1], int) else None
    letter = ORIGIN_LETTER.get(origin or "", "")
    f.update(info_flags=(flags + (igp if igp in ("/-", "/?") else "")) or None,
             bgp_origin=letter or None, bgp_origin_as=last_as)
    return " (%d%s%s) [%s%s]" % (pref, flags, igp, "" if last_as is None else
                                 "AS%d" % last_as, letter)


def _ospf_info(draw, pref: int, f: Dict[str, Any]):
    """B16 ``ospf_get_route_info``: `` I|IA|E1|E2 (pref/m1[/m2])[ [tag]][ [router id]]``,
    kept as info words. -> (text, the values the OSPF.* attribute lines repeat)."""
    t = draw(st.sampled_from(tuple(OSPF_SOURCE)))
    # a tag of 0xe prints "[e]", which the parser reads as a BGP origin tag: see
    # test_ospf_tag_e_is_not_an_origin below
    ospf = dict(type=t, m1=draw(st.integers(1, 2**24 - 1)),
                m2=draw(st.integers(0, 2**24 - 1)) if t == "E2" else None,
                tag=draw(st.integers(0, 2**32 - 1).filter(lambda v: v != 0xE)),
                rid=draw(st.sampled_from((None, "10.0.0.1", "192.0.2.7"))))
    words = [t]
    if t in ("E1", "E2") and ospf["tag"]:
        words.append("[%x]" % ospf["tag"])
    if ospf["rid"]:
        words.append("[%s]" % ospf["rid"])
    f.update(metric=ospf["m1"], metric2=ospf["m2"], info=" ".join(words))
    m2 = "" if ospf["m2"] is None else "/%d" % ospf["m2"]
    text = " %s (%d/%d%s)%s" % (t, pref, ospf["m1"], m2, "".join(" " + w for w in words[1:]))
    return text, ospf


def _route(draw, ctx: Reply, fam: int, marker: str) -> RouteText:
    """One route: ``<dest> [<protocol> <since>[ from <ip>]]< *|!><info>``, its next-hop
    lines and, for ``show route all``, its ``Type:`` and attribute lines."""
    d = ctx.daemon
    kind = draw(st.sampled_from(KINDS))
    proto = "kernel%d" % fam if kind == "kernel" and d.bird2 else \
        draw(st.sampled_from(PROTOCOLS[kind]))
    f: Dict[str, Any] = dict(protocol=proto, since=draw(st.sampled_from(ctx.since)),
                             primary=marker in ("*", "!"), sync_error=marker == "!")
    dest, more = _destination(draw, d, fam, kind, f)
    pref = f["preference"] = draw(_often(PREFERENCE[kind], 0, 65535) | st.integers(0, 65535))
    frm = f["from_"] = draw(st.sampled_from(FROM[fam])) \
        if kind == "bgp" and _rarely(draw, 4) else None
    path: List[AsPathItem] = []
    origin = None
    ospf: Dict[str, Any] = {}
    if kind == "bgp":
        path = _as_path(draw)
        origin = draw(_often("IGP", "EGP", "Incomplete", None))
        info = _bgp_info(draw, pref, f["type"], path, origin, f)
    elif kind == "ospf":
        info, ospf = _ospf_info(draw, pref, f)
    elif kind == "rip":                             # (pref/metric)[ [tag %04x]]
        f["metric"] = draw(st.integers(1, 16))
        tag = draw(_often(0, 1, 0xABCD))
        f["info"] = "[%04x]" % tag if tag else None
        info = " (%d/%d)%s" % (pref, f["metric"], " [%04x]" % tag if tag else "")
    elif kind == "static" and d.bird2 and _rarely(draw, 5):
        f["metric"] = draw(st.integers(0, 2**31 - 1))     # a recursive next hop's IGP metric
        info = " (%d/%d)" % (pref, f["metric"])
    else:
        info = " (%d)" % pref
    body = "%s [%s %s%s]%s%s" % (dest, proto, f["since"], " from " + frm if frm else "",
                                 " " + marker if marker else "", info)
    if ctx.detail:
        more += _detail(draw, d, fam, kind, dest, path, origin, ospf, f)
    return RouteText(body, more, f)


def _detail(draw, d: Daemon, fam: int, kind: str, dest: str, path: List[AsPathItem],
            origin: Optional[str], ospf: Dict[str, Any], f: Dict[str, Any]) -> List[Line]:
    """``show route all``: ``\\tType: <source> [<cast>] <scope>`` (1.6 prints the cast,
    2.0 does not), then the attribute lines; fills source, cast, scope, bgp and attrs."""
    source = OSPF_SOURCE[ospf["type"]] if kind == "ospf" else SOURCE[kind]
    if kind == "static" and not d.bird2 and dest.startswith("dev "):
        source = "static-device"
    scope = draw(_often("univ", "link", "site", "host")) if kind == "direct" else "univ"
    if d.bird2:
        lines = [Line(1008, "\tType: %s %s" % (source, scope))]
    else:
        lines = [Line(1008, "\tType: %s unicast %s" % (source, scope))]
        f["cast"] = "unicast"
    f.update(source=source, scope=scope)
    det = Detail()
    if kind == "bgp":
        _bgp_detail(draw, det, d, fam, path, origin, full=True)
    elif kind == "static" and _rarely(draw, 3):      # BGP attributes set by a filter
        _bgp_detail(draw, det, d, fam, _as_path(draw), draw(_often("IGP", "Incomplete")),
                    full=False)
    _other_detail(draw, det, d, kind, ospf)
    f.update(bgp=det.bgp, attrs=det.attrs or None)
    return lines + det.lines


def _retagged(draw, r: RouteText) -> RouteText:
    """The same BGP route line from another origin AS: a full table's lines differ in
    little but their ``[AS…i]`` tag (the parser's tagged templates)."""
    asn = None if _rarely(draw, 4) else _asn(draw)
    cut = r.body.rindex("[")
    letter = r.fields["bgp_origin"] or ""
    body = r.body[:cut] + "[%s%s]" % ("" if asn is None else "AS%d" % asn, letter)
    return RouteText(body, r.more, dict(r.fields, bgp_origin_as=asn))


def _route_reply(draw, stream: Stream, since: List[str]) -> None:
    """``show route [all] [stats]``: nets in hash order, each with its routes (the first
    printed one with the net, the others with a blank net column, 19 or 21 wide); 2.0
    puts each table's routes under its heading, blank line between tables. Routes often
    repeat an earlier route's text after the net, as a node's routes via one peer do."""
    d = stream.daemon
    ctx = Reply(d, draw(st.booleans()), since)
    tables = [(None, 6 if d.v6 else 4)] if not d.bird2 else \
        draw(st.lists(st.sampled_from(TABLES2), unique=True, min_size=1, max_size=3))
    shown = nets_shown = headings = 0
    for table, fam in tables:
        nets: List[str] = []
        for _ in range(0 if _rarely(draw, 10) else draw(st.integers(1, 10))):
            net = _net(draw, fam)
            if net not in nets:
                nets.append(net)
        if not nets:
            continue                                  # an empty table gets no heading
        if d.bird2:
            if headings:
                stream.add(1007, "")
            stream.add(1007, "Table %s:" % table)
            headings += 1
        seen: Dict[str, List[RouteText]] = {"*": [], "!": [], "": []}   # by marker
        for net in nets:
            n = draw(st.sampled_from((1, 1, 1, 2, 2, 3)))
            first = draw(_often("*", "!", ""))         # "": a filtered/protocol listing
            for i in range(n):
                marker = first if i == 0 else ""
                if seen[marker] and draw(st.integers(0, 4)) < 2:
                    r = draw(st.sampled_from(seen[marker]))
                    if not ctx.detail and "bgp_origin_as" in r.fields and _rarely(draw, 2):
                        r = _retagged(draw, r)
                else:
                    r = _route(draw, ctx, fam, marker)
                    seen[marker].append(r)
                column = ("%-*s " % (d.net_width, net)) if i == 0 else " " * (d.net_width + 1)
                stream.add(1007, column + r.body)
                stream.lines.extend(r.more)
                stream.expected.append(Route(prefix=net, table=table, **r.fields))
            shown += n
            nets_shown += 1
    if not d.bird2 and _rarely(draw, 5):  # show route stats
        total = shown + draw(st.integers(0, 50))
        stream.add(14, "%d of %d routes for %d networks" % (shown, total, nets_shown), True)
        stream.expected.append(RouteCount(shown=shown, total=total, networks=nets_shown))
    else:
        stream.add(0, "", final=True)


def _count_reply(draw, stream: Stream) -> None:
    """``show route count``: 1.6 one final 0014 line; 2.0 a 1007 line per table, then
    ``Total:`` when there were several, else ``0000``."""
    def counts():
        shown = draw(st.integers(0, 10**6))
        return shown, shown + draw(st.integers(0, 1000)), draw(st.integers(0, shown))

    if not stream.daemon.bird2:
        s, t, n = counts()
        stream.add(14, "%d of %d routes for %d networks" % (s, t, n), final=True)
        stream.expected.append(RouteCount(shown=s, total=t, networks=n))
        return
    tables = draw(st.lists(st.sampled_from([name for name, _ in TABLES2]), unique=True,
                           min_size=1, max_size=3))
    sums = [0, 0, 0]
    for name in tables:
        s, t, n = counts()
        stream.add(1007, "%d of %d routes for %d networks in table %s" % (s, t, n, name))
        stream.expected.append(RouteCount(shown=s, total=t, networks=n, table=name))
        sums = [sums[0] + s, sums[1] + t, sums[2] + n]
    if len(tables) > 1:
        stream.add(14, "Total: %d of %d routes for %d networks in %d tables"
                   % (sums[0], sums[1], sums[2], len(tables)), final=True)
        stream.expected.append(RouteCount(shown=sums[0], total=sums[1], networks=sums[2],
                                          is_total=True, tables=len(tables)))
    else:
        stream.add(0, "", final=True)


@st.composite
def captures(draw, framings: Sequence[str] = ("raw", "raw", "raw", "birdc-v", "birdc")):
    """A stream from one daemon: raw socket bytes (banner or not, 1-3 replies: routes,
    counts, ``8001``, empty) or a one-shot birdc transcript (banner, one reply)."""
    d = draw(st.sampled_from(DAEMONS))
    framing = draw(st.sampled_from(framings))
    stream = Stream(d)
    if framing != "raw" or draw(st.booleans()):
        stream.add(1, "BIRD %s ready." % d.version, final=True)
        stream.expected.append(Banner(version=d.version))
    since = _since_pool(draw, d.bird2)
    for _ in range(draw(st.integers(1, 3)) if framing == "raw" else 1):
        kind = draw(st.sampled_from(("routes",) * 17 + ("count", "error", "empty")))
        if kind == "routes":
            _route_reply(draw, stream, since)
        elif kind == "count":
            _count_reply(draw, stream)
        elif kind == "error":
            stream.expect_error(8001, NOT_FOUND[d.bird2])
        else:
            stream.add(0, "", final=True)
    return render(stream, framing)


# --------------------------------------------------------------------------- helpers


def _feed(parser: Parser, data: bytes, chunk: int) -> list:
    out: list = []
    for i in range(0, len(data), chunk):
        out += parser.feed(data[i:i + chunk])
    return out + parser.close()


def _same_records(got: list, want: list) -> None:
    """Equal lists, or the first record that differs, both shown whole."""
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"record {i} differs:\n got  {g!r}\n want {w!r}"
    assert len(got) == len(want), f"{len(got)} records, {len(want)} expected"


def _parse(data: bytes):
    """(records, error): the records before the fault when there is one."""
    try:
        return nodestatus.parse(data), None
    except nodestatus.ParseError as exc:
        return exc.partial, exc


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_fib(data: bytes, records: list, bird2: Optional[bool], chunk: int) -> None:
    """The FIB sink over the bytes == the reference over the records, both ways. Known
    BIRD (``bird2``): the sink must also have told 1.6 from 2.0 by itself. Unknown (a
    mutated stream): the sink's guess is used, and it may refuse a next hop whose gateway
    is not an address (the struct sink keeps any text; BIRD prints only addresses)."""
    ifindex = ifindex_half_known(records)
    has_routes = any(isinstance(r, Route) for r in records)
    for exported in (False, True):
        sink = fib_sink(ifindex, exported=exported)
        try:
            _feed(Parser(sink=sink), data, chunk)
        except nodestatus.ParseError as exc:
            assert bird2 is None, exc
            bad = [h.gateway for r in records if isinstance(r, Route) for h in r.nexthops
                   if h.gateway and not _is_address(h.gateway)]
            assert bad and "not an IP address" in str(exc), \
                f"the FIB sink refused what the struct sink parsed: {exc}"
            return
        seen = sink.is_bird2
        if bird2 is None:
            bird2 = bool(seen)
        elif has_routes:
            assert seen == bird2, "the FIB sink took BIRD %s for BIRD %s" % (
                "2" if seen else "1.6", "2" if bird2 else "1.6")
        assert sink.result() == packed_from_structs(records, ifindex, exported=exported,
                                                    bird2=bird2)


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(captures(), st.integers(1, 300))
def test_structs_are_what_the_generator_wrote(cap, chunk):
    """Property 4: the oracle. Whole or fed in chunks, and with the parser's route-line
    templates (copies of an earlier route) or without, the same records."""
    _same_records(nodestatus.parse(cap.data), cap.records)
    _same_records(_feed(Parser(), cap.data, chunk), cap.records)
    assert _birdparse._use_templates(False) is False
    try:
        _same_records(nodestatus.parse(cap.data), cap.records)
    finally:
        _birdparse._use_templates(True)


@PROPERTY
@given(captures(), st.integers(1, 9), st.integers(1, 97))
def test_columns_equal_structs(arrow, cap, batch_rows, chunk):
    """Property 1: field by field, whole and with batches and chunks cut anywhere."""
    want = structs(cap.data)
    assert want[2] is None, want[2]
    whole = columns(cap.data)
    assert whole[0] == want[0]
    assert whole[1] == want[1]
    assert whole[2] is None, whole[2]
    assert columns(cap.data, batch_rows=batch_rows, chunk=chunk) == whole


@PROPERTY
@given(captures(), st.integers(1, 300))
def test_fib_keys_equal_the_keys_packed_from_structs(cap, chunk):
    """Property 2: exported or not; the sink also tells 1.6 from 2.0 as the stream does."""
    _check_fib(cap.data, nodestatus.parse(cap.data), cap.bird2, chunk)


INSERTS = (b"\n", b" ", b"\t", b"\t\t", b"[", b"]", b"(", b")", b"{", b"}", b"/", b"*", b"!",
           b"...", b"0000 ", b"1007-", b"1008-", b"1012-", b" via ", b" weight ",
           b"Table t:\n", b"BGP.community: ", b"(1,2)")


def _mutate(draw, data: bytes) -> bytes:
    """Flip, cut, repeat and insert like tests/unit/test_fuzz.py, with route-grammar bits.
    Flips stay ASCII: bytes that are not UTF-8 are test_undecodable_bytes_in_a_route_line
    (flip to 0-255 once the columns sink handles them)."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(("flip", "cut", "dup", "ins")))
        if op == "flip":
            buf[i] = draw(st.integers(0, 127))
        elif op == "cut":
            del buf[i:i + draw(st.integers(1, 40))]
        elif op == "dup":
            buf[i:i] = buf[i:i + draw(st.integers(1, 40))]
        else:
            buf[i:i] = draw(st.sampled_from(INSERTS))
    return bytes(buf)


@PROPERTY
@given(captures(), st.data())
def test_mutated_replies_fail_alike_in_both_sinks(arrow, cap, d):
    """Property 3: the same error type at the same line in both sinks with the same rows
    before it; and nothing that parsed fine is lost: the records handed over with the
    error are those of the bytes before the faulty line. A mutation that still parses
    must still give the FIB sink the reference's keys (when the rows agree: the
    reference is built from the struct sink's records)."""
    data = _mutate(d.draw, cap.data)
    want = structs(data)
    got = columns(data, batch_rows=d.draw(st.integers(1, 9)), chunk=d.draw(st.integers(1, 97)))
    assert len(got[0]) == len(want[0])
    for i, (g, w) in enumerate(zip(got[0], want[0])):
        assert g == w, f"row {i}:\n columns {g}\n structs {w}"
    assert got[1] == want[1]
    assert (type(got[2]), got[2] and got[2].line) == (type(want[2]), want[2] and want[2].line)
    records, err = _parse(data)
    if err is None:
        if got[0] == want[0]:
            _check_fib(data, records, None, d.draw(st.integers(1, 300)))
    elif not isinstance(err, TruncatedReplyError):
        before, _ = _parse(data[:err.offset])
        if len(before) == len(records) + 1 and isinstance(before[-1], Unsupported):
            before.pop()        # the cut reply's summary: a reply the fault ends has none
        # (the status grammar hands over a BirdStatus even when its first line is the
        # faulty one: not the route sinks' business)
        _same_records([r for r in records if not isinstance(r, BirdStatus)],
                      [r for r in before if not isinstance(r, BirdStatus)])


# --------------------------------------------------------------------------- found by them
# Disagreements the properties above found in the parse core (a crash among them), each
# with its minimal example, kept as properties now that the parse core is fixed.

AS_SET_REPEATED = (b"1007-10.0.0.0/8           via 10.0.0.1 on eth0 [bgp1 00:00:00] * (100) [i]\n"
                   b"1008-\tType: BGP unicast univ\n"
                   b"1012-\tBGP.as_path: { 3 3 }\n"
                   b"0000 \n")


def _with_as_set(asns: List[int]) -> bytes:
    return (b"1007-10.0.0.0/8           via 10.0.0.1 on eth0 [bgp1 00:00:00] * (100) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.as_path: 65001 { %s }\n0000 \n" % " ".join(map(str, asns)).encode())


@PROPERTY
@example(data=AS_SET_REPEATED)
@given(st.lists(st.sampled_from((1, 2, 3)), min_size=1, max_size=5).map(_with_as_set))
def test_as_set_with_a_repeated_asn(arrow, data):
    assert columns(data)[0] == structs(data)[0]


ATTRIBUTE_TWICE = (b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [i]\n"
                   b"1012-\tBGP.next_hop: 10.0.0.1\n"
                   b" \tBGP.next_hop: 10.0.0.2\n"
                   b"0000 \n")
TWICE = (("as_path", "1 2", "3"), ("next_hop", "10.0.0.1", "10.0.0.2"),
         ("community", "(1,2)", "(3,4)"), ("large_community", "(1, 2, 3)", "(4, 5, 6)"),
         ("ext_community", "(rt, 1, 2)", "(rt, 3, 4)"), ("cluster_list", "10.0.0.1", "10.0.0.2"),
         ("aggregator", "10.0.0.1 AS1", "10.0.0.2 AS2"))


@PROPERTY
@example(data=ATTRIBUTE_TWICE)
@given(st.sampled_from(TWICE).map(lambda t: (
    b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [i]\n"
    b"1012-\tBGP.%s: %s\n \tBGP.%s: %s\n0000 \n" % (t[0].encode(), t[1].encode(),
                                                       t[0].encode(), t[2].encode()))))
def test_a_bgp_attribute_given_twice(arrow, data):
    assert columns(data)[0] == structs(data)[0]


UNDECODABLE = (b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp\xfe1 00:00:00] * (100) [i]\n"
               b"0000 \n")


def _with_byte_at(i: int) -> bytes:
    line = b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [i]"
    return line[:i] + b"\xfe" + line[i:] + b"\n0000 \n"


@PROPERTY
@example(data=UNDECODABLE)
@given(st.integers(5, 80).map(_with_byte_at))
def test_undecodable_bytes_in_a_route_line(arrow, data):
    assert columns(data)[0] == structs(data)[0]


def _ospf_with_tag(tag: int) -> bytes:
    return (b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [ospf1 00:00:00] * E2 (150/20/10)"
            b" [%x] [10.0.0.1]\n0000 \n" % tag)


@PROPERTY
@example(tag=0xE)
@given(st.integers(1, 2**32 - 1))
def test_ospf_tag_e_is_not_an_origin(tag):
    route = nodestatus.parse(_ospf_with_tag(tag))[0]
    assert (route.bgp_origin, route.bgp_origin_as, route.info) == \
        (None, None, "E2 [%x] [10.0.0.1]" % tag)


INLINE_HOP = (b"1007-10.0.0.0/8           via 10.0.0.1 on eth0 [static1 00:00:00] * (200)\n"
              b" \tvia 10.0.0.2 on eth1 weight 1\n"
              b"0000 \n")


@PROPERTY
@example(data=INLINE_HOP)
@given(st.sampled_from((
    b"1007-10.0.0.0/8           dev eth0 [static1 00:00:00] * (200)\n \tdev eth1\n0000 \n",
    b"1007-10.0.0.0/8           via 10.0.0.1 on eth0 [static1 00:00:00] * (200)\n"
    b" \tvia 10.0.0.2 on eth1 weight 1\n \tvia 10.0.0.3 on eth1 weight 1\n0000 \n")))
def test_an_inline_next_hop_with_next_hop_lines(arrow, data):
    assert columns(data)[0] == structs(data)[0]


WIDE = b"4294967296"          # 2**32
_BGP_ROUTE = b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [AS1i]\n"
WIDE_NUMBERS = (
    b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (%s) [i]\n" % WIDE,
    b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100/%s) [i]\n" % WIDE,
    b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [AS%si]\n" % WIDE,
    b"1007-10.0.0.0/8           multipath [static1 00:00:00] * (200)\n"
    b" \tvia 10.0.0.2 on eth0 weight %s\n \tvia 10.0.0.3 on eth0 weight 1\n" % WIDE,
    _BGP_ROUTE + b"1012-\tBGP.as_path: 1 %s\n" % WIDE,
    _BGP_ROUTE + b"1012-\tBGP.med: %s\n" % WIDE,
    _BGP_ROUTE + b"1012-\tBGP.community: (%s,1)\n" % WIDE,
    _BGP_ROUTE + b"1012-\tBGP.aggregator: 10.0.0.1 AS%s\n" % WIDE,
)


@PROPERTY
@example(data=WIDE_NUMBERS[0] + b"0000 \n")
@given(st.sampled_from(WIDE_NUMBERS).map(lambda line: line + b"0000 \n"))
def test_numbers_wider_than_the_columns(arrow, data):
    got, want = columns(data), structs(data)
    assert (got[0], type(got[2])) == (want[0], type(want[2]))


HALF_LINE = (b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [i]\n"
             b"1012-\tBGP.community: (1,2) (3,x)\n"
             b"0000 \n")


@PROPERTY
@example(data=HALF_LINE)
@given(st.sampled_from((b"large_community: (1, 2, 3) (4, x, 6)", b"community: (1,2) (3,4",
                        b"ext_community: (rt, 1, 2) x")).map(lambda attr: (
    b"1007-10.0.0.0/8           via 10.0.0.2 on eth0 [bgp1 00:00:00] * (100) [i]\n"
    b"1012-\tBGP.%s\n0000 \n" % attr)))
def test_a_faulty_list_line_is_dropped_whole(arrow, data):
    got, want = columns(data), structs(data)
    assert want[2] is not None and got[2] is not None and got[2].line == want[2].line
    assert got[0] == want[0]


NO_TIME_LINES = (
    b"1007-10.0.0.0/8           via 10.0.0.1 on eth0 [bgp1 from 10.0.0.2] * (100)\n0000 \n",
    b"1007-10.0.0.0/8           via 10.0.0.1 on eth0 [bgp1  from 10.0.0.2] * (100)\n0000 \n",
    b"BIRD 1.6.8 ready.\n:/ [ from i]",
)
_SINKS_IN_A_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from sinkcheck import columns, structs
data = sys.stdin.buffer.read()
want = structs(data)
for rows in (8, 1 << 17):
    got = columns(data, batch_rows=rows)
    assert (got[0], type(got[2])) == (want[0], type(want[2])), (got, want)
assert want[2] is None or "SystemError" not in str(want[2]), want[2]
"""


@pytest.mark.parametrize("data", NO_TIME_LINES, ids=["no-time", "empty-time", "birdc-no-protocol"])
def test_a_route_line_without_a_time(arrow, data):
    """In a child process: the crash would take the test run with it."""
    child = subprocess.run([sys.executable, "-c", _SINKS_IN_A_CHILD, str(Path(__file__).parent)],
                           input=data, capture_output=True, timeout=120)
    assert child.returncode == 0, (
        f"the sinks died or disagree (exit {child.returncode}): {child.stderr[-400:]!r}")


HEAVY = (b"1007-10.0.0.0/8           multipath [static1 00:00:00] * (200)\n"
         b" \tvia 10.0.0.2 on eth0 weight 300\n"
         b" \tvia 10.0.0.3 on eth0 weight 1\n"
         b"0000 \n")


@PROPERTY
@example(weight=300)
@given(st.integers(257, 2**31 - 1))
def test_a_weight_over_256(weight):
    """BIRD prints weights 1..256: every sink refuses another at the same line (the FIB
    sink used to pack its low byte)."""
    data = HEAVY.replace(b"weight 300", b"weight %d" % weight)
    with pytest.raises(nodestatus.ParseError) as want:
        nodestatus.parse(data)
    sink = fib_sink({}, exported=False)
    with pytest.raises(nodestatus.ParseError) as got:
        _feed(Parser(sink=sink), data, len(data))
    assert (got.value.line, want.value.line) == (2, 2)


@PROPERTY
@example(data=_BGP_ROUTE + b"1012-\tBGP.as_path: 1 { 2 { 3 } 4\n0000 \n")
@given(st.sampled_from((b"{ 2 { 3 }", b"1 { 2 5 { 3 4 } 6")).map(
    lambda path: _BGP_ROUTE + b"1012-\tBGP.as_path: " + path + b"\n0000 \n"))
def test_an_as_set_opened_twice(arrow, data):
    assert columns(data)[0] == structs(data)[0]
