"""Typed errors. Every message ends with where it happened: `` - at FILE:LINE (byte N)``."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

__all__: Tuple[str, ...] = (
    "NodeStatusError",
    "InputError",
    "ParseError",
    "TruncatedReplyError",
    "UnsupportedFormatError",
    "SpecError",
    "BirdError",
    "BirdConnectionError",
    "BirdUnreachableError",
    "BirdTimeoutError",
    "BirdClosedError",
    "BirdReplyError",
)


class NodeStatusError(Exception):
    """Base of every error nodestatus raises on purpose."""


class InputError(NodeStatusError, ValueError):
    """An input that cannot be used: unreadable, cut or broken compression, not a capture of
    the kind asked for. ``source`` names it (a path, ``<stdin>``, a socket), ``line`` and
    ``offset`` the place (0 and None when unknown), and ``partial`` holds every record read
    before the fault, so nothing good is lost."""

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        offset: Optional[int] = None,
        source: Optional[str] = None,
        partial: Optional[List[Any]] = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.offset = offset
        self.source = source
        self.partial: List[Any] = list(partial or ())
        super().__init__(self._text())

    def _text(self) -> str:
        where = self.source or "input"
        if self.line:
            where = f"{where}:{self.line}" if self.source else f"line {self.line}"
        byte = f" (byte {self.offset})" if self.offset is not None else ""
        return f"{self.reason} - at {where}{byte}"

    def with_source(self, source: str) -> "InputError":
        """Name the input the bytes came from (the parse core only sees bytes)."""
        self.source = source
        self.args = (self._text(),)
        return self

    def problem(self) -> str:
        """``source:line: reason (byte N)``: the one-line form batch commands print."""
        byte = f" (byte {self.offset})" if self.offset is not None else ""
        return f"{self.source or 'input'}:{self.line}: {self.reason}{byte}"

    def __reduce__(self):  # keep the fields across process boundaries (batch --jobs)
        return (_rebuild, (type(self), self.reason, self.line, self.offset, self.source,
                           self.partial))


def _rebuild(cls, reason, line, offset, source, partial):
    return cls(reason, line=line, offset=offset, source=source, partial=partial)


class ParseError(InputError):
    """Input that is not what BIRD prints (or a stream that stops mid-way)."""

    offset: int      # the byte where the line at fault starts: always known here

    def __init__(self, message: str, *, line: int = 0, offset: Optional[int] = 0,
                 source: Optional[str] = None, partial: Optional[List[Any]] = None) -> None:
        super().__init__(message, line=line, offset=offset, source=source, partial=partial)


class TruncatedReplyError(ParseError):
    """The input ended inside a reply (no final ``DDDD `` line): the data is incomplete."""


class UnsupportedFormatError(ParseError):
    """A reply whose format this parser does not know (asked for with ``strict=True``)."""


class SpecError(NodeStatusError, ValueError):
    """A CalicoNodeStatus that Calico would reject; ``field`` names the bad field."""

    def __init__(self, field: str, message: str, *, source: str = "") -> None:
        self.field = field
        self.source = source
        where = f" - at {source}" if source else ""
        super().__init__(f"{field}: {message}{where}")


# --------------------------------------------------------------------------- talking to BIRD


class BirdError(NodeStatusError):
    """BIRD could not be asked, or answered with an error: the base of
    :class:`BirdConnectionError` and :class:`BirdReplyError`."""


class BirdConnectionError(BirdError, ConnectionError):
    """The control socket could not be used; ``socket`` names it."""

    def __init__(self, message: str, *, socket: str = "") -> None:
        self.socket = socket
        super().__init__(f"{message} - at {socket}" if socket else message)


class BirdUnreachableError(BirdConnectionError):
    """Nothing listens on the socket path (missing file, refused, permission denied)."""


class BirdTimeoutError(BirdConnectionError, TimeoutError):
    """Connect, banner or an idle read took longer than allowed."""


class BirdClosedError(BirdConnectionError):
    """BIRD closed the connection in the middle of a reply: what came is incomplete.

    ``partial`` holds the records of the cut reply."""

    def __init__(self, message: str, *, socket: str = "", partial=None) -> None:
        self.partial = list(partial or ())
        super().__init__(message, socket=socket)


_REPLY_ERRORS: dict = {}


class BirdReplyError(BirdError):
    """BIRD answered with an error reply (8xxx/9xxx). One subclass per known code, found
    with :meth:`for_code`, in the way asyncpg keys its errors by SQLSTATE."""

    code: Optional[int] = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.code is not None:
            _REPLY_ERRORS[cls.code] = cls

    def __init__(self, code: Optional[int], message: str, *, command: str = "",
                 socket: str = "", partial=None) -> None:
        self.code = code
        self.message = message
        self.command = command
        self.socket = socket
        self.partial = list(partial or ())
        where = f" - at {socket}" if socket else ""
        what = f" to {command!r}" if command else ""
        super().__init__(f"BIRD error {code}{what}: {message}{where}")

    @staticmethod
    def for_code(code: Optional[int]) -> type:
        return _REPLY_ERRORS.get(code, BirdReplyError)


class LineOverflowError(BirdReplyError):
    code = 8000


class NetworkNotFoundError(BirdReplyError):
    code = 8001


class ConfigurationError(BirdReplyError):
    code = 8002


class NoProtocolsMatchError(BirdReplyError):
    code = 8003


class StoppedByReconfigurationError(BirdReplyError):
    code = 8004


class ProtocolDownError(BirdReplyError):
    code = 8005


class AccessDeniedError(BirdReplyError):
    code = 8007


class CommandTooLongError(BirdReplyError):
    code = 9000


class CommandSyntaxError(BirdReplyError):
    code = 9001


class NotAProtocolError(BirdReplyError):
    code = 9002


# --------------------------------------------------------------------------- the kernel table


class KernelReadError(NodeStatusError):
    """The kernel's route table could not be read: a netlink socket error, an error
    answer to the dump, or bytes that are not well-formed rtnetlink (``offset`` is the
    byte in the received buffer, ``message_offset`` where that netlink message starts).
    ``where`` names the socket/netns once known; ``errno`` is set for kernel errors."""

    def __init__(self, message: str, *, offset: Optional[int] = None,
                 message_offset: Optional[int] = None, errno: Optional[int] = None,
                 where: str = "") -> None:
        self.reason = message
        self.offset = offset
        self.message_offset = message_offset
        self.errno = errno
        self.where = where
        super().__init__(self._text())

    def _text(self) -> str:
        where = self.where or "netlink buffer"
        byte = f" (byte {self.offset})" if self.offset is not None else ""
        return f"{self.reason} - at {where}{byte}"

    def with_where(self, where: str) -> "KernelReadError":
        """Name the socket / namespace / table the bytes came from (the decoder only sees bytes)."""
        self.where = where
        self.args = (self._text(),)
        return self

    def __reduce__(self):
        return (_rebuild_kernel, (type(self), self.reason, self.offset, self.message_offset,
                                  self.errno, self.where))


def _rebuild_kernel(cls, reason, offset, message_offset, errno, where):
    return cls(reason, offset=offset, message_offset=message_offset, errno=errno, where=where)


# --------------------------------------------------------------------------- datastores
# Raised by nodestatus.sinks (etcd, Kubernetes) and by the agent's --selector. Re-exported
# from nodestatus.sinks, where they were first defined.

__all__ += ("SinkError", "ConflictError", "NotFoundError", "TooLargeError",
            "WatchExpiredError", "SelectorError")


class SinkError(NodeStatusError):
    """The datastore failed (unreachable, refused, timed out): retried with backoff."""


class ConflictError(SinkError):
    """Someone changed the resource since we read it: re-read, rebuild and write again."""


class NotFoundError(SinkError):
    """The resource is gone (a read confirmed it)."""


class TooLargeError(SinkError):
    """The datastore refused the write for its size (etcd: request too large)."""


class WatchExpiredError(SinkError):
    """The watch cannot resume from the given version (compacted / too old): list again."""


class SelectorError(NodeStatusError, ValueError):
    """A label selector that Kubernetes would reject; ``position`` is the character where
    the problem is (0-based)."""

    def __init__(self, message: str, *, selector: str = "", position: int = 0) -> None:
        self.reason = message
        self.selector = selector
        self.position = position
        super().__init__(f"{message} - at character {position + 1} of {selector!r}")
