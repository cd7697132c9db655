"""The public API as the README uses it, checked with ``mypy --strict`` against the installed
package (test_typing.py). Each ``assert_type`` is a claim of the stubs and annotations: a
drifting signature fails the suite. Never run, only type-checked."""
from __future__ import annotations

import socket
from typing import Iterator, List, Optional, Tuple

from typing_extensions import assert_type

import nodestatus
from nodestatus.birdsock import BirdClient, find_socket
from nodestatus.structs import Record

assert_type(nodestatus.__version__, str)

# whole buffers
records = nodestatus.parse(b"0001 BIRD 1.6.8 ready.\n", framing="raw", command="show status")
assert_type(records, List[Record])
for r in records:
    if isinstance(r, nodestatus.Route) and r.primary:
        assert_type(r.prefix, str)
        assert_type(r.nexthops[0].gateway if r.nexthops else r.type, Optional[str])
    elif isinstance(r, nodestatus.Protocol):
        assert_type(r.name, str)
        assert_type(r.bgp_state, Optional[str])
    elif isinstance(r, nodestatus.BirdStatus):
        assert_type(r.router_id, Optional[str])
assert_type(nodestatus.parse_replies(b""), List[List[Record]])

# streams: a path, a file object, a socket
assert_type(nodestatus.iter_records("dump.txt.gz"), Iterator[Record])
with open("dump.txt", "rb") as f:
    assert_type(nodestatus.iter_records(f, chunk_size=4096), Iterator[Record])
assert_type(nodestatus.iter_records(socket.socket(socket.AF_UNIX)), Iterator[Record])

# the parse core: you own the I/O
p = nodestatus.Parser(framing="raw", command="show route all")
got: List[Record] = p.feed(b"1007-x\n") + p.feed(memoryview(b"")) + p.feed("text")
got += p.close()
assert_type(p.framing, str)
assert_type(p.replies, int)

# errors say where
try:
    nodestatus.parse(b"junk")
except nodestatus.TruncatedReplyError as exc:
    assert_type(exc, nodestatus.TruncatedReplyError)
except nodestatus.ParseError as exc:
    assert_type(exc.line, int)
    assert_type(exc.offset, int)
    assert_type(exc.source, Optional[str])
    partial: List[object] = exc.partial
assert issubclass(nodestatus.ParseError, (nodestatus.NodeStatusError, ValueError))

# a live BIRD
path = find_socket(4)
assert_type(path, Optional[str])
if path:
    with BirdClient(path) as bird:
        assert_type(bird, BirdClient)
        assert_type(bird.stream("show route"), Iterator[Record])
        assert_type(bird.query("show status"), List[Record])
        assert_type(bird.pipeline(["show status", "show protocols"]), List[List[Record]])
        assert_type(bird.version, str)

pair: Tuple[int, int] = (len(records), len(got))
