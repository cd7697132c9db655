# cython: language_level=3, embedsignature=True
"""The parse core: BIRD control-socket bytes -> what a sink builds from them.

Owns bytes -> values and nothing else (no sockets, files or policy). This file is the
framing and the reply dispatch; each reply's grammar is its own class, and what a route
becomes is a sink's choice:

    birdparse/text.pxi          byte scanning, interning, shared small parsers
    birdparse/status.pxi        show status            -> BirdStatus
    birdparse/protocols.pxi     show protocols [all]   -> Protocol
    birdparse/routes.pxi        show route [all] lines -> values for a route sink
    birdparse/sink_structs.pxi  -> Route records (the default)
    birdparse/sink_columns.pxi  -> Arrow record batches (arrow.pxi: the array builders)
    birdparse/sink_fib.pxi      -> the FIB check's packed keys (fibformat.pxi: their layout)

Three framings are accepted and detected from the first line: raw socket bytes
(``DDDD-``/``DDDD ``/`` ``), the ``birdc -v`` transcript (continuations indented by five
spaces, ``0000`` hidden) and plain ``birdc``/``birdcl`` text (no codes: banner, headings and
indentation tell the structure). The route grammar is scanned in C over the line's bytes
and repeated route-line text is a template the sink copies; the rarer replies (status,
protocols, counts, errors) are decoded to ``str`` and parsed with plain string methods.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.long cimport PyLong_FromUnsignedLongLong
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

from nodestatus.errors import ParseError, TruncatedReplyError, UnsupportedFormatError
from nodestatus.structs import (
    Banner, BgpAttrs, BgpSession, ErrorReply, BirdStatus, Channel, ChangeStats, Nexthop,
    Protocol, ReplyEnd, Route, RouteCount, RouteCounters, Timer, Unsupported,
)
import nodestatus.structs as _structs

# --------------------------------------------------------------------------- constants

cdef enum Framing:
    F_AUTO = 0
    F_RAW = 1       # socket bytes: one-space continuations, 0000 visible
    F_VERBOSE = 2   # birdc -v: five-space continuations, 0000 hidden
    F_PLAIN = 3     # birdc / birdcl: no codes at all
    F_CODED = 4     # coded, raw vs -v not decided yet

# BIRD's reply codes this parser acts on (``doc/reply_codes``; all of them, for users:
# ``nodestatus.structs.ReplyCode``, checked against these at import).
cdef enum ReplyCode:
    RC_OK = 0                   # 0000: end of a reply
    RC_WELCOME = 1              # 0001 BIRD <version> ready.
    RC_RECONFIGURED = 3
    RC_STATUS = 13              # final line of show status
    RC_ROUTE_COUNT = 14         # 1.6 route count, 2.0 Total:
    RC_RESTRICTED = 16
    RC_CONFIRMED = 18
    RC_NOTHING_TO_DO = 19
    RC_CONFIG_OK = 20
    RC_GR_STATUS = 24           # graceful restart block of show status
    RC_VERSION = 1000
    RC_PROTOCOL = 1002
    RC_PROTOCOL_DETAIL = 1006
    RC_ROUTE = 1007
    RC_ROUTE_TYPE = 1008
    RC_UPTIME = 1011
    RC_ROUTE_ATTR = 1012
    RC_PROTOCOL_HEADING = 2002
    RC_TOO_LONG = 8000          # line overflow; every code from here on is an error

_REPLY_CODES = {
    "OK": RC_OK, "WELCOME": RC_WELCOME, "RECONFIGURED": RC_RECONFIGURED,
    "STATUS": RC_STATUS, "ROUTE_COUNT": RC_ROUTE_COUNT, "RESTRICTED": RC_RESTRICTED,
    "CONFIRMED": RC_CONFIRMED, "NOTHING_TO_DO": RC_NOTHING_TO_DO,
    "CONFIG_OK": RC_CONFIG_OK, "GR_STATUS": RC_GR_STATUS, "VERSION": RC_VERSION,
    "PROTOCOL": RC_PROTOCOL, "PROTOCOL_DETAIL": RC_PROTOCOL_DETAIL, "ROUTE": RC_ROUTE,
    "ROUTE_TYPE": RC_ROUTE_TYPE, "UPTIME": RC_UPTIME, "ROUTE_ATTR": RC_ROUTE_ATTR,
    "PROTOCOL_HEADING": RC_PROTOCOL_HEADING, "TOO_LONG": RC_TOO_LONG,
}
for _name, _code in _REPLY_CODES.items():
    if _structs.ReplyCode[_name] != _code:
        raise ImportError(f"ReplyCode.{_name} is {int(_structs.ReplyCode[_name])} in "
                          f"nodestatus.structs but {_code} in the parse core")

cdef enum Kind:
    K_NONE = 0
    K_BANNER
    K_STATUS
    K_PROTOCOLS
    K_ROUTES
    K_COUNT
    K_ERROR
    K_EMPTY
    K_OK
    K_UNSUPPORTED

_KIND_NAMES = {
    K_NONE: "none", K_BANNER: "banner", K_STATUS: "status", K_PROTOCOLS: "protocols",
    K_ROUTES: "routes", K_COUNT: "route_count", K_ERROR: "error", K_EMPTY: "empty",
    K_OK: "ok", K_UNSUPPORTED: "unsupported",
}
_FRAMINGS = {None: F_AUTO, "auto": F_AUTO, "raw": F_RAW, "birdc-v": F_VERBOSE,
             "verbose": F_VERBOSE, "birdc": F_PLAIN, "plain": F_PLAIN}
_FRAMING_NAMES = {F_AUTO: "auto", F_RAW: "raw", F_VERBOSE: "birdc-v", F_PLAIN: "birdc",
                  F_CODED: "raw"}

cdef Py_ssize_t MAX_LINE = 1 << 20      # BIRD lines are <= 512 bytes; this is a sanity cap
cdef Py_ssize_t INTERN_MAX = 1 << 16    # entries per intern table before it is reset
cdef int PAIR_BITS_MIN = 11             # community pair cache: 2 K slots at first,
cdef int PAIR_BITS_MAX = 19             # up to 512 K (8 MB) on a big table
# Route-line templates: a Calico node has a few per peer. Kept small enough to stay in cache;
# when under a quarter of a window of lookups hit, lookups pause for TAILS_SKIP route lines.
cdef Py_ssize_t TAILS_MAX = 1 << 12
cdef Py_ssize_t TAILS_ARENA_MAX = 1 << 19
cdef Py_ssize_t TAILS_WINDOW = 4096
cdef Py_ssize_t TAILS_SKIP = 1 << 16

# Texts plain birdc prints for error replies (their codes are lost in that framing).
_PLAIN_ERRORS = (
    ("Network not in table", 8001), ("Network not found", 8001),
    ("No protocols match", 8003), ("Stopped due to reconfiguration", 8004),
    ("Protocol is down", 8005), ("Access denied", 8007), ("Command too long", 9000),
    ("<line overflow>", 8000), ("syntax error", 9001), ("No such command.", None),
    ("Unable to connect to server control socket", None),
)
_PLAIN_OK = (
    "Access restricted",
)

# Records built by position (the constructor's cost matters at a million routes): their
# field order is checked here, so reordering a field in structs.py fails at import instead
# of filling the wrong fields.
_POSITIONAL = {
    Route: ("prefix", "table", "type", "nexthops", "protocol", "since", "from_", "primary",
            "sync_error", "preference", "metric", "metric2", "info_flags", "bgp_origin",
            "bgp_origin_as", "info", "source", "cast", "scope", "bgp", "attrs"),
    BgpAttrs: ("origin", "as_path", "as_path_truncated", "as_path_raw", "next_hop", "med",
               "local_pref", "communities", "large_communities", "ext_communities",
               "atomic_aggr", "aggregator", "originator_id", "cluster_list"),
    Nexthop: ("gateway", "interface", "weight", "onlink", "mpls"),
}
for _cls, _fields in _POSITIONAL.items():
    if _cls.__struct_fields__ != _fields:
        raise ImportError(f"nodestatus.structs.{_cls.__name__} fields are "
                          f"{_cls.__struct_fields__}; the parse core builds it by position "
                          f"as {_fields}: update src/birdparse/ with the new order")


class _Bad(Exception):
    """A grammar's complaint about the line in hand; the parser adds the line and byte."""


#: Route-line templates on (tests turn them off to compare both paths).
cdef bint _TEMPLATES = True


include "birdparse/text.pxi"
include "birdparse/status.pxi"
include "birdparse/protocols.pxi"
include "birdparse/routes.pxi"
include "birdparse/sink_structs.pxi"
include "birdparse/arrow.pxi"
include "birdparse/sink_columns.pxi"
include "fibformat.pxi"
include "birdparse/sink_fib.pxi"


def fib_sink(dict ifindex, keep_protocol, bint exported, bird2=None, bint merge_paths=True):
    """A sink that packs the routes BIRD installs into the FIB check's keys and values (see
    birdparse/sink_fib.pxi for the rules); ``result()`` hands them over per family."""
    return _FibSink(ifindex, keep_protocol, exported, bird2, merge_paths)


def column_sink(Py_ssize_t batch_rows=1 << 17, bint with_reply=False):
    """A sink that turns routes into Arrow record batches (pyarrow needed): give it to
    ``Parser(sink=…)``, then ``sink.take()``/``sink.finish()`` hand the batches over."""
    return _ColumnSink(batch_rows, with_reply)


def _use_templates(bint on=True):
    """Turn route-line templates off (tests compare both paths); returns whether the
    struct sink uses them (its Route layout check passed at import)."""
    global _TEMPLATES
    _TEMPLATES = on
    return on and _CLONE_LAYOUT


# --------------------------------------------------------------------------- the parser

@cython.final
cdef class Parser:
    """Incremental parser: ``feed(chunk)`` returns the records completed so far,
    ``close()`` the rest (and reports a truncated reply).

    framing: None/"auto", "raw", "birdc-v", "birdc". command: the command that produced
    the input, when known ("show route all" …); it settles replies that content alone
    cannot classify (an empty plain-birdc reply). reply_markers: emit a ``ReplyEnd``
    after every reply. sink: what routes become (default: Route records).
    """
    cdef int framing
    cdef bint markers
    cdef bint strict
    cdef bytes tail
    cdef Py_ssize_t base          # absolute offset of the start of `tail`/current chunk
    cdef Py_ssize_t lineno
    cdef Py_ssize_t line_off      # absolute offset of the line being parsed
    cdef int last_code
    cdef bint saw_banner
    cdef list out
    cdef bint closed
    # reply
    cdef bint in_reply
    cdef int kind
    cdef int hint_kind
    cdef Py_ssize_t reply_index
    cdef Py_ssize_t reply_line
    cdef Py_ssize_t reply_lines
    cdef int reply_code
    cdef str reply_first
    # grammars
    cdef _StatusGrammar status
    cdef _ProtocolGrammar protocols
    cdef _RouteGrammar routes

    def __init__(self, framing=None, command=None, *, reply_markers=False, strict=False,
                 sink=None):
        if framing not in _FRAMINGS:
            raise ValueError(f"framing must be one of auto, raw, birdc-v, birdc; got {framing!r}")
        if sink is not None and not isinstance(sink, _RouteSink):
            raise TypeError(f"sink must be a route sink of the parse core, not "
                            f"{type(sink).__name__}")
        self.framing = _FRAMINGS[framing]
        self.markers = reply_markers
        self.strict = strict
        self.tail = b""
        self.base = 0
        self.lineno = 0
        self.last_code = 0
        self.status = _StatusGrammar()
        self.protocols = _ProtocolGrammar()
        self.routes = _RouteGrammar()
        self.routes.use(sink if sink is not None else _StructSink())
        self._set_out([])
        self.hint_kind = _command_kind(command) if command else K_NONE
        self.reply_index = 0
        self._reset_reply()

    @property
    def framing(self):
        """The framing in use ("auto" until the first line decided it)."""
        return _FRAMING_NAMES[self.framing]

    @property
    def replies(self):
        """How many replies have ended so far."""
        return self.reply_index

    @property
    def line(self):
        """Number of the last line parsed (1-based)."""
        return self.lineno

    @property
    def sink(self):
        """What routes become: the default struct sink, or the one given."""
        return self.routes.sink

    @sink.setter
    def sink(self, value):
        """Switch sinks between replies (a client asks for one reply in columns or keys)."""
        if not isinstance(value, _RouteSink):
            raise TypeError(f"sink must be a route sink of the parse core, not "
                            f"{type(value).__name__}")
        if self.routes.have_route:
            raise ValueError("a route is still being built: switch sinks between replies")
        self.routes.clear_templates()
        self.routes.use(value)
        (<_RouteSink>value).out = self.out

    cdef inline void _set_out(self, list out):
        self.out = out
        self.protocols.out = out
        self.routes.sink.out = out

    cdef int _emit_version(self, rec) except -1:
        """A banner or status record: out, and the route sink learns the version."""
        self.out.append(rec)
        if rec.version:
            self.routes.sink.version(rec.version)
        return 0

    # ------------------------------------------------------------------ input

    def feed(self, data):
        """Parse a chunk (bytes-like); returns the list of records it completed."""
        cdef bytes buf
        if self.closed:
            raise ValueError("feed() after close()")
        if isinstance(data, bytes):
            buf = <bytes>data
        elif isinstance(data, str):
            buf = (<str>data).encode("utf-8", "surrogateescape")
        else:
            buf = bytes(data)
        if self.tail:
            buf = self.tail + buf
        cdef const char* p = PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t start = 0, end
        cdef const char* nl
        self._set_out([])
        try:
            while start < n:
                nl = <const char*>memchr(p + start, 10, n - start)
                if nl == NULL:
                    break
                end = nl - p
                self.lineno += 1
                self.line_off = self.base + start
                self._line(p + start, end - start)
                start = end + 1
        except _Bad as exc:
            err = self._error(str(exc))
            self._fail_partial(err)
            raise err from None
        except ParseError as exc:
            self._fail_partial(exc)
            raise
        except Exception as exc:
            err = self._error(f"{type(exc).__name__}: {exc}")
            self._fail_partial(err)
            raise err from exc
        self.tail = buf[start:] if start < n else b""
        self.base += start
        if PyBytes_GET_SIZE(self.tail) > MAX_LINE:
            self.line_off = self.base
            exc = self._error(f"line longer than {MAX_LINE} bytes: not BIRD output")
            self._fail_partial(exc)
            raise exc
        out = self.out
        self._set_out([])
        return out

    def close(self):
        """End of input: finish the pending reply; a reply cut short raises
        ``TruncatedReplyError`` (its ``partial`` holds what that reply had parsed)."""
        cdef bytes t
        if self.closed:
            return []
        self.closed = True
        self._set_out([])
        t = self.tail
        self.tail = b""
        try:
            if t:
                self.lineno += 1
                self.line_off = self.base
                if self.framing == F_RAW or self.framing == F_CODED and not self.saw_banner:
                    self._finish_pending()
                    raise self._error("input ends in the middle of a line (no newline): "
                                      "the reply is truncated", TruncatedReplyError)
                self._line(PyBytes_AS_STRING(t), PyBytes_GET_SIZE(t))
            if self.in_reply:
                if self._reply_needs_final():
                    self._finish_pending()
                    raise self._error(
                        f"input ends inside a {_KIND_NAMES[self.kind]} reply started at line "
                        f"{self.reply_line} (no final line): the reply is truncated",
                        TruncatedReplyError)
                self._end_reply(0, True)
        except _Bad as exc:
            err = self._error(str(exc))
            self._fail_partial(err)
            raise err from None
        except ParseError as exc:
            self._fail_partial(exc)
            raise
        except Exception as exc:
            err = self._error(f"{type(exc).__name__}: {exc}")
            self._fail_partial(err)
            raise err from exc
        out = self.out
        self._set_out([])
        return out

    cdef _fail_partial(self, exc):
        """Hand everything that parsed before the fault to the error, including the
        record still being built (its lines were fine)."""
        try:
            self._finish_pending()
        except Exception:
            pass
        exc.partial[:0] = self.out
        self._set_out([])

    cdef object _error(self, str message, cls=ParseError):
        # `partial` is filled by _fail_partial where the error leaves feed()/close()
        return cls(message, line=self.lineno, offset=self.line_off)

    cdef bint _reply_needs_final(self):
        """Whether the current reply, cut here, is incomplete."""
        if self.kind == K_STATUS:            # its 0013 line shows in every framing
            return True
        if self.framing == F_RAW:
            return True
        if self.framing == F_CODED:          # raw unless birdc's banner says -v
            return not self.saw_banner
        return False                         # birdc -v / plain hide the 0000 line

    # ------------------------------------------------------------------ framing

    cdef int _line(self, const char* p, Py_ssize_t n) except -1:
        cdef int code
        cdef Py_ssize_t k
        if (self.kind == K_ROUTES and self.framing == F_RAW and n > 1 and p[0] == 32
                and p[n - 1] != 13 and self.in_reply):
            # the bulk of a route dump: a raw continuation line of a route reply (what the
            # general path below ends up doing, without its framing checks)
            code = self.last_code
            if code == RC_ROUTE or code == RC_ROUTE_TYPE or code == RC_ROUTE_ATTR:
                self.reply_lines += 1
                return self.routes.payload(p + 1, n - 1)
        if n and p[n - 1] == 13:               # tolerate CRLF captures
            n -= 1
        if _starts(p, n, b"bird> \r\x1b[K", 10):
            p += 10                            # birdc fed from a pipe echoes its prompt
            n -= 10                            # and erases it before the output line
            if n == 0:
                return 0
        if self.framing == F_AUTO:
            k = _skip_ws(p, 0, n)
            if k == n:
                return 0                       # leading blank lines
            if n >= 4 and _isdigit(p[0]) and _isdigit(p[1]) and _isdigit(p[2]) and _isdigit(p[3]) \
                    and (n == 4 or p[4] == 45 or p[4] == 32):
                self.framing = F_CODED
            else:
                self.framing = F_PLAIN
        if self.framing == F_PLAIN:
            return self._plain_line(p, n)
        # coded framings
        if n >= 4 and _isdigit(p[0]) and _isdigit(p[1]) and _isdigit(p[2]) and _isdigit(p[3]) \
                and (n == 4 or p[4] == 45 or p[4] == 32):
            code = (p[0] - 48) * 1000 + (p[1] - 48) * 100 + (p[2] - 48) * 10 + (p[3] - 48)
            self.last_code = code
            if n == 4:                         # "0000" with its trailing space trimmed
                return self._payload(code, p + 4, 0, True)
            return self._payload(code, p + 5, n - 5, p[4] == 32)
        if n == 0:
            return 0                           # not BIRD's; blank line in a capture
        if p[0] == 32:
            return self._continuation(p, n)
        if p[0] == 43:                         # '+' async log line: not part of any reply
            return 0
        if self._annotation(p, n):
            return 0
        if _plain_error_code(_s(p, n)) != -2:  # birdc's own complaint ("No such command…")
            if self.in_reply:
                self._end_reply(0, True)
            ecode = _plain_error_code(_s(p, n))
            self.out.append(ErrorReply(code=ecode, message=_s(p, n), final=True, line=self.lineno))
            return 0
        raise _Bad(f"not a BIRD reply line: {_s(p, min(n, 80))!r}")

    cdef int _continuation(self, const char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t strip = 1, k
        if self.framing == F_CODED:
            self._decide_verbose(p, n)
        if self.framing == F_VERBOSE:
            k = 0
            while k < n and k < 5 and p[k] == 32:
                k += 1
            strip = k
        return self._payload(self.last_code, p + strip, n - strip, False)

    cdef void _decide_verbose(self, const char* p, Py_ssize_t n):
        """Raw (1-space) or ``birdc -v`` (5-space) continuations? Decided at the first
        continuation line that tells them apart."""
        cdef Py_ssize_t k = 0
        while k < n and p[k] == 32:
            k += 1
        if k < 5:
            self.framing = F_RAW               # " Current…", "   Input filter", " \tBGP…"
            return
        if k < n and p[k] == 9:
            self.framing = F_VERBOSE           # "     \tvia …"
            return
        code = self.last_code
        if code == RC_ROUTE or code == RC_ROUTE_TYPE or code == RC_ROUTE_ATTR:
            if k == 20 or k == 22:             # blank net column: 1.6 19, 2.0 21 wide
                self.framing = F_RAW
            elif k == 5 or k == 24 or k == 26:
                self.framing = F_VERBOSE       # "     10.0.1.0/24 …", "     7 of 7 routes…"
        elif code == RC_PROTOCOL_DETAIL:                     # protocol details are indented >= 2
            self.framing = F_RAW if k <= 6 else F_VERBOSE
        elif k == 5:                           # depth-0 payloads: status, rows, memory …
            self.framing = F_VERBOSE
        # 6+ spaces with no other evidence: stay undecided (treated as raw below)

    cdef bint _annotation(self, const char* p, Py_ssize_t n) except -1:
        """Lines that captures add around BIRD's own output: a command echo (``>> cmd``
        in transcripts, ``bird> cmd`` prompts), birdc's ``>>> async``/``??? line`` and a
        ``[exit status N]`` footer. Commands start a new reply and hint its kind."""
        cdef Py_ssize_t k
        if _starts(p, n, b">> ", 3) or _starts(p, n, b"bird> ", 6) or _eq(p, n, b"bird>", 5):
            k = 3 if p[0] == 62 else 6
            if self.in_reply and not (self.framing == F_RAW and self._reply_needs_final()):
                self._end_reply(0, True)
            elif self.in_reply:
                self._finish_pending()
                raise self._error("a command starts before the previous reply ended: "
                                  "that reply is truncated", TruncatedReplyError)
            self.hint_kind = _command_kind(_s(p + k, n - k)) if n > k else K_NONE
            return True
        if _starts(p, n, b"[exit status ", 13) or _starts(p, n, b">>> ", 4) \
                or _starts(p, n, b"??? ", 4):
            return True
        if n > 2 and p[0] == 60 and p[n - 1] == 62 and _isdigit(p[1]):
            return True                        # "<N messages lost>" from the echo ring
        return False

    # ------------------------------------------------------------------ replies

    cdef void _reset_reply(self):
        self.in_reply = False
        self.kind = K_NONE
        self.reply_lines = 0
        self.reply_code = -1
        self.reply_first = None
        self.status.take()
        self.protocols.reset()
        self.routes.reset()

    cdef int _start_reply(self, int code, const char* p, Py_ssize_t n, bint final) except -1:
        self.in_reply = True
        self.reply_line = self.lineno
        self.reply_lines = 0
        self.reply_first = _s(p, n)
        if code == RC_WELCOME and final:
            self.kind = K_BANNER
        elif code == RC_VERSION or code == RC_UPTIME or code == RC_STATUS or code == RC_GR_STATUS:
            self.kind = K_STATUS
            self.status.start()
        elif code == RC_PROTOCOL_HEADING or code == RC_PROTOCOL or code == RC_PROTOCOL_DETAIL:
            self.kind = K_PROTOCOLS
        elif code == RC_ROUTE or code == RC_ROUTE_TYPE or code == RC_ROUTE_ATTR:
            self.kind = K_ROUTES
        elif code == RC_ROUTE_COUNT:
            self.kind = K_COUNT
        elif code >= RC_TOO_LONG:
            self.kind = K_ERROR
        elif code == RC_OK:
            self.kind = K_EMPTY if final else K_UNSUPPORTED
        elif code == RC_RESTRICTED or code == RC_RECONFIGURED or code == RC_CONFIRMED or code == RC_NOTHING_TO_DO or code == RC_CONFIG_OK:
            self.kind = K_OK
        else:
            self.kind = K_UNSUPPORTED
        return 0

    cdef int _end_reply(self, int code, bint complete) except -1:
        self._finish_pending()
        if self.kind == K_UNSUPPORTED:
            rec = Unsupported(code=self.reply_code if self.reply_code >= 0 else None,
                              first_line=self.reply_first or "", lines=self.reply_lines,
                              line=self.reply_line)
            if self.strict:
                raise self._error(f"unsupported reply (code {self.reply_code}): "
                                  f"{self.reply_first!r}", UnsupportedFormatError)
            self.out.append(rec)
        if self.markers:
            self.out.append(ReplyEnd(index=self.reply_index, kind=_KIND_NAMES[self.kind],
                                     code=code if code >= 0 else None, complete=complete,
                                     line=self.lineno))
        self.reply_index += 1
        self.routes.sink.end_reply()
        self._reset_reply()
        self.hint_kind = K_NONE
        return 0

    cdef int _finish_pending(self) except -1:
        """Emit the record still being built (a route waiting for attribute lines, a
        protocol waiting for its detail, a status waiting for its final line)."""
        self.routes.finish()
        if self.protocols.pending():
            self.protocols.flush()
        if self.kind == K_STATUS:
            st = self.status.take()
            if st is not None:
                self._emit_version(st)
        return 0

    cdef int _payload(self, int code, const char* p, Py_ssize_t n, bint final) except -1:
        """One line of a coded framing, prefix removed."""
        if not self.in_reply:
            self._start_reply(code, p, n, final)
            self.reply_code = code
        self.reply_lines += 1
        if code == RC_OK:
            if final:
                if self.framing == F_CODED:    # a visible 0000 line proves raw framing
                    self.framing = F_RAW
                return self._end_reply(code, True)
            return 0
        if code >= RC_TOO_LONG:
            rec = ErrorReply(code=code, message=_s(p, n), final=final, line=self.lineno)
            if self.kind == K_ERROR or final:
                self._finish_pending()
            self.out.append(rec)
            if final:
                return self._end_reply(code, True)
            return 0
        if code == RC_WELCOME and final:
            self.saw_banner = True
            self._emit_version(Banner(version=_banner_version(_s(p, n))))
            return self._end_reply(code, True)
        if self.kind == K_ROUTES:
            if code == RC_ROUTE or code == RC_ROUTE_TYPE or code == RC_ROUTE_ATTR:
                self.routes.payload(p, n)
            elif code == RC_ROUTE_COUNT:
                self._finish_pending()
                self.out.append(_route_count(_s(p, n)))
            else:
                self._foreign_code(code, p, n)
        elif self.kind == K_PROTOCOLS:
            if code == RC_PROTOCOL_HEADING:
                pass                           # heading
            elif code == RC_PROTOCOL:
                self.protocols.row(_s(p, n))
            elif code == RC_PROTOCOL_DETAIL:
                self.protocols.detail(_s(p, n))
            else:
                self._foreign_code(code, p, n)
        elif self.kind == K_STATUS:
            self.status.line(_s(p, n), code == RC_STATUS)
        elif self.kind == K_COUNT:
            self.out.append(_route_count(_s(p, n)))
        elif self.kind == K_BANNER:
            self._foreign_code(code, p, n)
        if final:
            return self._end_reply(code, True)
        return 0

    cdef int _foreign_code(self, int code, const char* p, Py_ssize_t n) except -1:
        """A reply code that has no place in the current reply's grammar."""
        raise _Bad(f"code {code:04d} does not belong in a "
                   f"{_KIND_NAMES[self.kind]} reply: {_s(p, min(n, 80))!r}")

    # ------------------------------------------------------------------ plain birdc

    cdef int _plain_line(self, const char* p, Py_ssize_t n) except -1:
        cdef str text
        cdef int kind
        if self._annotation(p, n):
            return 0
        if n == 0 or _skip_ws(p, 0, n) == n:
            if self.kind == K_ROUTES:
                return 0
            if self.kind == K_PROTOCOLS and self.protocols.pending():
                self.protocols.proto.detail = True   # only `show protocols all` has blank lines
                self.protocols.flush()
            return 0
        if _starts(p, n, b"BIRD ", 5) and n > 11 and memcmp(p + n - 7, b" ready.", 7) == 0:
            if self.in_reply:
                self._end_reply(0, True)
            self.saw_banner = True
            self._emit_version(Banner(version=_banner_version(_s(p, n))))
            return 0
        text = None
        if self.in_reply and self.kind == K_ROUTES:
            if p[0] == 9 or p[0] == 32 or _route_head(p, n):
                self.reply_lines += 1
                return self.routes.payload(p, n)
        text = _s(p, n)
        if self.in_reply and self.kind == K_PROTOCOLS:
            if p[0] == 32 or p[0] == 9:
                self.reply_lines += 1
                if text.strip() == "<line overflow>":
                    self.out.append(ErrorReply(code=RC_TOO_LONG, message="<line overflow>",
                                              final=False, line=self.lineno))
                    return 0
                return self.protocols.detail(text)
        if self.in_reply and self.kind == K_STATUS:
            self.reply_lines += 1
            self.status.line(text, text in _FINAL_STATUS)
            if text in _FINAL_STATUS:
                self._end_reply(RC_STATUS, True)
            return 0
        if self.in_reply and self.kind == K_PROTOCOLS and not _is_error_text(text):
            self.reply_lines += 1
            if _is_protocol_heading(text):
                return 0
            return self.protocols.row(text)
        if self.in_reply and self.kind == K_COUNT and _is_count(text):
            self.out.append(_route_count(text))
            return 0
        if self.in_reply and self.kind == K_UNSUPPORTED:
            self.reply_lines += 1
            return 0
        # first line of a new reply (or a line that starts another kind)
        kind = _plain_kind(p, n, text, self.hint_kind)
        if self.in_reply and (kind != self.kind or kind == K_ERROR):
            if kind == K_ERROR:
                self._finish_pending()
            else:
                self._end_reply(0, True)
        if not self.in_reply:
            self.in_reply = True
            self.kind = kind
            self.reply_line = self.lineno
            self.reply_first = text
            self.reply_lines = 0
            self.reply_code = -1
            if kind == K_STATUS:
                self.status.start()
        self.reply_lines += 1
        if kind == K_ERROR:
            code = _plain_error_code(text)
            self.out.append(ErrorReply(code=code, message=text, final=True, line=self.lineno))
            self.reply_code = code if code is not None else -1
            if code != RC_TOO_LONG:
                self._end_reply(code if code is not None else -1, True)
            else:
                self.kind = K_ROUTES if self.hint_kind == K_ROUTES else self.kind
            return 0
        if kind == K_OK:
            return self._end_reply(0, True)
        if kind == K_STATUS:
            self.status.line(text, text in _FINAL_STATUS)
            if text in _FINAL_STATUS:
                self._end_reply(RC_STATUS, True)
            return 0
        if kind == K_PROTOCOLS:
            if _is_protocol_heading(text):
                return 0
            return self.protocols.row(text)
        if kind == K_COUNT:
            self.out.append(_route_count(text))
            return 0
        if kind == K_ROUTES:
            return self.routes.payload(p, n)
        return 0                               # K_UNSUPPORTED: counted, reported at the end

