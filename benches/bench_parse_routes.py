"""``show route`` / ``show route all`` → Route records: nodestatus vs. the regex baseline.

One group per (shape, command, size); see ``conftest.py`` for sizes and the summary table.
Nothing is asserted about speed here: the numbers are reported, the targets are printed.
"""
from __future__ import annotations

from _benchlib import Case, impls, load_dump, record, retained_bytes
from nodestatus.structs import Route


def _rounds(case: Case) -> int:
    if case.size >= 1_000_000:
        return 5 if case.impl == "nodestatus" else 2
    if case.size >= 100_000:
        return 5
    return 20


def bench_parse_routes(benchmark, case: Case):
    fn = impls()[case.impl]
    data = load_dump(case)
    benchmark.group = case.group
    big = case.size >= 1_000_000
    result = benchmark.pedantic(
        fn, args=(data,), rounds=_rounds(case), iterations=1, warmup_rounds=0 if big else 1)
    routes = sum(1 for r in result if isinstance(r, Route))
    if case.size:
        assert routes == case.size, (routes, case.size)
    del result

    seconds = mem = None
    if benchmark.enabled:
        seconds = benchmark.stats.stats.min
        # tracemalloc slows the baseline ~3x: its memory only up to 100k routes
        if case.impl == "nodestatus" or case.size <= 100_000:
            mem = retained_bytes(fn, data) / max(routes, 1)
        benchmark.extra_info.update(
            routes=routes, bytes=len(data), routes_per_s=routes / seconds,
            bytes_per_route=mem)
    record(case, seconds, routes, mem)
