"""Record kinds by name: the words ``parse --only``, ``parse_table(kind=…)`` and the
Parquet dataset's folders use, and the record type and tag behind each."""
from __future__ import annotations

from typing import Dict, FrozenSet, Sequence

from .iproute import KernelRoute
from .structs import (Banner, BirdStatus, ErrorReply, Protocol, ReplyEnd, Route, RouteCount,
                      Unsupported)

__all__ = ("TAG", "ONLY", "KIND_TYPES", "DEFAULT_TAGS", "parse_only", "kind_type")

_TYPES = (Banner, BirdStatus, Protocol, Route, RouteCount, ErrorReply, Unsupported, ReplyEnd,
          KernelRoute)
#: record type -> its tag (the ``record`` field of its encoded form)
TAG: Dict[type, str] = {t: str(t.__struct_config__.tag)  # type: ignore[attr-defined]
                        for t in _TYPES}

#: kind words -> record tags (the tags themselves are accepted too).
ONLY: Dict[str, str] = {
    "routes": "route", "protocols": "protocol", "status": "status", "counts": "route_count",
    "errors": "error", "unsupported": "unsupported", "banners": "banner",
    "kernel": "kernel_route", "replies": "reply_end",
}
#: kind words -> record types (``replies`` are markers, not a table)
KIND_TYPES: Dict[str, type] = {w: t for w, tag in ONLY.items() for t, tg in TAG.items()
                               if tg == tag and t is not ReplyEnd}
#: Written unless ``--only`` asks otherwise: every record but the reply markers.
DEFAULT_TAGS = frozenset(t for t in TAG.values() if t != "reply_end")


def _tag(word: str) -> str:
    w = word.strip().lower()
    tag = ONLY.get(w) or (w if w in TAG.values() else ONLY.get(w + "s"))
    if tag is None:
        raise ValueError(f"unknown record kind {w!r} (choose from {', '.join(ONLY)})")
    return tag


def parse_only(words: Sequence[str]) -> FrozenSet[str]:
    """``["routes,protocols", "status"]`` → tags; ``ValueError`` for an unknown word."""
    tags = {_tag(w) for word in words for w in word.split(",") if w.strip()}
    return frozenset(tags) if tags else DEFAULT_TAGS


def kind_type(word: str) -> type:
    """``"routes"`` (or ``"route"``, the tag) → ``Route``; ``ValueError`` otherwise."""
    tag = _tag(word)
    for w, t in KIND_TYPES.items():
        if ONLY[w] == tag:
            return t
    raise ValueError(f"{word!r} is a marker, not a record kind with a table")


def kind_word(tp: type) -> str:
    """``Route`` → ``"routes"``: the dataset folder of a record type."""
    return next(w for w, t in KIND_TYPES.items() if t is tp)
