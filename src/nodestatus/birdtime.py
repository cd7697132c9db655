"""BIRD's printed times (``timeformat``) read back: is it one instant, how long ago was it.

BIRD prints times in the daemon's local time with the configured ``timeformat`` (1.6:
``%F %T`` for ``show status``, ``%T`` for a protocol's ``since``, the date alone once that
is 20 hours old; 2.0 adds milliseconds; ``"%s"`` for bird_exporter's users). BIRD 1.6
derives them from its monotonic clock plus (real time - monotonic time), both in whole
seconds, so the same instant prints a second apart from one query to the next.

Ages are taken against ``show status``'s ``Current server time``, printed by the same
daemon in the same local time: no time zone is ever guessed.
"""
from __future__ import annotations

import datetime
from typing import Optional, Tuple

__all__ = ("same_instant", "seconds_between", "TOLERANCE")

# (strptime format, precision in seconds, a time of day with no date)
_FORMATS: Tuple[Tuple[str, float, bool], ...] = (
    ("%Y-%m-%d %H:%M:%S.%f", 1.0, False), ("%Y-%m-%d %H:%M:%S", 1.0, False),
    ("%d-%m-%Y %H:%M:%S", 1.0, False), ("%H:%M:%S.%f", 1.0, True), ("%H:%M:%S", 1.0, True),
    ("%H:%M", 60.0, True), ("%Y-%m-%d", 86400.0, False))
#: How far apart two printings of one instant may be (BIRD 1.6's one-second jitter).
TOLERANCE = 1.0
_DAY = 86400.0


def _parse(text: str) -> Optional[Tuple[datetime.datetime, float, bool]]:
    text = text.strip()
    for fmt, precision, daily in _FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt), precision, daily
        except ValueError:
            continue
    return None


def same_instant(a: str, b: str) -> bool:
    """``a`` and ``b`` are one instant as BIRD printed it twice (within its jitter, or
    within the precision of a format without seconds)."""
    if a == b:
        return True
    if a.isdigit() and b.isdigit():                       # timeformat "%s"
        return abs(int(a) - int(b)) <= TOLERANCE
    pa, pb = _parse(a), _parse(b)
    if pa is None or pb is None or pa[1:] != pb[1:]:
        return False
    diff = abs((pa[0] - pb[0]).total_seconds())
    if pa[2]:
        diff = min(diff, _DAY - diff)
    return diff <= max(TOLERANCE, pa[1] if pa[1] < _DAY else 0.0)


def seconds_between(earlier: str, reference: str) -> Optional[float]:
    """Seconds from the time BIRD printed as ``earlier`` (a protocol's ``since``, the last
    reboot) to ``reference`` (its ``Current server time``); None when either cannot be read.
    A time of day with no date is the latest such time not after the reference; a date
    alone (``2026-11-26``, printed once a state is 20 hours old) counts from its midnight,
    so the age is a lower bound off by less than a day. Never negative."""
    if earlier.isdigit() and reference.isdigit():
        return float(max(0, int(reference) - int(earlier)))
    pe, pr = _parse(earlier), _parse(reference)
    if pe is None or pr is None or pr[2]:
        return None
    when, _, daily = pe
    ref = pr[0]
    if daily:
        when = datetime.datetime.combine(ref.date(), when.time())
        if when > ref + datetime.timedelta(seconds=TOLERANCE):
            when -= datetime.timedelta(days=1)
    return max(0.0, (ref - when).total_seconds())
