"""Where CalicoNodeStatus resources live: the datastore interface the agent writes through.

A sink lists and watches every CalicoNodeStatus and writes one resource's ``status`` with
optimistic concurrency (the version it read). For ``nodestatus cluster`` it also lists the
nodes the datastore knows and creates, replaces and deletes whole resources. Backends: ``etcd.py`` (Calico's etcd v3
layout) and ``kube.py`` (Calico's CRD, with or without a status subresource). They are
imported lazily, so parsing never pays for a datastore client. ``selector.py`` is the
label selector that picks the resources an agent serves.
"""
from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Tuple

import msgspec

from ..errors import (ConflictError, NotFoundError, SinkError, TooLargeError,  # re-exported
                      WatchExpiredError)
from ..structs import address_family

__all__ = ("Stored", "Event", "NodeInfo", "Sink", "SinkError", "ConflictError",
           "TooLargeError", "NotFoundError", "WatchExpiredError", "bare_address",
           "node_addresses")


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


class NodeInfo(msgspec.Struct, kw_only=True):
    """A node the datastore knows (a Kubernetes Node, a Calico Node in etcd) and its BGP
    addresses, without prefix length ("" when not known)."""

    name: str
    ipv4: str = ""
    ipv6: str = ""


def bare_address(text: object) -> str:
    """``10.0.0.1/24`` -> ``10.0.0.1`` (Calico writes node addresses with the prefix
    length); anything that is not a string -> ""."""
    return text.split("/", 1)[0].strip() if isinstance(text, str) else ""


def node_addresses(v4: object, v6: object, listed: Iterable[object]) -> Tuple[str, str]:
    """A node's IPv4 and IPv6 address: the ones given (``v4``/``v6``, Calico's own
    settings), else the first address of each family in ``listed``."""
    out = {4: bare_address(v4), 6: bare_address(v6)}
    for text in listed:
        addr = bare_address(text)
        if addr and not out[address_family(addr)]:
            out[address_family(addr)] = addr
    return out[4], out[6]


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

    def list_nodes(self) -> List[NodeInfo]:
        """Every node the datastore knows, with its BGP addresses."""
        raise NotImplementedError

    def create(self, doc: dict) -> Stored:
        """Create a CalicoNodeStatus (``metadata.name`` names it); ConflictError when one
        of that name exists."""
        raise NotImplementedError

    def replace(self, stored: Stored, doc: dict) -> Stored:
        """Replace the whole resource read as ``stored`` (CAS on its version)."""
        raise NotImplementedError

    def delete(self, stored: Stored) -> None:
        """Delete the resource read as ``stored``, only if it is still that version
        (ConflictError if it changed, NotFoundError if it is gone)."""
        raise NotImplementedError

    def close(self) -> None:
        pass
