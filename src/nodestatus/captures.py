"""Batch parse of capture files: paths → (worker processes) → records → ndjson/json/msgpack/
yaml, or Arrow tables → a Parquet dataset (one folder per record kind) or an Arrow IPC stream.

``nodestatus parse`` runs here. Each input (file, folder walked recursively, ``-`` = stdin)
is opened through :mod:`.inputs` (compression sniffed: gzip, bzip2, xz, zstd), classified from
its first bytes (BIRD output in any framing, ``ip -j route`` JSON, plain ``ip route`` text,
binary, empty) and streamed through one ``Parser(reply_markers=True)``: a file is never
read whole. With ``--jobs N`` each file is one task of a process pool; a worker encodes its
records and sends them back in batches (or writes its own output file with ``--output-dir``),
and the parent writes them strictly in input order, spooling the batches of files that
finished early. A problem never stops the run (unless ``fail_fast``): what parsed before it
is kept and the problem is reported as ``file:line: message``.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple

import msgspec

from .errors import InputError
from .inputs import (BINARY, EMPTY, IP_JSON, IP_TEXT, STDIN, expand_paths, open_input,
                     require_bird, sniff)
from .iproute import iter_ip_json
from .kinds import DEFAULT_TAGS, TAG, kind_type, kind_word
from .records import Parser, record_batches
from .structs import ReplyEnd, Route

__all__ = ("FORMATS", "Options", "FileStats", "Summary", "expand", "run")

BATCH = 2048  # records per encoded batch sent by a worker
FORMATS = ("ndjson", "json", "msgpack", "yaml", "parquet", "arrow")
EXT = {"ndjson": ".ndjson", "json": ".json", "msgpack": ".msgpack", "yaml": ".yaml",
       "parquet": ".parquet", "arrow": ".arrow"}
#: Formats written through Arrow (the ``[arrow]`` extra): tables, one per record kind.
TABLE_FORMATS = ("parquet", "arrow")

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Input:
    path: str  # "-" for stdin
    source: str  # the name records and problems carry
    out: Optional[str] = None  # per-input output file (``--output-dir DIR``)
    out_dir: Optional[str] = None
    out_name: Optional[str] = None  # ``out`` relative to ``out_dir``

    def kind_out(self, kind: str) -> str:
        """Parquet: ``DIR/<kind>/<name>.parquet``, one dataset folder per record kind."""
        assert self.out_dir is not None and self.out_name is not None
        return os.path.join(self.out_dir, kind, self.out_name)


def expand(paths: Sequence[str], output_dir: Optional[str] = None, fmt: str = "ndjson",
           problems: Optional[List[str]] = None) -> List[Input]:
    """Files as given, folders walked recursively in sorted order, ``-`` = stdin. A missing
    path stays in the list: opening it reports the problem. A folder that cannot be read
    is added to ``problems`` as ``folder:0: message``."""
    def problem(exc: InputError) -> None:
        if problems is not None:
            problems.append(exc.problem())

    out: List[Input] = []
    taken: set = set()
    for path, name in expand_paths(list(paths), problem):
        target = rel = None
        if output_dir is not None:
            if fmt == "parquet":      # Spark and pyarrow skip files named _x or .x
                name = os.path.join(*(part.lstrip("_.") or "capture"
                                      for part in name.split(os.sep)))
            rel = name + EXT[fmt]
            n = 2
            while rel in taken:
                rel = f"{name}~{n}{EXT[fmt]}"
                n += 1
            taken.add(rel)
            target = os.path.join(output_dir, rel)
        out.append(Input(path, "<stdin>" if path == STDIN else path, target, output_dir, rel))
    return out


# --------------------------------------------------------------------------- records


class _Line(msgspec.Struct):
    """One output record: where it came from and what it is."""

    source: str
    reply: int
    type: str
    record: Any


def _encoder(fmt: str) -> Callable[[List[_Line]], bytes]:
    if fmt == "ndjson":
        return msgspec.json.Encoder().encode_lines
    if fmt == "json":
        lines = msgspec.json.Encoder().encode_lines
        # JSON text never holds a raw newline: the lines become array items.
        return lambda batch: lines(batch)[:-1].replace(b"\n", b",\n")
    if fmt == "msgpack":
        enc = msgspec.msgpack.Encoder().encode
        return lambda batch: b"".join(map(enc, batch))
    if fmt == "yaml":
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return lambda batch: yaml.dump(msgspec.to_builtins(batch), Dumper=dumper,
                                       sort_keys=False, allow_unicode=True).encode()
    raise ValueError(f"unknown output format {fmt!r}")


class _Sink:
    """Writes encoded batches to one stream as one document of the format: a JSON array
    around the batches, ``[]`` for an empty JSON/YAML document, plain concatenation else."""

    def __init__(self, stream: IO[bytes], fmt: str) -> None:
        self.stream = stream
        self.head, self.sep, self.tail, self.empty = {
            "json": (b"[\n", b",\n", b"\n]\n", b"[]\n"),
            "yaml": (b"", b"", b"", b"[]\n"),
        }.get(fmt, (b"", b"", b"", b""))
        self.started = False

    def write(self, payload: bytes) -> None:
        if not payload:
            return
        self.stream.write(self.sep if self.started else self.head)
        self.started = True
        self.stream.write(payload)

    def write_framed(self, data: bytes) -> None:
        """Batches that were spooled each with a leading separator."""
        if not data:
            return
        if not self.started:
            self.stream.write(self.head)
            data = data[len(self.sep):]
            self.started = True
        self.stream.write(data)

    def close(self) -> None:
        self.stream.write(self.tail if self.started else self.empty)
        self.stream.flush()


@dataclass(frozen=True)
class Options:
    fmt: str = "ndjson"
    only: FrozenSet[str] = DEFAULT_TAGS
    command: Optional[str] = None
    framing: Optional[str] = None
    jobs: int = 1
    fail_fast: bool = False
    batch: int = BATCH


class FileStats(msgspec.Struct):
    """What one input gave: sent from a worker to the parent when the file is done."""

    source: str
    bytes: int = 0
    replies: int = 0
    records: int = 0
    written: int = 0
    counts: Dict[str, int] = {}
    problems: List[str] = []
    seconds: float = 0.0
    #: the records could not be written (``--output-dir``): not a problem of the input
    output_error: str = ""


def _problem(stats: FileStats, line: int, message: str) -> None:
    stats.problems.append(f"{stats.source}:{line}: {message}")


def _file_batches(inp: Input, opts: Options, stats: FileStats,
                  sink: Any = None) -> Iterator[List[Any]]:
    """Stream one input; yield lists of records (``KernelRoute`` for ``ip -j`` JSON) as they
    complete (routes go to ``sink`` when one is given). Problems go to
    ``stats``; records parsed before a problem are yielded first."""
    try:
        f = open_input(inp.path, name=inp.source)
    except InputError as exc:
        stats.problems.append(exc.problem())
        return
    try:
        kind = sniff(f.peek())
        if kind in (EMPTY, BINARY):
            require_bird(f)
        if kind == IP_JSON:
            yield from iter_ip_json(f)
            return
        if kind == IP_TEXT:
            _problem(stats, 1, "plain-text `ip route` output is not supported (capture it "
                               "with `ip -j route show`); kept as an Unsupported record")
        parser = Parser(opts.framing, opts.command, reply_markers=True, sink=sink)
        for recs in record_batches(f, parser):
            stats.bytes = f.offset
            yield recs
    except InputError as exc:
        if exc.partial:
            yield exc.partial
        stats.problems.append(exc.problem())
    finally:
        stats.bytes = f.offset
        f.close()


def _run_file(inp: Input, opts: Options, emit: Callable[[bytes, int, int], None],
              stop: Callable[[], bool] = lambda: False) -> FileStats:
    """Parse one input, encode its records in batches and hand each batch to ``emit``
    (payload, records in it, bytes read since the last call)."""
    t0 = time.perf_counter()
    stats = FileStats(source=inp.source, counts={}, problems=[])
    encode = _encoder(opts.fmt)
    only = opts.only
    source = inp.source
    counts: Counter = Counter()
    lines: List[_Line] = []
    reply = 0
    replies = 0
    sent_bytes = 0
    for recs in _file_batches(inp, opts, stats):
        counts.update(map(type, recs))
        for rec in recs:
            t = type(rec)
            if t is ReplyEnd:
                replies += 1
                if "reply_end" in only:
                    lines.append(_Line(source, reply, "reply_end", rec))
                reply = rec.index + 1
                continue
            tag = TAG[t]
            if tag in only:
                lines.append(_Line(source, reply, tag, rec))
        if len(lines) >= opts.batch:
            emit(encode(lines), len(lines), stats.bytes - sent_bytes)
            sent_bytes = stats.bytes
            stats.written += len(lines)
            lines = []
            if stop():
                _problem(stats, 0, "stopped (--fail-fast)")
                break
    if lines:
        emit(encode(lines), len(lines), stats.bytes - sent_bytes)
        stats.written += len(lines)
    stats.replies = replies
    stats.counts = {TAG[t]: n for t, n in counts.items() if t is not ReplyEnd}
    stats.records = sum(stats.counts.values())
    stats.seconds = time.perf_counter() - t0
    return stats


def _run_to_file(inp: Input, opts: Options, progress: Callable[[int, int], None],
                 stop: Callable[[], bool] = lambda: False) -> FileStats:
    """``--output-dir DIR``: this input's records go to its own file. A file that cannot be
    written is the run's ``output_error``, not the input's problem."""
    assert inp.out is not None
    if opts.fmt == "parquet":
        return _run_to_parquet(inp, opts, progress, stop)
    try:
        os.makedirs(os.path.dirname(inp.out) or ".", exist_ok=True)
        with open(inp.out, "wb") as f:
            sink = _Sink(f, opts.fmt)

            def emit(payload: bytes, n: int, nbytes: int) -> None:
                sink.write(payload)
                progress(n, nbytes)

            stats = _run_file(inp, opts, emit, stop)
            sink.close()
    except OSError as exc:
        return FileStats(source=inp.source, counts={}, problems=[],
                         output_error=f"{exc.filename or inp.out}: cannot write: "
                                      f"{exc.strerror or exc}")
    return stats


# --------------------------------------------------------------------------- tables


def _table_batches(inp: Input, opts: Options, stats: FileStats,
                   stop: Callable[[], bool] = lambda: False) -> Iterator[Tuple[str, Any]]:
    """One input in one pass as ``(kind, pyarrow.RecordBatch)``: routes from the columns
    sink as the input is read, every other kind (few rows) at the end. Every batch has
    ``capture`` (the input's name) and ``reply`` first, so a folder reads as one table."""
    from ._birdparse import column_sink
    from .tables import BATCH_ROWS, record_batch, route_batch

    t0 = time.perf_counter()
    routes = column_sink(BATCH_ROWS, with_reply=True)
    want_routes = TAG[Route] in opts.only
    source = inp.source
    counts: Counter = Counter()
    rows: Dict[type, List[Any]] = {}
    replies: Dict[type, List[int]] = {}
    reply = 0
    replies_seen = 0

    def taken(batches: List[Any]) -> Iterator[Tuple[str, Any]]:
        for b in batches:
            counts[Route] += b.num_rows
            if want_routes:
                stats.written += b.num_rows
                yield "routes", route_batch(b, capture=source, with_reply=True)

    for recs in _file_batches(inp, opts, stats, sink=routes):
        for rec in recs:
            t = type(rec)
            if t is ReplyEnd:
                replies_seen += 1
                reply = rec.index + 1
                continue
            counts[t] += 1
            if TAG[t] in opts.only:
                rows.setdefault(t, []).append(rec)
                replies.setdefault(t, []).append(reply)
        yield from taken(routes.take())
        if stop():
            _problem(stats, 0, "stopped (--fail-fast)")
            break
    yield from taken(routes.finish())
    for t, recs in rows.items():
        for i in range(0, len(recs), BATCH_ROWS):
            stats.written += len(recs[i:i + BATCH_ROWS])
            yield kind_word(t), record_batch(recs[i:i + BATCH_ROWS], t,
                                             replies=replies[t][i:i + BATCH_ROWS], capture=source)
    stats.replies = replies_seen
    stats.counts = {TAG[t]: n for t, n in counts.items()}
    stats.records = sum(stats.counts.values())
    stats.seconds = time.perf_counter() - t0


def _run_to_parquet(inp: Input, opts: Options, progress: Callable[[int, int], None],
                    stop: Callable[[], bool] = lambda: False) -> FileStats:
    """``-o parquet --output-dir DIR``: ``DIR/<kind>/<name>.parquet`` per record kind the
    input holds, zstd-compressed, written batch by batch."""
    import pyarrow.parquet as pq

    stats = FileStats(source=inp.source, counts={}, problems=[])
    writers: Dict[str, Any] = {}
    path = ""
    try:
        sent = 0
        for kind, batch in _table_batches(inp, opts, stats, stop):
            w = writers.get(kind)
            if w is None:
                path = inp.kind_out(kind)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                w = writers[kind] = _parquet_writer(pq, path, batch.schema)
            w.write_batch(batch)
            progress(batch.num_rows, stats.bytes - sent)
            sent = stats.bytes
        for w in writers.values():
            w.close()
    except OSError as exc:
        for w in writers.values():
            try:
                w.close()
            except Exception:  # already failing: the first error is the one to report
                pass
        return FileStats(source=inp.source, counts={}, problems=[],
                         output_error=f"{getattr(exc, 'filename', None) or path or inp.out}: "
                                      f"cannot write: {getattr(exc, 'strerror', None) or exc}")
    return stats


def _parquet_writer(pq: Any, path: str, schema: Any) -> Any:
    """zstd; dictionary pages only for the dictionary-encoded columns (a prefix column of
    unique strings only pays for trying); no min/max statistics (half the writer's time,
    and of little use on columns in reply order)."""
    import pyarrow as pa

    return pq.ParquetWriter(path, schema, compression="zstd", write_statistics=False,
                            use_dictionary=[f.name for f in schema
                                            if pa.types.is_dictionary(f.type)])


class _ArrowOut:
    """``-o arrow``: one Arrow IPC stream of one record kind on ``stream`` (dictionaries
    may change between batches: the stream format allows it)."""

    def __init__(self, stream: IO[bytes], kind_type: type) -> None:
        import pyarrow as pa

        from .tables import output_schema

        self.schema = output_schema(kind_type, capture=True, reply=True)
        self.kind_type = kind_type
        self.writer = pa.ipc.new_stream(stream, self.schema)
        self.stream = stream

    def close(self) -> None:
        self.writer.close()
        self.stream.flush()


def _run_arrow(inp: Input, opts: Options, out: _ArrowOut,
               progress: Callable[[int, int], None]) -> FileStats:
    stats = FileStats(source=inp.source, counts={}, problems=[])
    want = kind_word(out.kind_type)
    sent = 0
    for kind, batch in _table_batches(inp, opts, stats):
        if kind == want:
            out.writer.write_batch(batch)
        progress(batch.num_rows, stats.bytes - sent)
        sent = stats.bytes
    return stats


# --------------------------------------------------------------------------- workers

_Q: Any = None
_STOP: Any = None
_OPTS: Optional[Options] = None


def _init_worker(q: Any, stop: Any, opts: Options) -> None:
    global _Q, _STOP, _OPTS
    _Q, _STOP, _OPTS = q, stop, opts


def _worker(index: int, inp: Input) -> None:
    """One file in a worker process: batches and the final stats go through the queue."""
    assert _OPTS is not None
    q, stop = _Q, _STOP.is_set
    try:
        if inp.out is not None:
            stats = _run_to_file(inp, _OPTS, lambda n, b: q.put(("data", index, b"", n, b)),
                                 stop)
        else:
            stats = _run_file(inp, _OPTS,
                              lambda p, n, b: q.put(("data", index, p, n, b)), stop)
    except BaseException as exc:  # a bug must not hang the parent: report it as a problem
        stats = FileStats(source=inp.source, counts={}, problems=[
            f"{inp.source}:0: internal error: {type(exc).__name__}: {exc}"])
    q.put(("done", index, msgspec.msgpack.encode(stats), 0, 0))


def _worker_batch(batch: List[Tuple[int, Input]]) -> None:
    """Several consecutive files in one task: thousands of small captures would otherwise
    pay the pool's per-task cost each."""
    for index, inp in batch:
        if _STOP is not None and _STOP.is_set():
            break
        _worker(index, inp)


# --------------------------------------------------------------------------- the run


class Summary(msgspec.Struct):
    files: int = 0
    replies: int = 0
    records: int = 0
    written: int = 0
    bytes: int = 0
    seconds: float = 0.0
    counts: Dict[str, int] = {}
    problems: List[str] = []
    output_errors: List[str] = []
    per_file: List[FileStats] = []
    stopped: bool = False

    def add(self, st: FileStats) -> None:
        self.files += 1
        self.replies += st.replies
        self.records += st.records
        self.written += st.written
        self.bytes += st.bytes
        for k, v in st.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.problems.extend(st.problems)
        if st.output_error:
            self.output_errors.append(st.output_error)
        self.per_file.append(st)

    def text(self) -> str:
        mb = self.bytes / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.counts.items(),
                                                            key=lambda kv: -kv[1]))
        bad = sum(1 for f in self.per_file if f.problems)
        lines = [f"{self.files:,} files ({bad} with problems), {self.replies:,} replies, "
                 f"{self.records:,} records ({kinds or 'none'}), {self.written:,} written; "
                 f"{mb:.1f} MB in {self.seconds:.2f} s ({rate:.1f} MB/s)"
                 + ("; stopped at the first problem (--fail-fast)" if self.stopped else "")]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        if self.output_errors:
            lines.append(f"{len(self.output_errors)} output file(s) not written:")
            lines += [f"  {p}" for p in self.output_errors]
        return "\n".join(lines) + "\n"


class _Progress:
    """``files 12/1000  34,567 records  12.3 MB/s`` on one stderr line, 10 times a second,
    only when stderr is a terminal."""

    def __init__(self, total: int, err: IO[str]) -> None:
        self.total, self.err = total, err
        self.on = bool(getattr(err, "isatty", lambda: False)())
        self.files = self.records = self.bytes = 0
        self.t0 = self.last = time.perf_counter()

    def add(self, records: int = 0, nbytes: int = 0, files: int = 0) -> None:
        self.records += records
        self.bytes += nbytes
        self.files += files
        if not self.on:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and self.files < self.total:
            return
        self.last = now
        rate = self.bytes / 1e6 / max(now - self.t0, 1e-9)
        width = 24
        done = int(width * self.files / max(self.total, 1))
        self.err.write(f"\r[{'#' * done}{'.' * (width - done)}] files {self.files}/"
                       f"{self.total}  {self.records:,} records  {rate:.1f} MB/s ")
        self.err.flush()

    def clear(self) -> None:
        if self.on:
            self.err.write("\r\x1b[K")
            self.err.flush()


def run(inputs: Sequence[Input], opts: Options, out: Optional[IO[bytes]] = None,
        err: Optional[IO[str]] = None) -> Summary:
    """Parse every input; records to ``out`` (one document) unless the inputs carry their
    own output files. Returns the summary; nothing is printed but the progress bar."""
    t0 = time.perf_counter()
    err = err if err is not None else sys.stderr
    summary = Summary(counts={}, problems=[], output_errors=[], per_file=[])
    progress = _Progress(len(inputs), err)
    sink: Any = None
    if opts.fmt == "arrow":            # one stream, one schema: every input in this process
        assert out is not None
        (tag,) = opts.only
        sink = _ArrowOut(out, kind_type(tag))
    elif out is not None:
        sink = _Sink(out, opts.fmt)
    try:
        files = [i for i, inp in enumerate(inputs) if inp.path != STDIN]
        if opts.jobs > 1 and files and opts.fmt != "arrow":
            _run_pool(inputs, opts, sink, summary, progress)
        else:
            for inp in inputs:
                summary.add(_run_inline(inp, opts, sink, progress))
                progress.add(files=1)
                if opts.fail_fast and summary.problems:
                    summary.stopped = True
                    break
    finally:
        progress.clear()
    if sink is not None:
        sink.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_inline(inp: Input, opts: Options, sink: Any, progress: _Progress) -> FileStats:
    if inp.out is not None:
        return _run_to_file(inp, opts, lambda n, b: progress.add(n, b))
    if isinstance(sink, _ArrowOut):
        return _run_arrow(inp, opts, sink, lambda n, b: progress.add(n, b))

    def emit(payload: bytes, n: int, nbytes: int) -> None:
        if sink is not None:
            sink.write(payload)
        progress.add(n, nbytes)

    return _run_file(inp, opts, emit)


def _run_pool(inputs: Sequence[Input], opts: Options, sink: Optional[_Sink],
              summary: Summary, progress: _Progress) -> None:
    """Files to a process pool; batches come back through one bounded queue and are written
    in input order: the file at the head streams through, later ones wait in spool files
    (memory up to 4 MB each, then disk)."""
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else None)
    jobs = min(opts.jobs, sum(1 for i in inputs if i.path != STDIN))
    q = ctx.Queue(maxsize=8 * jobs)
    stop = ctx.Event()
    spools: Dict[int, Any] = {}
    done: Dict[int, FileStats] = {}
    sep = sink.sep if sink is not None else b""
    ex = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(q, stop, opts))
    work = [(i, inp) for i, inp in enumerate(inputs) if inp.path != STDIN]
    size = max(1, min(64, len(work) // (jobs * 8)))       # keep every worker busy to the end
    futures = {}
    for start in range(0, len(work), size):
        batch = work[start:start + size]
        fut = ex.submit(_worker_batch, batch)
        for i, _inp in batch:
            futures[i] = fut
    head = 0
    try:
        while head < len(inputs):
            if inputs[head].path == STDIN:
                st = _run_inline(inputs[head], opts, sink, progress)
            elif head in done:
                st = done.pop(head)
                spool = spools.pop(head, None)
                if spool is not None:
                    spool.seek(0)
                    if sink is not None:
                        sink.write_framed(spool.read())
                    spool.close()
            else:
                spool = spools.pop(head, None)
                if spool is not None:  # the head streams from now on
                    spool.seek(0)
                    if sink is not None:
                        sink.write_framed(spool.read())
                    spool.close()
                try:
                    kind, i, payload, n, nbytes = q.get(timeout=0.5)
                except queue_mod.Empty:
                    fut = futures[head]
                    if fut.done() and fut.exception() is not None:
                        done[head] = FileStats(source=inputs[head].source, counts={},
                                               problems=[f"{inputs[head].source}:0: worker "
                                                         f"failed: {fut.exception()!r}"])
                    continue
                if kind == "done":
                    done[i] = msgspec.msgpack.decode(payload, type=FileStats)
                    continue
                progress.add(n, nbytes)
                if not payload or sink is None:
                    continue
                if i == head and i not in spools:
                    sink.write(payload)
                else:
                    sp = spools.get(i)
                    if sp is None:
                        sp = spools[i] = tempfile.SpooledTemporaryFile(4 << 20)
                    sp.write(sep)
                    sp.write(payload)
                continue
            summary.add(st)
            progress.add(files=1)
            head += 1
            if opts.fail_fast and summary.problems:
                summary.stopped = head < len(inputs)
                break
    finally:
        stop.set()
        for fut in futures.values():
            fut.cancel()
        # drain so that workers blocked on a full queue can finish
        while not all(f.done() for f in futures.values()):
            try:
                q.get(timeout=0.05)
            except queue_mod.Empty:
                pass
        ex.shutdown(wait=True)
        for sp in spools.values():
            sp.close()
