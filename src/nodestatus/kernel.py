"""The kernel's route table over rtnetlink, in the root or a named network namespace.

Exists to keep sockets and namespaces out of the decoder: this is the only module that
imports pyroute2 (for ``setns`` and nothing else heavy), and callers import it lazily so batch
parsing never pays for it. The bulk dump is read raw with ``recv_into`` into one reusable
64 KiB buffer and decoded by :mod:`nodestatus._rtnl` straight into ``{key: value}`` bytes;
no per-route Python objects are built here.
"""
from __future__ import annotations

import errno as _errno
import os
import socket
import struct
import threading
import time
from typing import Callable, Dict, Iterable, Optional, Set, Tuple, TypeVar, Union

import msgspec

from . import _rtnl
from .errors import KernelReadError

__all__ = (
    "KernelTable",
    "RouteMonitor",
    "open_route_socket",
    "dump_routes",
    "links",
    "open_monitor",
    "lookup",
)

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
SO_RCVBUFFORCE = 33

RTM_GETLINK = 18
RTM_GETROUTE = 26
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTA_TABLE = 15
IFLA_IFNAME = 3

RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_ROUTE = 0x400

RECV_SIZE = 64 * 1024          # a dump datagram is at most ~32 KiB
MONITOR_RCVBUF = 64 * 1024 * 1024

Value = Union[bytes, Tuple[bytes, ...]]
T = TypeVar("T")


class KernelTable(msgspec.Struct, kw_only=True):
    """One family of one kernel routing table as read by :func:`dump_routes`.

    ``routes`` maps key -> value bytes (or a tuple of values when the prefix exists more
    than once, e.g. at two metrics); see :mod:`nodestatus._rtnl` for the layout."""

    family: int
    table: int
    netns: Optional[str]
    routes: Dict[bytes, Value]
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
    box: Dict[str, object] = {}

    def run() -> None:
        try:
            from pyroute2.netns import setns  # lazy: pyroute2 imports a lot

            setns(netns, flags=0)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, KernelReadError):
            raise exc
        if isinstance(exc, FileNotFoundError):
            raise KernelReadError(f"network namespace {netns!r} does not exist",
                                  where=_where(netns)) from exc
        raise KernelReadError(f"cannot enter network namespace: {exc}",
                              where=_where(netns)) from exc
    return box["value"]  # type: ignore[return-value]


def open_route_socket(netns: Optional[str] = None, groups: int = 0) -> socket.socket:
    """A raw AF_NETLINK/NETLINK_ROUTE socket in ``netns`` (None = this process's), bound to
    the multicast ``groups`` given (0 for plain requests)."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            sock.bind((0, groups))
        except OSError:
            sock.close()
            raise
        return sock

    try:
        return _in_netns(netns, make)
    except OSError as exc:
        raise KernelReadError(f"cannot open a netlink route socket: {exc}",
                              errno=exc.errno, where=_where(netns)) from exc


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


def dump_routes(family: int, table: int = 254, netns: Optional[str] = None, *,
                with_links: bool = True) -> KernelTable:
    """Dump one family (4 or 6) of one routing table. ``table`` 0 reads every table (keys
    then collide across tables). Local/broadcast/anycast/multicast and cloned routes are
    left out. A table that does not exist reads as empty with ``exists=False``. Raises
    :class:`KernelReadError` naming the netns on any failure."""
    af = _family_af(family)
    where = _where(netns, f"route dump of table {table} (IPv{family if family in (4, 6) else '?'})")
    start = time.perf_counter()
    sock = open_route_socket(netns)
    try:
        _strict(sock)
        routes: Dict[bytes, Value] = {}
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
            if not (table and exc.errno == _errno.ENOENT and not routes):
                raise
            n, nbytes, exists = 0, 0, False
    finally:
        sock.close()
    seconds = time.perf_counter() - start
    link_names = {index: name for index, (name, _flags) in links(netns).items()} if with_links else {}
    return KernelTable(family=4 if af == socket.AF_INET else 6, table=table, netns=netns,
                       routes=routes, n_routes=n, links=link_names, bytes=nbytes,
                       seconds=seconds, exists=exists)


def _recv_dump(sock: socket.socket, family: int, table: int,
               out: Dict[bytes, Value], where: str) -> Tuple[int, int]:
    """Read one dump to NLMSG_DONE into ``out``; returns (routes stored, bytes read)."""
    buf = bytearray(RECV_SIZE)
    view = memoryview(buf)
    stored = total = 0
    decode = _rtnl.decode_dump
    while True:
        try:
            nbytes = sock.recv_into(view)
        except OSError as exc:
            raise KernelReadError(f"netlink recv failed: {exc}", errno=exc.errno,
                                  where=where) from exc
        if nbytes == 0:
            raise KernelReadError("netlink socket closed before the dump ended", where=where)
        total += nbytes
        try:
            n, done = decode(view, nbytes, family, table, out)
        except KernelReadError as exc:
            raise exc.with_where(where) from None
        stored += n
        if done:
            return stored, total


def lookup(family: int, keys: Iterable[bytes], table: int = 254,
           netns: Optional[str] = None) -> Dict[bytes, Value]:
    """The kernel's current values for ``keys`` (absent keys are left out): a fresh dump,
    since rtnetlink has no exact-prefix get. Used to re-check differences."""
    wanted = set(keys)
    fresh = dump_routes(family, table, netns, with_links=False).routes
    return {key: fresh[key] for key in wanted if key in fresh}


# ------------------------------------------------------------------------------ links


def _decode_links(data: bytes, out: Dict[int, Tuple[str, int]], where: str) -> bool:
    """Small, so plain Python: ifinfomsg (family, pad, type, index, flags, change) + IFLA_IFNAME."""
    pos = 0
    end = len(data)
    while pos + 16 <= end:
        mlen, mtype = struct.unpack_from("=IH", data, pos)
        if mlen < 16 or pos + mlen > end:
            raise KernelReadError(f"bad nlmsg_len {mlen} in the link dump", offset=pos,
                                  message_offset=pos, where=where)
        if mtype == NLMSG_DONE:
            return True
        if mtype == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, pos + 16)[0] if mlen >= 20 else 0
            if err:
                raise KernelReadError(f"kernel answered the link dump with error {err} "
                                      f"({os.strerror(err)})", errno=err, offset=pos,
                                      message_offset=pos, where=where)
        elif mtype == RTM_NEWLINK and mlen >= 32:
            index, flags = struct.unpack_from("=iI", data, pos + 20)
            off = pos + 32
            name = ""
            while off + 4 <= pos + mlen:
                alen, atype = struct.unpack_from("=HH", data, off)
                if alen < 4 or off + alen > pos + mlen:
                    raise KernelReadError(f"bad attribute length {alen} in the link dump",
                                          offset=off, message_offset=pos, where=where)
                if atype & 0x3FFF == IFLA_IFNAME:
                    name = data[off + 4:off + alen].split(b"\0", 1)[0].decode("utf-8", "replace")
                    break
                off += (alen + 3) & ~3
            out[index] = (name, flags)
        pos += (mlen + 3) & ~3
    return False


def links(netns: Optional[str] = None) -> Dict[int, Tuple[str, int]]:
    """``{ifindex: (name, IFF_* flags)}`` of every interface in ``netns``."""
    where = _where(netns, "link dump")
    sock = open_route_socket(netns)
    out: Dict[int, Tuple[str, int]] = {}
    try:
        _request(sock, RTM_GETLINK, struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 0, 0, 0, 0), 2)
        while True:
            data = sock.recv(RECV_SIZE)
            if not data:
                raise KernelReadError("netlink socket closed before the link dump ended",
                                      where=where)
            if _decode_links(data, out, where):
                return out
    except OSError as exc:
        raise KernelReadError(f"netlink link dump failed: {exc}", errno=exc.errno,
                              where=where) from exc
    finally:
        sock.close()


# ------------------------------------------------------------------------------ monitor


class RouteMonitor:
    """A non-blocking netlink socket subscribed to route changes of one family, opened
    before a dump so that routes touched during the dump can be re-checked."""

    def __init__(self, sock: socket.socket, family: int, table: int,
                 netns: Optional[str]) -> None:
        self.sock = sock
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
        self.sock.close()

    def __enter__(self) -> "RouteMonitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_monitor(family: int, netns: Optional[str] = None, table: int = 0) -> RouteMonitor:
    """Subscribe to route changes of ``family`` (4, 6, or 0 for both) in ``table`` (default
    0 = every table: a spurious touched key only costs a re-check). Open it BEFORE the dump
    it guards."""
    af = _family_af(family)
    groups = {socket.AF_INET: RTMGRP_IPV4_ROUTE, socket.AF_INET6: RTMGRP_IPV6_ROUTE,
              socket.AF_UNSPEC: RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE}[af]
    sock = open_route_socket(netns, groups=groups)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, MONITOR_RCVBUF)
    except OSError:  # not root: take what the sysctl allows
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MONITOR_RCVBUF)
        except OSError:
            pass
    sock.setblocking(False)
    return RouteMonitor(sock, 0 if af == socket.AF_UNSPEC else (4 if af == socket.AF_INET else 6),
                        table, netns)
