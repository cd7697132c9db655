"""Where CalicoNodeStatus resources live: the datastore interface the agent writes through.

A sink lists and watches every CalicoNodeStatus and writes one resource's ``status`` with
optimistic concurrency (the version it read). Backends: ``etcd.py`` (Calico's etcd v3
layout) and ``kube.py`` (Calico's CRD, with or without a status subresource). They are
imported lazily, so parsing never pays for a datastore client. ``selector.py`` is the
label selector that picks the resources an agent serves.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import msgspec

from ..errors import (ConflictError, NotFoundError, SinkError, TooLargeError,  # re-exported
                      WatchExpiredError)

__all__ = ("Stored", "Event", "Sink", "SinkError", "ConflictError", "TooLargeError",
           "NotFoundError", "WatchExpiredError")


class Stored(msgspec.Struct, kw_only=True):
    """One resource as stored: ``raw`` is the whole JSON document as read (so a write keeps
    every field we do not model), ``version`` the datastore's version for CAS."""

    name: str
    version: str
    raw: dict


class Event(msgspec.Struct, kw_only=True):
    type: str                     # "ADDED" | "MODIFIED" | "DELETED"
    name: str
    version: str                  # the datastore version after the event
    stored: Optional[Stored] = None   # None for DELETED


class Sink:
    """Interface of a datastore backend (all methods may raise SinkError)."""

    #: Largest status write the backend accepts, in bytes of the stored document.
    max_bytes: int = 1_500_000

    def list(self) -> Tuple[List[Stored], str]:
        """Every CalicoNodeStatus and the version to watch from."""
        raise NotImplementedError

    def watch(self, since: str, timeout: Optional[float] = None) -> Iterator[Event]:
        """Events after ``since``, as they happen; returns when ``timeout`` passes with
        nothing (so the caller can check for shutdown) or raises SinkError when the
        connection drops (WatchExpiredError when it must list again)."""
        raise NotImplementedError

    def get(self, name: str) -> Stored:
        """One resource (NotFoundError if absent)."""
        raise NotImplementedError

    def write_status(self, stored: Stored, status: dict) -> Stored:
        """Replace ``status`` of the resource read as ``stored`` (CAS on its version);
        returns the new stored form. ConflictError on a version mismatch, TooLargeError
        when the datastore refuses the size."""
        raise NotImplementedError

    def close(self) -> None:
        pass
