"""The kernel's route table over rtnetlink, in the root or a named network namespace.

Exists to keep sockets and namespaces out of the decoder: this is the only module that
imports pyroute2, and callers import it lazily so batch parsing never pays for it. pyroute2
does what it does well: entering a namespace, the interface list, every netlink socket (its
``IPRSocket``, bound to the route monitor's groups where one subscribes) and the per-prefix
``RTM_GETROUTE`` requests of a re-check. Ours is only what runs per route: the bulk route
dump's request, and its receive loop in :mod:`nodestatus._rtnl` (``recv_dump``: recv into
one reusable 64 KiB buffer and decode, the whole dump without the GIL) straight into a C
table (``PackedTable``), 96 times faster than pyroute2's messages; the monitor's
notifications and the re-checks' replies are decoded there too, from the same raw bytes.
A :class:`Netlink` session opens every socket a FIB check needs inside the namespace at
once, and can dump in a thread while the caller parses.
"""
from __future__ import annotations

import errno as _errno
import ipaddress
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, Generic, Iterable, Optional, Set, Tuple, TypeVar, Union

import msgspec

from . import _rtnl
from .errors import KernelReadError

__all__ = (
    "FibMatch",
    "KernelTable",
    "Netlink",
    "RouteMonitor",
    "dump_routes",
    "links",
    "open_monitor",
)

SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
SO_RCVBUFFORCE = 33

RTM_GETROUTE = 26
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTA_TABLE = 15
RTM_F_LOOKUP_TABLE = 0x1000    # answer with the table the lookup used (else: always main)
RTM_F_FIB_MATCH = 0x2000       # answer with the FIB entry that matched (Linux >= 4.12)

RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_ROUTE = 0x400

RECV_SIZE = 64 * 1024          # a dump datagram is at most ~32 KiB
MONITOR_RCVBUF = 64 * 1024 * 1024
LOOKUP_TIMEOUT = 5.0           # seconds; the kernel answers a lookup inside the send

Value = Union[bytes, Tuple[bytes, ...]]
T = TypeVar("T")


class KernelTable(msgspec.Struct, kw_only=True):
    """One family of one kernel routing table as read by :func:`dump_routes`.

    ``routes`` (a ``_rtnl.PackedTable``, read like a dict) maps key -> value bytes, or a
    tuple of values when the prefix exists more than once (e.g. at two metrics); see
    :mod:`nodestatus._rtnl` for the layout."""

    family: int
    table: int
    netns: Optional[str]
    routes: "_rtnl.PackedTable"
    n_routes: int
    links: Dict[int, str]
    bytes: int
    seconds: float
    exists: bool = True


def _where(netns: Optional[str], what: str = "") -> str:
    ns = f"netns {netns}" if netns else "the root netns"
    return f"{what} in {ns}" if what else ns


def _family_af(family: int) -> int:
    if family in (4, socket.AF_INET):
        return socket.AF_INET
    if family in (6, socket.AF_INET6):
        return socket.AF_INET6
    if family == 0:
        return socket.AF_UNSPEC
    raise ValueError(f"family must be 4 or 6, not {family}")


def _in_netns(netns: Optional[str], fn: Callable[[], T]) -> T:
    """Run ``fn`` in ``netns``: inside a short-lived thread that entered it (setns only
    changes the calling thread; sockets keep the namespace they were created in). The
    namespace must exist: it is never created."""
    if not netns:
        return fn()

    def entered() -> T:
        from pyroute2.netns import setns  # lazy: pyroute2 imports a lot

        setns(netns, flags=0)
        return fn()

    try:
        return _InThread(entered, f"netns-{netns}").result()
    except KernelReadError:
        raise
    except FileNotFoundError as exc:
        raise KernelReadError(f"network namespace {netns!r} does not exist",
                              where=_where(netns)) from exc
    except BaseException as exc:
        raise KernelReadError(f"cannot enter network namespace: {exc}",
                              where=_where(netns)) from exc


def _route_socket(groups: int = 0, rcvbuf: Optional[int] = None):
    """A pyroute2 ``IPRSocket`` (NETLINK_ROUTE) in the calling thread's namespace, bound to
    the multicast ``groups`` (0: requests only), with at least ``rcvbuf`` bytes of receive
    buffer where given (past ``net.core.rmem_max`` when root).

    ``IPRSocket`` rather than ``IPRoute``: its ``.socket`` is one plain socket that any thread
    reads raw, where ``IPRoute`` keeps a socket per thread and opens a new one, in that
    thread's namespace (the root one), for a thread that did not create it."""
    from pyroute2 import IPRSocket  # lazy: pyroute2 imports a lot

    ipr = IPRSocket(rcvbuf=rcvbuf) if rcvbuf else IPRSocket()
    try:
        ipr.bind(groups=groups)     # creates the socket: here, in this thread's namespace
        if rcvbuf:
            try:
                ipr.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:         # not root: pyroute2's SO_RCVBUF took what the sysctl allows
                pass
    except BaseException:
        ipr.close()
        raise
    return ipr


def _request(sock: socket.socket, msg_type: int, body: bytes, seq: int) -> None:
    header = struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(header + body)


def _route_request(af: int, table: int) -> bytes:
    # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    rtm = struct.pack("=BBBBBBBBI", af, 0, 0, 0, table if 0 < table < 256 else 0, 0, 0, 0, 0)
    if table:
        rtm += struct.pack("=HHI", 8, RTA_TABLE, table)
    return rtm


def _strict(sock: socket.socket) -> None:
    """Ask the kernel to filter the dump by table (Linux >= 4.20); harmless if refused, the
    decoder filters again."""
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    except OSError:
        pass


def _dump(sock: socket.socket, family: int, table: int, netns: Optional[str]) -> KernelTable:
    """One family of one table through ``sock`` (a dump socket, strict checking on)."""
    af = _family_af(family)
    where = _where(netns, f"route dump of table {table} (IPv{family if family in (4, 6) else '?'})")
    start = time.perf_counter()
    routes = _rtnl.PackedTable()
    try:
        _request(sock, RTM_GETROUTE, _route_request(af, table), 1)
    except OSError as exc:
        raise KernelReadError(f"netlink send failed: {exc}", errno=exc.errno,
                              where=where) from exc
    exists = True
    try:
        n, nbytes = _recv_dump(sock, family, table, routes, where)
    except KernelReadError as exc:
        # a filtered dump of a table that was never created: the table is empty
        if not (table and exc.errno == _errno.ENOENT and not len(routes)):
            raise
        n, nbytes, exists = 0, 0, False
    return KernelTable(family=4 if af == socket.AF_INET else 6, table=table, netns=netns,
                       routes=routes, n_routes=n, links={}, bytes=nbytes,
                       seconds=time.perf_counter() - start, exists=exists)


def dump_routes(family: int, table: int = 254, netns: Optional[str] = None, *,
                with_links: bool = True) -> KernelTable:
    """Dump one family (4 or 6) of one routing table. ``table`` 0 reads every table (keys
    then collide across tables). Local/broadcast/anycast/multicast and cloned routes are
    left out. A table that does not exist reads as empty with ``exists=False``. Raises
    :class:`KernelReadError` naming the netns on any failure."""
    with Netlink(netns, with_links=with_links) as nl:
        kt = nl.dump(family, table)
    kt.links = {index: name for index, (name, _flags) in nl.links.items()}
    return kt


def _recv_dump(sock: socket.socket, family: int, table: int, out: "_rtnl.PackedTable",
               where: str) -> Tuple[int, int]:
    """Read one dump to NLMSG_DONE into ``out``; returns (routes stored, bytes read). The
    whole loop, recv and decode, runs in ``_rtnl`` without the GIL: see its ``recv_dump``."""
    timeout = sock.gettimeout()
    try:
        stored, total, done = _rtnl.recv_dump(
            sock.fileno(), bytearray(RECV_SIZE), family, table, out,
            timeout_ms=-1 if timeout is None else max(1, int(timeout * 1000)))
    except KernelReadError as exc:
        raise exc.with_where(where) from None
    except OSError as exc:
        raise KernelReadError(f"netlink recv failed: {exc}", errno=exc.errno,
                              where=where) from exc
    if not done:
        raise KernelReadError("netlink socket closed before the dump ended", where=where)
    return stored, total


class _InThread(Generic[T]):
    """``fn()`` running in a thread of its own; ``result()`` waits and hands its value over,
    or raises its exception in the caller's thread."""

    def __init__(self, fn: Callable[[], T], name: str) -> None:
        self._box: Dict[str, Any] = {}

        def run() -> None:
            try:
                self._box["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread
                self._box["error"] = exc

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Let ``fn`` end (a dump's socket may be closed only after)."""
        self._thread.join()

    def result(self) -> T:
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


class Netlink:
    """The netlink sockets of a FIB check, opened inside ``netns`` in one go (entering a
    namespace costs a thread and a setns: a run enters it once): a dump socket with strict
    checking, a route monitor per family in ``monitor_families`` (opened before any dump
    they guard) and, with them, a socket for the per-prefix re-checks (:meth:`fib_match`),
    and the interface list, read with pyroute2 on the way."""

    def __init__(self, netns: Optional[str] = None, monitor_families: Iterable[int] = (), *,
                 with_links: bool = True) -> None:
        self.netns = netns
        families = tuple(monitor_families)

        def setup():
            opened = []
            try:
                dump = _route_socket()
                opened.append(dump)
                _strict(dump.socket)
                mons = {}
                for f in families:
                    mons[f] = _monitor_socket(f)
                    opened.append(mons[f])
                lookup = None
                if families:
                    lookup = _route_socket()
                    opened.append(lookup)
                    lookup.socket.settimeout(LOOKUP_TIMEOUT)
                return dump, mons, lookup, (_links() if with_links else {})
            except BaseException:
                for ipr in opened:
                    ipr.close()
                raise

        try:
            self._dump_ipr, iprs, self._lookup, self.links = _in_netns(netns, setup)
        except KernelReadError:
            raise
        except Exception as exc:
            raise _open_error(exc, netns) from exc
        self.sock = self._dump_ipr.socket      # the dump's requests and replies are ours
        self.monitors = {f: RouteMonitor(ipr, f, 0, netns) for f, ipr in iprs.items()}
        self._lookup_buf = bytearray(RECV_SIZE)
        self._seq = 0

    def dump(self, family: int, table: int = 254) -> KernelTable:
        return _dump(self.sock, family, table, self.netns)

    def dump_in_thread(self, families: Iterable[int],
                       table: int = 254) -> "_InThread[Dict[int, KernelTable]]":
        """Dump ``families`` one after the other in a thread, while the caller does other
        work (the whole receive loop runs without the GIL)."""
        fams = tuple(families)
        return _InThread(lambda: {f: self.dump(f, table) for f in fams}, "kernel-dump")

    def fib_match(self, keys: Iterable[bytes], table: int = 254) -> Dict[bytes, "FibMatch"]:
        """What the kernel forwards by for each route key's prefix in ``table`` (see
        :class:`FibMatch`): one ``RTM_GETROUTE`` with ``RTM_F_FIB_MATCH`` per key, encoded
        and sent by pyroute2, its reply decoded by ``_rtnl`` from the raw bytes exactly as
        the dump's are. A round trip per key (the kernel answers inside the send): meant for
        the few prefixes a re-check suspects, not for a table."""
        if self._lookup is None:
            raise ValueError("this Netlink session has no re-check socket: "
                             "open it with monitor_families")
        sock = self._lookup.socket
        view = memoryview(self._lookup_buf)
        where = _where(self.netns, "per-prefix route lookup")
        out: Dict[bytes, FibMatch] = {}
        for key in keys:
            if _lookup_address(key) is None:
                out[key] = FibMatch(verdict="unknown", why=_NOT_UNICAST)
                continue
            self._seq += 1
            try:
                _fib_match_request(self._lookup, key, self._seq)
                while True:
                    nbytes = sock.recv_into(view)
                    if nbytes < 16:
                        raise KernelReadError(f"netlink reply of {nbytes} bytes", where=where)
                    if struct.unpack_from("=I", view, 8)[0] == self._seq:
                        break                  # an older reply (none is expected): dropped
            except OSError as exc:             # socket.timeout included
                raise KernelReadError(f"netlink route lookup failed: {exc}", errno=exc.errno,
                                      where=where) from exc
            out[key] = fib_match_answer(view, nbytes, key, table, where=where)
        return out

    def close(self) -> None:
        for m in self.monitors.values():
            m.close()
        if self._lookup is not None:
            self._lookup.close()
        self._dump_ipr.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_error(exc: Exception, netns: Optional[str]) -> KernelReadError:
    """A failure to open netlink sockets (OSError, pyroute2's NetlinkError) as the one
    error callers handle."""
    return KernelReadError(f"cannot open netlink sockets: {exc}",
                           errno=getattr(exc, "code", None) or getattr(exc, "errno", None),
                           where=_where(netns))


# ------------------------------------------------------------------------------ links


def _links() -> Dict[int, Tuple[str, int]]:
    """``{ifindex: (name, IFF_* flags)}`` in the calling thread's namespace (pyroute2: a
    few dozen interfaces, where its messages cost nothing that matters)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {link["index"]: (link.get_attr("IFLA_IFNAME") or "", link["flags"])
                for link in ipr.get_links()}


def links(netns: Optional[str] = None) -> Dict[int, Tuple[str, int]]:
    """``{ifindex: (name, IFF_* flags)}`` of every interface in ``netns``."""
    try:
        return _in_netns(netns, _links)
    except KernelReadError:
        raise
    except Exception as exc:                   # pyroute2's NetlinkError and friends
        raise KernelReadError(f"netlink link dump failed: {exc}",
                              errno=getattr(exc, "code", None) or getattr(exc, "errno", None),
                              where=_where(netns, "link dump")) from exc


# ------------------------------------------------------------------------------ monitor


class RouteMonitor:
    """A non-blocking netlink socket subscribed to route changes of one family, opened
    before a dump so that routes touched during the dump can be re-checked. pyroute2 opens
    and subscribes it; the notifications are read raw and only their keys decoded, by
    ``_rtnl`` (a churning table sends thousands)."""

    def __init__(self, ipr, family: int, table: int, netns: Optional[str]) -> None:
        self._ipr = ipr                        # pyroute2's IPRSocket: closes the socket
        self.sock: socket.socket = ipr.socket
        self.family = family
        self.table = table
        self.netns = netns
        self._buf = bytearray(RECV_SIZE)
        self.overflowed = False

    def changed_keys(self) -> Optional[Set[bytes]]:
        """Keys of every route added/changed/deleted since the last call; None if the
        socket overflowed (ENOBUFS) meanwhile: then everything must be re-checked."""
        keys: Set[bytes] = set()
        view = memoryview(self._buf)
        where = _where(self.netns, "route monitor")
        while True:
            try:
                nbytes = self.sock.recv_into(view)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == _errno.ENOBUFS:
                    self.overflowed = True
                    continue
                raise KernelReadError(f"route monitor recv failed: {exc}", errno=exc.errno,
                                      where=where) from exc
            if nbytes == 0:
                break
            try:
                _rtnl.decode_keys(view, nbytes, self.family, self.table, keys)
            except KernelReadError as exc:
                raise exc.with_where(where) from None
        if self.overflowed:
            self.overflowed = False
            return None
        return keys

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> "RouteMonitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _monitor_socket(family: int):
    """A route monitor's socket (pyroute2's ``IPRSocket``) in the calling thread's
    namespace, subscribed to ``family``'s route groups, with a 64 MiB receive buffer."""
    af = _family_af(family)
    groups = {int(socket.AF_INET): RTMGRP_IPV4_ROUTE, int(socket.AF_INET6): RTMGRP_IPV6_ROUTE,
              int(socket.AF_UNSPEC): RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE}[af]
    ipr = _route_socket(groups, rcvbuf=MONITOR_RCVBUF)
    ipr.socket.setblocking(False)
    return ipr


def open_monitor(family: int, netns: Optional[str] = None, table: int = 0) -> RouteMonitor:
    """Subscribe to route changes of ``family`` (4, 6, or 0 for both) in ``table`` (default
    0 = every table: a spurious touched key only costs a re-check). Open it BEFORE the dump
    it guards."""
    af = _family_af(family)
    try:
        ipr = _in_netns(netns, lambda: _monitor_socket(family))
    except KernelReadError:
        raise
    except Exception as exc:
        raise _open_error(exc, netns) from exc
    return RouteMonitor(ipr, 0 if af == socket.AF_UNSPEC else (4 if af == socket.AF_INET else 6),
                        table, netns)


# ------------------------------------------------------------------------------ re-checks


class FibMatch(msgspec.Struct, frozen=True, kw_only=True):
    """What one ``RTM_GETROUTE`` with ``RTM_F_FIB_MATCH`` proves about one prefix of one
    table.

    The kernel looks the prefix's first address up through the policy rules, as for a
    packet this host sends, and answers with the FIB entry that matched: ONE route, the one
    that wins (lowest metric among those it can use), of whichever table the rules led to
    (``RTM_F_LOOKUP_TABLE`` makes the answer name it; without it the answer always says
    main). A blackhole, unreachable or prohibit route answers with an error instead
    (EINVAL, EHOSTUNREACH, EACCES), and so does a throw route (ENETUNREACH)."""

    #: ``route``: ``value`` is the route that wins for exactly this prefix in the table
    #: (others of the prefix, at worse metrics, are not seen); ``absent``: the lookup found
    #: no route for the prefix in the table that it could use; ``unknown``: the answer
    #: proves neither (``why`` says what it was)
    verdict: str
    value: Optional[bytes] = None
    why: str = ""


_LOOKUP_ERRORS = {
    _errno.EINVAL: "a blackhole route",
    _errno.EHOSTUNREACH: "an unreachable route",
    _errno.EACCES: "a prohibit route",
}
_NOT_UNICAST = "not looked up: the prefix starts at an address not routed as unicast"


def _prefix_len(key: bytes) -> int:
    return int(_rtnl.unpack_key(key).rpartition("/")[2])


def _lookup_address(key: bytes) -> Optional[str]:
    """The address a lookup of ``key``'s prefix asks for (its first), or None where the
    kernel does not route it as a unicast destination: IPv4 0.0.0.0/8 (0.0.0.0 fails with
    EHOSTUNREACH, so the default route is never looked up), loopback, multicast and 240/4;
    IPv6 loopback, multicast and link-local (the lookup picks one interface's)."""
    text = _rtnl.unpack_key(key).partition("/")[0]
    addr = ipaddress.ip_address(text)
    if addr.is_loopback or addr.is_multicast:
        return None
    if addr.version == 4 and (addr.is_reserved or addr.packed[0] == 0):
        return None
    if addr.version == 6 and addr.is_link_local:
        return None
    return text


def _fib_match_request(ipr, key: bytes, seq: int) -> None:
    """``RTM_GETROUTE`` for the first address of ``key``'s prefix, encoded and sent by
    pyroute2. A full-length destination and no RTA_TABLE: what the kernel looks up anyway
    (it ignores a table), and what a strict-checking socket accepts."""
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    family = _rtnl.key_family(key)
    msg = rtmsg()
    msg["family"] = socket.AF_INET if family == 4 else socket.AF_INET6
    msg["dst_len"] = 32 if family == 4 else 128
    msg["flags"] = RTM_F_FIB_MATCH | RTM_F_LOOKUP_TABLE
    msg["attrs"] = [("RTA_DST", _lookup_address(key))]
    ipr.put(msg, RTM_GETROUTE, NLM_F_REQUEST, msg_seq=seq)


def fib_match_answer(buf, nbytes: int, key: bytes, table: int, *,
                     where: str = "") -> FibMatch:
    """Read the kernel's reply (``buf[:nbytes]``, one netlink message) to a FIB_MATCH
    lookup of ``key``'s prefix: the rules of :class:`FibMatch`.

    * the prefix itself, from ``table``: ``route``;
    * a less specific route of ``table``: ``absent`` for IPv4 (the longest-prefix match
      passed no usable route of the prefix); ``unknown`` for IPv6, whose lookups pass over
      a route whose gateway does not answer (forwarding off) and fall back to a shorter one;
    * ENETUNREACH for the main table: ``absent`` (no route of the tables the default rules
      reach covers the address; a throw route of the prefix also answers so);
    * a more specific route, another table, a local or cloned route (a kernel without
      RTM_F_FIB_MATCH), any other error: ``unknown``.
    """
    if nbytes < 20:
        raise KernelReadError(f"netlink reply of {nbytes} bytes is too short", where=where)
    family = _rtnl.key_family(key)
    if struct.unpack_from("=H", buf, 4)[0] == NLMSG_ERROR:
        err = -struct.unpack_from("=i", buf, 16)[0]
        name = _errno.errorcode.get(err, str(err))
        if err == _errno.ENETUNREACH and table == 254:
            return FibMatch(verdict="absent", why="no route covers the prefix (ENETUNREACH)")
        if err == _errno.ENETUNREACH:
            return FibMatch(verdict="unknown",
                            why=f"ENETUNREACH says nothing of table {table} (not main)")
        if err in _LOOKUP_ERRORS:
            return FibMatch(verdict="unknown", why=f"{name}: {_LOOKUP_ERRORS[err]} answers")
        return FibMatch(verdict="unknown", why=f"the lookup failed: {name}")
    got = _rtnl.PackedTable()
    try:
        n, _done = _rtnl.decode_dump(buf, nbytes, family, table, got)
    except KernelReadError as exc:
        raise exc.with_where(where) from None
    if n != 1:
        return FibMatch(verdict="unknown", why=_not_of_table(buf, nbytes, family, table))
    ((answer, kv),) = got.items()
    if answer == key:
        (value,) = _rtnl.values_of(kv)
        return FibMatch(verdict="route", value=value)
    shown = _rtnl.unpack_key(answer)
    if _prefix_len(answer) > _prefix_len(key):
        return FibMatch(verdict="unknown", why=f"a more specific route answers: {shown}")
    if family == 6:
        return FibMatch(verdict="unknown", why=f"a less specific IPv6 route answers: {shown} "
                        "(IPv6 lookups pass over routes whose gateway does not answer)")
    return FibMatch(verdict="absent", why=f"a less specific route answers: {shown}")


def _not_of_table(buf, nbytes: int, family: int, table: int) -> str:
    """Why a reply holds no route of ``table`` the FIB check compares."""
    anywhere = _rtnl.PackedTable()
    _rtnl.decode_dump(buf, nbytes, family, 0, anywhere, all_types=True)
    if not len(anywhere):
        return "a cloned route answers: the kernel ignores RTM_F_FIB_MATCH (Linux < 4.12)"
    shown = _rtnl.unpack_key(anywhere.keys()[0])
    here = _rtnl.PackedTable()
    _rtnl.decode_dump(buf, nbytes, family, table, here, all_types=True)
    if len(here):
        return f"a local, broadcast or multicast route answers: {shown}"
    return f"a route of another table answers: {shown}"
