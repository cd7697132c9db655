"""Captures as Arrow tables, for query engines (DuckDB, polars, pandas, Spark).

Routes come from the parse core's columns sink: built in C from the reply's bytes, with no
Python object per route and bounded memory (one batch at a time). Every other kind is a
handful of rows per capture: built from its typed records, under an Arrow schema derived
from the record's msgspec type, so a table always has every field of its record.
pyarrow is the ``[arrow]`` extra.
"""
from __future__ import annotations

import functools
import io
import json
import os
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple, Union

import msgspec

from .errors import InputError
from .inputs import open_input
from .kinds import kind_type
from .records import Parser, _as_bytes, record_batches
from .structs import ReplyEnd, Route

__all__ = ("parse_table", "iter_batches", "schema_of", "output_schema", "record_batch",
           "route_batch", "BATCH_ROWS")

#: Rows per record batch: ~128k routes (a few MB of columns) between hand-overs.
BATCH_ROWS = 1 << 17

TableInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]


def _pa() -> Any:
    import pyarrow  # the [arrow] extra; a missing module is named by the CLI

    return pyarrow


# --------------------------------------------------------------------------- schemas


def _arrow_type(t: Any) -> Tuple[Any, bool]:
    """(Arrow type, nullable) of one msgspec type (``msgspec.inspect``)."""
    pa = _pa()
    mi = msgspec.inspect
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        nullable = len(rest) < len(t.types)
        if len(rest) == 1:
            return _arrow_type(rest[0])[0], nullable
        return pa.string(), nullable                  # str | int (a table name or id)
    if isinstance(t, (mi.StrType, mi.LiteralType, mi.EnumType)):
        return pa.string(), False
    if isinstance(t, mi.BoolType):
        return pa.bool_(), False
    if isinstance(t, mi.IntType):
        return pa.int64(), False
    if isinstance(t, mi.FloatType):
        return pa.float64(), False
    if isinstance(t, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        item, item_null = _arrow_type(t.item_type)
        return pa.list_(pa.field("item", item, nullable=item_null)), False
    if isinstance(t, mi.TupleType):
        return pa.struct([pa.field(f"f{i}", *_arrow_type(x))
                          for i, x in enumerate(t.item_types)]), False
    if isinstance(t, mi.StructType):
        return pa.struct(_fields(t)), False
    return pa.string(), True                          # dict / Any: JSON text


@functools.lru_cache(maxsize=None)
def _struct_info(struct_type: type) -> Any:
    """msgspec's type info of a record or nested struct type (hundreds of microseconds a
    call: asked once per type, not once per value)."""
    return msgspec.inspect.type_info(struct_type)


def _fields(info: Any) -> List[Any]:
    pa = _pa()
    return [pa.field(f.encode_name, *_arrow_type(f.type)) for f in info.fields]


def schema_of(record_type: type) -> Any:
    """The Arrow schema of a record type: one column per field, in its order (``Route``:
    the columns sink's schema)."""
    if record_type is Route:
        from ._birdparse import route_schema

        return route_schema()
    return _pa().schema(_fields(_struct_info(record_type)))


def _plain(v: Any) -> Any:
    """A record's value as the schema wants it: structs as dicts with every field (defaults
    included: a table has no "absent"), tuples as lists, untyped dicts as JSON text."""
    if isinstance(v, msgspec.Struct):
        return _plain_fields(v, _struct_info(type(v)))
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, frozenset):
        return sorted(_plain(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(msgspec.to_builtins(v), sort_keys=True)
    return v


def _plain_fields(rec: Any, info: Any) -> Dict[str, Any]:
    return {f.encode_name: _plain(getattr(rec, f.name)) for f in info.fields}


# --------------------------------------------------------------------------- batches


def _with_columns(batch: Any, capture: Optional[str], reply: Optional[Any]) -> Any:
    """``capture`` (the input's name, dictionary-encoded: one string however many rows;
    not ``source``, which routes already have: BIRD's route source) then ``reply`` (an
    array, or the sink's own last column when ``reply`` is True) as the first columns."""
    pa = _pa()
    if reply is True:
        i = batch.num_columns - 1
        reply = batch.column(i)
        batch = batch.remove_column(i)
    if reply is not None:
        batch = batch.add_column(0, pa.field("reply", pa.int32(), nullable=False), reply)
    if capture is not None:
        idx = pa.repeat(pa.scalar(0, pa.int32()), batch.num_rows)
        col = pa.DictionaryArray.from_arrays(idx, pa.array([capture], pa.string()))
        batch = batch.add_column(0, pa.field("capture", col.type, nullable=False), col)
    return batch


def output_schema(record_type: type, *, capture: bool, reply: bool) -> Any:
    """The schema ``iter_batches`` yields for these options."""
    pa = _pa()
    schema = schema_of(record_type)
    if reply:
        schema = schema.insert(0, pa.field("reply", pa.int32(), nullable=False))
    if capture:
        schema = schema.insert(0, pa.field("capture", pa.dictionary(pa.int32(), pa.string()),
                                           nullable=False))
    return schema


def _open(data: TableInput, name: Optional[str]) -> Any:
    """Bytes and text are the capture itself (as for ``parse``); anything else is opened."""
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        return open_input(io.BytesIO(bytes(_as_bytes(data, "parse_table"))),
                          name=name or "<bytes>")
    return open_input(data, name=name)  # type: ignore[arg-type]


def iter_batches(
    data: TableInput,
    kind: str = "routes",
    *,
    framing: Optional[str] = None,
    command: Optional[str] = None,
    capture: Optional[str] = None,
    with_reply: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Any]:
    """Yield ``pyarrow.RecordBatch``es of one record kind as the input is read: memory is
    bounded by ``batch_rows`` (routes: columns built in C; no Route objects).

    ``data``: the capture's bytes or text, or a path / ``os.PathLike`` / binary file object
    (read through the input layer: compression sniffed). ``kind``: ``routes``,
    ``protocols``, ``status``, ``counts``, ``errors``, ``unsupported``, ``banners``.
    ``capture`` names the input, in a first column of that name (a dataset of many captures
    then queries as one table); ``with_reply`` adds each record's reply index.
    On a fault the batches parsed before it are yielded first, then ``ParseError`` (or
    ``InputError``) is raised naming the place.
    """
    record_type = kind_type(kind)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}")
    if record_type is Route:
        yield from _route_batches(data, framing, command, with_reply, batch_rows, capture)
    else:
        yield from _record_batches(data, record_type, framing, command, with_reply,
                                   batch_rows, capture)


def _route_batches(data: TableInput, framing: Optional[str], command: Optional[str],
                   with_reply: bool, batch_rows: int, capture: Optional[str]) -> Iterator[Any]:
    from ._birdparse import column_sink

    sink = column_sink(batch_rows, with_reply)
    parser = Parser(framing=framing, command=command, sink=sink)

    def out(batches: List[Any]) -> Iterator[Any]:
        for b in batches:
            yield route_batch(b, capture=capture, with_reply=with_reply)

    with _open(data, capture) as inp:
        try:
            for _records in record_batches(inp, parser):
                yield from out(sink.take())
        except InputError:
            yield from out(sink.finish())      # the routes before the fault are kept
            raise
        yield from out(sink.finish())


def record_batch(records: List[Any], record_type: type, *, replies: Optional[List[int]] = None,
                 capture: Optional[str] = None) -> Any:
    """Typed records of one kind (not routes: the columns sink makes those) as a record
    batch under :func:`output_schema`; ``replies``: each record's reply index."""
    pa = _pa()
    info = _struct_info(record_type)
    batch = pa.RecordBatch.from_pylist([_plain_fields(r, info) for r in records],
                                       schema=schema_of(record_type))
    return _with_columns(batch, capture, None if replies is None else pa.array(replies,
                                                                                pa.int32()))


def route_batch(batch: Any, *, capture: Optional[str] = None, with_reply: bool = False) -> Any:
    """A columns-sink batch under :func:`output_schema` (``with_reply``: the sink was made
    with ``with_reply`` and its reply column moves first)."""
    return _with_columns(batch, capture, True if with_reply else None)


def _record_batches(data: TableInput, record_type: type, framing: Optional[str],
                    command: Optional[str], with_reply: bool, batch_rows: int,
                    capture: Optional[str]) -> Iterator[Any]:
    from ._birdparse import column_sink

    # routes go to a columns sink (cheaper than Route objects nobody reads)
    routes = column_sink(batch_rows)
    parser = Parser(framing=framing, command=command, reply_markers=True, sink=routes)
    rows: List[Any] = []
    replies: List[int] = []
    reply = 0

    def flush() -> Any:
        batch = record_batch(rows, record_type, replies=replies if with_reply else None,
                             capture=capture)
        rows.clear()
        replies.clear()
        return batch

    with _open(data, capture) as inp:
        try:
            for recs in record_batches(inp, parser):
                routes.take()                  # dropped: memory stays bounded
                for rec in recs:
                    if type(rec) is ReplyEnd:
                        reply = rec.index + 1
                    elif type(rec) is record_type:
                        rows.append(rec)
                        replies.append(reply)
                if len(rows) >= batch_rows:
                    yield flush()
        except InputError as exc:
            for rec in exc.partial:
                if type(rec) is record_type:
                    rows.append(rec)
                    replies.append(reply)
            if rows:
                yield flush()
            raise
        if rows:
            yield flush()


def parse_table(
    data: TableInput,
    kind: str = "routes",
    *,
    framing: Optional[str] = None,
    command: Optional[str] = None,
    capture: Optional[str] = None,
    with_reply: bool = False,
) -> Any:
    """One record kind of a capture as a ``pyarrow.Table`` (see :func:`iter_batches` for
    the arguments). Raises ``ParseError``/``InputError`` naming the place; its ``partial``
    then holds the record batches parsed before the fault."""
    batches: List[Any] = []
    try:
        for b in iter_batches(data, kind, framing=framing, command=command, capture=capture,
                              with_reply=with_reply):
            batches.append(b)
    except InputError as exc:
        exc.partial = batches
        raise
    schema = output_schema(kind_type(kind), capture=capture is not None, reply=with_reply)
    return _pa().Table.from_batches(batches, schema=schema)
