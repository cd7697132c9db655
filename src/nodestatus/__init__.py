"""nodestatus: BIRD's control-socket output as typed records, CalicoNodeStatus, FIB checks."""
from ._version import __version__
# parse core
from .records import Parser, iter_records, parse, parse_replies
from .structs import (
    Banner,
    BirdError,
    BirdStatus,
    Protocol,
    Route,
    RouteCount,
    Unsupported,
)
# errors
from .errors import NodeStatusError, ParseError, TruncatedReplyError, UnsupportedFormatError

__all__ = (
    "__version__",
    # parse core
    "Parser",
    "parse",
    "parse_replies",
    "iter_records",
    # records
    "Banner",
    "BirdStatus",
    "Protocol",
    "Route",
    "RouteCount",
    "BirdError",
    "Unsupported",
    # errors
    "NodeStatusError",
    "ParseError",
    "TruncatedReplyError",
    "UnsupportedFormatError",
)
