"""nodestatus: BIRD's control-socket output as typed records, CalicoNodeStatus, FIB checks."""
from ._version import __version__
# parse core
from .records import Parser, iter_records, parse, parse_replies
from .structs import (
    Banner,
    ErrorReply,
    BirdStatus,
    Protocol,
    Route,
    RouteCount,
    Unsupported,
)
# errors
from .errors import (
    BirdError,
    InputError,
    NodeStatusError,
    ParseError,
    TruncatedReplyError,
    UnsupportedFormatError,
)
# talking to BIRD, the status, the FIB check (datastore and kernel clients load lazily)
from .birdsock import BirdClient
from .sources import collect_dumps, collect_live
from .status import build_status
from .fibcheck import check_fib
# Arrow tables (the [arrow] extra; pyarrow loads on first use)
from .tables import iter_batches, parse_table

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
    "ErrorReply",
    "Unsupported",
    # BIRD, status, FIB
    "BirdClient",
    "collect_live",
    "collect_dumps",
    "build_status",
    "check_fib",
    # Arrow tables
    "parse_table",
    "iter_batches",
    # errors
    "NodeStatusError",
    "InputError",
    "ParseError",
    "TruncatedReplyError",
    "UnsupportedFormatError",
    "BirdError",
)
