# The route grammar: ``show route [all]`` lines (1007 routes, ``Table`` headings and count
# lines, 1008 ``Type:``, 1012 attributes and their ``\t\t`` wraps) scanned in C into values
# that a sink turns into what its user wants: Route records, Arrow columns or the FIB
# check's packed keys. Included by _birdparse.pyx. This is the part that sees millions of
# lines: no Python object is made here.

cdef enum RouteType:
    RT_UNICAST = 0
    RT_BLACKHOLE
    RT_UNREACHABLE
    RT_PROHIBITED
    RT_UNKNOWN
    RT_ROA

ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibited", "unknown", "roa")
cdef PyObject* _ROUTE_TYPE_OBJ[6]
for _i, _t in enumerate(ROUTE_TYPES):
    _ROUTE_TYPE_OBJ[_i] = <PyObject*>_t      # interned literals: alive with the module

ctypedef struct route_line_t:
    # ``<net> <dest> [<proto> <since>[ from <ip>]]< *|!>< info>`` of one route line, as
    # slices of the line (valid during the sink's ``line`` or ``copy`` call only)
    slice_t net             # n < 0: an alternative route of the net numbered net_id
    bint net_ascii
    Py_ssize_t net_id       # bumps with every new net
    int rtype
    slice_t hops            # "via GW on IF …" / "dev IF"; n == 0: none on this line
    slice_t proto
    slice_t since
    slice_t from_           # n < 0: none
    bint primary
    bint sync
    long long pref          # -1: absent
    long long metric
    long long metric2
    char flags[8]           # "-", "s", "/-", "/?" …
    int flags_n
    char origin             # 0: none; i e ? I
    long long origin_as     # -1: none
    PyObject* info          # a str (OSPF words, router-id tags, BIRD 3 extras) or NULL


cdef class _RouteSink:
    """What a parser builds from route lines. Per route the grammar calls ``line`` (a
    parsed route line) or ``copy`` (a line whose text after the net repeats an earlier
    template line), then any of ``hop``/``type_line``/``attr``/``attr_wrap`` (after a
    ``copy``, ``untemplate`` first), then ``flush``, which may hand back the value to keep
    as that line's template. ``out`` is the parser's list of finished records; a sink bumps
    ``generation`` when the templates it handed out are no longer valid."""
    cdef list out
    cdef int generation

    cdef int table(self, const char* p, Py_ssize_t n) except -1:
        """A ``Table <name>:`` heading (n < 0: back to no table, a new reply)."""
        return 0

    cdef int line(self, route_line_t* v) except -1:
        raise NotImplementedError

    cdef int copy(self, route_line_t* v, object tmpl, bint tagged, char origin,
                  long long origin_as) except -1:
        """Only ``v.net*`` is set."""
        raise NotImplementedError

    cdef int untemplate(self) except -1:
        """A line extends a copied route: most sinks' copy() already staged every value
        of the template (the struct sink loads them here)."""
        return 0

    cdef int hop(self, const char* p, Py_ssize_t n) except -1:
        raise NotImplementedError

    cdef int type_line(self, slice_t* words, int nwords) except -1:
        raise NotImplementedError

    cdef int attr(self, const char* p, Py_ssize_t n) except -1:
        raise NotImplementedError

    cdef int attr_wrap(self, const char* p, Py_ssize_t n) except -1:
        raise NotImplementedError

    cdef object flush(self, bint template):
        raise NotImplementedError

    cdef int version(self, str version) except -1:
        """A banner or ``show status`` said which BIRD this is."""
        return 0

    cdef int end_reply(self) except -1:
        return 0


@cython.final
cdef class _RouteGrammar:
    """Route lines -> sink calls. Owns what is about lines rather than routes: the net an
    alternative route inherits, the ``Table`` heading, and the template table (the text
    after the net column -> the sink's template value)."""
    cdef _RouteSink sink
    cdef _StructSink structs      # the sink when it is the default one: direct C calls on
                                  # the hot path instead of the sink's virtual ones
    cdef bint has_prefix          # a net was seen in this reply (alternatives inherit it)
    cdef bint have_route
    cdef bint copied              # the route being built is a template copy
    cdef bint has_table
    cdef bint line_info           # the route line carried info words
    cdef _Intern tails            # route-line text after the net column -> template
    cdef bint tails_off           # detail lines in this reply: the templates would not hold
    cdef Py_ssize_t tmpl_index    # tails entry waiting for this route as its template, or -1
    cdef Py_ssize_t tails_tried   # route lines looked up in this window
    cdef Py_ssize_t tails_hits
    cdef Py_ssize_t tails_skip    # route lines left to parse without looking up
    cdef int tmpl_generation      # the sink's generation the templates belong to
    cdef bint tmpl_tagged         # the template key stops before the [AS…i] tag: its own
    cdef char tag_origin          # origin and origin AS replace the template's
    cdef long long tag_asn        # -1: none
    cdef route_line_t v

    def __cinit__(self):
        self.tails = _Intern(TAILS_MAX, TAILS_ARENA_MAX)
        self.tmpl_index = -1

    cdef int reset(self) except -1:
        """A new reply: no table, no net to inherit, templates kept (unless a table was
        set: they carry it)."""
        self.set_table(NULL, -1)
        self.has_prefix = False
        self.have_route = False
        self.copied = False
        self.tmpl_index = -1
        self.tails_off = False
        return 0

    cdef int set_table(self, const char* p, Py_ssize_t n) except -1:
        """Templates carry the table: a new table heading starts them afresh."""
        if n < 0 and not self.has_table:
            return 0
        self.has_table = n >= 0
        if self.tails.count:
            self.tails.clear()
            self.tmpl_index = -1
        return self.sink.table(p, n)

    cdef int clear_templates(self) except -1:
        """The sink's template values are no longer valid (a new batch of columns)."""
        if self.tails.count:
            self.tails.clear()
        self.tmpl_index = -1
        return 0

    cdef int finish(self) except -1:
        """Emit the route still being built (waiting for next-hop or attribute lines)."""
        if self.have_route:
            self.flush()
        return 0

    cdef int use(self, _RouteSink sink) except -1:
        self.sink = sink
        self.structs = sink if type(sink) is _StructSink else None
        return 0

    cdef int flush(self) except -1:
        # a template, unless its line was extended, or (a tagged key) other info words make
        # the tag's place in the line matter
        cdef bint template = (self.tmpl_index >= 0 and not self.copied
                              and not (self.tmpl_tagged and self.line_info))
        if self.structs is not None:
            tmpl = self.structs.flush(template)
        else:
            tmpl = self.sink.flush(template)
        if template and tmpl is not None:
            self.tails.set_val(self.tmpl_index, tmpl)
        self.tmpl_index = -1
        self.have_route = False
        self.copied = False
        return 0

    # ------------------------------------------------------------------ lines

    cdef int payload(self, const char* p, Py_ssize_t n) except -1:
        """One line of a route reply, framing already removed."""
        cdef Py_ssize_t i, j
        cdef char c
        if n == 0:
            return 0                           # 2.0: blank line between tables
        c = p[0]
        if c == 9 or c == 32:
            if c == 9 and n > 1 and p[1] == 9:
                return self.attr_wrap(p, n)    # "\t\t(…)": a wrapped attribute value
            i = _skip_ws(p, 0, n)
            if i == n:
                return 0
            return self.indented(p, i, n)
        if c == 84 and n > 7 and _starts(p, n, b"Table ", 6) and p[n - 1] == 58:
            if self.have_route:
                self.flush()
            return self.set_table(p + 6, n - 7)
        j = _word_end(p, n)                    # the net
        if _isdigit(c) and memchr(p, 47, j) == NULL and _is_count_bytes(p, n):
            if self.have_route:
                self.flush()
            self.sink.out.append(_route_count(_s(p, n)))
            return 0
        if self.have_route:
            self.flush()
        self.v.net.p = p
        self.v.net.n = j
        self.v.net_ascii = _ascii(p, j)
        self.v.net_id += 1
        self.has_prefix = True
        return self.body(p, j, n)

    cdef int indented(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """An indented line: alternative route (blank net column), next hop, ``Type:``
        or attribute. 1.6 indents alternatives with 19 spaces, 2.0 with 21; copies of
        birdc output sometimes use tabs or spaces for either, so decide by content."""
        cdef Py_ssize_t j = _tok_end(p, i, n)
        cdef const char* w = p + i
        cdef Py_ssize_t wn = j - i
        if wn > 0 and w[wn - 1] == 58:         # "Name:" -> Type or attribute (most lines)
            if not self.have_route:
                raise _Bad(f"route detail line before any route: {_s(p, min(n, 80))!r}")
            self.extend(True)
            if _eq(w, wn, b"Type:", 5):
                return self.type_line(p, j, n)
            return self.sink.attr(p + i, n - i)
        if _is_dest(w, wn):
            if (wn == 3 and (memcmp(w, b"via", 3) == 0 or memcmp(w, b"dev", 3) == 0)
                    and not _bracket_route(p, i, n)):
                if not self.have_route:
                    raise _Bad(f"next hop line before any route: {_s(p, min(n, 80))!r}")
                self.extend(False)
                while n > i and _isws(p[n - 1]):
                    n -= 1
                return self.sink.hop(p + i, n - i)
            if memchr(w, 91, n - i) != NULL:
                if not self.has_prefix:
                    raise _Bad("alternative route (blank destination) before any route")
                if self.have_route:
                    self.flush()
                self.v.net.n = -1
                return self.body(p, i, n)
        if not self.have_route:
            raise _Bad(f"route detail line before any route: {_s(p, min(n, 80))!r}")
        self.extend(True)
        return self.sink.attr(p + i, n - i)

    cdef inline int extend(self, bint detail) except -1:
        """A next-hop, ``Type:`` or attribute line adds to the route being built: its line
        makes no template, a template it copied becomes fields to extend, and after detail
        lines the reply's route lines skip the lookup (their routes get extended too)."""
        self.tmpl_index = -1
        if self.copied:
            self.copied = False
            self.sink.untemplate()
        if detail:
            self.tails_off = True
        return 0

    cdef int attr_wrap(self, const char* p, Py_ssize_t n) except -1:
        if not self.have_route:
            raise _Bad("wrapped attribute line (\\t\\t) with no attribute before it")
        self.extend(False)
        return self.sink.attr_wrap(p, n)

    cdef int type_line(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """1.6 ``Type: BGP unicast univ``; 2.0 ``Type: BGP univ``."""
        cdef slice_t words[3]
        cdef int k = 0
        i = _skip_ws(p, i, n)
        while i < n and k < 3:
            words[k].p = p + i
            i = _tok_end(p, i, n)
            words[k].n = (p + i) - words[k].p
            k += 1
            i = _skip_ws(p, i, n)
        return self.sink.type_line(words, k)

    cdef int body(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """``<dest> [<proto> <since>[ from <ip>]]< *|!>< info>`` from position i."""
        cdef Py_ssize_t j, k, e, s0, s1
        cdef const char* b
        cdef const char* f
        cdef list info = None
        cdef uint64_t h
        cdef Py_ssize_t kn
        cdef PyObject** tmpl_slot = NULL
        cdef route_line_t* v = &self.v
        cdef bint ospf_words
        i = _skip_ws(p, i, n)
        self.tmpl_index = -1
        self.line_info = False
        if self.tmpl_generation != self.sink.generation:
            self.clear_templates()
            self.tmpl_generation = self.sink.generation
        if self.tails_skip > 0:
            self.tails_skip -= 1
        elif not self.tails_off and _TEMPLATES:
            # The text after the net column repeats across routes (same peer, time, flags):
            # the first route built from a text gives the sink's template, and later lines
            # with that text are copies of it with their own prefix.
            # Key: the text after the net column; a trailing origin tag is left out of it
            # (a full table has one per origin AS) and applied to the copy instead.
            kn = self.template_key(p, i, n)
            h = _hash(p + i, kn)
            tmpl_slot = self.tails.slot(p + i, kn, h)
            self.tails_tried += 1
            if self.tails_tried >= TAILS_WINDOW:
                # Few repeats (a full table: a text per origin AS): the lookups only cost.
                # Parse a stretch without them, then look again.
                if self.tails_hits * 4 < self.tails_tried:
                    self.tails_skip = TAILS_SKIP
                self.tails_tried = 0
                self.tails_hits = 0
            if tmpl_slot != NULL:
                if tmpl_slot[0] != <PyObject*>None:
                    self.tails_hits += 1
                    if self.structs is not None:
                        if self.tmpl_tagged and 0 <= self.tag_asn < 65536 \
                                and _U16[self.tag_asn] != NULL:
                            __builtin_prefetch(_U16[self.tag_asn])   # the int, for the copy
                        self.structs.copy(v, <object>tmpl_slot[0], self.tmpl_tagged,
                                          self.tag_origin, self.tag_asn)
                    else:
                        self.sink.copy(v, <object>tmpl_slot[0], self.tmpl_tagged,
                                       self.tag_origin, self.tag_asn)
                    self.have_route = True
                    self.copied = True
                    return 0
            elif 0 < kn <= 4096:
                self.tails.put(p + i, kn, h, None)      # filled in by flush()
                self.tmpl_index = self.tails.count - 1
        j = _tok_end(p, i, n)
        self.have_route = False                # set again once the whole line parsed
        v.hops.n = 0
        v.from_.n = -1
        v.primary = False
        v.sync = False
        v.pref = -1
        v.metric = -1
        v.metric2 = -1
        v.flags_n = 0
        v.origin = 0
        v.origin_as = -1
        v.info = NULL
        b = <const char*>memchr(p + i, 91, n - i)     # '['
        if b == NULL:
            raise _Bad(f"route line without [protocol time]: {_s(p, min(n, 120))!r}")
        k = b - p
        if _eq(p + i, j - i, b"via", 3) or _eq(p + i, j - i, b"dev", 3):
            e = k
            while e > i and _isws(p[e - 1]):
                e -= 1
            v.rtype = RT_UNICAST
            v.hops.p = p + i
            v.hops.n = e - i
        elif _eq(p + i, j - i, b"unicast", 7) or _eq(p + i, j - i, b"multipath", 9):
            v.rtype = RT_UNICAST
        elif _eq(p + i, j - i, b"blackhole", 9):
            v.rtype = RT_BLACKHOLE
        elif _eq(p + i, j - i, b"unreachable", 11):
            v.rtype = RT_UNREACHABLE
        elif _eq(p + i, j - i, b"prohibited", 10):
            v.rtype = RT_PROHIBITED
        elif j - i > 2 and p[i] == 65 and p[i + 1] == 83 and _uint(p, i + 2, j) >= 0:
            v.rtype = RT_ROA                           # 2.0 ROA table: "prefix-max ASn [...]"
            info = [_s(p + i, j - i)]
        elif i == k or _eq(p + i, j - i, b"???", 3):
            v.rtype = RT_UNKNOWN
        else:
            raise _Bad(f"unknown route destination {_s(p + i, j - i)!r}")
        # [proto since[ from ip]]
        f = <const char*>memchr(b, 93, n - k)           # ']'
        if f == NULL:
            raise _Bad(f"unterminated [protocol time] in route line: {_s(p, min(n, 120))!r}")
        e = f - p
        s0 = k + 1
        s1 = _tok_end(p, s0, e)
        v.proto.p = p + s0
        v.proto.n = s1 - s0
        s0 = _skip_ws(p, s1, e)
        s1 = e
        j = s0
        while j + 6 <= e:
            f = <const char*>memchr(p + j, 102, e - j)  # 'f' of " from "
            if f == NULL:
                break
            j = f - p
            if j >= 1 and j + 5 <= e and memcmp(p + j - 1, b" from ", 6) == 0:
                v.from_.p = p + j + 5
                v.from_.n = e - j - 5
                s1 = j - 1
                break
            j += 1
        while s1 > s0 and _isws(p[s1 - 1]):
            s1 -= 1
        if s1 < s0:                                    # "[proto from ip]": no time at all
            s1 = s0
        v.since.p = p + s0
        v.since.n = s1 - s0
        k = _skip_ws(p, e + 1, n)
        if k < n and p[k] == 42:                       # '*'
            v.primary = True
            k += 1
        elif k < n and p[k] == 33:                     # '!'
            v.primary = True
            v.sync = True
            k += 1
        k = _skip_ws(p, k, n)
        # words before "(pref…)": OSPF's I/IA/E1/E2
        ospf_words = False
        while k < n and p[k] != 40 and p[k] != 91:
            ospf_words = True
            j = _tok_end(p, k, n)
            if info is None:
                info = []
            info.append(_s(p + k, j - k))
            k = _skip_ws(p, j, n)
        if k < n and p[k] == 40:                       # '('
            k = _pref_group(v, p, k + 1, n)
            k = _skip_ws(p, k, n)
        while k < n:
            if p[k] == 91:                             # '[' tag
                f = <const char*>memchr(p + k, 93, n - k)
                if f == NULL:
                    j = n
                else:
                    j = (f - p) + 1
                # after OSPF's words (E1, E2, I, IA … before the preference) a bracket is
                # its route tag in hex ("[e]" is tag 0xe), never a BGP origin
                if not (v.origin == 0 and v.origin_as < 0 and not ospf_words
                        and _origin_tag(v, p + k + 1, j - k - 2)):
                    if info is None:
                        info = []
                    info.append(_s(p + k, j - k))
            else:
                j = _tok_end(p, k, n)
                if info is None:
                    info = []
                info.append(_s(p + k, j - k))
            k = _skip_ws(p, j, n)
        text = None
        if info is not None:
            text = " ".join(info)
            v.info = <PyObject*>text
            self.line_info = True
        if self.structs is not None:
            self.structs.line(v)
        else:
            self.sink.line(v)
        self.have_route = True
        return 0

    cdef Py_ssize_t template_key(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """Length of the template key in p[i:n]: everything, or up to and including the
        ``[`` of a valid trailing origin tag (whose values go to tag_origin*); 0: no key."""
        cdef const char* b
        cdef char letter
        cdef long long asn
        self.tmpl_tagged = False
        if n <= i:
            return 0
        if p[n - 1] == 91:                     # "… [": could pass for a tagged key
            return 0
        if p[n - 1] != 93:
            return n - i
        b = p + n - 2
        while b > p + i and b[0] != 91:        # the last '['
            b -= 1
        if b <= p + i or b[0] != 91 or b[-1] != 32 \
                or not _scan_origin_tag(b + 1, (p + n - 1) - (b + 1), &letter, &asn):
            return n - i
        self.tmpl_tagged = True
        self.tag_origin = letter
        self.tag_asn = asn
        if self.structs is not None and 0 <= asn < 65536:
            # The Route's AS int is wanted only when the route is flushed (the next line):
            # start loading its slot now; a full table's origin ASes are too many to stay
            # cached. (Only the struct sink makes Python ints.)
            __builtin_prefetch(&_U16[asn])
        return (b + 1) - (p + i)


cdef inline bint _bracket_route(const char* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """``via X on Y [proto time]`` (an alternative route) vs ``via X on Y weight 1``."""
    cdef const char* b = <const char*>memchr(p + i, 91, n - i)
    return b != NULL and memchr(b, 93, n - (b - p)) != NULL


cdef Py_ssize_t _pref_group(route_line_t* v, const char* p, Py_ssize_t k, Py_ssize_t n) except -1:
    """``(100)``, ``(100/20)``, ``(100/-)``, ``(100/?)``, ``(100-s)``, ``(150/20/0)``."""
    cdef Py_ssize_t j = k, f0
    while j < n and _isdigit(p[j]):
        j += 1
    v.pref = _uint(p, k, j) if j > k else -1
    if j > k and not 0 <= v.pref <= 0x7fffffff:
        raise _Bad(f"preference out of range: {_s(p + k, j - k)}")
    f0 = j
    while j < n and (p[j] == 45 or p[j] == 115):   # '-' suppressed, 's' stale
        j += 1
    while f0 < j and v.flags_n < 4:
        v.flags[v.flags_n] = p[f0]
        v.flags_n += 1
        f0 += 1
    if j < n and p[j] == 47:                       # '/'
        j += 1
        k = j
        while j < n and _isdigit(p[j]):
            j += 1
        if j > k:
            v.metric = _metric(p, k, j)
        elif j < n and (p[j] == 45 or p[j] == 63):
            v.flags[v.flags_n] = 47
            v.flags[v.flags_n + 1] = p[j]
            v.flags_n += 2
            j += 1
        if j < n and p[j] == 47:
            j += 1
            k = j
            while j < n and _isdigit(p[j]):
                j += 1
            if j > k:
                v.metric2 = _metric(p, k, j)
    if j >= n or p[j] != 41:                       # ')'
        raise _Bad(f"malformed (preference/metric) group: {_s(p, min(n, 120))!r}")
    return j + 1


cdef inline long long _metric(const char* p, Py_ssize_t k, Py_ssize_t j) except -2:
    """A route metric: BIRD's are u32."""
    cdef long long m = _uint(p, k, j)
    if not 0 <= m <= 0xffffffff:
        raise _Bad(f"metric out of range: {_s(p + k, j - k)}")
    return m


cdef inline bint _origin_tag(route_line_t* v, const char* p, Py_ssize_t n) noexcept:
    """``AS65001i`` / ``i`` / ``?`` / empty -> origin and origin AS; False if not one."""
    cdef char letter
    cdef long long asn
    if not _scan_origin_tag(p, n, &letter, &asn):
        return False
    if n > 0:
        v.origin_as = asn
        v.origin = letter
    return True
