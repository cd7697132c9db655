"""``ip -j route show`` JSON → ``KernelRoute`` records: the kernel's side of a capture folder.

iproute2 prints one JSON array of route objects (``ip -j route show [table all]``, see
``tests/data/captures/calico-lab-node1/kernel4.json``). ``parse_ip_json`` decodes a whole
buffer; ``iter_ip_json`` streams a file of any size in batches, cutting the array between
its top-level objects, so a dump of a million kernel routes is never held whole.
Plain-text ``ip route`` output is recognised (``looks_like_ip_text``) only to be reported
as unsupported by the batch engine. ``kernel_tables`` packs captured tables for an offline
FIB check.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import msgspec

from .errors import ParseError
from .inputs import IP_JSON, Reader, open_input, sniff
from .structs import address_family

if TYPE_CHECKING:
    from . import _rtnl
    from .kernel import KernelTable

__all__ = ("KernelNexthop", "KernelRoute", "parse_ip_json", "iter_ip_json",
           "looks_like_ip_json", "looks_like_ip_text", "kernel_tables")


class KernelNexthop(msgspec.Struct, omit_defaults=True, frozen=True, gc=False):
    """One ``nexthops`` entry of a multipath kernel route."""

    gateway: Optional[str] = None
    dev: Optional[str] = None
    weight: Optional[int] = None


class _IpRoute(msgspec.Struct, omit_defaults=True, frozen=True, gc=False, kw_only=True):
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


class KernelRoute(_IpRoute, frozen=True, tag="kernel_route", tag_field="record"):
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


def iter_ip_json(stream: Reader, *, chunk_size: int = 1 << 16,
                 batch: int = 4096) -> Iterator[List[KernelRoute]]:
    """Yield lists of ``KernelRoute`` from a stream holding one ``ip -j route`` array.

    The top-level objects are cut out by brace depth (strings skipped) and decoded a batch
    at a time; memory holds one chunk plus one batch. Errors are ``ParseError`` with the
    byte offset of the object that failed, naming the stream (its ``name``) when it has one."""
    try:
        yield from _ip_json_batches(stream, chunk_size, batch)
    except ParseError as exc:
        name = getattr(stream, "name", None)
        if isinstance(name, str):
            raise exc.with_source(name)
        raise


def _ip_json_batches(stream: Reader, chunk_size: int,
                     batch: int) -> Iterator[List[KernelRoute]]:
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


# --------------------------------------------------------------------------- the FIB check

#: ``ip route``'s names of the main tables (others are printed by number).
_TABLE_IDS = {"main": 254, "local": 255, "default": 253}


def _number(value: Union[str, int, None], names: dict, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    return names.get(value, -1)


def kernel_tables(paths: Sequence[str], names: Dict[str, int], table: int = 254,
                  family: Optional[int] = None) -> Dict[int, "KernelTable"]:
    """Captured ``ip -j route show`` files (any compression, ``-``, FIFOs: read once each)
    -> the FIB check's packed kernel tables, per family, for ``table``. Interfaces get
    indexes from ``names`` (shared with BIRD's side, so both agree on them). A route's
    family is its destination's; a file with no routes at all belongs to ``family`` (say
    which with ``--family``, since nothing else can)."""
    from . import _rtnl
    from .kernel import KernelTable

    packed: Dict[int, "_rtnl.PackedTable"] = {}
    counts: Dict[int, int] = {}
    for path in paths:
        rows = 0
        with open_input(path) as inp:
            kind = sniff(inp.peek())
            if kind != IP_JSON:
                raise ParseError(f"not an `ip -j route show` JSON array ({kind} content)",
                                 line=1, source=inp.name)
            try:
                for batch in iter_ip_json(inp):
                    for r in batch:
                        rows += 1
                        _pack_row(r, names, table, packed, counts, _rtnl)
            except ValueError as exc:       # a field the packer refuses (bad address …)
                raise ParseError(f"bad route in `ip -j route` JSON: {exc}", line=1,
                                 source=inp.name) from None
        if rows == 0:
            if family is None:
                raise ParseError("holds no routes, so its address family is unknown: say "
                                 "--family 4 or 6", line=1, source=path)
            packed.setdefault(family, _rtnl.PackedTable())
            counts.setdefault(family, 0)
    return {f: KernelTable(family=f, table=table, netns=None, routes=routes,
                           n_routes=counts[f], links={}, bytes=0, seconds=0.0)
            for f, routes in packed.items()}


def _pack_row(r: KernelRoute, names: Dict[str, int], table: int,
              packed: Dict[int, "_rtnl.PackedTable"], counts: Dict[int, int], _rtnl) -> None:
    if _number(r.table, _TABLE_IDS, 254) != table:
        return
    rtype = _rtnl.RTN_IDS.get("prohibit" if r.type == "prohibited" else r.type)
    if rtype is None or rtype in (2, 3, 4, 5):     # local/broadcast/anycast/multicast
        return
    dst = r.dst
    if dst == "default":
        fam = address_family(r.gateway or (r.nexthops[0].gateway if r.nexthops else "") or
                             r.prefsrc or "")
        dst = "0.0.0.0/0" if fam == 4 else "::/0"
    elif "/" not in dst:
        dst += "/128" if address_family(dst) == 6 else "/32"
    hops = []
    if rtype == 1:
        for h in r.nexthops or (KernelNexthop(r.gateway, r.dev, None),):
            oif = names.setdefault(h.dev, len(names) + 1) if h.dev else 0
            hops.append((h.gateway, oif, h.weight or 1))
    flags = (_rtnl.FLAG_LINKDOWN if "linkdown" in r.flags else 0) | \
        (_rtnl.FLAG_ONLINK if "onlink" in r.flags else 0)
    key, value = _rtnl.pack_expected(
        dst, rtype, hops, protocol=_number(r.protocol, _rtnl.RTPROT_IDS, 3) & 0xFF,
        metric=r.metric or 0, flags=flags)
    fam = _rtnl.key_family(key)
    if fam not in packed:
        packed[fam] = _rtnl.PackedTable()
    counts[fam] = counts.get(fam, 0) + packed[fam].add(key, value)
