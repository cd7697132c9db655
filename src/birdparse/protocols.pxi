# The ``show protocols [all]`` grammar: rows (1002) and their detail blocks (1006), in
# the 1.6 and 2.0 layouts (BGP sessions, 2.0 channels and capability blocks, route change
# stats). Rare replies: decoded to str and parsed with string methods. Included by
# _birdparse.pyx.

_STATE_WORDS = frozenset(("down", "start", "up", "wait", "feed", "stop", "flush", "???"))
_BGP_STATES = frozenset(("Idle", "Connect", "Active", "OpenSent", "OpenConfirm",
                         "Established", "Close", "Passive", "Down"))

cdef object _timer(str text):
    """``150/240``, ``215.371/240``, ``115/-`` -> Timer."""
    a, sep, b = text.partition("/")
    def num(x):
        x = x.strip()
        if not x or x == "-":
            return None
        return float(x)
    return Timer(remaining=num(a), configured=num(b) if sep else None)


cdef object _route_counters(str text):
    """``7 imported, 0 filtered, 0 exported, 7 preferred``."""
    vals = {}
    for part in text.split(","):
        words = part.split()
        if len(words) == 2 and words[0].isdigit():
            vals[words[1]] = int(words[0])
    return RouteCounters(
        imported=vals.get("imported", 0), filtered=vals.get("filtered"),
        exported=vals.get("exported", 0), preferred=vals.get("preferred", 0),
    )


cdef tuple _stats_row(str text):
    return tuple(None if c == "---" else int(c) for c in text.split())


def _words(str text):
    return tuple(text.split())


def _timer_value(str text):
    return _timer(text)


# `show protocols all` BGP lines with a field of their own: key -> (field, conversion)
_BGP_DETAIL = {
    "Neighbor address": ("neighbor_address", None), "Neighbor range": ("neighbor_range", None),
    "Neighbor port": ("neighbor_port", int), "Neighbor AS": ("neighbor_as", int),
    "Local AS": ("local_as", int), "Neighbor ID": ("neighbor_id", None),
    "Neighbor caps": ("caps", _words), "Session": ("session", _words),
    "Source address": ("source_address", None), "Hold timer": ("hold_timer", _timer_value),
    "Keepalive timer": ("keepalive_timer", _timer_value), "Last error": ("last_error", None),
}

_STATS_KEYS = {
    "Import updates": "import_updates", "Import withdraws": "import_withdraws",
    "Export updates": "export_updates", "Export withdraws": "export_withdraws",
}


cdef tuple _key_value(str line):
    """``Key words:   value`` -> (key, value) or (None, line) when there is no key."""
    cdef Py_ssize_t i, n = len(line)
    for i in range(n):
        c = line[i]
        if c == ":":
            if i > 0 and (i + 1 == n or line[i + 1] == " " or line[i + 1] == "\t"):
                return line[:i], line[i + 1:].strip()
            return None, line
        if not (c.isalnum() or c in " .-_/"):
            return None, line
    return None, line


cdef bint _is_time_word(str w):
    """``06:04:57``, ``06:05:21.596``, ``06:04``."""
    if len(w) < 5 or not (w[0].isdigit() and w[1].isdigit() and w[2] == ":"):
        return False
    return all(c.isdigit() or c in ":." for c in w)




@cython.final
cdef class _ProtocolGrammar:
    """A protocol row becomes a ``Protocol``; its detail lines fill it in until the next
    row, a blank separator or the end of the reply (``flush``)."""
    cdef list out
    cdef object proto
    cdef object section           # None | "bgp" | Channel object
    cdef object bgp
    cdef str last_key
    cdef int caps_indent
    cdef list caps_target
    cdef bint caps_neighbor
    cdef str caps_name
    cdef bint in_stats
    cdef dict stats_rows
    cdef object stats_owner

    cdef int reset(self) except -1:
        self.proto = None
        self.section = None
        self.bgp = None
        self.in_stats = False
        self.caps_target = None
        return 0

    cdef bint pending(self):
        return self.proto is not None

    cdef int row(self, str text) except -1:
        if self.proto is not None:
            self.flush()
        words = text.split()
        if len(words) < 3:
            raise _Bad(f"protocol row has {len(words)} columns, expected 5 or more: "
                              f"{text[:80]!r}")
        name, proto, table = words[0], words[1], words[2]
        rest_i = 3
        state = ""
        if len(words) > 3 and words[3] in _STATE_WORDS:
            state = words[3]
            rest_i = 4
        since = ""
        if len(words) > rest_i:
            since = words[rest_i]
            rest_i += 1
            if len(words) > rest_i and _is_time_word(words[rest_i]) and not _is_time_word(since) \
                    and since[:1].isdigit():
                since = since + " " + words[rest_i]
                rest_i += 1
        info = ""
        if len(words) > rest_i:
            # the info column keeps its inner spacing: cut the text after `since`
            pos = 0
            for w in words[:rest_i]:
                pos = text.index(w, pos) + len(w)
            info = text[pos:].strip()
        bgp_state = None
        message = None
        if proto == "BGP":
            first, _, tail = info.partition(" ")
            if first in _BGP_STATES:
                bgp_state = first
                message = tail.strip() or None
            else:
                message = info or None
        self.proto = Protocol(name=name, proto=proto, table=None if table == "---" else table,
                              state=state, since=since, info=info, bgp_state=bgp_state,
                              info_message=message)
        self.section = None
        self.bgp = None
        self.in_stats = False
        self.caps_target = None
        self.last_key = None
        return 0

    cdef int flush(self) except -1:
        p = self.proto
        self.close_stats()
        if self.bgp is not None:
            p.bgp = self.bgp
        self.out.append(p)
        self.proto = None
        self.section = None
        self.bgp = None
        return 0

    cdef int close_stats(self) except -1:
        if self.in_stats:
            self.stats_owner.stats = ChangeStats(**self.stats_rows)
            self.in_stats = False
        return 0

    cdef int detail(self, str raw) except -1:
        p = self.proto
        if p is None:
            if raw.strip() == "":
                return 0
            raise _Bad(f"protocol detail line before any protocol row: {raw[:80]!r}")
        stripped = raw.strip()
        p.detail = True                        # even an empty block says "show protocols all"
        if not stripped:                       # separator between protocols
            self.flush()
            return 0
        indent = len(raw) - len(raw.lstrip(" \t"))
        key, value = _key_value(stripped)
        # 2.0 capability blocks: names one level deeper, details two levels deeper
        if self.caps_target is not None:
            if indent > self.caps_indent:
                if indent >= self.caps_indent + 4 and self.caps_name is not None:
                    target = self.bgp.caps_detail if self.caps_neighbor else self.bgp.local_caps_detail
                    detail = target.setdefault(self.caps_name, [])
                    detail.append(stripped)
                else:
                    self.caps_target.append(stripped)
                    self.caps_name = stripped
                    if self.caps_neighbor:
                        self.bgp.caps = tuple(self.caps_target)
                    else:
                        self.bgp.local_caps = tuple(self.caps_target)
                return 0
            self.caps_target = None
        if self.in_stats:
            if key in _STATS_KEYS:
                self.stats_rows[_STATS_KEYS[key]] = _stats_row(value)
                return 0
            self.close_stats()
        if key is None:
            if stripped.startswith("Channel "):
                ch = Channel(name=stripped[8:].strip())
                p.channels = p.channels + (ch,)
                self.section = ch
                return 0
            if stripped in ("Local capabilities", "Neighbor capabilities") and self.bgp is not None:
                self.caps_indent = indent
                self.caps_name = None
                self.caps_neighbor = stripped.startswith("Neighbor")
                self.caps_target = []
                return 0
            if self.bgp is not None and self.section == "bgp":
                self.bgp.extra[stripped] = ""
            else:
                p.extra[stripped] = ""
            return 0
        if key == "Route change stats":
            self.in_stats = True
            self.stats_rows = {}
            self.stats_owner = self.section if isinstance(self.section, Channel) else p
            return 0
        if key == "BGP state":
            self.bgp = BgpSession(state=value)
            self.section = "bgp"
            return 0
        if self.section == "bgp":
            return self.bgp_detail(key, value)
        target = self.section if isinstance(self.section, Channel) else p
        if key == "Preference":
            target.preference = int(value)
        elif key == "Input filter":
            target.input_filter = value
        elif key == "Output filter":
            target.output_filter = value
        elif key == "Routes":
            target.routes = _route_counters(value)
        elif key == "State" and target is not p:
            target.state = value
        elif key == "Table" and target is not p:
            target.table = value
        elif target is p and key == "Description":
            p.description = value
        elif target is p and key == "Message":
            p.message = value
        elif target is p and key == "Router ID":
            p.router_id = value
        elif target is p and key == "VRF":
            p.vrf = value
        else:
            if key == "Action" and self.last_key:   # "Import limit: 100" + "Action: warn"
                key = self.last_key + " action"
            target.extra[key] = value
        self.last_key = key
        return 0

    cdef int bgp_detail(self, str key, str value) except -1:
        b = self.bgp
        field = _BGP_DETAIL.get(key)
        if field is not None:
            setattr(b, field[0], field[1](value) if field[1] is not None else value)
        else:
            if key == "Action" and self.last_key:
                key = self.last_key + " action"
            b.extra[key] = value
        self.last_key = key
        return 0

