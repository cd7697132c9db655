"""BIRD's control socket: connect, read the banner, send commands, stream replies.

Each connection owns one parse-core ``Parser``, fed chunk by chunk as bytes arrive, so a
million-route reply is never buffered whole and BIRD 1.6's code carried over between
replies is understood. Timeouts: one for connecting and the banner, an idle timeout that
restarts with every chunk (a slow daemon streaming a big table is not cut off, a stalled
one is), and an optional deadline for everything asked on the connection (a daemon that
trickles a line now and then cannot hold a caller forever).
"""
from __future__ import annotations

import math
import re
import socket
import time
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Tuple

from ._birdparse import Parser
from .errors import (
    BirdClosedError,
    BirdReplyError,
    BirdTimeoutError,
    BirdUnreachableError,
    ParseError,
)
from .structs import Banner, ErrorReply, Record, ReplyEnd, is_bird2

if TYPE_CHECKING:
    from ._birdparse import _RouteSink

__all__ = ("BirdClient", "DEFAULT_SOCKETS", "find_socket")

#: Where Calico's calico-node puts BIRD's sockets, then Debian's defaults; per family.
DEFAULT_SOCKETS = {
    4: ("/var/run/calico/bird.ctl", "/var/run/bird/bird.ctl"),
    6: ("/var/run/calico/bird6.ctl", "/var/run/bird/bird6.ctl"),
}

# BIRD 1.6 answers these with two final lines (B16 rt_show; see bird-formats.md §1):
# a client would take the second half for the next command's reply.
_DOUBLE_FINAL_16 = re.compile(r"^\s*show\s+route\b.*\bfiltered\b.*\b(primary|export)\b"
                              r"|^\s*show\s+route\b.*\b(primary|export)\b.*\bfiltered\b")


def find_socket(family: int, candidates: Optional[Sequence[str]] = None) -> Optional[str]:
    """The first existing socket path for the family (Calico's path first), or None."""
    import os
    import stat

    for path in candidates or DEFAULT_SOCKETS[family]:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return path
        except OSError:
            continue
    return None


class BirdClient:
    """A connection to one BIRD daemon.

    >>> with BirdClient("/var/run/calico/bird.ctl") as bird:
    ...     status = bird.query("show status")
    """

    def __init__(
        self,
        path: str,
        *,
        connect_timeout: float = 5.0,
        idle_timeout: float = 30.0,
        deadline: Optional[float] = None,
        chunk_size: int = 1 << 16,
    ) -> None:
        for name, value in (("connect_timeout", connect_timeout),
                            ("idle_timeout", idle_timeout), ("deadline", deadline)):
            if value is not None and not (isinstance(value, (int, float))
                                          and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        self.path = path
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        #: seconds for everything asked on this connection, counted from connect()
        self.deadline = deadline
        self._until: Optional[float] = None
        self.chunk_size = chunk_size
        self.banner: Optional[Banner] = None
        self._sock: Optional[socket.socket] = None
        self._parser: Optional[Parser] = None
        self._pending: List[Record] = []

    # -- connection ------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """BIRD's version from the banner (``1.6.8``, ``v0.3.3+birdv1.6.8``, ``2.0.12``)."""
        return self.banner.version if self.banner else ""

    @property
    def is_bird2(self) -> bool:
        """BIRD 2+ is one daemon for both families (Calico's fork reports ``+birdv1.6.8``)."""
        return is_bird2(self.version)

    def connect(self) -> Banner:
        """Connect and read the ``0001`` banner."""
        if self._sock is not None:
            return self.banner  # type: ignore[return-value]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.path)
        except socket.timeout:
            sock.close()
            raise BirdTimeoutError(f"connect timed out after {self.connect_timeout}s",
                                   socket=self.path) from None
        except OSError as exc:
            sock.close()
            raise BirdUnreachableError(f"cannot connect: {exc.strerror or exc}",
                                       socket=self.path) from None
        self._sock = sock
        self._parser = Parser(framing="raw", reply_markers=True)
        self._pending = []
        now = time.monotonic()
        if self.deadline is not None:
            self._until = now + self.deadline
        banner_by = now + self.connect_timeout
        while self.banner is None:
            recs = self._read(deadline=banner_by, what="the banner")
            for i, rec in enumerate(recs):
                if isinstance(rec, Banner):
                    self.banner = rec
                elif isinstance(rec, ReplyEnd) and self.banner is not None:
                    self._pending = recs[i + 1:]
                    break
                elif not isinstance(rec, ReplyEnd):
                    self.close()
                    raise BirdUnreachableError(f"no BIRD banner, got {rec!r}", socket=self.path)
        return self.banner

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._parser = None

    def __enter__(self) -> "BirdClient":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- commands --------------------------------------------------------------------------

    def _check_command(self, command: str) -> bytes:
        if "\n" in command or "\r" in command:
            raise ValueError(f"one command per call, without newlines: {command!r}")
        if not self.is_bird2 and _DOUBLE_FINAL_16.search(command):
            raise ValueError(
                f"BIRD {self.version} answers {command!r} with two final lines; not sent")
        data = command.encode() + b"\n"
        if len(data) >= 4094:
            raise ValueError("command too long for BIRD (4094 bytes)")
        return data

    def stream(self, command: str, *, check: bool = True,
               sink: Optional["_RouteSink"] = None) -> Iterator[Record]:
        """Send one command and yield its reply's records as they arrive.

        With ``check`` a final 8xxx/9xxx reply raises ``BirdReplyError`` (its ``partial``
        holds the records yielded before it); otherwise it is yielded as an ``ErrorReply``.
        ``sink``: what the reply's routes become instead of Route records (a parse-core
        sink: Arrow columns, the FIB check's keys); they are not yielded then.
        """
        self.connect()
        self._send(self._check_command(command))
        if sink is None:
            yield from self._reply(command, check)
            return
        assert self._parser is not None
        default = self._parser.sink
        self._parser.sink = sink
        try:
            yield from self._reply(command, check)
        finally:
            if self._parser is not None:
                self._parser.sink = default

    def query(self, command: str, *, check: bool = True,
              sink: Optional["_RouteSink"] = None) -> List[Record]:
        """One command's whole reply."""
        return list(self.stream(command, check=check, sink=sink))

    def pipeline(self, commands: Sequence[str], *, check: bool = True) -> List[List[Record]]:
        """Send several commands at once and read their replies in order (BIRD parses the
        next command only after the previous reply is written, so replies never mix)."""
        self.connect()
        data = b"".join(self._check_command(c) for c in commands)
        self._send(data)
        return [list(self._reply(c, check)) for c in commands]

    def pipeline_iter(self, commands: Sequence[str], *, check: bool = True
                      ) -> Iterator[Tuple[str, Iterator[Record]]]:
        """Send several commands at once; yield ``(command, records)`` in order, each
        ``records`` streaming as it arrives (a route table is never held whole). An
        iterator the caller leaves unfinished is drained before the next one starts."""
        self.connect()
        self._send(b"".join(self._check_command(c) for c in commands))
        for c in commands:
            it = self._reply(c, check)
            yield c, it
            for _ in it:
                pass

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        self._sock.settimeout(self.idle_timeout)
        try:
            self._sock.sendall(data)
        except socket.timeout:
            raise BirdTimeoutError("send timed out", socket=self.path) from None
        except OSError as exc:
            self.close()
            raise BirdClosedError(f"send failed: {exc.strerror or exc}", socket=self.path) from None

    def _reply(self, command: str, check: bool) -> Iterator[Record]:
        got: List[Record] = []
        done = False
        try:
            while True:
                recs = self._read(what=f"the reply to {command!r}", partial=got)
                for i, rec in enumerate(recs):
                    if isinstance(rec, ReplyEnd):
                        self._pending = recs[i + 1:]   # the next pipelined reply's start
                        done = True
                        return
                    if check and isinstance(rec, ErrorReply) and rec.final:
                        # the parser ends the reply in the same feed(): ReplyEnd is next
                        self._pending = recs[i + 2:]
                        done = True
                        cls = BirdReplyError.for_code(rec.code)
                        raise cls(rec.code, rec.message, command=command, socket=self.path,
                                  partial=got)
                    got.append(rec)
                    yield rec
        finally:
            if not done:        # abandoned or failed mid-reply: the stream is out of step
                self.close()

    def _read(self, *, deadline: Optional[float] = None, what: str = "",
              partial: Optional[List[Record]] = None) -> List[Record]:
        """Records from buffered or newly received data (at least one, or an error)."""
        if self._pending:
            out, self._pending = self._pending, []
            return out
        sock, parser = self._sock, self._parser
        if sock is None or parser is None:
            raise BirdClosedError("connection is closed", socket=self.path)
        while True:
            timeout = self.idle_timeout
            if deadline is not None:
                timeout = max(0.0, deadline - time.monotonic())
            overall = False
            if self._until is not None and self._until - time.monotonic() < timeout:
                timeout, overall = max(0.0, self._until - time.monotonic()), True
            sock.settimeout(timeout)
            try:
                chunk = sock.recv(self.chunk_size)
            except socket.timeout:
                self.close()
                if overall:
                    raise BirdTimeoutError(f"no complete answer within the {self.deadline:g}s "
                                           f"deadline while reading {what}",
                                           socket=self.path) from None
                raise BirdTimeoutError(f"no data for {timeout:.1f}s while reading {what}",
                                       socket=self.path) from None
            except OSError as exc:
                self.close()
                raise BirdClosedError(f"read failed: {exc.strerror or exc}", socket=self.path,
                                      partial=partial) from None
            if not chunk:
                self.close()
                try:
                    tail = parser.close()
                except ParseError as exc:
                    tail = exc.partial
                raise BirdClosedError(f"connection closed by BIRD while reading {what}",
                                      socket=self.path,
                                      partial=(partial or []) + [r for r in tail
                                                                 if not isinstance(r, ReplyEnd)])
            try:
                recs = parser.feed(chunk)
            except ParseError as exc:
                self.close()
                exc.with_source(self.path)
                raise
            if recs:
                return recs
