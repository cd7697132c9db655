"""Typed errors. Every message ends with where it happened: `` - at FILE:LINE (byte N)``."""
from __future__ import annotations

from typing import Any, List, Optional

__all__ = (
    "NodeStatusError",
    "ParseError",
    "TruncatedReplyError",
    "UnsupportedFormatError",
)


class NodeStatusError(Exception):
    """Base of every error nodestatus raises on purpose."""


class ParseError(NodeStatusError, ValueError):
    """Input that is not what BIRD prints.

    ``partial`` holds every record parsed before the fault, so nothing good is lost.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        offset: int = 0,
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
        where = f"{self.source}:{self.line}" if self.source else f"line {self.line}"
        return f"{self.reason} - at {where} (byte {self.offset})"

    def with_source(self, source: str) -> "ParseError":
        """Name the file the bytes came from (the core only sees bytes)."""
        self.source = source
        self.args = (self._text(),)
        return self

    def __reduce__(self):  # keep the fields across process boundaries (batch --jobs)
        return (_rebuild, (type(self), self.reason, self.line, self.offset, self.source, self.partial))


def _rebuild(cls, reason, line, offset, source, partial):
    return cls(reason, line=line, offset=offset, source=source, partial=partial)


class TruncatedReplyError(ParseError):
    """The input ended inside a reply (no final ``DDDD `` line): the data is incomplete."""


class UnsupportedFormatError(ParseError):
    """A reply whose format this parser does not know (asked for with ``strict=True``)."""
