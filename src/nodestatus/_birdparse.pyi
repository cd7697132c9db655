"""Stub of the Cython parse core (src/_birdparse.pyx): what it offers, for type checkers."""
from typing import Any, Callable, Dict, List, Optional, Tuple, Union, final

from typing_extensions import disjoint_base

from .structs import Record

#: ``Route.type`` values, in the parse core's order.
ROUTE_TYPES: Tuple[str, ...]

@disjoint_base
class _RouteSink:
    """What a parser builds from route lines (the default: Route records)."""

@final
class _ColumnSink(_RouteSink):
    """Routes as Arrow record batches, built in C (see ``column_sink``)."""

    def take(self) -> List[Any]:
        """The ``pyarrow.RecordBatch`` es finished since the last call."""
    def finish(self) -> List[Any]:
        """End of input: the last, partial batch joins the finished ones."""

@final
class _FibSink(_RouteSink):
    """BIRD's routes as the FIB check's packed keys (see ``fib_sink``)."""

    routes: int
    def result(self) -> Dict[int, Tuple[Dict[bytes, bytes], Dict[bytes, bytes], List[bytes]]]:
        """``{family: (expected, merged, sync_failed)}`` once the input is parsed."""
    @property
    def is_bird2(self) -> Optional[bool]:
        """Whether the routes came from BIRD 2 (None: nothing told yet)."""

def route_schema(with_reply: bool = False) -> Any:
    """The ``pyarrow.Schema`` of routes: one column per Route field (``with_reply`` adds
    the reply index)."""

def column_sink(batch_rows: int = 131072, with_reply: bool = False) -> _ColumnSink:
    """A sink that turns routes into Arrow record batches (needs pyarrow)."""

def fib_sink(
    ifindex: Dict[str, int], keep_protocol: Callable[[str, bool], bool], exported: bool,
    bird2: Optional[bool] = None, merge_paths: bool = True,
) -> _FibSink:
    """A sink that packs the routes BIRD installs into the FIB check's keys and values."""

@final
class Parser:
    """Incremental parser of BIRD control-socket output in any framing.

    ``feed(chunk)`` returns the records completed by the chunk; ``close()`` returns the rest
    and raises ``TruncatedReplyError`` if the input ended inside a reply. Errors are
    ``ParseError`` with ``line``, ``offset`` and ``partial`` (records parsed before the fault).
    """

    def __init__(
        self,
        framing: Optional[str] = None,
        command: Optional[str] = None,
        *,
        reply_markers: bool = False,
        strict: bool = False,
        sink: Optional[_RouteSink] = None,
    ) -> None: ...
    def feed(self, data: Union[bytes, bytearray, memoryview, str]) -> List[Record]: ...
    def close(self) -> List[Record]: ...
    @property
    def framing(self) -> str:
        """"auto" until the first line decided it, then "raw", "birdc-v" or "birdc"."""
    @property
    def replies(self) -> int:
        """How many replies have ended so far."""
    @property
    def line(self) -> int:
        """Number of the last line parsed (1-based)."""
    @property
    def sink(self) -> _RouteSink:
        """What routes become (default: Route records); settable between replies."""
    @sink.setter
    def sink(self, value: _RouteSink) -> None: ...

def _use_templates(on: bool = True) -> bool:
    """Turn route-line templates off/on (tests compare both paths)."""
