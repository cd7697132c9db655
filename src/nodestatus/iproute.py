"""``ip -j route show`` JSON → ``KernelRoute`` records: the kernel's side of a capture folder.

iproute2 prints one JSON array of route objects (``ip -j route show [table all]``, see
``tests/data/captures/calico-lab-node1/kernel4.json``). ``parse_ip_json`` decodes a whole
buffer; ``iter_ip_json`` streams a file of any size in batches, cutting the array between
its top-level objects, so a dump of a million kernel routes is never held whole.
Plain-text ``ip route`` output is recognised (``looks_like_ip_text``) only to be reported
as unsupported by the batch engine.
"""
from __future__ import annotations

import re
from typing import IO, Iterator, List, Optional, Tuple, Union

import msgspec

from .errors import ParseError

__all__ = ("KernelNexthop", "KernelRoute", "parse_ip_json", "iter_ip_json",
           "looks_like_ip_json", "looks_like_ip_text")


class KernelNexthop(msgspec.Struct, frozen=True, gc=False):
    """One ``nexthops`` entry of a multipath kernel route."""

    gateway: Optional[str] = None
    dev: Optional[str] = None
    weight: Optional[int] = None


class _IpRoute(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The fields of one ``ip -j route show`` object (decoded without a tag: iproute2
    has no "record" key)."""

    dst: str
    type: str = "unicast"
    gateway: Optional[str] = None
    dev: Optional[str] = None
    protocol: Optional[str] = None
    metric: Optional[int] = None
    table: Union[str, int, None] = None
    scope: Optional[str] = None
    prefsrc: Optional[str] = None
    flags: Tuple[str, ...] = ()
    nexthops: Tuple[KernelNexthop, ...] = ()


class KernelRoute(_IpRoute, tag="kernel_route", tag_field="record"):
    """One route object of ``ip -j route show``; absent keys are None (``type`` unicast).

    ``table`` is what iproute2 printed: a name (``local``) or, for an unnamed table, its
    number; the main table has no ``table`` key, so it is None."""


_DECODE = msgspec.json.Decoder(List[_IpRoute]).decode
_FIELDS = _IpRoute.__struct_fields__


def _convert(rows: List[_IpRoute]) -> List[KernelRoute]:
    return [KernelRoute(**{f: getattr(r, f) for f in _FIELDS}) for r in rows]


def parse_ip_json(data: Union[bytes, bytearray, memoryview, str]) -> List[KernelRoute]:
    """Decode a whole ``ip -j route show`` document. Raises ``ParseError`` if it is not one."""
    try:
        return _convert(_DECODE(data))
    except msgspec.DecodeError as exc:
        raise ParseError(f"not an `ip -j route` JSON array: {exc}", line=1) from None


def looks_like_ip_json(head: bytes) -> bool:
    """First bytes of a file: a JSON array of objects (or an empty one). BIRD output never
    starts with ``[``."""
    s = head.lstrip()
    if not s.startswith(b"["):
        return False
    rest = s[1:].lstrip()
    return rest[:1] in (b"{", b"]", b"")


_IP_TEXT = re.compile(
    rb"(?:(?:unicast|blackhole|unreachable|prohibit|local|broadcast|anycast|multicast|throw"
    rb"|nat)\s+)?(?:default|[0-9a-fA-F.:]+(?:/\d+)?)\s+"
    rb"(?:via|dev|proto|table|scope|metric|src|nhid)\s")


def looks_like_ip_text(head: bytes) -> bool:
    """First line of plain ``ip route`` output (BIRD's route lines carry ``[proto time]``)."""
    line = head.lstrip(b"\n").split(b"\n", 1)[0]
    return bool(_IP_TEXT.match(line)) and b"[" not in line


# A string (whole), a lone quote (a string cut by the chunk end), or a brace.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|"|[{}]', re.S)


def iter_ip_json(stream: IO[bytes], *, chunk_size: int = 1 << 16,
                 batch: int = 4096) -> Iterator[List[KernelRoute]]:
    """Yield lists of ``KernelRoute`` from a stream holding one ``ip -j route`` array.

    The top-level objects are cut out by brace depth (strings skipped) and decoded a batch
    at a time; memory holds one chunk plus one batch. Errors are ``ParseError`` with the
    byte offset of the object that failed."""
    buf = b""
    base = 0  # file offset of buf[0]
    depth = 0
    start = -1  # offset in buf of the current top-level object
    pos = 0
    objs: List[bytes] = []
    first = True
    last = b""
    while True:
        chunk = stream.read(chunk_size)
        if chunk:
            buf += chunk
            tail = chunk.rstrip()
            if tail:
                last = tail[-1:]
        if first and buf.strip():
            if not buf.lstrip().startswith(b"["):
                raise ParseError("not an `ip -j route` JSON array", line=1)
            first = False
        end = len(buf)
        while pos < end:
            m = _TOKENS.search(buf, pos)
            if m is None:
                pos = end
                break
            tok = m.group()
            if tok == b'"':  # unterminated string: wait for more bytes
                if not chunk:
                    raise ParseError("unterminated string in `ip -j route` JSON", line=1,
                                     offset=base + m.start())
                break
            pos = m.end()
            if tok == b"{":
                if depth == 0:
                    start = m.start()
                depth += 1
            elif tok == b"}":
                depth -= 1
                if depth == 0:
                    objs.append(buf[start:pos])
                    start = -1
                elif depth < 0:
                    raise ParseError("unbalanced `}` in `ip -j route` JSON", line=1,
                                     offset=base + m.start())
        if len(objs) >= batch or (not chunk and objs):
            yield _decode_batch(objs, base)
            objs = []
        keep = start if start >= 0 else pos
        if keep:
            base += keep
            buf = buf[keep:]
            pos -= keep
            if start >= 0:
                start = 0
        if not chunk:
            break
    if depth or last != b"]":
        raise ParseError("`ip -j route` JSON ends before its closing `]` (truncated)",
                         line=1, offset=base + len(buf))


def _decode_batch(objs: List[bytes], base: int) -> List[KernelRoute]:
    try:
        return _convert(_DECODE(b"[" + b",".join(objs) + b"]"))
    except msgspec.DecodeError as exc:
        raise ParseError(f"bad route object in `ip -j route` JSON: {exc}", line=1,
                         offset=base) from None
