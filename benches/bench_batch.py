"""Batch mode (``nodestatus.captures.run``, what ``nodestatus parse`` does) over many files and
over one big dump, ``--jobs 1`` vs ``--jobs 2``, against a baseline in the same run.

* ``mixed 1000 files``: 1,000 captures copied round-robin from ``tests/data/captures`` (every
  BIRD framing and command, compressed copies, ``ip -j`` JSON). The regex baseline only reads
  generated ``show route`` dumps, so the baseline here is ``nodestatus.parse`` called on each
  file in-process, single-threaded, with no output (said in the table).
* ``calico show route 100k`` (1M with ``NODESTATUS_BENCH_FULL=1``): one generated dump;
  baseline ``benches/baselines/regex_parser.py``. One file is one task, so ``--jobs 2`` only
  moves parsing+encoding to a worker while the parent writes.
* the same dump written under ``--output-dir`` as NDJSON and as a zstd Parquet dataset
  (``-o parquet``): time and output size (targets: parquet >=4x faster, >=50x smaller).

Ours writes NDJSON to /dev/null (the real job: parse + encode + write). Under
``--benchmark-disable`` the sets are 100 files and 10k routes so CI stays quick.
"""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

import gen_dump
from _benchlib import FULL, SEED

from nodestatus import captures, parse
from nodestatus.inputs import open_input
from baselines import regex_parser

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "captures"
BATCH: dict = {}  # group -> impl -> {"seconds", "files", "bytes"}


def _disabled(config) -> bool:
    return bool(config.getoption("benchmark_disable", False))


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, request):
    n = 100 if _disabled(request.config) else 1000
    src = sorted(p for p in DATA.rglob("*") if p.is_file() and "config" not in p.parts)
    root = tmp_path_factory.mktemp("mixed")
    for i in range(n):
        f = src[i % len(src)]
        sub = root / f"node{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        target = sub / f"{i:04d}_{f.name}"
        if i % 10 == 0:  # every tenth one gzipped
            target.write_bytes(gzip.compress(f.read_bytes(), 1))
        else:
            shutil.copy(f, target)
    return root


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory, request):
    n = 10_000 if _disabled(request.config) else (1_000_000 if FULL else 100_000)
    path = tmp_path_factory.mktemp("dump") / f"calico_{n}.raw"
    path.write_bytes(gen_dump.generate("calico", n, False, SEED))
    return path, n


def _ours(paths, jobs):
    inputs = captures.expand([str(p) for p in paths])
    with open(os.devnull, "wb") as out:
        return captures.run(inputs, captures.Options(jobs=jobs), out=out)


def _record(benchmark, group, impl, files, nbytes):
    benchmark.group = group
    secs = benchmark.stats.stats.min if benchmark.enabled else None
    BATCH.setdefault(group, {})[impl] = {"seconds": secs, "files": files, "bytes": nbytes}


def _parse_each(files):
    n = 0
    for f in files:
        with open_input(str(f)) as fh:
            data = fh.read_all(1 << 34)
        try:
            n += len(parse(data))
        except Exception:  # broken on purpose in the corpus: what the batch reports
            pass
    return n


@pytest.mark.parametrize("impl", ["jobs1", "jobs2", "baseline: parse() per file, 1 process"])
def bench_mixed_files(benchmark, mixed_dir, impl):
    files = sorted(p for p in mixed_dir.rglob("*") if p.is_file())
    nbytes = sum(f.stat().st_size for f in files)
    group = f"mixed {len(files)} files"
    if impl.startswith("jobs"):
        s = benchmark.pedantic(_ours, args=([mixed_dir], int(impl[-1])), rounds=3,
                               iterations=1)
        assert s.files == len(files) and s.records > 0
    else:
        benchmark.pedantic(_parse_each, args=(files,), rounds=3, iterations=1)
    _record(benchmark, group, impl, len(files), nbytes)


@pytest.mark.parametrize("impl", ["jobs1", "jobs2", "regex-baseline"])
def bench_big_dump(benchmark, big_dump, impl):
    path, n = big_dump
    group = f"calico show route {n // 1000}k dump"
    rounds = 2 if n >= 1_000_000 else 3
    if impl.startswith("jobs"):
        s = benchmark.pedantic(_ours, args=([path], int(impl[-1])), rounds=rounds,
                               iterations=1)
        assert s.counts.get("route") == n
    else:
        def base():
            return regex_parser.parse_routes(path.read_bytes())

        assert len(benchmark.pedantic(base, rounds=rounds, iterations=1)) == n
    _record(benchmark, group, impl, 1, path.stat().st_size)


def _to_dir(path, fmt, outdir):
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    inputs = captures.expand([str(path)], str(outdir), fmt)
    return captures.run(inputs, captures.Options(fmt=fmt, jobs=1), out=None)


def _dir_bytes(outdir) -> int:
    return sum(f.stat().st_size for f in Path(outdir).rglob("*") if f.is_file())


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def bench_output_format(benchmark, big_dump, fmt, tmp_path):
    """The same dump written as NDJSON and as a zstd Parquet dataset (--output-dir, one
    process): what a support engineer loads into DuckDB or polars next."""
    if fmt == "parquet":
        _require_arrow()
    path, n = big_dump
    group = f"calico show route {n // 1000}k: ndjson vs parquet"
    outdir = tmp_path / fmt
    rounds = 2 if n >= 1_000_000 else 3
    s = benchmark.pedantic(_to_dir, args=(path, fmt, outdir), rounds=rounds, iterations=1)
    assert s.counts.get("route") == n and not s.problems and not s.output_errors
    _record(benchmark, group, fmt, 1, path.stat().st_size)
    BATCH[group][fmt]["out_bytes"] = _dir_bytes(outdir)


def _require_arrow():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.conftest import require

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pyarrow = None
    require(pyarrow is not None, "the [arrow] extra (pyarrow) is not installed")


@pytest.fixture(scope="module", autouse=True)
def _table(request):
    yield
    if not BATCH:
        return
    rep = request.config.pluginmanager.get_plugin("terminalreporter")
    if rep is None:
        return
    lines = ["", "batch parse (min of rounds; jobs = parse + NDJSON to /dev/null; ndjson/"
                 "parquet = files under --output-dir)"]
    hdr = "%-42s %-38s %9s %9s %8s %8s %10s" % ("group", "impl", "seconds", "files/s", "MB/s",
                                               "vs base", "output MB")
    lines += [hdr, "-" * len(hdr)]
    for group, res in BATCH.items():
        base = res.get("ndjson", {}).get("seconds") or next(
            (v["seconds"] for k, v in res.items() if not k.startswith("jobs")), None)
        for impl, r in res.items():
            s = r["seconds"]
            if s is None:
                lines.append("%-42s %-38s %9s" % (group, impl, "disabled"))
                continue
            out = r.get("out_bytes")
            lines.append("%-42s %-38s %9.3f %9.0f %8.1f %8s %10s" % (
                group, impl, s, r["files"] / s, r["bytes"] / 1e6 / s,
                "%.2fx" % (base / s) if base else "-",
                "-" if out is None else "%.2f" % (out / 1e6)))
        nd, pq = res.get("ndjson"), res.get("parquet")
        if nd and pq and nd["seconds"] and pq["seconds"]:
            speed, size = nd["seconds"] / pq["seconds"], nd["out_bytes"] / max(pq["out_bytes"], 1)
            lines.append("  parquet vs ndjson: %.1fx faster (%s >=4x), %.0fx smaller (%s >=50x)" % (
                speed, "met" if speed >= 4 else "MISSED", size, "met" if size >= 50 else "MISSED"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        rep.write_line("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():     # teardown output is captured otherwise
        rep.write_line("\n".join(lines))
