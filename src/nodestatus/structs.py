"""Typed records for what BIRD said: the parse core (`_birdparse`) fills these.

Field names are stable: they are also the JSON/msgpack output of `nodestatus parse`, which
leaves out fields at their default (``omit_defaults``: decoding with these types puts them
back; nulls on every line were most of the bytes).
Bulk records (routes, next hops, BGP attributes) are frozen and untracked by the GC
(``gc=False``): a million of them must neither be copied nor scanned. Frozen also means the
parser may share one instance between many routes (the same next hop, the same community
list), which is how a full table stays flat in memory. They are built positionally by the
Cython core, so their field order is part of the contract.
"""
from __future__ import annotations

import enum
from typing import Optional, Tuple, Union

import msgspec

__all__ = (
    "Banner",
    "BirdStatus",
    "Timer",
    "RouteCounters",
    "ChangeStats",
    "Channel",
    "BgpSession",
    "Protocol",
    "Nexthop",
    "BgpAttrs",
    "Route",
    "RouteCount",
    "ErrorReply",
    "Unsupported",
    "ReplyEnd",
    "Record",
    "ReplyCode",
    "is_bird2",
    "address_family",
    "route_family",
)


class Banner(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True, tag="banner", tag_field="record"):
    """The ``0001 BIRD <version> ready.`` greeting (or birdc's first line)."""

    version: str


class ReplyCode(enum.IntEnum):
    """BIRD's reply codes (``doc/reply_codes``): the first four digits of a control-socket
    line. 0xxx end a reply successfully, 1xxx are table lines, 2xxx headings, 8xxx/9xxx
    errors (the error classes of ``nodestatus.errors`` are keyed by them)."""

    OK = 0
    WELCOME = 1
    READING_CONFIG = 2
    RECONFIGURED = 3
    RECONFIG_IN_PROGRESS = 4
    RECONFIG_QUEUED = 5
    RECONFIG_IGNORED = 6
    SHUTDOWN_REQUESTED = 7
    ALREADY_DISABLED = 8
    DISABLED = 9
    ALREADY_ENABLED = 10
    ENABLED = 11
    RESTARTED = 12
    STATUS = 13
    ROUTE_COUNT = 14
    RELOADING = 15
    RESTRICTED = 16
    QUEUED_CONFIG_REMOVED = 17
    CONFIRMED = 18
    NOTHING_TO_DO = 19
    CONFIG_OK = 20
    UNDO_REQUESTED = 21
    UNDO_SCHEDULED = 22
    EVALUATION = 23
    GR_STATUS = 24
    GR_REQUESTED = 25
    VERSION = 1000
    INTERFACE = 1001
    PROTOCOL = 1002
    INTERFACE_ADDRESS = 1003
    INTERFACE_FLAGS = 1004
    INTERFACE_SUMMARY = 1005
    PROTOCOL_DETAIL = 1006
    ROUTE = 1007
    ROUTE_TYPE = 1008
    STATIC_ROUTE = 1009
    SYMBOL = 1010
    UPTIME = 1011
    ROUTE_ATTR = 1012
    MEMORY = 1018
    ROA = 1019
    BFD = 1020
    PROTOCOL_HEADING = 2002
    INTERFACE_SUMMARY_HEADING = 2005
    TOO_LONG = 8000
    NOT_FOUND = 8001
    CONFIG_ERROR = 8002
    NO_PROTOCOLS = 8003
    STOPPED = 8004
    PROTOCOL_DOWN = 8005
    RELOAD_FAILED = 8006
    ACCESS_DENIED = 8007
    EVAL_ERROR = 8008
    COMMAND_TOO_LONG = 9000
    PARSE_ERROR = 9001
    NOT_A_PROTOCOL = 9002


def is_bird2(version: str) -> bool:
    """BIRD 2 or later: one daemon answers for both families. ``version`` as the banner or
    ``show status`` prints it: ``1.6.8``, ``2.0.12``, Calico's fork ``v0.3.3+birdv1.6.8``."""
    upstream = version.split("+bird", 1)[1] if "+bird" in version else version
    major = upstream.lstrip("v").split(".", 1)[0]
    return major.isdigit() and int(major) >= 2


class BirdStatus(msgspec.Struct, omit_defaults=True, kw_only=True, tag="status", tag_field="record"):
    """``show status``. Times are BIRD's local-time text, as printed."""

    version: Optional[str] = None
    router_id: Optional[str] = None
    hostname: Optional[str] = None
    server_time: Optional[str] = None
    last_reboot: Optional[str] = None
    last_reconfiguration: Optional[str] = None
    #: "up", "reconfiguring" or "shutting down"; None if the final line was not seen.
    state: Optional[str] = None
    state_text: Optional[str] = None
    #: ``0024 Graceful restart recovery in progress`` block (Calico starts BIRD with -R).
    graceful_restart_recovery: bool = False
    gr_waiting: Optional[int] = None
    gr_wait_timer: Optional[str] = None
    gr_details: Tuple[str, ...] = ()


class Timer(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True):
    """``remaining/configured`` (1.6 whole seconds, 2.0 with milliseconds; ``-`` = None)."""

    remaining: Optional[float] = None
    configured: Optional[float] = None


class RouteCounters(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True):
    """``Routes: N imported, [N filtered, ]N exported, N preferred``."""

    imported: int = 0
    filtered: Optional[int] = None
    exported: int = 0
    preferred: int = 0


class ChangeStats(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True):
    """The ``Route change stats`` table: each row is received, rejected, filtered, ignored,
    accepted; ``---`` cells are None."""

    import_updates: Tuple[Optional[int], ...] = ()
    import_withdraws: Tuple[Optional[int], ...] = ()
    export_updates: Tuple[Optional[int], ...] = ()
    export_withdraws: Tuple[Optional[int], ...] = ()


class Channel(msgspec.Struct, omit_defaults=True, kw_only=True):
    """A BIRD 2 ``Channel ipv4|ipv6|main`` block of ``show protocols all``."""

    name: str
    state: Optional[str] = None
    table: Optional[str] = None
    preference: Optional[int] = None
    input_filter: Optional[str] = None
    output_filter: Optional[str] = None
    routes: Optional[RouteCounters] = None
    stats: Optional[ChangeStats] = None
    #: Every other line of the block (limits, ``BGP Next hop``, ``IGP IPv4 table`` …).
    extra: dict = msgspec.field(default_factory=dict)


class BgpSession(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The BGP part of ``show protocols all``."""

    state: Optional[str] = None
    neighbor_address: Optional[str] = None
    neighbor_range: Optional[str] = None
    neighbor_port: Optional[int] = None
    neighbor_as: Optional[int] = None
    local_as: Optional[int] = None
    neighbor_id: Optional[str] = None
    #: 1.6: the flag words of ``Neighbor caps:``; 2.0: the capability names of the
    #: ``Neighbor capabilities`` block (details in ``caps_detail``).
    caps: Tuple[str, ...] = ()
    local_caps: Tuple[str, ...] = ()
    caps_detail: dict = msgspec.field(default_factory=dict)
    local_caps_detail: dict = msgspec.field(default_factory=dict)
    session: Tuple[str, ...] = ()
    source_address: Optional[str] = None
    hold_timer: Optional[Timer] = None
    keepalive_timer: Optional[Timer] = None
    last_error: Optional[str] = None
    extra: dict = msgspec.field(default_factory=dict)


class Protocol(msgspec.Struct, omit_defaults=True, kw_only=True, tag="protocol", tag_field="record"):
    """A ``show protocols`` row; the detail fields are filled by ``show protocols all``."""

    name: str
    proto: str
    table: Optional[str] = None
    state: str = ""
    since: str = ""
    #: The whole info column; for BGP also split into the state word and the message.
    info: str = ""
    bgp_state: Optional[str] = None
    info_message: Optional[str] = None
    detail: bool = False
    description: Optional[str] = None
    message: Optional[str] = None
    router_id: Optional[str] = None
    vrf: Optional[str] = None
    preference: Optional[int] = None
    input_filter: Optional[str] = None
    output_filter: Optional[str] = None
    routes: Optional[RouteCounters] = None
    stats: Optional[ChangeStats] = None
    bgp: Optional[BgpSession] = None
    channels: Tuple[Channel, ...] = ()
    #: Detail lines that have no field of their own (limits, GR recovery, OSPF …), raw.
    extra: dict = msgspec.field(default_factory=dict)


class Nexthop(msgspec.Struct, omit_defaults=True, frozen=True, gc=False, array_like=False):
    """One next hop: ``via GW on IFACE [weight W]`` or ``dev IFACE``."""

    gateway: Optional[str] = None
    interface: Optional[str] = None
    weight: Optional[int] = None
    onlink: bool = False
    mpls: Optional[str] = None


AsPathSegment = Union[int, frozenset]


class BgpAttrs(msgspec.Struct, omit_defaults=True, frozen=True, gc=False):
    """The ``BGP.*`` attribute lines of ``show route all``, typed."""

    origin: Optional[str] = None
    #: ASNs in order; an AS_SET is a frozenset. Confederation segments keep their text in
    #: ``as_path_raw``.
    as_path: Tuple[AsPathSegment, ...] = ()
    as_path_truncated: bool = False
    as_path_raw: Optional[str] = None
    next_hop: Tuple[str, ...] = ()
    med: Optional[int] = None
    local_pref: Optional[int] = None
    communities: Tuple[Tuple[int, int], ...] = ()
    large_communities: Tuple[Tuple[int, int, int], ...] = ()
    #: ``(rt, 65000, 1)`` → ``("rt", "65000", "1")``: kinds and values stay text.
    ext_communities: Tuple[Tuple[str, ...], ...] = ()
    atomic_aggr: bool = False
    aggregator: Optional[Tuple[str, int]] = None
    originator_id: Optional[str] = None
    cluster_list: Tuple[str, ...] = ()


class Route(msgspec.Struct, omit_defaults=True, frozen=True, gc=False, tag="route", tag_field="record"):
    """One route of ``show route [all]`` (an alternative takes the previous destination)."""

    prefix: str
    table: Optional[str] = None
    #: unicast | blackhole | unreachable | prohibited | unknown
    type: str = "unicast"
    nexthops: Tuple[Nexthop, ...] = ()
    protocol: Optional[str] = None
    since: Optional[str] = None
    from_: Optional[str] = msgspec.field(default=None, name="from")
    #: ``*``: BIRD's best route for the prefix (and exported to the kernel).
    primary: bool = False
    #: ``!``: best route, but the kernel refused it.
    sync_error: bool = False
    preference: Optional[int] = None
    #: ``(pref/metric)``: IGP metric of a recursive next hop, OSPF/RIP/Babel metric.
    metric: Optional[int] = None
    metric2: Optional[int] = None
    #: Flags inside the parentheses that are not numbers: ``-`` suppressed, ``s`` stale,
    #: ``/-`` next hop unresolvable, ``/?`` IGP metric unknown.
    info_flags: Optional[str] = None
    #: From the ``[AS65001i]`` tag.
    bgp_origin: Optional[str] = None
    bgp_origin_as: Optional[int] = None
    #: Any other text after the info (OSPF ``E2``, router-id tags, BIRD 3 extras), raw.
    info: Optional[str] = None
    # -- ``show route all`` only --
    source: Optional[str] = None
    cast: Optional[str] = None
    scope: Optional[str] = None
    bgp: Optional[BgpAttrs] = None
    #: Every attribute line that is not a typed BGP one, ``name -> raw text``.
    attrs: Optional[dict] = None


def address_family(address: str) -> int:
    """4 or 6 for an IP address as BIRD prints it (``fe80::1%eth0`` included)."""
    return 6 if ":" in address else 4


def route_family(prefix: str, table: Optional[str] = None) -> int:
    """4 or 6: the family of the address in a route's net (``10.0.0.0/8``, ``fd00::/64``,
    a BIRD 2 VPN net ``65000:1 10.0.0.0/8``, a ROA ``10.0.0.0/8-24 AS65000``). Only a net
    with no address falls back to the table name (BIRD 2's ``master4``/``master6``)."""
    for word in prefix.split():
        if "/" in word:
            return address_family(word.split("/", 1)[0])
    if table and table[-1:] in ("4", "6"):
        return int(table[-1])
    return address_family(prefix)


class RouteCount(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True, tag="route_count", tag_field="record"):
    """``N of M routes for K networks [in table T]`` and 2.0's ``Total: … in K tables``."""

    shown: int
    total: int
    networks: int
    table: Optional[str] = None
    is_total: bool = False
    tables: Optional[int] = None


class ErrorReply(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True, tag="error", tag_field="record"):
    """An error reply from BIRD (8xxx/9xxx) or from birdc; ``code`` is None when a plain
    birdc capture lost it and the text did not identify it."""

    code: Optional[int]
    message: str
    final: bool = True
    line: int = 0


class Unsupported(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True, tag="unsupported", tag_field="record"):
    """A reply this parser has no grammar for (``show interfaces``, ``show memory`` …):
    reported, never silently skipped."""

    code: Optional[int]
    first_line: str
    lines: int
    line: int


class ReplyEnd(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True, tag="reply_end", tag_field="record"):
    """Emitted after each reply when the parser is asked for reply markers."""

    index: int
    kind: str
    code: Optional[int]
    complete: bool
    line: int


Record = Union[
    Banner, BirdStatus, Protocol, Route, RouteCount, ErrorReply, Unsupported, ReplyEnd
]
