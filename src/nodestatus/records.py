"""Bytes, files and sockets in, records out: the thin Python side of the parse core.

The work is done by the Cython ``Parser`` (built from ``src/_birdparse.pyx``); this module
only feeds it: whole buffers (``parse``), streams of any size (``iter_records``, memory
bounded by the chunk size) and per-reply grouping (``parse_replies``).
"""
from __future__ import annotations

import gzip
import os
import socket
from typing import IO, Iterator, List, Optional, Union

from .errors import ParseError
from .structs import Record, ReplyEnd

try:
    from ._birdparse import Parser
except ImportError as exc:  # no silent fallback: a slow path at 1M routes is a bug
    raise ImportError(
        "nodestatus._birdparse is not built; run `pip install .` (or "
        "`python setup.py build_ext --inplace`) to compile src/_birdparse.pyx"
    ) from exc

__all__ = ("Parser", "parse", "parse_replies", "iter_records", "open_capture")

CHUNK = 1 << 16
Data = Union[bytes, bytearray, memoryview, str]


def parse(
    data: Data,
    *,
    framing: Optional[str] = None,
    command: Optional[str] = None,
    source: Optional[str] = None,
) -> List[Record]:
    """Parse a whole capture (any framing, one or many replies) into records.

    Raises ``ParseError`` (``.partial`` = the records before the fault) or
    ``TruncatedReplyError`` when the last reply has no final line.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    parser = Parser(framing=framing, command=command)
    out: List[Record] = []
    try:
        out = parser.feed(data)  # a fresh list: kept, not copied (8 MB at 1M routes)
        out += parser.close()
    except ParseError as exc:
        exc.partial[:0] = out
        if source:
            exc.with_source(source)
        raise
    return out


def parse_replies(data: Data, **kw) -> List[List[Record]]:
    """Like ``parse`` but grouped by reply: one list per reply of a pipelined session."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    parser = Parser(reply_markers=True, **kw)
    replies: List[List[Record]] = []
    cur: List[Record] = []
    for rec in list(parser.feed(data)) + list(parser.close()):
        if isinstance(rec, ReplyEnd):
            replies.append(cur)
            cur = []
        else:
            cur.append(rec)
    if cur:
        replies.append(cur)
    return replies


def open_capture(path: Union[str, os.PathLike]) -> IO[bytes]:
    """Open a capture file, un-gzipping transparently (sniffed by magic, not by name)."""
    f = open(path, "rb")
    if f.peek(2)[:2] == b"\x1f\x8b":  # type: ignore[attr-defined]
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    return f


def iter_records(
    stream: Union[IO[bytes], socket.socket, str, os.PathLike],
    *,
    framing: Optional[str] = None,
    command: Optional[str] = None,
    reply_markers: bool = False,
    chunk_size: int = CHUNK,
) -> Iterator[Record]:
    """Yield records as they complete from a file object, a path (gzip allowed) or a socket.

    Memory stays bounded by ``chunk_size`` plus one reply line. Errors carry the source
    name when one is known; records yielded before an error stay valid.
    """
    source: Optional[str] = None
    close_after = False
    if isinstance(stream, (str, os.PathLike)):
        source = os.fspath(stream)
        stream = open_capture(stream)
        close_after = True
    else:
        source = getattr(stream, "name", None) if not isinstance(stream, socket.socket) else None
        if not isinstance(source, str):
            source = None
    read = stream.recv if isinstance(stream, socket.socket) else stream.read
    parser = Parser(framing=framing, command=command, reply_markers=reply_markers)
    try:
        while True:
            chunk = read(chunk_size)
            if not chunk:
                break
            yield from parser.feed(chunk)
        yield from parser.close()
    except ParseError as exc:
        if source:
            exc.with_source(source)
        raise
    finally:
        if close_after:
            stream.close()  # type: ignore[union-attr]
