"""Bytes, files and sockets in, records out: the thin Python side of the parse core.

The work is done by the Cython ``Parser`` (built from ``src/_birdparse.pyx``); this module
only feeds it: whole buffers (``parse``), inputs of any size (``iter_records`` and
``record_batches``, the one feed loop every command uses; memory bounded by the chunk
size) and per-reply grouping (``parse_replies``). Files are opened by :mod:`.inputs`.
"""
from __future__ import annotations

import os
import socket
from typing import IO, Any, Iterator, List, Optional, Union, cast

from .errors import InputError, ParseError
from .inputs import CHUNK, Input, InputSpec, check_chunk_size, open_input
from .structs import Record, ReplyEnd

try:
    from ._birdparse import Parser
except ImportError as exc:  # no silent fallback: a slow path at 1M routes is a bug
    raise ImportError(
        "nodestatus._birdparse is not built; run `pip install .` (or "
        "`python setup.py build_ext --inplace`) to compile src/_birdparse.pyx"
    ) from exc

__all__ = ("Parser", "parse", "parse_replies", "iter_records", "record_batches")

Data = Union[bytes, bytearray, memoryview, str]


def _as_bytes(data: Any, what: str) -> Union[bytes, bytearray, memoryview]:
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    raise TypeError(f"{what}() takes the capture's bytes or text, not {type(data).__name__}; "
                    "for a file, a path or a stream use nodestatus.iter_records()")


def parse(
    data: Union[Data, IO[bytes], "os.PathLike[str]"],
    *,
    framing: Optional[str] = None,
    command: Optional[str] = None,
    source: Optional[str] = None,
) -> List[Record]:
    """Parse a whole capture (any framing, one or many replies) into records. ``data`` is
    the capture's bytes or text, or a binary file object / ``os.PathLike`` read through the
    input layer (gzip, bzip2, xz, zstd sniffed).

    Raises ``ParseError`` (``.partial`` = the records before the fault) or
    ``TruncatedReplyError`` when the last reply has no final line.
    """
    if isinstance(data, os.PathLike) or (hasattr(data, "read") and not isinstance(data, str)):
        return list(iter_records(data, framing=framing, command=command))  # type: ignore[arg-type]
    buf = _as_bytes(data, "parse")
    parser = Parser(framing=framing, command=command)
    out: List[Record] = []
    try:
        out = parser.feed(buf)  # a fresh list: kept, not copied (8 MB at 1M routes)
        out += parser.close()
    except ParseError as exc:
        exc.partial[:0] = out
        if source:
            exc.with_source(source)
        raise
    return out


def parse_replies(data: Data, **kw: Any) -> List[List[Record]]:
    """Like ``parse`` but grouped by reply: one list per reply of a pipelined session."""
    parser = Parser(reply_markers=True, **kw)
    replies: List[List[Record]] = []
    cur: List[Record] = []
    for rec in list(parser.feed(_as_bytes(data, "parse_replies"))) + list(parser.close()):
        if isinstance(rec, ReplyEnd):
            replies.append(cur)
            cur = []
        else:
            cur.append(rec)
    if cur:
        replies.append(cur)
    return replies


def record_batches(inp: Input, parser: Parser) -> Iterator[List[Record]]:
    """The one feed loop: ``inp``'s content through ``parser``, yielding the records each
    chunk completes. Errors name ``inp``; a read or decompression fault still hands over
    what the parser holds (``partial``), a cut reply is a ``TruncatedReplyError``."""
    try:
        while True:
            chunk = inp.read()                 # the input's own chunk size
            if not chunk:
                break
            recs = parser.feed(chunk)
            if recs:
                yield recs
        yield parser.close()
    except ParseError as exc:
        raise exc.with_source(inp.name)
    except InputError as exc:
        try:
            exc.partial.extend(parser.close())
        except ParseError as cut:
            exc.partial.extend(cut.partial)
        raise


def iter_records(
    stream: Union[InputSpec, socket.socket],
    *,
    framing: Optional[str] = None,
    command: Optional[str] = None,
    reply_markers: bool = False,
    chunk_size: int = CHUNK,
) -> Iterator[Record]:
    """Yield records as they complete from a path (``-`` = stdin; compression sniffed), a
    binary file object or a connected socket.

    Memory stays bounded by ``chunk_size`` plus one reply line. Errors are typed
    (``InputError``, ``ParseError``) and name the source; records yielded before an error
    stay valid.
    """
    check_chunk_size(chunk_size)
    parser = Parser(framing=framing, command=command, reply_markers=reply_markers)
    if isinstance(stream, socket.socket):
        with stream.makefile("rb", buffering=0) as f:
            inp = open_input(cast(IO[bytes], f), name=_socket_name(stream),
                             chunk_size=chunk_size)
            for batch in record_batches(inp, parser):
                yield from batch
        return
    with open_input(stream, chunk_size=chunk_size) as inp:
        for batch in record_batches(inp, parser):
            yield from batch


def _socket_name(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        peer = ""
    return str(peer) if peer else "<socket>"
