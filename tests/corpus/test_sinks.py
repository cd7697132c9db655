"""One grammar, several sinks: for every capture in tests/data the Arrow columns equal the
Route records field by field (``sinkcheck.row_of`` is the mapping, written from the Route
side), errors arrive at the same line in both, batches cut anywhere change nothing, and
the FIB sink's keys equal those packed from the Route records. Hypothesis-made replies:
test_sink_properties.py."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

import nodestatus
from nodestatus import Route

pa = pytest.importorskip("pyarrow", reason="the [arrow] extra is not installed")

from nodestatus import _birdparse  # noqa: E402
from nodestatus.fibcheck import fib_sink  # noqa: E402
from sinkcheck import columns, ifindex_half_known, packed_from_structs, structs  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"
FILES = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*")
               if p.is_file() and "config" not in p.relative_to(DATA).parts
               and p.suffix not in (".json", ".md") and p.name != "timeformat.conf.txt")


@functools.lru_cache(maxsize=None)
def _raw(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


@pytest.mark.parametrize("rel", FILES)
def test_columns_equal_structs_on_every_capture(rel):
    data = _raw(rel)
    want, want_other, want_err = structs(data)
    got, got_other, got_err = columns(data)
    assert got == want
    assert got_other == want_other
    assert (type(got_err), got_err and got_err.line) == (type(want_err), want_err and want_err.line)


def test_schema_has_every_route_field():
    names = _birdparse.route_schema().names
    assert names == ["from" if f == "from_" else f for f in Route.__struct_fields__]
    assert _birdparse.route_schema(with_reply=True).names[-1] == "reply"


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 64])
def test_batches_cut_anywhere_change_nothing(rows):
    """Batches of any size (alternatives across a cut, templates across a cut)."""
    for rel in ("captures/1.6.8/show_route_all.raw.txt", "captures/2.0.12/show_route.raw.txt",
                "captures/calico-lab-node1/v4/show_route.raw"):
        data = _raw(rel)
        assert columns(data, batch_rows=rows) == columns(data)
        assert columns(data, batch_rows=rows, chunk=5)[0] == columns(data)[0]


# --------------------------------------------------------------------------- the FIB sink

@pytest.mark.parametrize("exported", [False, True])
@pytest.mark.parametrize("rel", [f for f in FILES if "route" in f])
def test_fib_keys_equal_the_keys_packed_from_structs(rel, exported):
    data = _raw(rel)
    try:
        records = nodestatus.parse(data)
    except nodestatus.ParseError as exc:       # up to the fault, both sides agree too
        records = exc.partial
    ifindex = ifindex_half_known(records)
    sink = fib_sink(ifindex, exported=exported)
    parser = nodestatus.Parser(sink=sink)
    try:
        parser.feed(data)
        parser.close()
    except nodestatus.ParseError:
        pass
    bird2 = bool(sink.is_bird2)
    assert sink.result() == packed_from_structs(records, ifindex, exported=exported,
                                                bird2=bird2)


@pytest.mark.parametrize("shape", ["calico", "calico6", "fulltable"])
@pytest.mark.parametrize("detail", [False, True])
def test_sinks_agree_on_generated_tables(shape, detail):
    """The benches' seeded tables: alternatives, ECMP multipath, AS_SETs, long community
    lists wrapped on several lines, templates that hit and miss."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
    import gen_dump

    data = gen_dump.generate_uncached(shape, 3000, detail, seed=7)
    want, _, _ = structs(data)
    got, _, err = columns(data, batch_rows=1000)
    assert err is None and got == want
    records = nodestatus.parse(data)
    ifindex = ifindex_half_known(records)
    for exported in (False, True):
        sink = fib_sink(ifindex, exported=exported)
        parser = nodestatus.Parser(sink=sink)
        parser.feed(data)
        parser.close()
        assert sink.result() == packed_from_structs(records, ifindex, exported=exported,
                                                    bird2=False)
