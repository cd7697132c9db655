# The struct sink: route lines -> ``nodestatus.structs.Route`` records, the parser's
# default output. Included by _birdparse.pyx.

# Route records are built once per route line; the common route line (same next hop,
# protocol, time and flags as an earlier one) is built by copying an earlier Route's field
# slots and swapping the prefix, which costs a fraction of msgspec's keyword-checking
# constructor. The field offsets come from the type's own member descriptors and the
# layout is checked once; any surprise (a future msgspec) falls back to the constructor.
cdef extern from *:
    """
    #include <structmember.h>
    static Py_ssize_t ns_route_off[64];
    static Py_ssize_t ns_route_nf = 0;
    static PyTypeObject *ns_route_type = NULL;
    static Py_ssize_t ns_route_origin = -1, ns_route_origin_as = -1;

    static int ns_clone_setup(PyObject *type, PyObject *fields) {
        PyTypeObject *tp = (PyTypeObject *)type;
        Py_ssize_t i, j, nf = PyTuple_GET_SIZE(fields);
        ns_route_type = NULL;
        if (!PyType_Check(type) || nf < 1 || nf > 64) return 0;
        if (PyType_IS_GC(tp) || tp->tp_weaklistoffset || tp->tp_dictoffset || tp->tp_itemsize
                || tp->tp_alloc != PyType_GenericAlloc || tp->tp_free != PyObject_Free)
            return 0;
        if (tp->tp_basicsize != (Py_ssize_t)(sizeof(PyObject) + nf * sizeof(PyObject *)))
            return 0;
        for (i = 0; i < nf; i++) {
            PyObject *d = PyDict_GetItemWithError(tp->tp_dict, PyTuple_GET_ITEM(fields, i));
            if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) { PyErr_Clear(); return 0; }
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            if (m->type != T_OBJECT_EX || m->offset < (Py_ssize_t)sizeof(PyObject)
                    || m->offset + (Py_ssize_t)sizeof(PyObject *) > tp->tp_basicsize)
                return 0;
            for (j = 0; j < i; j++)
                if (ns_route_off[j] == m->offset) return 0;
            ns_route_off[i] = m->offset;
        }
        ns_route_origin = ns_route_origin_as = -1;
        for (i = 0; i < nf; i++) {
            PyObject *f = PyTuple_GET_ITEM(fields, i);
            if (PyUnicode_CompareWithASCIIString(f, "bgp_origin") == 0) ns_route_origin = i;
            if (PyUnicode_CompareWithASCIIString(f, "bgp_origin_as") == 0) ns_route_origin_as = i;
        }
        if (ns_route_origin < 1 || ns_route_origin_as < 1) return 0;
        ns_route_nf = nf;
        ns_route_type = tp;
        return 1;
    }

    /* A new Route with tmpl's fields and `prefix` as its first field. */
    static PyObject *ns_clone_route(PyObject *tmpl, PyObject *prefix) {
        PyTypeObject *tp = ns_route_type;
        /* every slot is written below: no need for tp_alloc's memset */
        PyObject *o = (PyObject *)PyObject_Malloc(tp->tp_basicsize);
        Py_ssize_t i;
        if (o == NULL) return PyErr_NoMemory();
        PyObject_Init(o, tp);
        Py_INCREF(prefix);
        *(PyObject **)((char *)o + ns_route_off[0]) = prefix;
        for (i = 1; i < ns_route_nf; i++) {
            PyObject *v = *(PyObject **)((char *)tmpl + ns_route_off[i]);
            Py_INCREF(v);                   /* a built Route has no empty slot */
            *(PyObject **)((char *)o + ns_route_off[i]) = v;
        }
        return o;
    }

    /* The same, with bgp_origin and bgp_origin_as replaced. */
    static PyObject *ns_clone_route_tagged(PyObject *tmpl, PyObject *prefix,
                                           PyObject *origin, PyObject *origin_as) {
        PyObject *o = ns_clone_route(tmpl, prefix);
        PyObject **a, **b;
        if (o == NULL) return NULL;
        a = (PyObject **)((char *)o + ns_route_off[ns_route_origin]);
        b = (PyObject **)((char *)o + ns_route_off[ns_route_origin_as]);
        Py_INCREF(origin);
        Py_XSETREF(*a, origin);
        Py_INCREF(origin_as);
        Py_XSETREF(*b, origin_as);
        return o;
    }
    """
    int ns_clone_setup(object type, object fields) except -1
    object ns_clone_route(object tmpl, object prefix)
    object ns_clone_route_tagged(object tmpl, object prefix, object origin, object origin_as)

#: True when Route's layout allows ``ns_clone_route`` (checked at import).
cdef bint _CLONE_LAYOUT = ns_clone_setup(Route, Route.__struct_fields__) == 1


@cython.final
cdef class _Numbers:
    """Direct-mapped caches of ASN/community ints and (a, b) community pairs: real tables
    repeat them endlessly, and a hit costs no allocation."""
    cdef unsigned long long ikey[4096]
    cdef PyObject* ival[4096]
    # Community pairs: direct-mapped over 2**pbits slots. It starts small (a parser per
    # small file must be cheap) and grows while a window of lookups mostly misses; at its
    # largest, a window that still misses pauses it (random values: evicting cold tuples
    # would cost more than it saves). A full table's pairs then come out shared.
    cdef unsigned long long* pkey
    cdef PyObject** pval
    cdef int pbits
    cdef Py_ssize_t ptried, phits, pskip, pfilled

    def __cinit__(self):
        memset(self.ival, 0, sizeof(self.ival))
        self.pbits = PAIR_BITS_MIN
        self.pkey = <unsigned long long*>malloc(sizeof(unsigned long long) << self.pbits)
        self.pval = <PyObject**>calloc(<size_t>1 << self.pbits, sizeof(PyObject*))
        if self.pkey == NULL or self.pval == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(4096):
            Py_XDECREF(self.ival[i])
        if self.pval != NULL:
            for i in range(<Py_ssize_t>1 << self.pbits):
                Py_XDECREF(self.pval[i])
        free(self.pkey)
        free(<void*>self.pval)

    cdef inline Py_ssize_t pair_slot(self, unsigned long long a, unsigned long long b) noexcept:
        return <Py_ssize_t>((((a << 32) | (b & 0xffffffffULL)) * 0x9E3779B97F4A7C15ULL)
                            >> (64 - self.pbits))

    cdef void grow_pairs(self):
        """Four times the slots, entries rehashed (if memory is short: stays as it is)."""
        cdef int bits = self.pbits + 2
        cdef Py_ssize_t i, j, size = <Py_ssize_t>1 << self.pbits
        cdef unsigned long long* nk = <unsigned long long*>malloc(sizeof(unsigned long long) << bits)
        cdef PyObject** nv = <PyObject**>calloc(<size_t>1 << bits, sizeof(PyObject*))
        if nk == NULL or nv == NULL:
            free(nk)
            free(<void*>nv)
            return
        for i in range(size):
            if self.pval[i] != NULL:
                j = <Py_ssize_t>((self.pkey[i] * 0x9E3779B97F4A7C15ULL) >> (64 - bits))
                Py_XDECREF(nv[j])
                nv[j] = self.pval[i]
                nk[j] = self.pkey[i]
        free(self.pkey)
        free(<void*>self.pval)
        self.pkey = nk
        self.pval = nv
        self.pbits = bits
        self.pfilled = 0

    cdef inline object int_(self, unsigned long long v):
        cdef Py_ssize_t i
        cdef PyObject* o16
        if v < 65536:                          # every standard community half, most ASNs
            o16 = _U16[v]
            if o16 == NULL:
                o = PyLong_FromUnsignedLongLong(v)
                Py_INCREF(o)                   # kept for the life of the process
                _U16[v] = <PyObject*>o
                return o
            return <object>o16
        i = <Py_ssize_t>((v * 0x9E3779B97F4A7C15ULL) >> 52)
        if self.ival[i] != NULL and self.ikey[i] == v:
            return <object>self.ival[i]
        o = PyLong_FromUnsignedLongLong(v)
        Py_XDECREF(self.ival[i])
        Py_INCREF(o)
        self.ival[i] = <PyObject*>o
        self.ikey[i] = v
        return o

    cdef inline object pair(self, unsigned long long a, unsigned long long b):
        cdef unsigned long long k = (a << 32) | (b & 0xffffffffULL)
        cdef Py_ssize_t i = self.pair_slot(a, b)
        if a > 0xffffffffULL or b > 0xffffffffULL:
            return (self.int_(a), self.int_(b))
        if self.pskip > 0:
            # Random-looking pairs (the cache missed): evicting cold tuples costs more
            # than it saves, so pairs are made fresh for a stretch.
            self.pskip -= 1
            o = (self.int_(a), self.int_(b))
            PyObject_GC_UnTrack(<void*>o)
            return o
        self.ptried += 1
        if self.ptried >= 8192:
            if self.phits * 8 < self.ptried:
                if self.pbits < PAIR_BITS_MAX:
                    self.grow_pairs()
                    i = self.pair_slot(a, b)
                elif self.pfilled >= (1 << self.pbits) // 2:
                    self.pskip = 1 << 16
            self.ptried = 0
            self.phits = 0
        if self.pval[i] != NULL and self.pkey[i] == k:
            self.phits += 1
            return <object>self.pval[i]
        self.pfilled += 1
        o = (self.int_(a), self.int_(b))
        PyObject_GC_UnTrack(<void*>o)          # ints only: no cycles, keep GC passes short
        Py_XDECREF(self.pval[i])
        Py_INCREF(o)
        self.pval[i] = <PyObject*>o
        self.pkey[i] = k
        return o

    cdef tuple as_path(self, const char* p, Py_ssize_t n, bint* trunc, bint* odd):
        """``65001 { 1 2 } 65002 ...`` -> (ints and frozensets); 2.0 cuts ``42...``."""
        cdef list members = None
        cdef Py_ssize_t i, j, bound = 0, got = 0
        cdef long long v
        cdef char c
        cdef bint in_set = False
        cdef unsigned long long seen[32]       # ASNs met on the way, for prefetching
        cdef Py_ssize_t nseen = 0
        cdef unsigned long long acc = 0
        for i in range(n):                     # items at most: runs of digits outside { }
            c = p[i]                           # and one per set; filled straight in
            if _isdigit(c):
                if i == 0 or not _isdigit(p[i - 1]):
                    acc = 0
                    if not in_set:
                        bound += 1
                acc = acc * 10 + <unsigned long long>(c - 48)
                if (i + 1 == n or not _isdigit(p[i + 1])) and acc < 65536 and nseen < 32:
                    __builtin_prefetch(&_U16[acc])
                    seen[nseen] = acc
                    nseen += 1
            elif c == 123:
                in_set = True
                bound += 1
            elif c == 125:
                in_set = False
        for j in range(nseen):                 # a full table's ASNs are rarely cached
            if _U16[seen[j]] != NULL:
                __builtin_prefetch(_U16[seen[j]])
        cdef tuple out = PyTuple_New(bound)
        i = 0
        while i < n:
            c = p[i]
            if c == 32 or c == 9:
                i += 1
            elif _isdigit(c):
                j = i
                while j < n and _isdigit(p[j]):
                    j += 1
                if j + 3 <= n and memcmp(p + j, b"...", 3) == 0:
                    trunc[0] = True            # half an ASN: drop it
                    i = j + 3
                    continue
                v = _uint(p, i, j)
                if not 0 <= v <= 0xffffffff:   # ASNs are u32: kept as text (as_path_raw)
                    odd[0] = True
                elif members is not None:
                    members.append(self.int_(<unsigned long long>v))
                else:
                    item = self.int_(<unsigned long long>v)
                    Py_INCREF(item)
                    PyTuple_SET_ITEM(out, got, item)
                    got += 1
                i = j
            elif c == 123:                     # '{'
                members = []
                i += 1
            elif c == 125:                     # '}'
                if members is not None:
                    fs = frozenset(members)
                    PyObject_GC_UnTrack(<void*>fs)
                    Py_INCREF(fs)
                    PyTuple_SET_ITEM(out, got, fs)
                    got += 1
                members = None
                i += 1
            elif i + 3 <= n and memcmp(p + i, b"...", 3) == 0:
                trunc[0] = True
                i += 3
            else:                              # '(' ')' confederations, anything else
                odd[0] = True
                i += 1
        if members is not None:                # "{ 1 2 ..." cut by the truncation
            fs = frozenset(members)
            Py_INCREF(fs)
            PyTuple_SET_ITEM(out, got, fs)
            got += 1
        if got < bound:                        # truncated or odd: fewer than counted
            out = out[:got]
        return _untracked(out)

    cdef tuple parens(self, const char* p, Py_ssize_t n, int width):
        """``(65000,100) (65000,200)`` / ``(65000, 1, 2)`` -> tuples of ``width`` ints.

        Items are read in batches: the ints of a batch's last values (random-looking on a
        full table, so rarely in the CPU cache) are prefetched together before the tuples
        are built, instead of one cache miss after another."""
        cdef Py_ssize_t i = 0, j, count = 0, got = 0, m, b
        cdef unsigned long long buf[3 * 64]
        cdef Py_ssize_t slot[64]
        cdef unsigned long long w
        cdef long long v
        cdef int k
        cdef const char* q = p
        cdef const char* end = p + n
        while True:                            # size the tuple first: no list, no copy
            q = <const char*>memchr(q, 40, end - q)
            if q == NULL:
                break
            count += 1
            q += 1
        cdef tuple out = PyTuple_New(count)
        while True:
            m = 0
            while m < 64:
                while i < n and (p[i] == 32 or p[i] == 9):
                    i += 1
                if i >= n:
                    break
                if p[i] != 40 or got + m >= count:
                    raise ValueError(f"expected '(' in {_s(p, n)[:60]!r}")
                i += 1
                for k in range(width):
                    while i < n and p[i] == 32:
                        i += 1
                    j = i
                    while j < n and _isdigit(p[j]):
                        j += 1
                    v = _uint(p, i, j)
                    if v < 0:
                        raise ValueError(f"expected a number in {_s(p, n)[:60]!r}")
                    if v > 0xffffffff:
                        raise ValueError(f"community value {v} is wider than 32 bits")
                    buf[m * 3 + k] = <unsigned long long>v
                    i = j
                    while i < n and p[i] == 32:
                        i += 1
                    if i >= n or p[i] != (44 if k < width - 1 else 41):   # ',' then ')'
                        raise ValueError(f"expected {width} numbers in parentheses: {_s(p, n)[:60]!r}")
                    i += 1
                m += 1
            if m == 0:
                break
            if width == 2 and self.pskip == 0:     # pair cache slots, then their tuples
                for b in range(m):
                    j = slot[b] = self.pair_slot(buf[b * 3], buf[b * 3 + 1])
                    __builtin_prefetch(&self.pkey[j])
                    __builtin_prefetch(&self.pval[j])
                for b in range(m):
                    if self.pval[slot[b]] != NULL:
                        __builtin_prefetch(self.pval[slot[b]])
            for b in range(m):                 # the int table's slots, then the ints
                w = buf[b * 3 + width - 1]
                if w < 65536:
                    __builtin_prefetch(&_U16[w])
            for b in range(m):
                w = buf[b * 3 + width - 1]
                if w < 65536 and _U16[w] != NULL:
                    __builtin_prefetch(_U16[w])
            for b in range(m):
                if width == 2:
                    item = self.pair(buf[b * 3], buf[b * 3 + 1])
                else:
                    item = _untracked((self.int_(buf[b * 3]), self.int_(buf[b * 3 + 1]),
                                       self.int_(buf[b * 3 + 2])))
                Py_INCREF(item)
                PyTuple_SET_ITEM(out, got, item)
                got += 1
        if got != count:
            raise ValueError(f"unbalanced parentheses in {_s(p, n)[:60]!r}")
        return _untracked(out)


cdef tuple _parse_ext_list(str text):
    cdef list out = []
    cdef str item
    for item in text.replace(")", ")\0").split("\0"):
        item = item.strip()
        if not item:
            continue
        if item[0] != "(" or item[-1] != ")":
            raise ValueError(f"bad extended community {item!r}")
        out.append(_untracked(tuple(x.strip() for x in item[1:-1].split(","))))
    return _untracked(tuple(out))




@cython.final
cdef class _StructSink(_RouteSink):
    """Route records (``nodestatus.structs.Route``), today's output. Strings, next hops and
    short attribute values come from intern tables; a template is the first Route built
    from a line's text, and later lines with that text are copies of its field slots with
    their own prefix (the constructor costs several times more)."""
    cdef _Intern strings
    cdef _Intern hops_cache
    cdef _Intern values           # short BGP values: origin, next hop, MED, local pref …
    cdef _Intern lists            # AS paths and community lists (they repeat less)
    cdef Py_ssize_t vtried, vhits, vskip   # long BGP values: lookups, hits, lines to skip
    cdef _Numbers nums
    cdef object table_obj
    cdef object prefix
    cdef object r_tmpl            # the template this route copies, or None
    cdef bint tmpl_tagged
    cdef object tag_origin
    cdef long long tag_asn
    cdef object r_type
    cdef list r_hops
    cdef object r_hops_t
    cdef object r_proto
    cdef object r_since
    cdef object r_from
    cdef bint r_primary
    cdef bint r_sync
    cdef long long r_pref          # -1 = absent
    cdef long long r_metric
    cdef long long r_metric2
    cdef long long r_origin_as
    cdef bint r_opt                # from/flags/origin/info set: reset them
    cdef bint r_detail             # Type:/attribute lines seen: reset those fields
    cdef object r_flags
    cdef object r_origin
    cdef object r_info
    cdef object r_source
    cdef object r_cast
    cdef object r_scope
    cdef dict r_attrs
    cdef bint r_bgp
    cdef object b_origin, b_path, b_path_raw, b_nh, b_med, b_lp, b_comm, b_lcomm, b_ecomm
    cdef object b_aggr, b_origid, b_cluster
    cdef bint b_trunc, b_atomic
    cdef int last_attr            # which attribute a "\t\t" wrap continues
    cdef str last_attr_name

    def __cinit__(self):
        self.strings = _Intern()
        self.hops_cache = _Intern()
        self.values = _Intern()
        self.lists = _Intern()
        self.nums = _Numbers()

    cdef int table(self, const char* p, Py_ssize_t n) except -1:
        self.table_obj = self.strings.string(p, n) if n >= 0 else None
        return 0

    cdef inline int _net(self, route_line_t* v) except -1:
        """The net as str, shared by the alternatives of one net."""
        if v.net.n >= 0:
            if v.net_ascii:
                o = PyUnicode_New(v.net.n, 127)
                memcpy(PyUnicode_DATA(o), v.net.p, v.net.n)
                self.prefix = o
            else:
                self.prefix = _s(v.net.p, v.net.n)
        return 0

    cdef int line(self, route_line_t* v) except -1:
        self._net(v)
        self.r_tmpl = None
        self.r_type = <object>_ROUTE_TYPE_OBJ[v.rtype]
        self.r_hops = None
        self.r_hops_t = self._hops(v.hops.p, v.hops.n) if v.hops.n > 0 else ()
        self.r_proto = self.strings.string(v.proto.p, v.proto.n)
        self.r_since = self.strings.string(v.since.p, v.since.n)
        self.r_primary = v.primary
        self.r_sync = v.sync
        self.r_pref = v.pref
        self.r_metric = v.metric
        self.r_metric2 = v.metric2
        self.r_origin_as = v.origin_as
        if self.r_opt:                   # rarely set: reset only when used
            self.r_opt = False
            self.r_from = None
            self.r_flags = None
            self.r_origin = None
            self.r_info = None
        if v.from_.n >= 0:
            self.r_from = self.strings.string(v.from_.p, v.from_.n)
            self.r_opt = True
        if v.flags_n:
            self.r_flags = self.strings.string(v.flags, v.flags_n)
            self.r_opt = True
        if v.origin:
            self.r_origin = _origin(v.origin)
            self.r_opt = True
        if v.origin_as >= 0:
            self.r_opt = True
        if v.info != NULL:
            self.r_info = <object>v.info
            self.r_opt = True
        if self.r_detail:
            self._clear_detail()
        self.last_attr = 0
        return 0

    cdef int copy(self, route_line_t* v, object tmpl, bint tagged, char origin,
                  long long origin_as) except -1:
        self._net(v)
        self.r_tmpl = tmpl
        self.tmpl_tagged = tagged
        if tagged:
            self.tag_origin = _origin(origin) if origin else None
            self.tag_asn = origin_as
        self.last_attr = 0
        return 0

    cdef int untemplate(self) except -1:
        """A next-hop or detail line follows a templated route line: load the template's
        fields into the route being built, which those lines then extend."""
        t = self.r_tmpl
        self.r_tmpl = None
        self.r_type = t.type
        self.r_hops = None
        self.r_hops_t = t.nexthops
        self.r_proto = t.protocol
        self.r_since = t.since
        self.r_from = t.from_
        self.r_primary = t.primary
        self.r_sync = t.sync_error
        self.r_pref = -1 if t.preference is None else t.preference
        self.r_metric = -1 if t.metric is None else t.metric
        self.r_metric2 = -1 if t.metric2 is None else t.metric2
        self.r_flags = t.info_flags
        self.r_origin = t.bgp_origin
        self.r_origin_as = -1 if t.bgp_origin_as is None else t.bgp_origin_as
        self.r_info = t.info
        if self.tmpl_tagged:
            self.r_origin = self.tag_origin
            self.r_origin_as = self.tag_asn
        self.r_opt = True
        self._clear_detail()
        self.last_attr = 0
        return 0

    cdef inline void _clear_detail(self):
        """Forget the ``Type:`` and attribute lines of the previous route."""
        self.r_detail = False
        self.r_source = None
        self.r_cast = None
        self.r_scope = None
        self.r_attrs = None
        self.r_bgp = False

    cdef inline object _tag_as(self):
        if self.tag_asn < 0:
            return None
        return self.nums.int_(<unsigned long long>self.tag_asn)

    cdef object flush(self, bint template):
        if self.r_tmpl is not None:
            if self.tmpl_tagged:
                self.out.append(ns_clone_route_tagged(self.r_tmpl, self.prefix,
                                                      self.tag_origin, self._tag_as()))
            else:
                self.out.append(ns_clone_route(self.r_tmpl, self.prefix))
            self.r_tmpl = None
            return None
        route = self._make_route()
        self.out.append(route)
        return route if template and _CLONE_LAYOUT else None

    cdef object _make_route(self):
        cdef object hops
        if self.r_hops is None:
            hops = self.r_hops_t
        elif len(self.r_hops) == 1:
            hops = self.r_hops_t
        else:
            hops = _untracked(tuple(self.r_hops))
        bgp = None
        if self.r_bgp:
            bgp = BgpAttrs(self.b_origin, self.b_path, self.b_trunc, self.b_path_raw, self.b_nh,
                           self.b_med, self.b_lp, self.b_comm, self.b_lcomm, self.b_ecomm,
                           self.b_atomic, self.b_aggr, self.b_origid, self.b_cluster)
        return Route(
            self.prefix, self.table_obj, self.r_type, hops, self.r_proto, self.r_since,
            self.r_from, self.r_primary, self.r_sync,
            None if self.r_pref < 0 else self.r_pref,
            None if self.r_metric < 0 else self.r_metric,
            None if self.r_metric2 < 0 else self.r_metric2,
            self.r_flags, self.r_origin,
            None if self.r_origin_as < 0 else self.r_origin_as,
            self.r_info, self.r_source,
            self.r_cast, self.r_scope, bgp, self.r_attrs)

    # -- next hops -------------------------------------------------------------------------

    cdef tuple _hops(self, const char* p, Py_ssize_t n):
        """``via GW on IF[ onlink][ weight W][ mpls …]`` / ``dev IF`` -> (Nexthop,), shared."""
        cdef uint64_t h = _hash(p, n)
        cdef PyObject* c = self.hops_cache.get(p, n, h)
        if c != NULL:
            return <tuple>c
        v = _untracked((self._parse_hop(p, n),))   # Nexthop is gc=False: no cycles
        self.hops_cache.put(p, n, h, v)
        return v

    cdef object _parse_hop(self, const char* p, Py_ssize_t n):
        cdef hop_t h
        _scan_hop(p, n, &h)
        gw = self.strings.string(h.gw.p, h.gw.n) if h.gw.n > 0 else None
        iface = self.strings.string(h.iface.p, h.iface.n) if h.iface.n > 0 else None
        mpls = _s(h.mpls.p, h.mpls.n) if h.mpls.n > 0 else None
        return Nexthop(gw, iface, h.weight if h.weight >= 0 else None, h.onlink, mpls)

    cdef int hop(self, const char* p, Py_ssize_t n) except -1:
        cdef tuple t = self._hops(p, n)
        if self.r_hops is None:
            # the route line's own next hop, if it had one, stays first (as in the columns
            # and FIB sinks; BIRD itself says "multipath" on a line with next-hop lines)
            self.r_hops = list(self.r_hops_t)
            if not self.r_hops:
                self.r_hops_t = t
        self.r_hops.append(t[0])
        return 0

    # -- Type: and attribute lines ---------------------------------------------------------

    cdef int type_line(self, slice_t* w, int k) except -1:
        self.r_detail = True
        if k >= 1:
            self.r_source = self.strings.string(w[0].p, w[0].n)
        if k >= 3:
            self.r_cast = self.strings.string(w[1].p, w[1].n)
            self.r_scope = self.strings.string(w[2].p, w[2].n)
        elif k == 2:
            self.r_scope = self.strings.string(w[1].p, w[1].n)
        return 0

    cdef int attr(self, const char* p, Py_ssize_t n) except -1:
        """``Proto.name: value``. BGP attributes are typed (values cached by their text);
        everything else is kept raw in ``attrs``."""
        cdef const char* c = <const char*>memchr(p, 58, n)     # ':'
        cdef Py_ssize_t kn, v0
        cdef uint64_t h
        cdef object val
        cdef PyObject* cached
        cdef bint lists
        cdef int a
        cdef _Intern table
        while n > 0 and p[n - 1] == 32 and (c == NULL or p + n - 1 > c):
            n -= 1
        if c == NULL:
            name = _s(p, n)
            self._raw_attr(name, "")
            return 0
        kn = c - p
        v0 = kn + 1
        if v0 < n and p[v0] == 32:
            v0 += 1
        if kn > 4 and memcmp(p, b"BGP.", 4) == 0:
            a = _bgp_attr_id(p + 4, kn - 4)
            if a == A_NONE:                      # a BGP attribute kept raw: nothing to cache
                self._raw_attr(_s(p, kn), _s(p + v0, n - v0))
                return 0
            lists = a == A_PATH or a == A_COMM or a == A_LCOMM
            if lists and self.vskip > 0:
                # paths and community lists that have not been repeating: hashing and
                # keeping them costs more than parsing them again
                self.vskip -= 1
                val = self._bgp_value(a, p + v0, n - v0)
                if val is None:
                    self._raw_attr(_s(p, kn), _s(p + v0, n - v0))
                    return 0
                return self._set_bgp(<tuple>val)
            h = _hash(p, n)
            table = self.lists if lists else self.values
            cached = table.get(p, n, h)
            val = <object>cached if cached != NULL else None
            if lists:
                self.vtried += 1
                if val is not None:
                    self.vhits += 1
                if self.vtried >= 2048:
                    if self.vhits * 8 < self.vtried:
                        self.vskip = 1 << 15
                    self.vtried = 0
                    self.vhits = 0
            if val is None:
                val = self._bgp_value(a, p + v0, n - v0)
                if val is None:
                    self._raw_attr(_s(p, kn), _s(p + v0, n - v0))
                    return 0
                table.put(p, n, h, _untracked(val))
            return self._set_bgp(<tuple>val)
        self._raw_attr(self.strings.string(p, kn), _s(p + v0, n - v0))
        return 0

    cdef int _raw_attr(self, name, value) except -1:
        self.r_detail = True
        if self.r_attrs is None:
            self.r_attrs = {}
        if name in self.r_attrs:                   # repeated name: keep both
            value = self.r_attrs[name] + "\n" + value
        self.r_attrs[name] = value
        self.last_attr = A_RAW
        self.last_attr_name = name
        return 0

    cdef object _bgp_value(self, int a, const char* vp, Py_ssize_t vn):
        """(attribute id, parsed value[, extra]) for BGP attribute ``a``, else None."""
        cdef bint trunc = False, odd = False
        cdef long long v
        if a == A_PATH:
            path = self.nums.as_path(vp, vn, &trunc, &odd)
            return (A_PATH, path, trunc, _s(vp, vn) if odd else None)
        if a == A_COMM:
            return (A_COMM, self.nums.parens(vp, vn, 2))
        if a == A_LCOMM:
            return (A_LCOMM, self.nums.parens(vp, vn, 3))
        if a == A_NONE:
            return None
        value = _s(vp, vn)
        if a == A_ORIGIN:
            return (A_ORIGIN, value)
        if a == A_NH:
            return (A_NH, _untracked(tuple(value.split())))
        if a == A_MED or a == A_LP:            # u32, as BIRD keeps them
            v = _uint(vp, 0, vn)
            if not 0 <= v <= 0xffffffff:
                raise ValueError(f"invalid literal for "
                                 f"{'MED' if a == A_MED else 'local preference'}: {value!r}")
            return (a, self.nums.int_(<unsigned long long>v))
        if a == A_ECOMM:
            return (A_ECOMM, _parse_ext_list(value))   # untracked there
        if a == A_ATOMIC:
            return (A_ATOMIC, True)
        if a == A_AGGR:
            ip, _, asn = value.partition(" ")
            asn = asn.strip()
            if asn.startswith("AS") and asn[2:].isdigit() and int(asn[2:]) <= 0xffffffff:
                return (A_AGGR, _untracked((ip, int(asn[2:]))))
            return None
        if a == A_ORIGINATOR:
            return (A_ORIGINATOR, value)
        if a == A_CLUSTER:
            return (A_CLUSTER, _untracked(tuple(x for x in value.split() if x != "...")))
        return None

    cdef int _set_bgp(self, tuple val) except -1:
        cdef int a = val[0]
        if not self.r_bgp:
            self.r_bgp = True
            self.r_detail = True
            self.b_origin = None
            self.b_path = ()
            self.b_trunc = False
            self.b_path_raw = None
            self.b_nh = ()
            self.b_med = None
            self.b_lp = None
            self.b_comm = ()
            self.b_lcomm = ()
            self.b_ecomm = ()
            self.b_atomic = False
            self.b_aggr = None
            self.b_origid = None
            self.b_cluster = ()
        if a == A_ORIGIN:
            self.b_origin = val[1]
        elif a == A_PATH:
            self.b_path = val[1]
            self.b_trunc = val[2]
            self.b_path_raw = val[3]
        elif a == A_NH:
            self.b_nh = val[1]
        elif a == A_MED:
            self.b_med = val[1]
        elif a == A_LP:
            self.b_lp = val[1]
        elif a == A_COMM:
            self.b_comm = val[1]
        elif a == A_LCOMM:
            self.b_lcomm = val[1]
        elif a == A_ECOMM:
            self.b_ecomm = val[1]
        elif a == A_ATOMIC:
            self.b_atomic = True
        elif a == A_AGGR:
            self.b_aggr = val[1]
        elif a == A_ORIGINATOR:
            self.b_origid = val[1]
        elif a == A_CLUSTER:
            self.b_cluster = val[1]
        self.last_attr = a
        return 0

    cdef int attr_wrap(self, const char* p, Py_ssize_t n) except -1:
        """``\\t\\t…``: BIRD wraps long community lists onto more lines (1.6 and 2.0)."""
        cdef Py_ssize_t i = _skip_ws(p, 0, n)
        text = _s(p + i, n - i).rstrip()
        a = self.last_attr
        if a == 0:
            raise _Bad("wrapped attribute line (\\t\\t) with no attribute before it")
        if a == A_COMM:
            self.b_comm = self.b_comm + self.nums.parens(p + i, n - i, 2)
        elif a == A_LCOMM:
            self.b_lcomm = self.b_lcomm + self.nums.parens(p + i, n - i, 3)
        elif a == A_ECOMM:
            self.b_ecomm = self.b_ecomm + _parse_ext_list(text)
        elif a == A_CLUSTER:
            self.b_cluster = self.b_cluster + tuple(x for x in text.split() if x != "...")
        elif a == A_RAW:
            self.r_attrs[self.last_attr_name] = self.r_attrs[self.last_attr_name] + " " + text
        else:
            raise _Bad(f"attribute {a} does not wrap onto a \\t\\t line")
        return 0
