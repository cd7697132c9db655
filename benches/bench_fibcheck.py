"""The whole FIB check (BIRD capture parse + netlink dump + decode + compare) against the
kernel tables of a test namespace, next to the tools users reach for.

Per table (IPv4: 10k and 100k routes always, 1M with ``NODESTATUS_BENCH_FULL=1``; IPv6: 200k
with ``NODESTATUS_BENCH_FULL=1``; under ``--benchmark-disable`` only 10k), one namespace
holds the routes in its main table (``proto bird`` via gateways on a veth, plus a few
blackholes), loaded with ``ip -n NS -batch``. BIRD's side is a generated ``show route``
capture in BIRD 1.6 raw framing that matches the table, so no daemon is needed. In one
pytest-benchmark group per table:

* ``check_fib``: ``check_fib(routes_file=…, netns=NS, families=(F,))`` — in sync, asserted;
* ``ip -j route show``: ``ip -n NS -F -j route show`` to /dev/null (the C tool);
* ``pyroute2``: ``IPRoute().get_routes()`` from a thread inside the namespace (10k/100k).

* ``nodestatus fib-check (process)``: ``python -m nodestatus fib-check --netns NS --routes
  FILE`` as users run it, interpreter start included, under ``/usr/bin/time`` (peak RSS).

Peak memory of the in-process check: tracemalloc's peak over one extra run. The summary
table is printed at the end. Targets (reported, not asserted): the 1M IPv4 whole process at
<= 1.0x ``ip -j route show`` on the same table, peak RSS <= 300 MB.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.conftest; nodestatus itself is the installed one

from nodestatus.fibcheck import check_fib  # noqa: E402
from tests.conftest import require as _require  # noqa: E402  (skip locally, fail in CI)

FULL = os.environ.get("NODESTATUS_BENCH_FULL") == "1"
N_BLACKHOLES = 16
N_GATEWAYS = 8
PYROUTE2_MAX = 100_000

#: label -> impl -> {"seconds", "routes", ...}; printed by the summary hook.
FIB_RESULTS: Dict[str, Dict[str, dict]] = {}


@dataclass(frozen=True)
class Table:
    family: int
    size: int     # unicast routes; plus N_BLACKHOLES blackholes

    @property
    def label(self) -> str:
        n = self.size
        size = "%dM" % (n // 1_000_000) if n >= 1_000_000 else "%dk" % (n // 1000)
        return f"fib-check IPv{self.family} {size}"

    @property
    def routes(self) -> int:
        return self.size + N_BLACKHOLES


def tables(config) -> List[Table]:
    if config.getoption("benchmark_disable", False):
        return [Table(4, 10_000)]
    out = [Table(4, 10_000), Table(4, 100_000)]
    if FULL:
        out += [Table(4, 1_000_000), Table(6, 200_000)]
    return out


def pytest_generate_tests(metafunc):
    if "table" in metafunc.fixturenames:
        ts = tables(metafunc.config)
        metafunc.parametrize("table", ts, ids=[t.label.replace(" ", "-") for t in ts],
                             indirect=True, scope="module")


# ------------------------------------------------------------------------------ the tables


def _prefix(family: int, i: int) -> str:
    if family == 4:     # /24s from 11.0.0.0 up (1M of them end in 26.x)
        a = 0x0B000000 + (i << 8)
        return "%d.%d.%d.0/24" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255)
    return "2001:db8:%x:%x::/64" % (i >> 16, i & 0xFFFF)


def _blackhole(family: int, i: int) -> str:
    return f"100.64.{i}.0/24" if family == 4 else f"fd10:244:{i:x}::/122"


def _gateway(family: int, i: int) -> str:
    g = 2 + i % N_GATEWAYS
    return f"192.168.0.{g}" if family == 4 else f"fd00::{g:x}"


def write_inputs(t: Table, workdir: Path) -> (Path, Path):
    """The ``ip -batch`` file that loads the table, and the matching BIRD 1.6 capture."""
    batch, capture = workdir / f"load{t.family}-{t.size}", workdir / f"bird{t.family}-{t.size}"
    with open(batch, "w") as b, open(capture, "w") as c:
        first = True
        for i in range(t.size):
            p, gw = _prefix(t.family, i), _gateway(t.family, i)
            b.write(f"route add {p} via {gw} dev eth0 proto bird\n")
            c.write(("1007-" if first else " ")
                    + f"{p:<18} via {gw} on eth0 [static1 06:04:57] * (200)\n")
            first = False
        for i in range(N_BLACKHOLES):
            p = _blackhole(t.family, i)
            b.write(f"route add blackhole {p} proto bird\n")
            c.write(f" {p:<18} blackhole [static1 06:04:57] * (200)\n")
        # BIRD's own direct route for the veth: BIRD 1.6 never exports it to the kernel
        net = "192.168.0.0/24" if t.family == 4 else "fd00::/64"
        c.write(f" {net:<18} dev eth0 [direct1 06:04:57] * (240)\n")
        c.write("0000 \n")
    return batch, capture


class Loaded:
    def __init__(self, t: Table, ns: str, capture: Path) -> None:
        self.t, self.ns, self.capture = t, ns, capture


@pytest.fixture(scope="module")
def registry():
    from tests.integration.fixtures.netns import NetnsRegistry, require_netns

    require_netns(_require)
    reg = NetnsRegistry(prefix="nsf")
    try:
        yield reg
    finally:
        reg.cleanup()


@pytest.fixture(scope="module")
def table(request, registry, tmp_path_factory):
    t: Table = request.param
    workdir = tmp_path_factory.mktemp(f"fib{t.family}")
    batch, capture = write_inputs(t, workdir)
    tag = t.label.split()[-2].lower() + t.label.split()[-1].lower()
    ns, peer = registry.add(tag), registry.add(tag + "p")
    try:
        registry.veth(ns, "eth0", peer, "eth0")
        if t.family == 4:
            registry.addr(ns, "eth0", "192.168.0.1/24")
        else:
            registry.addr(ns, "eth0", "fd00::1/64")
        t0 = time.perf_counter()
        registry.ip(ns, f"-{t.family}", "-batch", str(batch))
        load_s = time.perf_counter() - t0
        batch.unlink()
        FIB_RESULTS.setdefault(t.label, {})["load"] = {"seconds": load_s}
        yield Loaded(t, ns, capture)
    finally:
        # free the kernel's memory for the next table at once
        for name in (ns, peer):
            if name in registry.namespaces:
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
                registry.namespaces.remove(name)
        capture.unlink(missing_ok=True)


def _record(t: Table, impl: str, benchmark, **extra) -> None:
    stats = getattr(benchmark, "stats", None)
    seconds = None
    if stats is not None and not getattr(benchmark, "disabled", False):
        try:
            seconds = stats.stats.min
        except AttributeError:
            seconds = None
    FIB_RESULTS.setdefault(t.label, {})[impl] = dict(seconds=seconds, routes=t.routes, **extra)
    benchmark.extra_info.update(routes=t.routes, **extra)


def _rounds(t: Table) -> int:
    return 3 if t.size >= 1_000_000 else 5


# ------------------------------------------------------------------------------ benches


def _check(loaded: Loaded):
    t = loaded.t
    return check_fib(routes_file=str(loaded.capture), netns=loaded.ns, families=(t.family,))


def _assert_in_sync(report, t: Table) -> None:
    (fam,) = report.families
    assert report.in_sync and fam.differences == [], fam.differences[:5]
    assert (fam.bird_routes, fam.agree, fam.missing, fam.extra) == (t.routes, t.routes, 0, 0)
    # and the veth's connected route(s): 192.168.0.0/24; fd00::/64 and fe80::/64
    assert fam.kernel_routes == t.routes + (1 if t.family == 4 else 2)


def _peak_traced(loaded: Loaded) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        report = _check(loaded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _assert_in_sync(report, loaded.t)
    return peak


def bench_check_fib(benchmark, table: Loaded):
    t = table.t
    benchmark.group = t.label
    benchmark.name = "check_fib"
    report = benchmark.pedantic(_check, args=(table,), rounds=_rounds(t), iterations=1,
                                warmup_rounds=0)
    _assert_in_sync(report, t)
    fam = report.families[0]
    peak = _peak_traced(table)
    _record(t, "check_fib", benchmark, peak_mb=peak / 2**20, kernel_side_s=fam.seconds)


def _whole_process(loaded: Loaded) -> (int, int):
    """``nodestatus fib-check --netns NS --routes FILE`` as users run it: one process,
    interpreter start and imports included. Returns (exit code, peak RSS KiB)."""
    t = loaded.t
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "nodestatus", "fib-check",
         "--netns", loaded.ns, "--routes", str(loaded.capture), "--family", str(t.family),
         "-o", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc.returncode, int(proc.stderr.strip().splitlines()[-1])


def bench_fib_check_process(benchmark, table: Loaded):
    t = table.t
    _require(os.path.exists("/usr/bin/time"), "/usr/bin/time (Debian's `time`) measures the "
             "peak RSS of the whole process")
    benchmark.group = t.label
    benchmark.name = "nodestatus fib-check (process)"
    rc, rss_kib = benchmark.pedantic(_whole_process, args=(table,), rounds=_rounds(t),
                                     iterations=1, warmup_rounds=0)
    assert rc == 0                                       # in sync
    _record(t, "process", benchmark, maxrss_mb=rss_kib / 1024)


def _ip_json(loaded: Loaded) -> None:
    subprocess.run(["ip", "-n", loaded.ns, f"-{loaded.t.family}", "-j", "route", "show"],
                   stdout=subprocess.DEVNULL, check=True)


def bench_ip_json_route_show(benchmark, table: Loaded):
    t = table.t
    benchmark.group = t.label
    benchmark.name = "ip -j route show"
    benchmark.pedantic(_ip_json, args=(table,), rounds=_rounds(t), iterations=1,
                       warmup_rounds=0)
    _record(t, "ip -j", benchmark)


def _pyroute2_routes(loaded: Loaded) -> int:
    import socket

    from pyroute2 import IPRoute

    from nodestatus.kernel import _in_netns

    def count() -> int:
        af = socket.AF_INET if loaded.t.family == 4 else socket.AF_INET6
        with IPRoute() as ipr:
            return sum(1 for _ in ipr.get_routes(family=af, table=254))

    return _in_netns(loaded.ns, count)


def bench_pyroute2_get_routes(benchmark, table: Loaded):
    t = table.t
    if t.size > PYROUTE2_MAX:
        pytest.skip("pyroute2 only up to 100k routes (it needs ~100 us and 4 KiB a route)")
    benchmark.group = t.label
    benchmark.name = "pyroute2 get_routes"
    n = benchmark.pedantic(_pyroute2_routes, args=(table,), rounds=3, iterations=1,
                           warmup_rounds=0)
    assert n >= t.routes
    _record(t, "pyroute2", benchmark)


# ------------------------------------------------------------------------------ summary


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


class _Summary:
    """A plugin registered by the module fixture below: prints the table at the end."""

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if not FIB_RESULTS:
            return
        tr = terminalreporter
        tr.section("FIB check vs. ip -j route show / pyroute2 (min of rounds)")
        if all(r.get("seconds") is None for res in FIB_RESULTS.values()
               for k, r in res.items() if k != "load"):
            tr.write_line("benchmarks disabled: %d tables checked once, no timings"
                          % len(FIB_RESULTS))
        hdr = "%-20s %9s %9s %9s %7s %7s %11s %12s %8s %8s %8s  %s" % (
            "table", "check (s)", "process s", "ip -j (s)", "ratio", "proc/ip", "pyroute2 s",
            "routes/s", "peak MB", "rss MB", "load (s)", "target")
        tr.write_line(hdr)
        tr.write_line("-" * len(hdr))
        for label, res in FIB_RESULTS.items():
            ours, ipj, pr2 = res.get("check_fib", {}), res.get("ip -j", {}), res.get("pyroute2", {})
            proc = res.get("process", {})

            def vs_ip(r: dict):
                return r["seconds"] / ipj["seconds"] if r.get("seconds") and ipj.get("seconds") \
                    else None

            ratio, pratio = vs_ip(ours), vs_ip(proc)
            rps = ours["routes"] / ours["seconds"] if ours.get("seconds") else None
            target = ""
            if label.endswith("IPv4 1M"):
                ok = pratio is not None and pratio <= 1.0 and proc.get("maxrss_mb", 1e9) <= 300
                target = "%s (process <=1.0x ip -j, peak RSS <=300 MB)" % (
                    "met" if ok else "MISSED")
            tr.write_line("%-20s %9s %9s %9s %7s %7s %11s %12s %8s %8s %8s  %s" % (
                label, _fmt(ours.get("seconds"), ".3f"), _fmt(proc.get("seconds"), ".3f"),
                _fmt(ipj.get("seconds"), ".3f"), "-" if ratio is None else "%.2fx" % ratio,
                "-" if pratio is None else "%.2fx" % pratio, _fmt(pr2.get("seconds"), ".3f"),
                _fmt(rps, ",.0f"), _fmt(ours.get("peak_mb"), ".0f"),
                _fmt(proc.get("maxrss_mb"), ".0f"), _fmt(res.get("load", {}).get("seconds"), ".1f"),
                target))
        tr.write_line("ratio = check_fib in-process / ip -j; proc/ip = the whole `nodestatus "
                      "fib-check` process / ip -j (lower is better); peak MB = tracemalloc peak "
                      "of one in-process check; rss MB = peak RSS of the whole process")


@pytest.fixture(scope="module", autouse=True)
def _summary_plugin(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("nodestatus-fib-summary"):
        pm.register(_Summary(), "nodestatus-fib-summary")
    yield
