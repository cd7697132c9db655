"""pytest hooks for the benches: parametrize by ``_benchlib.cases`` and print the "vs."
table (group, ours, baseline, ratio, routes/s, bytes per route, target) at the end.

Sizes: 10k routes always, 100k unless ``--benchmark-disable`` (CI runs each body once and must
stay quick), 1M with ``NODESTATUS_BENCH_FULL=1``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import LIVE, RESULTS, STATUS_LIVE, cases  # noqa: E402


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        cs = cases(metafunc.config)
        metafunc.parametrize("case", cs, ids=[c.id for c in cs])


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _target(group: str, ours: dict, ratio: Optional[float]) -> str:
    if ours.get("seconds") is None:
        return ""
    rps = ours["routes"] / ours["seconds"]
    if group.endswith("show route 1M"):
        ok = ratio is not None and ratio >= 15 and ours["seconds"] < 0.35
        return "%s (>=15x, <0.35 s)" % ("met" if ok else "MISSED")
    if "show route all" in group and group.startswith("calico "):
        return "%s (>=1M routes/s)" % ("met" if rps >= 1e6 else "MISSED")
    if "show route all" in group and group.startswith("fulltable "):
        return "%s (>=400k routes/s)" % ("met" if rps >= 4e5 else "MISSED")
    return ""


def _live_summary(tr) -> None:
    tr.section("streaming from a live BIRD (min of rounds)")
    for r in LIVE:
        tr.write_line(
            "%s: %.1f MB in %.3f s wall; our CPU %.3f s (%.0f%% of wall); parse alone %.3f s "
            "(%.0f%% of wall)" % (r["name"], r["mb"], r["wall"], r["cpu"],
                                  100 * r["cpu"] / r["wall"], r["parse_only"],
                                  100 * r["parse_only"] / r["wall"]))


def _status_summary(tr, disabled: bool) -> None:
    tr.section("status assembly from a live BIRD: nodestatus vs. Calico's way (min of rounds)")
    for group, res in STATUS_LIVE.items():
        ours, calico = res.get("nodestatus", {}), res.get("calico-way", {})
        ratio = cpu_ratio = None
        if ours.get("seconds") and calico.get("seconds"):
            ratio = calico["seconds"] / ours["seconds"]
        if ours.get("cpu") and calico.get("cpu"):
            cpu_ratio = calico["cpu"] / ours["cpu"]
        runs = max(r.get("runs", 0) for r in res.values())
        tr.write_line("%s: ours %s s, calico-way %s s, ratio %s%s" % (
            group, _fmt(ours.get("seconds"), ".3f"), _fmt(calico.get("seconds"), ".3f"),
            "-" if ratio is None else "%.2fx" % ratio,
            " (benchmarks disabled: one run each)" if disabled else " (%d rounds)" % runs))
        tr.write_line("  our process CPU: ours %s s, calico-way %s s, ratio %s; BIRD's `show "
                      "route` alone (bytes read, not parsed): %s s wall" % (
                          _fmt(ours.get("cpu"), ".3f"), _fmt(calico.get("cpu"), ".3f"),
                          "-" if cpu_ratio is None else "%.2fx" % cpu_ratio,
                          _fmt(res.get("bird-alone", {}).get("seconds"), ".3f")))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if LIVE and not config.getoption("benchmark_disable", False):
        _live_summary(terminalreporter)
    if STATUS_LIVE:
        _status_summary(terminalreporter, bool(config.getoption("benchmark_disable", False)))
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("nodestatus vs. regex baseline (min of rounds)")
    if all(r.get("seconds") is None for res in RESULTS.values() for r in res.values()):
        tr.write_line("benchmarks disabled: %d groups ran once, no timings" % len(RESULTS))
        return
    hdr = "%-34s %10s %12s %8s %13s %10s %10s  %s" % (
        "group", "ours (s)", "baseline (s)", "ratio", "ours routes/s", "ours B/rt", "base B/rt",
        "target")
    tr.write_line(hdr)
    tr.write_line("-" * len(hdr))
    for group, res in RESULTS.items():
        ours = res.get("nodestatus", {})
        base = res.get("regex-baseline", {})
        ratio = None
        if ours.get("seconds") and base.get("seconds"):
            ratio = base["seconds"] / ours["seconds"]
        rps = ours["routes"] / ours["seconds"] if ours.get("seconds") else None
        tr.write_line("%-34s %10s %12s %8s %13s %10s %10s  %s" % (
            group, _fmt(ours.get("seconds"), ".4f"), _fmt(base.get("seconds"), ".4f"),
            _fmt(ratio, ".1f"), _fmt(rps, ",.0f"), _fmt(ours.get("bytes_per_route"), ".0f"),
            _fmt(base.get("bytes_per_route"), ".0f"), _target(group, ours, ratio)))
