"""``show route`` / ``show route all``: Route records (``nodestatus``), an Arrow table
(``columns``: ``parse_table``, the columns sink) and the regex baseline.

One group per (shape, command, size); see ``conftest.py`` for sizes and the summary table.
Nothing is asserted about speed here: the numbers are reported, the targets are printed.
Bytes per route: what the result keeps alive — tracemalloc for records (so only memory
Python's allocators give), the table's buffers, each once, for columns.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _benchlib import Case, arrow_bytes, impls, load_dump, record, retained_bytes  # noqa: E402
from nodestatus.structs import Route  # noqa: E402
from tests.conftest import require  # noqa: E402  (skip locally, fail in CI)


def _rounds(case: Case) -> int:
    if case.size >= 1_000_000:
        return 5 if case.impl != "regex-baseline" else 2
    if case.size >= 100_000:
        return 5
    return 20


def _routes(result) -> int:
    if hasattr(result, "num_rows"):
        return result.num_rows
    return sum(1 for r in result if isinstance(r, Route))


def bench_parse_routes(benchmark, case: Case):
    if case.impl == "columns":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pyarrow = None
        require(pyarrow is not None, "the [arrow] extra (pyarrow) is not installed")
    fn = impls()[case.impl]
    data = load_dump(case)
    benchmark.group = case.group
    big = case.size >= 1_000_000
    result = benchmark.pedantic(
        fn, args=(data,), rounds=_rounds(case), iterations=1, warmup_rounds=0 if big else 1)
    routes = _routes(result)
    if case.size:
        assert routes == case.size, (routes, case.size)
    mem = None
    if benchmark.enabled and case.impl == "columns":
        mem = arrow_bytes(result) / max(routes, 1)
    del result

    seconds = None
    if benchmark.enabled:
        seconds = benchmark.stats.stats.min
        # tracemalloc slows the baseline ~3x: its memory only up to 100k routes
        if case.impl == "nodestatus" or (case.impl != "columns" and case.size <= 100_000):
            mem = retained_bytes(fn, data) / max(routes, 1)
        benchmark.extra_info.update(
            routes=routes, bytes=len(data), routes_per_s=routes / seconds,
            bytes_per_route=mem)
    record(case, seconds, routes, mem)
