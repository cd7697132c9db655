# The FIB sink: route lines -> the FIB check's packed keys and values (fibformat.pxi), per
# family, straight from BIRD's bytes with no Route object. The rules of what BIRD installs
# live here and only here (fibcheck.py gives the protocol rule, Calico's names):
#
# * exported (``show route export <kernel protocol>``, what BIRD sends): each net's first
#   route, if it can be in a kernel table;
# * otherwise (a plain ``show route``): each net's best route (``*`` or ``!``) if it can be
#   installed (not learned from the kernel, not a 1.6 device route, a protocol the rule
#   keeps); with ``merge_paths`` (Calico's kernel protocol) the best route merged with its
#   equally good alternatives of the same kind is also accepted;
# * a best route BIRD marks ``!`` (the kernel refused it) is a sync failure, not expected.
#
# Included by _birdparse.pyx.

ctypedef struct fib_hop_t:
    uint8_t gw[16]              # zeros: no gateway
    uint32_t oif                # 0: no interface; 0xFFFFFFFF: an interface the kernel lacks
    long long weight            # -1: none printed

ctypedef struct fib_route_t:
    int rtype
    bint primary
    bint sync
    long long pref
    int32_t proto               # index of the protocol's name (self.protos)
    int32_t source              # index of the Type: source word, -1: none


# RouteType -> the kernel's route type (0: never in a kernel table: unknown, roa)
cdef int _RT_KERNEL[6]
_RT_KERNEL[:] = [RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, 0, 0]


@cython.final
cdef class _FibTmpl:
    cdef fib_route_t route
    cdef bytes hops             # fib_hop_t records


@cython.final
cdef class _FibSink(_RouteSink):
    """BIRD's routes as ``{family: (expected {key: value}, merged {key: value},
    sync_failed [key])}`` (``result()``). ``ifindex`` maps interface names to the kernel's
    indexes; ``keep_protocol(name, bird2)`` says whether a protocol's routes can be in the
    kernel table (asked once per name); ``bird2`` None: learnt from a banner, ``show
    status`` or BIRD 2's table headings before the first route."""
    cdef dict ifindex
    cdef object keep_protocol
    cdef bint exported
    cdef bint merge_paths
    cdef int bird2               # -1: not known yet
    cdef public Py_ssize_t routes            # route lines seen
    cdef bint tables              # a Table heading came before the first route
    cdef _Dict protos             # protocol names -> index
    cdef list keep                # per protocol index: True/False, None: not asked yet
    cdef _Dict sources            # Type: source words -> index
    cdef int32_t src_inherit, src_device
    cdef _Dict hop_text           # next hop text -> index into hop_recs
    cdef _Bytes hop_recs          # fib_hop_t per distinct text
    cdef _Bytes expected4, merged4, expected6, merged6   # packed records (see _record)
    cdef list sync4, sync6
    # the route being built
    cdef fib_route_t cur
    cdef _Bytes cur_hops
    cdef object cur_key           # its key; None: a net that is not an IP prefix
    cdef Py_ssize_t key_net       # the net id cur_key belongs to
    # the best route waiting for its alternatives (``last`` in the rules above)
    cdef bint has_last
    cdef fib_route_t last
    cdef _Bytes last_hops
    cdef object last_key
    cdef bint has_group
    cdef _Bytes group_hops

    def __cinit__(self, dict ifindex, keep_protocol, bint exported, bird2=None,
                  bint merge_paths=True):
        self.ifindex = ifindex
        self.keep_protocol = keep_protocol
        self.exported = exported
        self.merge_paths = merge_paths
        self.bird2 = -1 if bird2 is None else int(bool(bird2))
        self.protos, self.sources, self.hop_text = _Dict(), _Dict(), _Dict()
        self.src_inherit = self.sources.index(b"inherit", 7)
        self.src_device = self.sources.index(b"device", 6)
        self.keep = []
        self.hop_recs, self.cur_hops, self.last_hops, self.group_hops = (
            _Bytes(), _Bytes(), _Bytes(), _Bytes())
        self.expected4, self.merged4, self.expected6, self.merged6 = (_Bytes(), _Bytes(),
                                                                      _Bytes(), _Bytes())
        self.sync4, self.sync6 = [], []
        self.key_net = -1

    def result(self):
        """``{4: (expected, merged, sync_failed), 6: (…)}`` once the input is parsed: the
        first two as ``_rtnl.PackedTable`` (indexed in C), the third a list of keys."""
        from nodestatus._rtnl import PackedTable

        self._emit_last()
        self.has_last = False
        return {f: (PackedTable.from_records(_records(e)), PackedTable.from_records(_records(m)),
                    sync)
                for f, e, m, sync in ((4, self.expected4, self.merged4, self.sync4),
                                      (6, self.expected6, self.merged6, self.sync6))}

    @property
    def is_bird2(self):
        """Whether the routes came from BIRD 2 (None: no route and no version seen)."""
        return None if self.bird2 < 0 else bool(self.bird2)

    cdef int version(self, str version) except -1:
        if self.bird2 < 0 and self.routes == 0:
            self.bird2 = int(_structs.is_bird2(version))
        return 0

    cdef int table(self, const char* p, Py_ssize_t n) except -1:
        if n >= 0 and self.routes == 0:
            self.tables = True
        return 0

    # -- route lines -----------------------------------------------------------------------

    cdef inline int _net(self, route_line_t* v) except -1:
        if self.bird2 < 0:                     # the first route: BIRD 2 prints table headings
            self.bird2 = int(self.tables)
        self.routes += 1
        if v.net.n >= 0 and v.net_id != self.key_net:
            self.key_net = v.net_id
            try:
                self.cur_key = key_from_bytes(v.net.p, v.net.n, None)   # (text: messages only)
            except ValueError:                 # a VPN, ROA or flow net: not in an IP table
                self.cur_key = None
        return 0

    cdef int line(self, route_line_t* v) except -1:
        self._net(v)
        self.cur.rtype = v.rtype
        self.cur.primary = v.primary
        self.cur.sync = v.sync
        self.cur.pref = v.pref
        self.cur.proto = self.protos.index(v.proto.p, v.proto.n)
        self.cur.source = -1
        self.cur_hops.size = 0
        if v.hops.n > 0:
            self.hop(v.hops.p, v.hops.n)
        return 0

    cdef int copy(self, route_line_t* v, object tmpl, bint tagged, char origin,
                  long long origin_as) except -1:
        cdef _FibTmpl t = <_FibTmpl>tmpl
        self._net(v)
        self.cur = t.route
        self.cur_hops.size = 0
        self.cur_hops.put(PyBytes_AS_STRING(t.hops), PyBytes_GET_SIZE(t.hops))
        return 0

    cdef int hop(self, const char* p, Py_ssize_t n) except -1:
        """A next hop's text -> its record (parsed once per distinct text)."""
        cdef int32_t k = self.hop_text.index(p, n)
        cdef fib_hop_t rec
        cdef hop_t h
        cdef int af
        if k * <Py_ssize_t>sizeof(fib_hop_t) >= self.hop_recs.size:
            _scan_hop(p, n, &h)
            memset(&rec, 0, sizeof(fib_hop_t))
            if h.gw.n > 0:
                parse_addr_c(h.gw.p, h.gw.n, rec.gw, &af, _s(h.gw.p, h.gw.n))
            if h.iface.n > 0:
                oif = self.ifindex.get(_s(h.iface.p, h.iface.n))
                rec.oif = 0xFFFFFFFF if oif is None else <uint32_t>oif
            rec.weight = h.weight
            self.hop_recs.put(<const char*>&rec, sizeof(fib_hop_t))
        self.cur_hops.put(self.hop_recs.data + k * sizeof(fib_hop_t), sizeof(fib_hop_t))
        return 0

    cdef int type_line(self, slice_t* w, int k) except -1:
        if k >= 1:
            self.cur.source = self.sources.index(w[0].p, w[0].n)
        return 0

    cdef int attr(self, const char* p, Py_ssize_t n) except -1:
        return 0                      # BGP attributes do not reach the kernel

    cdef int attr_wrap(self, const char* p, Py_ssize_t n) except -1:
        return 0

    # -- the rules -------------------------------------------------------------------------

    cdef object flush(self, bint template):
        cdef _FibTmpl t = None
        if template:
            t = _FibTmpl.__new__(_FibTmpl)
            t.route = self.cur
            t.hops = PyBytes_FromStringAndSize(self.cur_hops.data, self.cur_hops.size)
        if self.cur_key is None:
            return t
        if self.exported:
            if self.cur.primary or not self.has_last or self.cur_key != self.last_key:
                self._emit_last()
                self._take_last()
            return t
        if self.cur.primary:
            self._emit_last()
            self._take_last()
        elif self.has_last and self.cur_key == self.last_key and self._same_kind():
            if not self.has_group:
                self.has_group = True
                self.group_hops.size = 0
                self.group_hops.put(self.last_hops.data, self.last_hops.size)
            self.group_hops.put(self.cur_hops.data, self.cur_hops.size)
        return t

    cdef int _take_last(self) except -1:
        """The route being built becomes the best route waiting, if it can be installed."""
        self.has_group = False
        self.has_last = self._installable()
        if self.has_last:
            self.last = self.cur
            self.last_key = self.cur_key
            self.last_hops.size = 0
            self.last_hops.put(self.cur_hops.data, self.cur_hops.size)
        return 0

    cdef bint _installable(self) except -1:
        cdef fib_route_t* r = &self.cur
        if _RT_KERNEL[r.rtype] == 0:
            return False
        if r.source == self.src_inherit or (self.bird2 == 0 and r.source == self.src_device):
            return False              # learned from the kernel / a device route 1.6 keeps out
        while len(self.keep) <= r.proto:
            self.keep.append(None)
        cdef const char* name_p
        cdef Py_ssize_t name_n
        ok = self.keep[r.proto]
        if ok is None:                # the rule is Python's (fibcheck): asked once per name
            name_p = self.protos.key_at(r.proto, &name_n)
            name = _s(name_p, name_n)
            ok = self.keep[r.proto] = bool(self.keep_protocol(name, self.bird2 == 1))
        return ok

    cdef bint _same_kind(self) noexcept:
        """Calico's ``merge paths on``: equally preferred routes of the same kind merge."""
        cdef fib_route_t* a = &self.cur
        cdef fib_route_t* b = &self.last
        cdef const char* pa
        cdef const char* pb
        cdef Py_ssize_t na, nb
        if a.rtype != RT_UNICAST or b.rtype != RT_UNICAST or a.pref != b.pref \
                or a.source != b.source:
            return False
        pa = self.protos.key_at(a.proto, &na)
        pb = self.protos.key_at(b.proto, &nb)
        if min(na, 4) != min(nb, 4):
            return False
        return memcmp(pa, pb, min(na, 4)) == 0

    cdef int _emit_last(self) except -1:
        cdef bint v4
        if not self.has_last:
            return 0
        self.has_last = False
        v4 = (<const uint8_t*>PyBytes_AS_STRING(self.last_key))[0] == 4
        if self.last.sync:
            (self.sync4 if v4 else self.sync6).append(self.last_key)
            return 0
        # BIRD 1.6's bird6 adds IPv6 multipath one next hop at a time: the kernel has
        # weight 1 there
        self._pack(self.expected4 if v4 else self.expected6, self.last_hops,
                   self.bird2 == 1 or v4)
        if self.merge_paths and self.has_group:
            self._pack(self.merged4 if v4 else self.merged6, self.group_hops,
                       self.bird2 == 1 or v4)
        return 0

    cdef int _pack(self, _Bytes out, _Bytes hops, bint weights) except -1:
        """A record for the waiting route: klen u8, key, vlen u16le, value."""
        cdef nexthop_t nh[MAX_NH]
        cdef int rt = _RT_KERNEL[self.last.rtype], n = 0, i
        cdef Py_ssize_t total = hops.size // sizeof(fib_hop_t)
        cdef const fib_hop_t* h = <const fib_hop_t*>hops.data
        if rt == RTN_UNICAST:
            if total > MAX_NH:
                raise _Bad(f"more than {MAX_NH} next hops for one route")
            for i in range(total):
                memcpy(nh[n].gw, h[i].gw, 16)
                nh[n].oif = h[i].oif
                nh[n].weight = <uint8_t>(h[i].weight & 0xff) \
                    if (weights and h[i].weight > 0 and total > 1) else 1
                n += 1
            if n > 1:
                nh_sort(nh, n)
        cdef uint8_t head[3 + KEY_MAX]
        cdef uint8_t value[VALUE_MAX]
        cdef Py_ssize_t klen = PyBytes_GET_SIZE(self.last_key)
        cdef int vlen = write_value(<uint8_t>rt, RTPROT_BIRD, 0, 0, nh, n, value)
        head[0] = <uint8_t>klen
        memcpy(head + 1, PyBytes_AS_STRING(self.last_key), klen)
        head[1 + klen] = vlen & 0xff
        head[2 + klen] = vlen >> 8
        out.put(<const char*>head, 3 + klen)
        return out.put(<const char*>value, vlen)


cdef bytes _records(_Bytes b):
    return PyBytes_FromStringAndSize(b.data, b.size)
