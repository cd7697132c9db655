"""Stub of the Cython parse core (src/_birdparse.pyx): what it offers, for type checkers."""
from typing import List, Optional, Union, final

from .structs import Record

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
        sink: Optional[object] = None,
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
    def sink(self) -> object:
        """What routes become (default: Route records); settable between replies."""
    @sink.setter
    def sink(self, value: object) -> None: ...

def _use_templates(on: bool = True) -> bool:
    """Turn route-line templates off/on (tests compare both paths)."""
