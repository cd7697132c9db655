"""Captures as Arrow tables (``nodestatus.parse_table`` / ``iter_batches``) and the batch
outputs built on them: ``parse -o parquet --output-dir`` (a dataset: one folder per record
kind, a ``capture`` column) and ``parse -o arrow`` (one IPC stream). Also: NDJSON leaves
out fields at their default, and decodes back to the very records."""
from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import msgspec
import pytest

import nodestatus
from nodestatus import Route, TruncatedReplyError
from nodestatus.cli import main
from nodestatus.kinds import KIND_TYPES, TAG

DATA = Path(__file__).resolve().parent.parent / "data" / "captures"
LAB = DATA / "calico-lab-node1"
V168 = DATA / "1.6.8"
ROUTE_ALL = V168 / "show_route_all.raw.txt"
PIPELINED = V168 / "session_pipelined.txt"


@pytest.fixture(scope="module")
def pa(require):
    """pyarrow, the [arrow] extra: CI installs it (a missing one fails there)."""
    try:
        import pyarrow
        import pyarrow.dataset  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        pyarrow = None
    require(pyarrow is not None, "the [arrow] extra (pyarrow) is not installed")
    return pyarrow


def _fields(tp: type):
    return [f.encode_name for f in msgspec.inspect.type_info(tp).fields]


def test_routes_table_has_every_route(pa):
    data = ROUTE_ALL.read_bytes()
    want = [r for r in nodestatus.parse(data) if isinstance(r, Route)]
    t = nodestatus.parse_table(data)
    assert t.schema.names == _fields(Route)
    assert t.num_rows == len(want) > 0
    assert t.column("prefix").to_pylist() == [r.prefix for r in want]
    assert t.column("protocol").to_pylist() == [r.protocol for r in want]
    assert t.column("primary").to_pylist() == [r.primary for r in want]


@pytest.mark.parametrize("kind", sorted(k for k in KIND_TYPES if k != "kernel"))
def test_every_kind_has_its_records_fields(pa, kind):
    records = nodestatus.parse(PIPELINED.read_bytes())
    tp = KIND_TYPES[kind]
    want = [r for r in records if type(r) is tp]
    t = nodestatus.parse_table(PIPELINED.read_bytes(), kind, capture="s.txt", with_reply=True)
    assert t.schema.names == ["capture", "reply"] + _fields(tp)
    assert t.num_rows == len(want)
    assert set(t.column("capture").to_pylist()) <= {"s.txt"}
    if kind == "protocols":       # nested structs and defaults come through whole
        row = t.to_pylist()[0]
        assert row["name"] == want[0].name and row["proto"] == want[0].proto
        assert row["state"] == want[0].state and row["detail"] == want[0].detail


def test_reply_index_matches_the_reply_markers(pa):
    data = b"".join((V168 / f).read_bytes() for f in (
        "show_route.raw.txt", "show_status.raw.txt", "show_route_all.raw.txt"))
    ends = []
    reply = 0
    for rec in nodestatus.Parser(reply_markers=True).feed(data):
        if type(rec).__name__ == "ReplyEnd":
            reply = rec.index + 1
        elif isinstance(rec, Route):
            ends.append(reply)
    t = nodestatus.parse_table(data, with_reply=True)
    assert t.column("reply").to_pylist() == ends and set(ends) == {0, 2}


def test_stream_is_bounded_batches_and_any_input_form(pa, tmp_path):
    data = ROUTE_ALL.read_bytes()
    whole = nodestatus.parse_table(data)
    batches = list(nodestatus.iter_batches(data, batch_rows=2))
    assert max(b.num_rows for b in batches) == 2 and len(batches) > 2
    assert pa.Table.from_batches(batches).to_pylist() == whole.to_pylist()
    gz = tmp_path / "routes.txt"                  # compression sniffed, not read off the name
    gz.write_bytes(gzip.compress(data))
    assert nodestatus.parse_table(gz).to_pylist() == whole.to_pylist()
    with open(gz, "rb") as f:
        assert nodestatus.parse_table(f).to_pylist() == whole.to_pylist()
    assert nodestatus.parse_table(data.decode()).to_pylist() == whole.to_pylist()


def test_a_cut_capture_keeps_what_parsed_and_says_truncated(pa):
    data = ROUTE_ALL.read_bytes()
    cut = data[: data.index(b"1007-192.168.50.0")]
    before = [r for r in nodestatus.parse(cut + b"0000 \n") if isinstance(r, Route)]
    got = []
    with pytest.raises(TruncatedReplyError):
        for b in nodestatus.iter_batches(cut, batch_rows=3, capture="cut.raw"):
            got += b.to_pylist()
    assert [r["prefix"] for r in got] == [r.prefix for r in before] and got
    with pytest.raises(TruncatedReplyError) as info:
        nodestatus.parse_table(cut, capture="cut.raw")
    assert "cut.raw" in str(info.value)
    kept = pa.Table.from_batches(info.value.partial)
    assert kept.column("prefix").to_pylist() == [r.prefix for r in before]


def test_bad_kind_and_batch_size(pa):
    with pytest.raises(ValueError, match="unknown record kind"):
        nodestatus.parse_table(b"", "bogus")
    with pytest.raises(ValueError, match="batch_rows"):
        list(nodestatus.iter_batches(b"", batch_rows=0))


# --------------------------------------------------------------------------- parse -o


def _counts(capsysbinary, *paths):
    """Records per kind as NDJSON gives them: the reference."""
    assert main(["parse", "-q", *map(str, paths)]) == 0
    lines = capsysbinary.readouterr().out.splitlines()
    return collections.Counter(json.loads(x)["type"] for x in lines)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_parquet_dataset_one_folder_per_kind(pa, tmp_path, capsysbinary, jobs):
    import pyarrow.dataset as ds

    inputs = [LAB / "v4", LAB / "v6", PIPELINED, LAB / "kernel4.json"]
    want = _counts(capsysbinary, *inputs)
    out = tmp_path / "pq"
    assert main(["parse", "-q", "-j", jobs, "-o", "parquet", "--output-dir", str(out),
                 *map(str, inputs)]) == 0
    assert capsysbinary.readouterr().out == b""
    words = {tag: w for w, tag in ((w, TAG[t]) for w, t in KIND_TYPES.items())}
    got = {}
    for folder in sorted(out.iterdir()):
        t = ds.dataset(folder, format="parquet").to_table()     # the folder reads as one
        got[folder.name] = t.num_rows
        assert t.schema.names[:2] == ["capture", "reply"]
        assert t.schema.names[2:] == _fields(KIND_TYPES[folder.name])
        assert not any(p.name.startswith(("_", ".")) for p in folder.rglob("*"))
        if folder.name == "routes":
            caps = set(t.column("capture").to_pylist())
            assert str(LAB / "v4" / "show_route.raw") in caps
    assert got == {words[tag]: n for tag, n in want.items()}
    assert got["routes"] > 0 and got["kernel"] == 12


def test_arrow_stream_of_one_kind(pa, capsysbinary):
    want = _counts(capsysbinary, LAB / "v4", PIPELINED)
    for kind, tag in (("routes", "route"), ("protocols", "protocol")):
        argv = ["parse", "-q", "-o", "arrow", str(LAB / "v4"), str(PIPELINED)]
        assert main(argv + ([] if kind == "routes" else ["--only", kind])) == 0
        t = pa.ipc.open_stream(capsysbinary.readouterr().out).read_all()
        assert t.num_rows == want[tag] > 0
        assert t.schema.names[:2] == ["capture", "reply"]


def test_missing_arrow_extra_is_named(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    assert main(["parse", "-o", "arrow", str(PIPELINED)]) == 2
    assert "pip install 'nodestatus[arrow]'" in capsys.readouterr().err


def test_ndjson_leaves_out_defaults_and_decodes_back(capsysbinary):
    inputs = [ROUTE_ALL, LAB / "v4" / "show_protocols_all.raw", LAB / "v4" / "show_status.raw"]
    assert main(["parse", "-q", *map(str, inputs)]) == 0
    lines = capsysbinary.readouterr().out.splitlines()

    def nulls(v):
        if isinstance(v, dict):
            return sum(nulls(x) for x in v.values()) + sum(x is None for x in v.values())
        if isinstance(v, list):
            return sum(nulls(x) for x in v)
        return 0

    assert lines and all(nulls(json.loads(x)) == 0 for x in lines)
    want = [r for p in inputs for r in nodestatus.parse(p.read_bytes())]
    decoder = msgspec.json.Decoder(nodestatus.structs.Record)
    got = [decoder.decode(msgspec.json.encode(json.loads(x)["record"])) for x in lines]
    assert got == want
