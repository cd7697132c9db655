"""BIRD's printed times: one instant printed twice, and ages against ``Current server time``
(formats from shared/bird-formats.md §3.1, as BIRD 1.6.8 and 2.0.12 print them)."""
from __future__ import annotations

import pytest

from nodestatus.birdtime import same_instant, seconds_between


@pytest.mark.parametrize("a, b, same", [
    ("2026-11-27 06:04:57", "2026-11-27 06:04:58", True),
    ("2026-11-27 06:04:57", "2026-11-27 06:04:59", False),
    ("2026-11-27 06:05:21.596", "2026-11-27 06:05:22.401", True),
    ("27-11-2026 06:04:57", "27-11-2026 06:04:56", True),
    ("23:59:59", "00:00:00", True),
    ("06:04", "06:05", True),
    ("06:04", "06:07", False),
    ("1795759496", "1795759497", True),
    ("1795759496", "1795759521", False),
    ("2026-11-26", "2026-11-27", False),
    ("yesterday", "today", False),
])
def test_same_instant(a, b, same):
    assert same_instant(a, b) is same


@pytest.mark.parametrize("since, now, seconds", [
    ("2026-11-27 06:04:57", "2026-11-27 06:05:58", 61.0),             # 1.6 iso long
    ("2026-11-27 06:05:21.596", "2026-11-27 06:05:58.327", 36.731),   # 2.0 with ms
    ("06:04:57", "2026-11-27 06:05:58", 61.0),                        # 1.6 since: today
    ("06:05:21.596", "2026-11-27 06:05:58.327", 36.731),              # 2.0 since
    ("23:59:30", "2026-11-27 00:00:10", 40.0),                        # yesterday evening
    ("06:05:59", "2026-11-27 06:05:58", 0.0),                         # BIRD 1.6's jitter
    ("2026-11-26", "2026-11-27 06:00:00", 30 * 3600.0),               # date: from midnight
    ("27-11-2026 06:04:57", "2026-11-27 06:05:58", 61.0),             # old long
    ("1795759496", "1795759556", 60.0),                               # "%s"
    ("2026-11-27 06:05:59", "2026-11-27 06:05:58", 0.0),              # never negative
])
def test_seconds_between(since, now, seconds):
    assert seconds_between(since, now) == pytest.approx(seconds, abs=1e-3)


@pytest.mark.parametrize("since, now", [("", "2026-11-27 06:05:58"), ("<too-long>", "x"),
                                        ("06:04:57", "06:05:58"), ("06:04:57", "")])
def test_unreadable_times_have_no_age(since, now):
    assert seconds_between(since, now) is None
