"""The parser against every BIRD output we have on disk: our own daemon captures and the
peer-project corpus (``tests/data/captures``, ``tests/data/peer-captures``).

Why this module exists: unit tests feed the parser the lines its author thought of; these
files are what BIRD 1.6.8 / 2.0.12 / Calico's fork (and other projects' fixtures) really
print. Three layers:

1. Contract, for every capture file: ``nodestatus.parse`` returns records or raises a
   ``ParseError`` subclass - never any other exception. Files that are broken at the source
   are listed in ``EXPECTED_ERRORS`` with the exception class, the line and the records that
   must survive in ``exc.partial``.
2. Framing equivalence: the same command captured raw, through ``birdc``, ``birdc -v`` and
   ``birdcl`` yields the same records (time drift between separate calls is listed in
   ``TIME_DRIFT``), and ``show route count`` agrees with ``show route`` of the same daemon.
3. Field values read off the raw text by hand (see bird-formats.md sections 1-5, 7).

Where the parser disagrees with the spec the test is ``xfail(strict=True)`` with the precise
expectation, so a fix turns it into an XPASS failure that forces the marker to be removed.
Everything here is read from ``tests/data``; nothing outside the repository is needed.
"""
from __future__ import annotations

import ast
import collections
import functools
import re
from pathlib import Path
from typing import Dict, List, Tuple

import msgspec
import pytest

import nodestatus
from nodestatus import (
    Banner,
    ErrorReply,
    BirdStatus,
    ParseError,
    Protocol,
    Route,
    RouteCount,
    TruncatedReplyError,
    Unsupported,
)

DATA = Path(__file__).resolve().parent.parent / "data"
CAPTURES = DATA / "captures"
PEER = DATA / "peer-captures"


# --------------------------------------------------------------------------- discovery

def _is_capture(path: Path) -> bool:
    rel = path.relative_to(DATA)
    if "config" in rel.parts:                      # daemon configs
        return False
    if path.suffix in (".json", ".md"):            # kernel route dumps, READMEs, INDEX
        return False
    if path.name == "timeformat.conf.txt":         # config snippet of a timeformat run
        return False
    return True


ALL_FILES: List[str] = sorted(
    str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file() and _is_capture(p)
)


@functools.lru_cache(maxsize=None)
def raw_bytes(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


@functools.lru_cache(maxsize=None)
def _parsed(rel: str):
    """(records, None) or (None, exception); parsed once per file for the whole module."""
    try:
        return tuple(nodestatus.parse(raw_bytes(rel))), None
    except Exception as exc:  # noqa: BLE001 - the contract test inspects what came out
        return None, exc


def records(rel: str) -> List[object]:
    recs, exc = _parsed(rel)
    if exc is not None:
        raise exc
    return list(recs)


def of(rel: str, kind) -> list:
    return [r for r in records(rel) if isinstance(r, kind)]


def one(rel: str, kind):
    found = of(rel, kind)
    assert len(found) == 1, f"{rel}: expected one {kind.__name__}, got {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- expectations

# Files broken at the source (bird-formats.md / peer-captures/INDEX.md say why).
# rel path -> (exception class, line, [(record type, identifying value)] expected in .partial)
EXPECTED_ERRORS: Dict[str, Tuple[type, int, List[Tuple[str, str]]]] = {
    # peers_test.go fixture: a Go string continues after the 0000 terminator.
    "peer-captures/calico/show-protocols_socket_bird-1.5.0_ipv6-mesh.txt": (
        ParseError, 8,
        [("banner", "1.5.0"), ("protocol", "kernel1"), ("protocol", "device1"),
         ("protocol", "direct1"), ("protocol", "Mesh_2001_20__8")],
    ),
    "peer-captures/calico/show-protocols_socket_bird-1.5.0_mesh-global-node.txt": (
        ParseError, 10,
        [("banner", "1.5.0"), ("protocol", "kernel1"), ("protocol", "device1"),
         ("protocol", "direct1"), ("protocol", "Mesh_172_17_8_102"),
         ("protocol", "Global_172_17_8_103"), ("protocol", "Node_172_17_8_104")],
    ),
    # Calico's fixture has a 3-digit terminator '013 Daemon is up and running'.
    "peer-captures/calico/show-status_socket_calico-bird-v0.3.3-1.6.8.txt": (
        # the status lines before the bad terminator are kept (state unknown: no final line)
        ParseError, 7, [("banner", "v0.3.3+birdv1.6.8"), ("birdstatus", "")],
    ),
    # Copied from a Go comment: a TAB precedes every continuation space.
    "peer-captures/calico/show-status_socket_calico-bird-v0.3.2-1.6.3_graceful-restart-0024_from-code-comment.txt": (
        ParseError, 4, [("banner", "v0.3.2+birdv1.6.3"), ("birdstatus", "")],
    ),
    # Hand-built: 0001/0000 codes but a code-less table in between.
    "peer-captures/calico/show-protocols-all-one-peer_bird-1.5.0_no-codes_openSent.txt": (
        ParseError, 2, [("banner", "1.5.0")],
    ),
    # pybird fixture without banner and without the final 0000: the reply is cut short.
    "peer-captures/pybird/show-route-all_socket_no-banner_timeonly.txt": (
        TruncatedReplyError, 11,
        [("route", "10.255.30.0/24"), ("route", "10.255.3.0/24"), ("route", "10.255.10.0/24")],
    ),
}

# Replies that are legitimately empty: nothing but (in client framings) the banner.
EMPTY_REPLIES = {
    f"captures/{v}/{cmd}.{fr}.txt"
    for v, cmds, frs in (
        ("1.6.8", ("show_route_filtered", "show_route_export_kernel1"),
         ("raw", "birdc", "birdc-v")),
        ("2.0.12", ("show_route_filtered", "show_route_export_kernel4", "show_route_table_t_empty"),
         ("raw", "birdc", "birdc-v", "birdcl")),
    )
    for cmd in cmds
    for fr in frs
}


def _ident(rec) -> Tuple[str, str]:
    if isinstance(rec, Banner):
        return ("banner", rec.version)
    if isinstance(rec, Protocol):
        return ("protocol", rec.name)
    if isinstance(rec, Route):
        return ("route", rec.prefix)
    return (type(rec).__name__.lower(), "")


# --------------------------------------------------------------------------- 1. contract

@pytest.mark.parametrize("rel", ALL_FILES)
def test_every_capture_parses_or_raises_parse_error(rel):
    recs, exc = _parsed(rel)
    if rel in EXPECTED_ERRORS:
        cls, line, partial = EXPECTED_ERRORS[rel]
        assert exc is not None, f"{rel} is broken at the source but parsed: {recs!r}"
        assert type(exc) is cls, repr(exc)
        assert exc.line == line
        assert f"line {line} " in str(exc)
        assert [_ident(r) for r in exc.partial] == partial
        return
    if exc is not None:
        assert isinstance(exc, ParseError), f"{rel}: not a ParseError: {exc!r}"
        pytest.fail(f"{rel}: valid capture raised {exc!r}")
    if rel in EMPTY_REPLIES:
        assert all(isinstance(r, Banner) for r in recs), recs
    elif rel.endswith(("/banner.raw.txt", "/_banner.raw")):
        assert len(recs) == 1 and isinstance(recs[0], Banner), recs
    else:
        assert any(not isinstance(r, Banner) for r in recs), f"{rel}: no records"


def test_expected_error_table_names_existing_files():
    for rel in list(EXPECTED_ERRORS) + sorted(EMPTY_REPLIES):
        assert rel in ALL_FILES, rel


def test_corpus_is_complete():
    """The copy in tests/data is the whole corpus (fails if a directory went missing)."""
    assert (CAPTURES / "README.md").is_file() and (PEER / "INDEX.md").is_file()
    assert (CAPTURES / "calico-lab-node1" / "kernel4.json").is_file()
    assert len(list(CAPTURES.glob("calico-lab-node1/config/*.cfg"))) == 6
    index_rows = re.findall(r"^\| `([^`]+)` \|", (PEER / "INDEX.md").read_text(), re.M)
    peer_files = {p.name for p in PEER.rglob("*.txt")}
    assert len(index_rows) == 74 and set(index_rows) == peer_files
    assert sum(1 for r in ALL_FILES if r.startswith("captures/")) == 357


# --------------------------------------------------------------------------- 2. framings

FRAMING_RE = re.compile(r"^(?P<cmd>.+)\.(?P<fr>raw|birdc|birdc-v|birdcl)\.txt$")
CALICO_RE = re.compile(r"^(?P<cmd>[a-z_]+)\.(?P<fr>raw|txt)$")


def _framing_groups() -> Dict[Tuple[str, str], Dict[str, str]]:
    groups: Dict[Tuple[str, str], Dict[str, str]] = collections.defaultdict(dict)
    for rel in ALL_FILES:
        parts = rel.split("/")
        if parts[0] != "captures":
            continue
        if parts[1] in ("1.6.8", "1.6.8-bird6", "2.0.12") and len(parts) == 3:
            m = FRAMING_RE.match(parts[2])
            if m:
                groups[(parts[1], m["cmd"])][m["fr"]] = rel
        elif parts[1] == "calico-lab-node1" and len(parts) == 4:
            m = CALICO_RE.match(parts[3])
            if m and not parts[3].startswith("_"):
                groups[(f"calico-lab-node1/{parts[2]}", m["cmd"])][m["fr"]] = rel
    # stdin_piped.* has no raw twin: it is tested on its own below
    return {k: v for k, v in groups.items() if len(v) > 1 and "raw" in v}


FRAMING_GROUPS = _framing_groups()

# Separate client runs are separate calls: these fields legitimately differ between framings.
TIME_DRIFT = {
    ("1.6.8", "show_protocols_all_static-alt.v4"): {"since"},   # 06:04:57 vs 06:04:56 (1.6 +-1 s)
    ("2.0.12", "show_status"): {"server_time"},                 # .327/.328/.329/.331
}

COMPARED = (Route, Protocol, BirdStatus, RouteCount)


def _comparable(rel: str, drift) -> list:
    out = []
    for rec in records(rel):
        if isinstance(rec, COMPARED):
            d = msgspec.to_builtins(rec)
            for k in drift:
                d.pop(k, None)
            out.append(d)
        elif isinstance(rec, ErrorReply):
            out.append({"record": "error", "message": rec.message})
        elif isinstance(rec, Unsupported):
            out.append({"record": "unsupported", "first_line": rec.first_line})
    return out


def test_framing_groups_cover_every_version():
    by_dir = collections.Counter(k[0] for k in FRAMING_GROUPS)
    assert by_dir["1.6.8"] >= 30 and by_dir["2.0.12"] >= 35 and by_dir["1.6.8-bird6"] == 7
    assert by_dir["calico-lab-node1/v4"] == by_dir["calico-lab-node1/v6"] == 6
    assert set(FRAMING_GROUPS[("2.0.12", "show_route_all")]) == {"raw", "birdc", "birdc-v", "birdcl"}


# Groups where the framings disagree because of a parser bug (strict xfail, see reason).
FRAMING_BUGS: Dict[Tuple[str, str], str] = {}


def _framing_param(key):
    if key in FRAMING_BUGS:
        return pytest.param(key, marks=pytest.mark.xfail(strict=True, reason=(
            f"BUG: {key[0]} '{key[1]}': Protocol {FRAMING_BUGS[key]!r} (2.0 Device: empty "
            "detail block, raw '1006-' / plain birdc an empty line) has detail=True from raw "
            "and birdc -v but detail=False from plain birdc and birdcl")))
    return key


@pytest.mark.parametrize(
    "key", [_framing_param(k) for k in sorted(FRAMING_GROUPS)], ids=lambda k: f"{k[0]}:{k[1]}"
)
def test_same_records_from_every_framing(key):
    group = FRAMING_GROUPS[key]
    drift = TIME_DRIFT.get(key, set())
    ref_fr = "raw"
    ref = _comparable(group[ref_fr], drift)
    for fr, rel in group.items():
        got = _comparable(rel, drift)
        if key[1] == "show_foo" and fr != "raw":
            # the client refuses the unknown keyword itself (section 1, Clients)
            assert got == [{"record": "error", "message": "No such command. Press `?' for help."}]
            continue
        assert got == ref, f"{rel} differs from {group[ref_fr]}"


@pytest.mark.parametrize(
    "key", sorted(FRAMING_GROUPS), ids=lambda k: f"{k[0]}:{k[1]}"
)
def test_banner_only_where_the_file_has_one(key):
    for fr, rel in FRAMING_GROUPS[key].items():
        banners = of(rel, Banner)
        first = raw_bytes(rel).split(b"\n", 1)[0]
        if fr == "raw":
            assert banners == []
        else:
            m = re.match(rb"^(?:0001 )?BIRD (\S+) ready\.$", first)
            assert m, first
            assert [b.version for b in banners] == [m.group(1).decode()]
            assert isinstance(records(rel)[0], Banner)


def test_banner_files():
    assert [b.version for b in of("captures/1.6.8/banner.raw.txt", Banner)] == ["1.6.8"]
    assert [b.version for b in of("captures/1.6.8-bird6/banner.raw.txt", Banner)] == ["1.6.8"]
    assert [b.version for b in of("captures/2.0.12/banner.raw.txt", Banner)] == ["2.0.12"]
    for fam in ("v4", "v6"):
        assert of(f"captures/calico-lab-node1/{fam}/_banner.raw", Banner) == [Banner(version="1.6.8")]


# --------------------------------------------------------------------------- counts

COUNT_PAIRS = [
    ("captures/1.6.8/show_route_count.raw.txt", "captures/1.6.8/show_route.raw.txt"),
    ("captures/1.6.8/show_route_table_master_count.raw.txt", "captures/1.6.8/show_route.raw.txt"),
    ("captures/1.6.8-bird6/show_route_count.raw.txt", "captures/1.6.8-bird6/show_route.raw.txt"),
    ("captures/2.0.12/show_route_count.raw.txt", "captures/2.0.12/show_route.raw.txt"),
    ("captures/calico-lab-node1/v4/show_route_count.raw", "captures/calico-lab-node1/v4/show_route.raw"),
    ("captures/calico-lab-node1/v6/show_route_count.raw", "captures/calico-lab-node1/v6/show_route.raw"),
]


@pytest.mark.parametrize("count_rel,route_rel", COUNT_PAIRS, ids=lambda s: s.split("captures/")[-1])
def test_route_count_matches_route_dump(count_rel, route_rel):
    routes = of(route_rel, Route)
    counts = of(count_rel, RouteCount)
    total = [c for c in counts if c.is_total] or counts
    assert len(total) == 1
    assert total[0].shown == total[0].total == len(routes)
    assert total[0].networks == len({(r.table, r.prefix) for r in routes})
    per_table = [c for c in counts if c.table is not None]
    for c in per_table:  # 2.0: one line per table, then Total
        in_table = [r for r in routes if r.table == c.table]
        assert c.shown == len(in_table), c.table
        assert c.networks == len({r.prefix for r in in_table}), c.table


def test_route_count_values():
    assert of("captures/1.6.8/show_route_count.raw.txt", RouteCount) == [
        RouteCount(shown=15, total=15, networks=13)]
    assert of("captures/1.6.8-bird6/show_route_count.raw.txt", RouteCount) == [
        RouteCount(shown=7, total=7, networks=7)]
    assert of("captures/2.0.12/show_route_count.raw.txt", RouteCount) == [
        RouteCount(shown=18, total=18, networks=16, table="master4"),
        RouteCount(shown=7, total=7, networks=7, table="master6"),
        RouteCount(shown=25, total=25, networks=23, is_total=True, tables=2),
    ]
    # 'table all' includes the empty table t (and was taken after kf1 was added: 19 in master4)
    assert of("captures/2.0.12/show_route_table_all_count.raw.txt", RouteCount)[2:] == [
        RouteCount(shown=0, total=0, networks=0, table="t_empty"),
        RouteCount(shown=26, total=26, networks=24, is_total=True, tables=3),
    ]
    # a single table ends with 0000, no Total line
    assert of("captures/2.0.12/show_route_table_t_empty_count.raw.txt", RouteCount) == [
        RouteCount(shown=0, total=0, networks=0, table="t_empty")]
    stats = records("captures/2.0.12/show_route_stats.raw.txt")
    assert [type(r).__name__ for r in stats].count("Route") == 25
    assert [c.table for c in of("captures/2.0.12/show_route_stats.raw.txt", RouteCount)] == [
        "master4", "master6", None]


# --------------------------------------------------------------------------- 3. status

@pytest.mark.parametrize("rel,version,router_id,hostname", [
    ("captures/1.6.8/show_status.raw.txt", "1.6.8", "192.0.2.1", None),
    ("captures/1.6.8-bird6/show_status.raw.txt", "1.6.8", "192.0.2.1", None),
    ("captures/2.0.12/show_status.raw.txt", "2.0.12", "192.0.2.2", "vm"),
    ("captures/2.0.12/show_status.birdcl.txt", "2.0.12", "192.0.2.2", "vm"),
    ("captures/calico-lab-node1/v4/show_status.raw", "1.6.8", "10.77.0.1", None),
    ("captures/calico-lab-node1/v6/show_status.txt", "1.6.8", "10.77.0.1", None),
    ("peer-captures/calico/show-status_birdcl_calico-bird-v0.3.3-1.6.8_calico-9550.txt",
     "v0.3.3+birdv1.6.8", "10.112.77.12", None),
    ("peer-captures/pybird/show-status_bird-2.0.8_socket_hostname.txt", "2.0.8", None, None),
])
def test_status_identity(rel, version, router_id, hostname):
    st = one(rel, BirdStatus)
    assert st.version == version
    if router_id:
        assert st.router_id == router_id
    if hostname:
        assert st.hostname == hostname
    assert st.state == "up" and st.state_text == "Daemon is up and running"


def test_status_times():
    st = one("captures/2.0.12/show_status.raw.txt", BirdStatus)
    assert (st.server_time, st.last_reboot, st.last_reconfiguration) == (
        "2026-11-27 06:05:58.327", "2026-11-27 06:05:21.596", "2026-11-27 06:05:21.596")
    st = one("captures/1.6.8/timeformat-old-long/show_status.raw.txt", BirdStatus)
    assert st.last_reboot == "27-11-2026 06:04:56"
    st = one("captures/2.0.12/timeformat-epoch/show_status.raw.txt", BirdStatus)
    assert st.last_reboot == "1795759521"
    st = one("peer-captures/pybird/show-status_bird-2.0.8_socket_hostname.txt", BirdStatus)
    assert st.hostname is not None


# --------------------------------------------------------------------------- routes 1.6

R16 = "captures/1.6.8/show_route.raw.txt"


def _route(rel, prefix, protocol=None) -> Route:
    found = [r for r in of(rel, Route)
             if r.prefix == prefix and (protocol is None or r.protocol == protocol)]
    assert len(found) == 1, (rel, prefix, protocol, found)
    return found[0]


@pytest.mark.parametrize("rel", [R16, "captures/1.6.8/show_route_all.birdc.txt",
                                 "captures/1.6.8/show_route.birdc-v.txt"])
def test_16_multipath_and_alternatives(rel):
    mp = _route(rel, "10.11.0.0/16", "static1")
    assert mp.type == "unicast" and mp.primary and mp.preference == 200
    assert [(h.gateway, h.interface, h.weight) for h in mp.nexthops] == [
        ("10.0.0.2", "eth0", 2), ("10.0.1.2", "cali0123456789a", 1)]
    # the blank-net alternative takes the previous prefix
    alt = _route(rel, "10.11.0.0/16", "static-alt.v4")
    assert not alt.primary and alt.preference == 50
    assert [(h.gateway, h.interface, h.weight) for h in alt.nexthops] == [("10.0.0.3", "eth0", None)]
    alt = _route(rel, "10.10.0.0/16", "static-alt.v4")
    assert [(h.gateway, h.interface) for h in alt.nexthops] == [("10.0.1.2", "cali0123456789a")]
    assert alt.since == "06:04:57"


def test_16_route_types_and_order():
    routes = of(R16, Route)
    assert len(routes) == 15
    assert [(r.prefix, r.type) for r in routes if r.type != "unicast"] == [
        ("10.14.0.0/16", "prohibited"), ("10.12.0.0/16", "blackhole"),
        ("10.13.0.0/16", "unreachable"), ("192.168.53.0/24", "blackhole")]
    dev = _route(R16, "10.15.0.0/24")
    assert [(h.gateway, h.interface) for h in dev.nexthops] == [(None, "cali0123456789a")]
    assert _route(R16, "172.16.100.0/24").nexthops[0].interface == "eth0.100"
    k = _route(R16, "192.168.50.0/24")
    assert (k.protocol, k.preference, k.primary, k.since) == ("kernel1", 10, True, "06:04:57")
    for r in routes:
        if r.type != "unicast":
            assert r.nexthops == ()


def test_16_ipv6_long_prefix_and_multipath():
    rel = "captures/1.6.8-bird6/show_route.raw.txt"
    long = _route(rel, "2001:db8:abcd:1234:5678:9abc:def0:0/112")
    assert [(h.gateway, h.interface) for h in long.nexthops] == [("fd00:1::2", "cali0123456789a")]
    assert (long.protocol, long.preference, long.primary) == ("static6", 200, True)
    mp = _route(rel, "2001:db8:11::/48")
    assert [(h.gateway, h.interface, h.weight) for h in mp.nexthops] == [
        ("fd00:1::2", "cali0123456789a", 4), ("fd00::2", "eth0", 1)]
    assert _route(rel, "2001:db8:12::/48").type == "unreachable"


def _raw_communities(rel: str, prefix: str) -> int:
    """Count the '(a,b)' items of the route's BGP.community line and its '\t\t' wraps,
    straight from the raw socket text."""
    lines = raw_bytes(rel).decode().split("\n")
    start = next(i for i, ln in enumerate(lines) if ln[5:].startswith(prefix + " ")
                 or ln[1:].startswith(prefix + " "))
    n, in_comm = 0, False
    for ln in lines[start + 1:]:
        payload = ln[5:] if re.match(r"^\d{4}[- ]", ln) else ln[1:]
        if payload.startswith("\tBGP.community:"):
            in_comm = True
        elif in_comm and not payload.startswith("\t\t"):
            break
        if in_comm:
            n += len(re.findall(r"\(\d+,\d+\)", payload))
    return n


@pytest.mark.parametrize("version", ["1.6.8", "2.0.12"])
def test_wrapped_communities_and_truncated_as_path(version):
    rel = f"captures/{version}/show_route_all.raw.txt"
    r = _route(rel, "10.20.0.0/16")
    text = raw_bytes(rel).decode()
    wrap_lines = [ln for ln in text.split("\n") if ln.startswith(" \t\t(65000,")]
    assert len(wrap_lines) == 1                      # the community list wraps once
    assert len(r.bgp.communities) == _raw_communities(rel, "10.20.0.0/16") == 70
    assert r.bgp.communities[0] == (65000, 101) and r.bgp.communities[-1] == (65000, 7070)
    assert (65000, 3838) in r.bgp.communities        # first item of the '\t\t' line
    assert r.bgp.as_path_truncated is True
    assert len(r.bgp.as_path) == 43                 # complete ASNs before ' ...' / '42...'
    assert r.bgp.as_path[0] == 4200000120 and r.bgp.as_path[-1] == 4200000078
    assert r.bgp.origin == "Incomplete"
    if version == "2.0.12":                          # 2.0 wraps large communities too
        assert len(r.bgp.large_communities) == 25
        assert r.bgp.large_communities[-1] == (4200000000, 25, 25000)


@pytest.mark.parametrize("version", ["1.6.8", "2.0.12"])
def test_full_bgp_attribute_set(version):
    rel = f"captures/{version}/show_route_all.raw.txt"
    r = _route(rel, "10.10.0.0/16", "static1" if version == "1.6.8" else "static4")
    b = r.bgp
    assert b.origin == "IGP" and b.as_path == (65001, 65002) and not b.as_path_truncated
    assert b.next_hop == ("10.0.0.2",) and b.med == 50 and b.local_pref == 200
    assert b.communities == ((65000, 100), (65000, 200))
    assert b.ext_communities == (("rt", "65000", "1"), ("ro", "10.0.0.1", "7"))
    assert b.large_communities == ((65000, 1, 2), (4200000000, 3, 4))
    assert b.originator_id == "10.0.0.9"
    assert r.source == "static" and r.scope == "univ"
    if version == "1.6.8":
        assert r.cast == "unicast" and b.cluster_list == () and r.attrs is None
    else:
        assert r.cast is None and b.cluster_list == ("10.0.0.7",)
        assert r.attrs == {"my_custom_attr": "42"}    # 2.0 user attribute kept raw


def test_kernel_attributes_kept_raw():
    r = _route("captures/1.6.8/show_route_all.raw.txt", "192.168.50.0/24")
    assert r.source == "inherit" and r.attrs == {"Kernel.source": "4", "Kernel.metric": "100"}
    r = _route("captures/2.0.12/show_route_all.raw.txt", "192.168.51.0/24")
    assert r.attrs == {"Kernel.source": "4", "Kernel.metric": "0", "Kernel.scope": "253"}
    r = _route("captures/2.0.12/show_route_all.raw.txt", "2001:db8:50::/48")
    assert r.attrs["Kernel.metric"] == "1024" and r.bgp is None
    r = _route("captures/calico-lab-node1/v6/show_route_all.raw", "fd77:0:0:101::1/128")
    assert r.attrs == {"Kernel.source": "3", "Kernel.metric": "1024", "Kernel.scope": "0"}


def test_16_route_all_types():
    rel = "captures/1.6.8/show_route_all.raw.txt"
    assert _route(rel, "10.15.0.0/24").source == "static-device"
    assert _route(rel, "10.0.0.0/24").source == "device"
    assert {r.cast for r in of(rel, Route)} == {"unicast"}


# --------------------------------------------------------------------------- routes 2.0

R20 = "captures/2.0.12/show_route.raw.txt"


def test_20_table_headers_set_table():
    routes = of(R20, Route)
    assert len(routes) == 25
    tables = collections.Counter(r.table for r in routes)
    assert tables == {"master4": 18, "master6": 7}
    # every route after 'Table master6:' is IPv6, every one before is IPv4
    assert all((":" in r.prefix) == (r.table == "master6") for r in routes)
    assert {r.table for r in of("captures/2.0.12/show_route_table_master4.raw.txt", Route)} == {"master4"}
    assert {r.table for r in of("captures/2.0.12/show_route_table_master6_all.raw.txt", Route)} == {"master6"}
    only = of("captures/2.0.12/show_route_table_all_where_net_10.12.0.0_16.raw.txt", Route)
    assert [(r.prefix, r.table, r.type) for r in only] == [("10.12.0.0/16", "master4", "blackhole")]
    roa = of("peer-captures/node-bird-router-api/show-route_bird-2_multi-table-roa_readme_whitespace-collapsed.txt", Route)
    assert [r.table for r in roa] == ["master4", "master6"] + ["dn42_roa"] * 4


def test_20_next_hop_lines():
    mp = _route(R20, "10.11.0.0/16", "static4")
    assert [(h.gateway, h.interface, h.weight) for h in mp.nexthops] == [
        ("10.0.0.2", "eth0", 2), ("10.0.1.2", "cali0123456789a", 1)]
    alt = _route(R20, "10.11.0.0/16", "static-alt.v4")
    assert (alt.primary, alt.preference) == (False, 50)
    assert [(h.gateway, h.interface) for h in alt.nexthops] == [("10.0.0.3", "eth0")]
    devs = _route(R20, "10.16.0.0/16")             # two 'dev' lines, no weight (section 5.2)
    assert [(h.gateway, h.interface, h.weight) for h in devs.nexthops] == [
        (None, "eth0", None), (None, "cali0123456789a", None)]
    k = _route(R20, "192.168.52.0/24")
    assert [(h.gateway, h.weight) for h in k.nexthops] == [("10.0.1.2", 3), ("10.0.0.2", 1)]
    v6 = _route(R20, "2001:db8:abcd:1234:5678:9abc:def0:0/112")
    assert (v6.table, v6.type, v6.nexthops[0].gateway) == ("master6", "unicast", "fd00:1::2")
    assert {(r.prefix, r.type) for r in of(R20, Route) if r.type != "unicast"} == {
        ("10.14.0.0/16", "prohibited"), ("10.12.0.0/16", "blackhole"),
        ("10.13.0.0/16", "unreachable"), ("192.168.53.0/24", "blackhole"),
        ("2001:db8:12::/48", "unreachable")}


@pytest.mark.parametrize("version,proto,table", [("1.6.8", "static-alt.v4", None),
                                                 ("2.0.12", "static-alt.v4", "master4")])
def test_route_protocol_filter_prints_prefixes(version, proto, table):
    routes = of(f"captures/{version}/show_route_protocol_static-alt.v4.raw.txt", Route)
    assert sorted(r.prefix for r in routes) == ["10.10.0.0/16", "10.11.0.0/16"]
    assert all(r.protocol == proto and not r.primary and r.table == table for r in routes)


def test_for_address_lookup():
    for version in ("1.6.8", "2.0.12"):
        routes = of(f"captures/{version}/show_route_for_10.10.1.1.raw.txt", Route)
        assert [(r.prefix, r.primary) for r in routes] == [("10.10.0.0/16", True), ("10.10.0.0/16", False)]


@pytest.mark.parametrize("rel,since", [
    ("captures/1.6.8/timeformat-epoch/show_route.raw.txt", "1795759497"),
    ("captures/1.6.8/timeformat-iso-long/show_route.raw.txt", "2026-11-27 06:04:57"),
    ("captures/1.6.8/timeformat-old-long/show_route.raw.txt", "27-11-2026 06:04:56"),
    ("captures/1.6.8/timeformat-old-short/show_route.raw.txt", "06:04"),
    ("captures/2.0.12/timeformat-iso-long/show_route.raw.txt", "2026-11-27 06:06:51"),
    ("captures/2.0.12/timeformat-iso-long-us/show_route.raw.txt", "06:06:51.680528"),
])
def test_route_time_formats(rel, since):
    first = of(rel, Route)[0]
    assert first.since == since
    assert first.preference in (200, 240) and first.primary


# --------------------------------------------------------------------------- protocols

def _proto(rel, name) -> Protocol:
    found = [p for p in of(rel, Protocol) if p.name == name]
    assert len(found) == 1, (rel, name)
    return found[0]


def test_16_protocol_rows():
    rows = of("captures/1.6.8/show_protocols.raw.txt", Protocol)
    assert [(p.name, p.proto, p.table, p.state) for p in rows] == [
        ("device1", "Device", "master", "up"), ("direct1", "Direct", "master", "up"),
        ("kernel1", "Kernel", "master", "up"), ("static1", "Static", "master", "up"),
        ("static-alt.v4", "Static", "master", "up"),
        ("static_with_a_very_long_name", "Static", "master", "down")]
    long = rows[-1]
    assert (long.since, long.info) == ("06:05:05", "")     # pushed columns still split right
    assert [p.name for p in of("captures/1.6.8/show_protocols_staticSTAR.raw.txt", Protocol)] == [
        "static1", "static-alt.v4", "static_with_a_very_long_name"]


def test_20_protocol_rows():
    rows = of("captures/2.0.12/show_protocols.raw.txt", Protocol)
    assert [(p.name, p.proto, p.table) for p in rows] == [
        ("device1", "Device", None), ("direct1", "Direct", None),   # '---'
        ("kernel4", "Kernel", "master4"), ("kernel6", "Kernel", "master6"),
        ("static4", "Static", "master4"), ("static-alt.v4", "Static", "master4"),
        ("static6", "Static", "master6"), ("static_with_a_very_long_name", "Static", "master4")]
    long = rows[-1]
    assert (long.state, long.since, long.info) == ("down", "06:05:21.596", "")


def test_16_protocols_all_details():
    rel = "captures/1.6.8/show_protocols_all.raw.txt"
    k = _proto(rel, "kernel1")
    assert k.detail and k.preference == 10
    assert (k.input_filter, k.output_filter) == ("ACCEPT", "REJECT")
    assert (k.routes.imported, k.routes.exported, k.routes.preferred) == (3, 0, 3)
    assert k.stats.import_updates == (4, 1, 0, 0, 3)
    assert k.stats.import_withdraws == (0, 0, None, 1, 0)
    assert k.stats.export_updates == (28, 9, 19, None, 0)
    assert k.stats.export_withdraws == (4, None, None, None, 0)
    s = _proto(rel, "static1")
    assert (s.input_filter, s.routes.imported) == ("attrs_v4", 7)
    down = _proto(rel, "static_with_a_very_long_name")   # down: no Routes/stats lines
    assert down.state == "down" and down.preference == 200
    assert down.routes is None and down.stats is None


def test_20_protocols_all_channels():
    rel = "captures/2.0.12/show_protocols_all.raw.txt"
    d = _proto(rel, "direct1")
    assert [(c.name, c.state, c.table, c.preference) for c in d.channels] == [
        ("ipv4", "UP", "master4", 240), ("ipv6", "UP", "master6", 240)]
    assert [c.routes.imported for c in d.channels] == [3, 2]
    k = _proto(rel, "kernel4")
    (ch,) = k.channels
    assert ch.stats.export_updates == (28, 4, 24, None, 0)
    s = _proto(rel, "static4")
    assert s.channels[0].input_filter == "attrs4" and s.channels[0].routes.imported == 9
    down = _proto(rel, "static_with_a_very_long_name")
    assert [(c.name, c.state) for c in down.channels] == [("ipv4", "DOWN")]
    assert _proto(rel, "device1").channels == ()


def test_keep_filtered_counters():
    for version in ("1.6.8", "2.0.12"):
        p = one(f"captures/{version}/session_keep_filtered.txt", Protocol)
        routes = p.routes if version == "1.6.8" else p.channels[0].routes
        assert (routes.imported, routes.filtered, routes.exported, routes.preferred) == (1, 1, 0, 1)
        assert p.input_filter == "(unnamed)" or p.channels[0].input_filter == "(unnamed)"


# --------------------------------------------------------------------------- Calico lab node

CAL_PEERS = {
    "v4": [("Mesh_10_77_0_2", "up", "Established", "10.77.0.2", 64512, (204.0, 240.0), None),
           ("Mesh_10_77_0_3", "up", "Established", "10.77.0.3", 64512, (169.0, 240.0), None),
           ("Global_10_77_0_250", "start", "Connect", "10.77.0.250", 65001, None,
            "Socket: No route to host"),
           ("Node_10_77_0_251", "start", "Connect", "10.77.0.251", 64512, None,
            "Socket: No route to host")],
    "v6": [("Mesh_fd77__2", "up", "Established", "fd77::2", 64512, (157.0, 240.0), None),
           ("Mesh_fd77__3", "up", "Established", "fd77::3", 64512, (191.0, 240.0), None),
           ("Global_fd77__250", "start", "Connect", "fd77::250", 65001, None,
            "Socket: No route to host"),
           ("Node_fd77__251", "start", "Connect", "fd77::251", 64512, None,
            "Socket: No route to host")],
}


@pytest.mark.parametrize("fam", ["v4", "v6"])
@pytest.mark.parametrize("form", ["raw", "txt"])
def test_calico_bgp_peers(fam, form):
    rel = f"captures/calico-lab-node1/{fam}/show_protocols_all.{form}"
    bgp = [p for p in of(rel, Protocol) if p.proto == "BGP"]
    got = [(p.name, p.state, p.bgp_state, p.bgp.neighbor_address, p.bgp.neighbor_as,
            (p.bgp.hold_timer.remaining, p.bgp.hold_timer.configured) if p.bgp.hold_timer else None,
            p.bgp.last_error) for p in bgp]
    assert got == CAL_PEERS[fam]
    for p in bgp:
        assert p.bgp.state == p.bgp_state
        assert p.description == "Connection to BGP peer"
        if p.bgp_state == "Connect":
            assert p.info_message == "Socket: No route to host"
            assert p.info.startswith("Connect ")
        else:
            assert p.info == "Established" and p.info_message is None
            assert p.bgp.session == ("internal", "multihop", "AS4", "add-path-rx", "add-path-tx")
            assert "llgr-aware" in p.bgp.caps and p.bgp.keepalive_timer.configured == 80.0
    others = [(p.name, p.proto) for p in of(rel, Protocol) if p.proto != "BGP"]
    assert others == [("static1", "Static"), ("kernel1", "Kernel"), ("device1", "Device"),
                      ("direct1", "Direct")]


@pytest.mark.parametrize("fam,mesh", [("v4", ("192.168.2.0/26", "10.77.0.2")),
                                       ("v6", ("fd77:0:0:102::/122", "fd77::2"))])
def test_calico_routes(fam, mesh):
    rel = f"captures/calico-lab-node1/{fam}/show_route_all.raw"
    r = _route(rel, mesh[0])
    assert (r.preference, r.metric, r.bgp_origin, r.source) == (100, 0, "i", "BGP")
    assert r.bgp.as_path == () and r.bgp.next_hop == (mesh[1],)
    assert r.bgp.local_pref == 2147482623
    blackholes = [x for x in of(rel, Route) if x.type == "blackhole"]
    assert len(blackholes) == 1 and blackholes[0].protocol == "static1"
    calis = [x.nexthops[0].interface for x in of(rel, Route) if x.protocol == "kernel1"
             and x.nexthops and x.nexthops[0].interface.startswith("cali")]
    assert sorted(calis) == ["cali5bf73d57270", "calia02789b75cd"]


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("version,cmd,code,message", [
    ("1.6.8", "show_foo", 9001, "syntax error"),
    ("2.0.12", "show_foo", 9001, "syntax error, unexpected CF_SYM_UNDEFINED"),
    ("1.6.8", "show_protocols_nosuchproto", 9002, "nosuchproto is not a protocol"),
    ("2.0.12", "show_protocols_nosuchproto", 9001,
     "syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT or ALL"),
    ("1.6.8", "show_route_10.99.0.0_16", 8001, "Network not in table"),
    ("2.0.12", "show_route_10.99.0.0_16", 8001, "Network not found"),
    ("1.6.8", "show_protocols_nomatchSTAR", 8003, "No protocols match"),
    ("2.0.12", "show_protocols_nomatchSTAR", 8003, "No protocols match"),
])
def test_error_replies_in_every_framing(version, cmd, code, message):
    group = FRAMING_GROUPS[(version, cmd)]
    assert set(group) >= {"raw", "birdc", "birdc-v"}
    for fr, rel in group.items():
        (err,) = of(rel, ErrorReply)
        assert err.final
        if cmd == "show_foo" and fr != "raw":
            # birdc/birdcl reject the keyword themselves: no BIRD code exists
            assert (err.code, err.message) == (None, "No such command. Press `?' for help.")
        else:
            # plain birdc drops the code: it is recovered from the known text
            assert (err.code, err.message) == (code, message), rel
        assert not of(rel, Route) and not of(rel, Protocol)


def test_peer_error_replies():
    assert of("peer-captures/pybird/show-protocols-all_socket_8003-no-protocols-match.txt", ErrorReply) == [
        ErrorReply(code=8003, message="No protocols match", line=2)]
    (err,) = of("peer-captures/pybird/show-route-all-protocol_socket_9001-parse-error.txt", ErrorReply)
    assert (err.code, err.message) == (9001, "PS99 is not a protocol")


# --------------------------------------------------------------------------- sessions

SESSIONS = sorted(r for r in ALL_FILES if re.match(r"captures/[^/]+/session_.*\.txt$", r))


def _replies(rel):
    """parse_replies minus the banner greeting (its own one-line reply)."""
    reps = nodestatus.parse_replies(raw_bytes(rel))
    assert reps[0] == [Banner(version=reps[0][0].version)]
    return reps[1:]


# BIRD 1.6 answers 'show route filtered primary' with two final lines (section 1):
EXTRA_REPLIES = {"captures/1.6.8/session_filtered_primary_double_final.txt": 1}


@pytest.mark.parametrize("rel", SESSIONS, ids=lambda r: r.split("captures/")[1])
def test_session_reply_count(rel):
    sent = sum(1 for ln in raw_bytes(rel).split(b"\n") if ln.startswith(b">> "))
    assert len(_replies(rel)) == sent + EXTRA_REPLIES.get(rel, 0)


def test_line_overflow_sessions():
    for version, status_rid in (("1.6.8", "192.0.2.1"), ("2.0.12", "192.0.2.2")):
        reps = _replies(f"captures/{version}/session_line_overflow.txt")
        assert len(reps) == 3
        proto_reply, eval_reply, status_reply = reps
        overflow = [r for r in proto_reply if isinstance(r, ErrorReply)]
        assert [(e.code, e.message, e.final) for e in overflow] == [(8000, "<line overflow>", False)]
        (p,) = [r for r in proto_reply if isinstance(r, Protocol)]
        assert p.name == "longdesc" and p.state == "up" and p.description is None
        routes = p.routes if version == "1.6.8" else p.channels[0].routes
        assert routes.imported == 1                     # rest of the reply still parsed
        assert [(e.code, e.final) for e in eval_reply] == [(8000, True)]
        (st,) = status_reply
        assert st.router_id == status_rid and st.state == "up"


def test_16_code_carried_over_between_replies():
    reps = _replies("captures/1.6.8/session_last_reply_carryover.txt")
    assert [(u.code, u.first_line, u.lines) for u in reps[0]] == [(1010, "static1 \tprotocol", 1)]
    # the second reply starts with a code-less line: code = last final code 1010
    (sym,) = reps[1]
    assert (sym.code, sym.first_line) == (1010, "ips_site\tconstant")
    assert sym.lines == 41
    (st,) = reps[2]
    assert st.version == "1.6.8" and st.state == "up"
    # 2.0 does not carry over: same records
    reps20 = _replies("captures/2.0.12/session_last_reply_carryover.txt")
    assert [r[0].code for r in reps20] == [1010, 1010]


def test_16_double_final():
    rel = "captures/1.6.8/session_filtered_primary_double_final.txt"
    recs = [r for r in records(rel) if not isinstance(r, Banner)]
    assert len(recs) == 2
    route, count = recs
    assert (route.prefix, route.type, route.protocol, route.primary) == (
        "10.50.0.0/16", "unreachable", "kf1", True)
    assert count == RouteCount(shown=1, total=1, networks=1)
    assert [len(r) for r in _replies(rel)] == [0, 1, 1]


def test_pipelined_session():
    reps = _replies("captures/1.6.8/session_pipelined.txt")
    assert [type(r[0]).__name__ for r in reps] == ["BirdStatus", "RouteCount", "Protocol"]
    assert reps[1][0] == RouteCount(shown=15, total=15, networks=13)
    assert reps[2][0].name == "kernel1"


def test_restricted_session():
    for version, n in (("1.6.8", 5), ("2.0.12", 4)):
        reps = _replies(f"captures/{version}/session_restricted.txt")
        assert len(reps) == n
        errs = [r for rep in reps for r in rep if isinstance(r, ErrorReply)]
        assert [(e.code, e.message) for e in errs] == [(8007, "Access denied")] * 2


def test_echo_session():
    reps = _replies("captures/1.6.8/session_echo_disable_enable.txt")
    (p,) = reps[2]
    assert (p.name, p.state, p.message, p.input_filter) == (
        "static1", "down", "maintenance window", "attrs_v4")
    (err,) = reps[5]                                  # 8006 inside an OK reply
    assert (err.code, err.message, err.final) == (8006, "static1: reload failed", False)
    reps = _replies("captures/2.0.12/session_echo_disable_enable.txt")
    (p,) = reps[2]
    assert (p.message, p.channels[0].state) == ("maintenance window", "DOWN")


@pytest.mark.parametrize("version", ["1.6.8", "2.0.12"])
def test_shutdown_and_reconfiguration_states(version):
    reps = _replies(f"captures/{version}/session_shutdown.txt")
    (st,) = reps[1]
    assert (st.state, st.state_text) == ("shutting down", "Shutdown in progress")
    protos = reps[2]
    assert len(protos) == 6 and {p.state for p in protos} == {"flush"}
    assert [p.name for p in protos][-2:] == ["longdesc", "bulk"]
    reps = _replies(f"captures/{version}/session_reconfiguration_in_progress.txt")
    (st,) = reps[1]
    assert (st.state, st.state_text) == ("reconfiguring", "Reconfiguration in progress")


@pytest.mark.parametrize("version", ["1.6.8", "2.0.12"])
def test_reconfigure_8004_after_partial_data(version):
    """concurrency_reconfigure_8004.txt is a summary: connection B's status reply verbatim,
    and the last lines connection A received as a Python list. The first of those is a
    continuation inside a 1007 route dump; it gets its '1007-' prefix back so the excerpt
    starts a reply, everything else is byte-for-byte."""
    text = raw_bytes(f"captures/{version}/concurrency_reconfigure_8004.txt").decode()
    b_reply = text.split("\n", 1)[1].split("B configure:", 1)[0]
    (st,) = nodestatus.parse(b_reply)
    assert st.state == "up" and st.version == version
    (line,) = [ln for ln in text.splitlines() if ln.startswith("A last lines: ")]
    last = ast.literal_eval(line[len("A last lines: "):])
    assert last[-2] == "8004 Stopped due to reconfiguration" and last[0].startswith(" ")
    excerpt = "1007-" + "\n".join(last)[1:]
    recs = nodestatus.parse(excerpt)
    assert recs[-1] == ErrorReply(code=8004, message="Stopped due to reconfiguration", line=len(last) - 1)
    routes = recs[:-1]
    assert routes and all(isinstance(r, Route) and r.protocol == "bulk" for r in routes)
    assert routes[0].prefix.startswith("172.20.")


def test_concurrency_summaries_are_not_bird_replies():
    """The summaries begin with prose: they come out as one Unsupported block, not an error."""
    for rel in ALL_FILES:
        if "/concurrency_" in rel:
            recs = records(rel)
            assert len(recs) == 1 and isinstance(recs[0], Unsupported), rel


# --------------------------------------------------------------------------- peer captures

def test_peer_ixp_protocols_all_bird_14():
    rel = "peer-captures/birdseye/show-protocols-all_bird-1.4.0_ixp-route-server_126KB.txt"
    protos = of(rel, Protocol)
    text = raw_bytes(rel).decode()
    rows = re.findall(r"^\S+ +(?:BGP|Pipe|Device) ", text, re.M)
    assert len(protos) == len(rows) == 147
    assert collections.Counter(p.proto for p in protos) == {"BGP": 73, "Pipe": 73, "Device": 1}
    assert collections.Counter(p.bgp.state for p in protos if p.bgp) == {
        "Established": 69, "Connect": 3, "Active": 1}
    active = _proto(rel, "pb_0081_as30900")
    assert (active.state, active.bgp_state, active.info_message) == (
        "start", "Active", "Socket: No route to host")
    assert (active.bgp.neighbor_address, active.bgp.neighbor_as) == ("193.242.111.51", 30900)
    pch = _proto(rel, "pb_0109_as42")
    assert (pch.table, pch.routes.exported, pch.bgp.neighbor_as) == ("t_0109_as42", 41127, 42)
    assert pch.extra == {"Import limit": "1000", "Import limit action": "restart"}


def test_peer_table_dump_236kb():
    rel = "peer-captures/birdseye/show-route-table-all_bird-1.4.0_ipv4_236KB.txt"
    text = raw_bytes(rel).decode()
    starts = re.findall(r"^(?:\d+\.\d+\.\d+\.\d+/\d+ +| {19})(?:via|dev|blackhole|unreachable|prohibited) ",
                        text, re.M)
    routes = of(rel, Route)
    assert len(routes) == len(starts) == 977
    assert sum(1 for r in routes if r.primary) == text.count("] * (")
    assert sum(len(r.bgp.communities) for r in routes if r.bgp) == len(re.findall(r"\(\d+,\d+\)", text))


def test_peer_bird_lg_go_15_paths():
    rel = "peer-captures/bird-lg-go/show-route-for-all_bird-2_dn42_15-paths_bird3-record.txt"
    routes = of(rel, Route)
    assert len(routes) == 15
    assert {r.prefix for r in routes} == {"172.20.0.53/32"} and {r.table for r in routes} == {"master4"}
    assert [r.primary for r in routes] == [True] + [False] * 14
    first = routes[0]
    assert (first.protocol, first.from_, first.preference, first.metric, first.bgp_origin_as) == (
        "ibgp_sjc2", "fd86:bad:11b7:22::1", 100, 38, 4242423914)
    assert routes[2].bgp.next_hop == ("::", "fe80::1888")
    # the last record is BIRD 3 style: its attributes stay raw
    assert routes[-1].bgp is None and routes[-1].attrs["bgp_path"] == "4242423391 4242420604 4242423914"


def test_peer_bird3_files_parse_what_they_can():
    rel = "peer-captures/birdwatcher/show-protocols_bird-3.0.1_passive-neighbor-lost.txt"
    protos = of(rel, Protocol)
    assert len(protos) == 22
    rel = "peer-captures/birdwatcher/show-route-all_bird-3.0.1_ipv4_multipath.txt"
    routes = of(rel, Route)
    assert len(routes) == 4 and all(r.protocol for r in routes)
    st = one("peer-captures/birdwatcher/show-status_bird-3.0.1_hostname.txt", BirdStatus)
    assert st.version.startswith("3.0") and st.state == "up"
    rel = "peer-captures/calico/show-route-all_birdc_bird-3.0.1_unreachable-hostentry-empty-path_calico-11607.txt"
    (r,) = of(rel, Route)
    assert r.type == "unreachable" and r.table == "master4"


def test_peer_calico_fork_routes():
    rel = "peer-captures/calico/show-route_socket_calico-bird-v0.3.3-1.6.8_multipath-blackhole-unreachable.txt"
    assert of(rel, Banner) == [Banner(version="v0.3.3+birdv1.6.8")]
    routes = of(rel, Route)
    assert [(r.prefix, r.type, r.protocol) for r in routes if r.prefix == "192.168.69.128/26"] == [
        ("192.168.69.128/26", "blackhole", "static1"),
        ("192.168.69.128/26", "unreachable", "Mesh_10_128_0_244"),
        ("192.168.69.128/26", "blackhole", "kernel1")]
    unres = routes[2]
    assert (unres.from_, unres.info_flags, unres.bgp_origin) == ("10.128.0.244", "/-", "i")
    assert routes[-1].nexthops[0].interface == "vxlan.calico"
    rel = "peer-captures/calico/show-route_socket_calico-bird-v0.3.3-1.6.8_kernel-mesh-blackhole-dev.txt"
    glob_alt = _route(rel, "192.168.82.0/26", "Global_100_100_100_100")
    assert (glob_alt.info_flags, glob_alt.bgp_origin_as, glob_alt.bgp_origin) == ("/?", 65001, "?")
    assert _route(rel, "192.168.162.128/32").nexthops[0].interface == "tunl0"


def test_peer_misc_spot_checks():
    (r,) = of("peer-captures/bird_exporter/show-route_bird-2_ecmp-weight_truncated_bird_exporter-pr127.txt", Route)
    assert [(h.gateway, h.interface, h.weight) for h in r.nexthops] == [
        ("10.181.40.7", "left", 1), ("10.181.40.49", "right", 1)]
    ospf = of("peer-captures/kees/show-route-protocol-ospf_birdc_bird-1.x_ospf-E2-I-routerid_padded_truncated_kees-pr24.txt", Route)
    assert len(ospf) == 8
    assert (ospf[0].preference, ospf[0].metric, ospf[0].metric2, ospf[0].since) == (
        150, 20, 0, "2020-11-24 09:43:00")
    counts = of("peer-captures/bird-lg/show-route-count_birdc_bird-v2.0.2_multi-table-total_bird-lg-36.txt", RouteCount)
    assert counts[-1] == RouteCount(shown=9581, total=9581, networks=9581, is_total=True, tables=3)
    pipes = of("peer-captures/birdc-rs/show-protocols_bird-2.0.7_socket_pipes.txt", Protocol)
    assert len(pipes) == 9
    rr = of("peer-captures/calico/show-route_birdcl_bird-1.6.4_unreachable-rr_calico-2178.txt", Route)
    assert [r.type for r in rr].count("unreachable") == 4


@pytest.mark.parametrize("rel,names", [
    ("peer-captures/kumina-birdwatcher/show-protocols-all-mesh_birdcl_bird-1.5.0_calico_established-add-path.txt",
     ["Mesh_10_101_4_182"]),
    ("peer-captures/birdwatcher/show-protocols-all_bird-1.6_pipe-bgp_last-error.txt", None),
    ("peer-captures/bird_exporter/show-protocols-all_bird-2.0_direct-two-channels_blockquote-stripped_bird_exporter-14.txt",
     ["direct1"]),
])
def test_headerless_protocols_all_need_the_command(rel, names):
    """Fixtures whose heading line was cut: content alone is Unsupported, the command settles it."""
    assert not of(rel, Protocol)
    protos = [r for r in nodestatus.parse(raw_bytes(rel), command="show protocols all")
              if isinstance(r, Protocol)]
    assert protos
    if names:
        assert [p.name for p in protos] == names
    if "direct-two-channels" in rel:
        assert [c.name for c in protos[0].channels] == ["ipv4", "ipv6"]
        assert protos[0].since == "1513027903"


# --------------------------------------------------------------------------- known parser bugs

def test_caps_detail_is_neighbors_only():
    rel = "peer-captures/cilium/show-protocols-all_birdc_bird-2.14_bgp-gr-details-hostname-extnh_truncated_cilium-28530.txt"
    (p,) = [x for x in of(rel, Protocol) if x.bgp]
    assert p.bgp.caps_detail["Multiprotocol"] == ["AF announced: ipv4 ipv6"]
    assert p.bgp.local_caps_detail["Multiprotocol"] == ["AF announced: ipv4"]
    assert p.bgp.caps_detail["Graceful restart"] == [
        "Restart time: 120", "Restart recovery", "AF supported: ipv4 ipv6", "AF preserved: ipv4 ipv6"]


@pytest.mark.parametrize("version", ["1.6.8", "2.0.12"])
def test_stdin_piped_birdc_lines_not_silently_lost(version):
    rel = f"captures/{version}/stdin_piped.birdc.txt"
    try:
        recs = nodestatus.parse(raw_bytes(rel))
    except ParseError:
        return                                          # refusing the input is acceptable
    st = [r for r in recs if isinstance(r, BirdStatus)]
    counts = [r for r in recs if isinstance(r, RouteCount)]
    assert st and st[0].version == version
    assert counts and counts[0].shown == (15 if version == "1.6.8" else 18)
