"""Every input nodestatus reads comes through here, once and streaming.

Files, folders (walked), ``-`` (stdin), pipes, FIFOs, process substitutions (``<(…)``) and
binary file objects are read chunk by chunk and never re-opened or re-read, so a FIFO works
like a file. Compression is sniffed from the first bytes, whatever the name says: gzip,
bzip2, xz and zstd (zstd through the ``zstandard`` package, the ``[zstd]`` extra). Every
OS, decompression and content problem becomes an :class:`~nodestatus.errors.InputError`
that names the input and the byte, so commands need no error handling of their own.
"""
from __future__ import annotations

import bz2
import io
import lzma
import os
import stat
import sys
import zlib
from typing import IO, Any, Callable, List, Optional, Protocol, Tuple, Union

from .errors import InputError

__all__ = ("STDIN", "CHUNK", "Input", "InputSpec", "Reader", "open_input", "expand_paths",
           "sniff", "require_bird", "check_chunk_size")

STDIN = "-"
CHUNK = 1 << 16
#: Largest piece one decompressor call may produce: a compression bomb streams, it never
#: lands in memory whole.
_MAX_OUT = 4 * CHUNK

InputSpec = Union[str, "os.PathLike[str]", IO[bytes]]


class Reader(Protocol):
    """What the readers past this layer take: an opened :class:`Input` (or any binary
    file) whose ``read(n)`` returns bytes, b"" at the end."""

    def read(self, __n: int) -> bytes: ...


# --------------------------------------------------------------------------- decompression


class _Stream:
    """Incremental decompression of one format, concatenated streams included (``cat a.gz
    b.gz`` is a valid gzip file; so are ``pbzip2`` and multi-stream xz output)."""

    name = ""
    magic = b""

    def __init__(self) -> None:
        self.d = self.new()
        self.done = False           # the current stream reached its end marker

    def new(self) -> Any:
        raise NotImplementedError

    def decompress(self, data: bytes) -> bytes:
        """Output for ``data`` (b"" = continue with what is pending). At most ``_MAX_OUT``
        bytes per call where the format allows; ``pending`` says whether more is buffered."""
        if self.done:
            data = data.lstrip(b"\0")          # padding between or after streams
            if not data:
                return b""
            if not data.startswith(self.magic):
                raise ValueError(f"{len(data)} bytes after the end of the {self.name} data "
                                 "are not another stream")
            self.d, self.done = self.new(), False
        out = self._step(data)
        if self.d.eof:
            self.done = True
            rest = self.d.unused_data
            if rest:
                out += self.decompress(rest)
        return out

    def _step(self, data: bytes) -> bytes:
        return self.d.decompress(data, _MAX_OUT)

    @property
    def pending(self) -> bool:
        return not self.done and not getattr(self.d, "needs_input", True)


class _Gzip(_Stream):
    name, magic = "gzip", b"\x1f\x8b"

    def new(self) -> Any:
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _step(self, data: bytes) -> bytes:
        return self.d.decompress(self.d.unconsumed_tail + data, _MAX_OUT)

    @property
    def pending(self) -> bool:
        return not self.done and bool(self.d.unconsumed_tail)


class _Bzip2(_Stream):
    name, magic = "bzip2", b"BZh"

    def new(self) -> Any:
        return bz2.BZ2Decompressor()


class _Xz(_Stream):
    name, magic = "xz", b"\xfd7zXZ\x00"

    def new(self) -> Any:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


class _Zstd(_Stream):
    name, magic = "zstd", b"\x28\xb5\x2f\xfd"

    def new(self) -> Any:
        import zstandard  # optional: the [zstd] extra

        return zstandard.ZstdDecompressor().decompressobj()

    def _step(self, data: bytes) -> bytes:
        return self.d.decompress(data)

    @property
    def pending(self) -> bool:
        return False


_FORMATS = (_Gzip, _Bzip2, _Xz, _Zstd)
_MAGIC_MAX = max(len(f.magic) for f in _FORMATS)
_DECOMPRESS_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError)


# --------------------------------------------------------------------------- one input


class Input:
    """One opened input. ``read(n)`` returns up to ``n`` bytes of content (decompressed),
    b"" at the end; ``peek()`` the first chunk without consuming it. ``name`` is what
    messages call it; ``offset`` how many content bytes were handed out; ``compression``
    the format sniffed (None when plain)."""

    def __init__(self, raw: Any, name: str, *, owned: bool, chunk_size: int = CHUNK) -> None:
        self.name = name
        self.offset = 0
        self.raw_offset = 0             # bytes read from the file as stored
        self.compression: Optional[str] = None
        self._raw = raw
        self._owned = owned
        self._chunk = chunk_size
        self._buf = b""
        self._eof = False
        self._stream: Optional[_Stream] = None
        self._sniffed = False

    # -- reading ---------------------------------------------------------------------------

    def _read_raw(self) -> bytes:
        try:
            data = self._raw.read(self._chunk)
        except OSError as exc:
            raise InputError(f"read failed: {exc.strerror or exc}", source=self.name,
                             offset=self.raw_offset) from None
        if data is None:                 # a non-blocking file object with nothing ready
            data = b""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{self.name}: the file object returned {type(data).__name__}, "
                            "not bytes: open it in binary mode ('rb')")
        self.raw_offset += len(data)
        return bytes(data)

    def _sniff(self) -> bytes:
        """Read until the magic bytes can be judged; pick the decompressor."""
        self._sniffed = True
        head = b""
        while len(head) < _MAGIC_MAX:
            data = self._read_raw()
            if not data:
                break
            head += data
        for fmt in _FORMATS:
            if head.startswith(fmt.magic):
                try:
                    self._stream = fmt()
                except ImportError:
                    raise InputError(f"{fmt.name}-compressed: reading it needs the zstandard "
                                     "package (pip install 'nodestatus[zstd]')",
                                     source=self.name, offset=0) from None
                self.compression = fmt.name
                return self._inflate(head)
        if not head:
            self._eof = True
        return head

    def _inflate(self, data: bytes) -> bytes:
        assert self._stream is not None
        try:
            return self._stream.decompress(data)
        except _DECOMPRESS_ERRORS as exc:
            raise InputError(f"broken {self._stream.name} data: {exc}", source=self.name,
                             offset=self.raw_offset) from None

    def _more(self) -> bytes:
        """The next piece of content (b"" at the end)."""
        if not self._sniffed:
            return self._sniff()
        if self._stream is None:
            data = self._read_raw()
            if not data:
                self._eof = True
            return data
        while True:
            if self._stream.pending:
                out = self._inflate(b"")
            else:
                raw = self._read_raw()
                if not raw:
                    self._eof = True
                    if not self._stream.done:
                        raise InputError(
                            f"{self._stream.name} data is cut short: the file ends before the "
                            f"end of the compressed stream (truncated after {self.offset} bytes "
                            "of content)", source=self.name, offset=self.raw_offset)
                    return b""
                out = self._inflate(raw)
            if out:
                return out

    def read(self, n: Optional[int] = None) -> bytes:
        """Up to ``n`` bytes of content (default: the ``chunk_size`` the input was opened
        with); b"" only at the end."""
        if n is None:
            n = self._chunk
        while not self._buf and not self._eof:
            self._buf = self._more()
        out, self._buf = self._buf[:n], self._buf[n:]
        self.offset += len(out)
        return out

    def read_all(self, limit: int = 64 << 20) -> bytes:
        """The whole content, for small documents (a resource file); InputError past
        ``limit`` bytes."""
        parts: List[bytes] = []
        while True:
            chunk = self.read(CHUNK)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            if self.offset > limit:
                raise InputError(f"larger than {limit} bytes: not a document this reads whole",
                                 source=self.name, offset=limit)

    def peek(self) -> bytes:
        """The first chunk of content, left in place for ``read``."""
        while not self._buf and not self._eof:
            self._buf = self._more()
        return self._buf

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        if self._owned:
            self._raw.close()

    def __enter__(self) -> "Input":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_chunk_size(chunk_size: object) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an int, not {type(chunk_size).__name__}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return chunk_size


def open_input(src: InputSpec, *, name: Optional[str] = None,
               chunk_size: int = CHUNK) -> Input:
    """Open a path (``-`` = stdin; FIFOs and ``/dev/fd/N`` too) or take a binary file
    object. Raises :class:`InputError` naming the path when it cannot be read, and
    ``TypeError`` for anything that is not an input."""
    check_chunk_size(chunk_size)
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not isinstance(path, str):
            raise TypeError(f"paths are str, not {type(path).__name__}")
        if path == STDIN:
            return Input(sys.stdin.buffer, name or "<stdin>", owned=False,
                         chunk_size=chunk_size)
        label = name or path
        try:
            f = open(path, "rb", buffering=0)
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror or exc}", source=label) from None
        try:
            mode = os.fstat(f.fileno()).st_mode
        except OSError as exc:
            f.close()
            raise InputError(f"cannot open: {exc.strerror or exc}", source=label) from None
        if stat.S_ISDIR(mode):
            f.close()
            raise InputError("is a directory, not a capture file", source=label)
        return Input(f, label, owned=True, chunk_size=chunk_size)
    if isinstance(src, (bytes, bytearray, memoryview)):
        raise TypeError("open_input takes a path or a binary file object; for bytes in "
                        "memory use nodestatus.parse()")
    read = getattr(src, "read", None)
    if not callable(read):
        raise TypeError(f"expected a path, '-' or a binary file object, not "
                        f"{type(src).__name__}")
    if isinstance(src, io.TextIOBase):
        raise TypeError("the file object is in text mode: open it in binary mode ('rb')")
    given = name or getattr(src, "name", None)
    return Input(src, given if isinstance(given, str) else "<stream>", owned=False,
                 chunk_size=chunk_size)


# --------------------------------------------------------------------------- what it holds

#: ``sniff`` results: BIRD output, or what else a capture folder holds.
BIRD, EMPTY, BINARY, IP_JSON, IP_TEXT = "bird", "empty", "binary", "ip-json", "ip-text"


def sniff(head: bytes) -> str:
    """What the first bytes of a capture are: ``bird`` (any framing), ``ip-json``
    (``ip -j route show``), ``ip-text`` (plain ``ip route``), ``binary`` or ``empty``."""
    from .iproute import looks_like_ip_json, looks_like_ip_text

    if not head.strip():
        return EMPTY
    if b"\x00" in head[:4096]:
        return BINARY
    if looks_like_ip_json(head[:256]):
        return IP_JSON
    if looks_like_ip_text(head[:512]):
        return IP_TEXT
    return BIRD


_NOT_BIRD = {
    EMPTY: "empty: no BIRD reply in it",
    BINARY: "binary data (NUL bytes), not a BIRD capture",
    IP_JSON: "an `ip -j route` capture, not BIRD output",
    IP_TEXT: "plain-text `ip route` output, not BIRD output",
}


def require_bird(inp: Input) -> Input:
    """``inp`` itself if it holds BIRD output, else InputError saying what it is."""
    kind = sniff(inp.peek())
    if kind != BIRD:
        raise InputError(_NOT_BIRD[kind], source=inp.name, line=1 if kind != EMPTY else 0,
                         offset=0)
    return inp


# --------------------------------------------------------------------------- folders


def expand_paths(paths: List[str], on_problem: Callable[[InputError], None]
           ) -> List[Tuple[str, str]]:
    """``(path, name under an output folder)`` for every input: files as given, folders
    walked recursively in sorted order, ``-`` kept. A folder that cannot be read is handed
    to ``on_problem`` (never skipped quietly); a missing path stays in the list, so that
    opening it reports the problem."""
    out: List[Tuple[str, str]] = []
    for p in paths:
        if p == STDIN:
            out.append((STDIN, "stdin"))
            continue
        if not os.path.isdir(p):
            out.append((p, os.path.basename(p.rstrip("/")) or p))
            continue
        root = os.path.basename(os.path.abspath(p)) or "root"

        def fail(exc: OSError, top: str = p) -> None:
            on_problem(InputError(f"cannot read folder: {exc.strerror or exc}",
                                  source=exc.filename or top))

        found = []
        for folder, dirs, files in os.walk(p, onerror=fail):
            dirs.sort()
            for f in files:
                full = os.path.join(folder, f)
                if os.path.isdir(full):
                    continue
                found.append((full, os.path.join(root, os.path.relpath(full, p))))
        out.extend(sorted(found))
    return out
