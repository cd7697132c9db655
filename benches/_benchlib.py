"""Bench support: seeded dumps from ``gen_dump.py`` (or a real one from
``NODESTATUS_BENCH_DUMP``), the competitor list, and the results the summary table prints.

Sizes: 10k routes always, 100k unless ``--benchmark-disable`` (CI runs each body once and must
stay quick), 1M with ``NODESTATUS_BENCH_FULL=1``. Every group is one (shape, command, size)
and holds ``nodestatus`` (Route records), ``columns`` (an Arrow table from the columns sink)
and ``regex-baseline``, so ratios come from one run; the baseline is skipped at 1M except
for ``show route`` (the targets are stated at 1M).
"""
from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # gen_dump, baselines; nodestatus itself is the installed one

import gen_dump  # noqa: E402

FULL = os.environ.get("NODESTATUS_BENCH_FULL") == "1"
SEED = int(os.environ.get("NODESTATUS_BENCH_SEED", "1"))
REAL_DUMP = os.environ.get("NODESTATUS_BENCH_DUMP")
BASELINE_MAX = 100_000  # bigger: baseline only for `show route`

#: group -> impl -> measurements; filled by the benches, printed by the summary hook.
RESULTS: Dict[str, Dict[str, dict]] = {}


@dataclass(frozen=True)
class Case:
    shape: str  # gen_dump shape, or "file"
    detail: bool
    size: int  # routes (0 for a real dump: counted after parsing)
    impl: str

    @property
    def group(self) -> str:
        if self.shape == "file":
            return "file:%s" % Path(REAL_DUMP or "").name
        cmd = "show route all" if self.detail else "show route"
        return "%s %s %s" % (self.shape, cmd, _size_label(self.size))

    @property
    def id(self) -> str:
        return "%s-%s-%s-%s" % (self.shape, "all" if self.detail else "route",
                                _size_label(self.size), self.impl)


def _size_label(n: int) -> str:
    return "%dM" % (n // 1_000_000) if n >= 1_000_000 and n % 1_000_000 == 0 else \
        ("%dk" % (n // 1000) if n % 1000 == 0 else str(n))


def impls() -> Dict[str, Callable[[bytes], Any]]:
    """``nodestatus``: Route records (the struct path); ``columns``: one Arrow table
    (``parse_table``, the columns sink); the regex baseline."""
    import nodestatus
    from baselines import regex_parser

    return {"nodestatus": nodestatus.parse, "columns": nodestatus.parse_table,
            regex_parser.label: regex_parser.parse_routes}


def arrow_bytes(table: Any) -> int:
    """Bytes of an Arrow table's buffers, each counted once (columns share dictionaries
    and the zero block of all-null columns): what the table keeps alive."""
    seen: Dict[int, int] = {}

    def walk(arr: Any) -> None:
        for b in arr.buffers():
            if b is not None:
                seen[b.address] = max(seen.get(b.address, 0), b.size)
        if hasattr(arr, "dictionary"):
            walk(arr.dictionary)

    for col in table.columns:
        for chunk in col.chunks:
            walk(chunk)
    return sum(seen.values())


def cases(config) -> List[Case]:
    disabled = bool(config.getoption("benchmark_disable", False))
    sizes = [10_000] if disabled else [10_000, 100_000]
    if FULL:
        sizes.append(1_000_000)
    out: List[Case] = []
    for shape in ("calico", "fulltable", "calico6"):
        for detail in (False, True):
            for size in sizes:
                if shape == "calico6" and size > 100_000:
                    continue
                out.append(Case(shape, detail, size, "nodestatus"))
                out.append(Case(shape, detail, size, "columns"))
                if size <= BASELINE_MAX or not detail:
                    out.append(Case(shape, detail, size, "regex-baseline"))
    if REAL_DUMP:
        out += [Case("file", False, 0, "nodestatus"), Case("file", False, 0, "regex-baseline")]
    return out


_last: Dict[tuple, bytes] = {}


def load_dump(case: Case) -> bytes:
    """One dump in memory at a time (a 1M-route `show route all` is hundreds of MB); cases
    are ordered so that both implementations of a group share it."""
    key = (case.shape, case.detail, case.size)
    if key not in _last:
        _last.clear()
        gc.collect()
        if case.shape == "file":
            from nodestatus.inputs import open_input

            with open_input(REAL_DUMP) as f:
                _last[key] = f.read_all(1 << 34)
        else:
            _last[key] = gen_dump.generate(case.shape, case.size, case.detail, SEED)
    return _last[key]


def retained_bytes(fn: Callable[[bytes], list], data: bytes) -> int:
    """Bytes still allocated after ``fn(data)`` returned, while its result is alive:
    the memory of the parsed records (tracemalloc, so only Python-allocator memory)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn(data)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del result
    return after - before


def wait_for_routes(socket_path: str, want: int, command: str = "show route count",
                    timeout: float = 60.0) -> int:
    """Poll a live BIRD until its route count reaches ``want`` (a big static table takes a
    moment to load); returns the last count seen."""
    from nodestatus.birdsock import BirdClient

    deadline = time.monotonic() + timeout
    while True:
        with BirdClient(socket_path, idle_timeout=120) as bird:
            (count,) = bird.query(command)
        if count.total >= want or time.monotonic() > deadline:
            return count.total
        time.sleep(0.2)


#: Live-daemon streaming results (bench_live_stream.py), printed by conftest.
LIVE: List[dict] = []


#: Status assembly from a live daemon (bench_status.py): group -> impl -> {"seconds", "runs",
#: "cpu", "routes"}, and "bird-alone" -> {"seconds"}; printed by conftest.
STATUS_LIVE: Dict[str, Dict[str, dict]] = {}


def record(case: Case, seconds: Optional[float], routes: int, mem: Optional[float]) -> None:
    RESULTS.setdefault(case.group, {})[case.impl] = {
        "seconds": seconds, "routes": routes, "bytes_per_route": mem}


