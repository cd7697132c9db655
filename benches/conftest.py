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


def _target(group: str, ours: dict, cols: dict, base: dict) -> str:
    """The issue's targets, checked on the 1M groups (min of rounds, ratios from one run)."""
    if not group.endswith(" 1M") or ours.get("seconds") is None:
        return ""
    out = []
    cs = cols.get("seconds")
    if "show route all" in group:
        want = 3e6 if group.startswith("calico ") else 1e6
        if cs:
            rps = cols["routes"] / cs
            out.append("%s columns >=%.0fM/s" % ("met" if rps >= want else "MISSED", want / 1e6))
        return "; ".join(out)
    if cs and base.get("seconds"):
        out.append("%s columns >=30x regex" % ("met" if base["seconds"] / cs >= 30 else "MISSED"))
    if cs:
        out.append("%s columns >=3x structs" % ("met" if ours["seconds"] / cs >= 3 else "MISSED"))
    if cols.get("bytes_per_route") is not None:
        out.append("%s <=64 B/route" % ("met" if cols["bytes_per_route"] <= 64 else "MISSED"))
    if base.get("seconds") and group.startswith("calico "):
        ratio = base["seconds"] / ours["seconds"]
        out.append("%s structs >=15x regex" % ("met" if ratio >= 15 else "MISSED"))
    return "; ".join(out)


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
    tr.section("parse: Route records, Arrow columns, regex baseline (min of rounds)")
    if all(r.get("seconds") is None for res in RESULTS.values() for r in res.values()):
        tr.write_line("benchmarks disabled: %d groups ran once, no timings" % len(RESULTS))
        return
    hdr = "%-26s %9s %9s %9s %7s %7s %12s %7s %7s  %s" % (
        "group", "structs s", "columns s", "regex s", "col/str", "col/rgx", "columns rt/s",
        "str B/rt", "col B/rt", "targets")
    tr.write_line(hdr)
    tr.write_line("-" * len(hdr))
    for group, res in RESULTS.items():
        ours = res.get("nodestatus", {})
        cols = res.get("columns", {})
        base = res.get("regex-baseline", {})

        def ratio(a: dict, b: dict) -> Optional[float]:
            return b["seconds"] / a["seconds"] if a.get("seconds") and b.get("seconds") else None

        rps = cols["routes"] / cols["seconds"] if cols.get("seconds") else None
        tr.write_line("%-26s %9s %9s %9s %7s %7s %12s %7s %7s  %s" % (
            group, _fmt(ours.get("seconds"), ".4f"), _fmt(cols.get("seconds"), ".4f"),
            _fmt(base.get("seconds"), ".4f"), _fmt(ratio(cols, ours), ".1f"),
            _fmt(ratio(cols, base), ".1f"), _fmt(rps, ",.0f"),
            _fmt(ours.get("bytes_per_route"), ".0f"), _fmt(cols.get("bytes_per_route"), ".0f"),
            _target(group, ours, cols, base)))
    tr.write_line("col/str = structs s / columns s; col/rgx = regex s / columns s (higher is "
                  "better); B/rt = bytes a result keeps alive per route")
