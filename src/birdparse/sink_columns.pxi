# The columns sink: route lines -> Arrow record batches, built in C with no Python object
# per route. Every field a Route has is a column (nested fields as list and struct
# columns), so the two sinks agree field by field; repeating strings (protocol, interface,
# gateway, since, table …) are dictionary-encoded per batch. Included by _birdparse.pyx.

ctypedef struct col_hop_t:
    int32_t gw                  # dictionary indices, -1: null
    int32_t iface
    int32_t mpls
    int64_t weight              # -1: null
    bint onlink

ctypedef struct col_row_t:
    int32_t rtype
    int32_t proto               # dictionary indices, -1: null
    int32_t since
    int32_t from_
    int32_t flags
    int32_t origin
    int32_t info
    int64_t pref                # -1: null
    int64_t metric
    int64_t metric2
    int64_t origin_as
    bint primary
    bint sync


cdef int32_t _ORIGIN_I = 0, _ORIGIN_E = 1, _ORIGIN_Q = 2     # pre-seeded origin keys


cdef inline int32_t _origin_key(char origin) noexcept:
    """The origin letter of an ``[AS…i]`` tag (0: none) -> its pre-seeded key, -1: null."""
    if origin == 101:                                        # e
        return _ORIGIN_E
    if origin == 63:                                         # ?
        return _ORIGIN_Q
    return _ORIGIN_I if origin else -1

cdef object ROUTE_SCHEMA = None, ROUTE_SCHEMA_REPLY = None, NEXTHOP_TYPE = None
cdef object AS_SET_TYPE = None, COMMUNITY_TYPE = None, LARGE_COMMUNITY_TYPE = None
cdef object AGGREGATOR_TYPE = None


def route_schema(bint with_reply=False):
    """The Arrow schema of routes: one column per Route field, in its order (nested ones as
    struct and list columns); ``with_reply`` adds the reply index."""
    global ROUTE_SCHEMA, ROUTE_SCHEMA_REPLY, NEXTHOP_TYPE, AS_SET_TYPE, COMMUNITY_TYPE
    global LARGE_COMMUNITY_TYPE, AGGREGATOR_TYPE
    if ROUTE_SCHEMA is None:
        pa = _pyarrow()
        ds = pa.dictionary(pa.int32(), pa.string())
        u32 = pa.uint32()
        NEXTHOP_TYPE = pa.struct([pa.field("gateway", ds), pa.field("interface", ds),
                                  pa.field("weight", pa.int32()),
                                  pa.field("onlink", pa.bool_(), nullable=False),
                                  pa.field("mpls", ds)])
        AS_SET_TYPE = pa.struct([pa.field("position", pa.int32(), nullable=False),
                                 pa.field("asns", pa.list_(u32), nullable=False)])
        COMMUNITY_TYPE = pa.struct([pa.field("asn", u32, nullable=False),
                                    pa.field("value", u32, nullable=False)])
        LARGE_COMMUNITY_TYPE = pa.struct([pa.field("global", u32, nullable=False),
                                          pa.field("local1", u32, nullable=False),
                                          pa.field("local2", u32, nullable=False)])
        AGGREGATOR_TYPE = pa.struct([pa.field("address", pa.string(), nullable=False),
                                     pa.field("asn", u32, nullable=False)])
        bgp = pa.struct([
            pa.field("origin", ds),
            pa.field("as_path", pa.list_(u32), nullable=False),
            pa.field("as_path_sets", pa.list_(AS_SET_TYPE), nullable=False),
            pa.field("as_path_truncated", pa.bool_(), nullable=False),
            pa.field("as_path_raw", pa.string()),
            pa.field("next_hop", pa.list_(ds), nullable=False),
            pa.field("med", u32),
            pa.field("local_pref", u32),
            pa.field("communities", pa.list_(COMMUNITY_TYPE), nullable=False),
            pa.field("large_communities", pa.list_(LARGE_COMMUNITY_TYPE), nullable=False),
            pa.field("ext_communities", pa.list_(pa.list_(pa.string())), nullable=False),
            pa.field("atomic_aggr", pa.bool_(), nullable=False),
            pa.field("aggregator", AGGREGATOR_TYPE),
            pa.field("originator_id", ds),
            pa.field("cluster_list", pa.list_(ds), nullable=False),
        ])
        fields = [
            pa.field("prefix", pa.string(), nullable=False), pa.field("table", ds),
            pa.field("type", ds, nullable=False),
            pa.field("nexthops", pa.list_(NEXTHOP_TYPE), nullable=False),
            pa.field("protocol", ds), pa.field("since", ds), pa.field("from", ds),
            pa.field("primary", pa.bool_(), nullable=False),
            pa.field("sync_error", pa.bool_(), nullable=False),
            pa.field("preference", pa.int32()), pa.field("metric", u32),
            pa.field("metric2", u32), pa.field("info_flags", ds),
            pa.field("bgp_origin", ds), pa.field("bgp_origin_as", u32),
            pa.field("info", ds), pa.field("source", ds), pa.field("cast", ds),
            pa.field("scope", ds), pa.field("bgp", bgp),
            pa.field("attrs", pa.map_(pa.string(), pa.string())),
        ]
        ROUTE_SCHEMA = pa.schema(fields)
        ROUTE_SCHEMA_REPLY = pa.schema(fields + [pa.field("reply", pa.int32(), nullable=False)])
    return ROUTE_SCHEMA_REPLY if with_reply else ROUTE_SCHEMA


@cython.final
cdef class _ColTmpl:
    """A template row: the values of a route line's text after the net, and its hops."""
    cdef col_row_t row
    cdef bytes hops             # col_hop_t records


@cython.final
cdef class _RouteColumns:
    """The builders of one batch of up to ``cap`` routes (child columns grow)."""
    cdef _Str prefix
    cdef _DictCol table, rtype, proto, since, from_, flags, origin, info, source, cast, scope
    cdef _Bool primary, sync
    cdef _Fixed pref, metric, metric2, origin_as, reply
    # nexthops: list<struct<gateway, interface, weight, onlink, mpls>>
    cdef _Offsets nexthops
    cdef _DictCol nh_gw, nh_iface, nh_mpls
    cdef _Fixed nh_weight
    cdef _Bool nh_onlink
    # bgp: struct (null when the route has no typed BGP attribute)
    cdef _Bool bgp_valid
    cdef _DictCol b_origin, b_origid
    cdef _Offsets b_path, b_sets, b_set_asns, b_nh, b_comm, b_lcomm, b_ecomm, b_ecomm_items
    cdef _Offsets b_cluster
    cdef _Fixed b_path_asn, b_set_pos, b_set_asn, b_med, b_lp
    cdef _Fixed b_comm_a, b_comm_b, b_lcomm_a, b_lcomm_b, b_lcomm_c
    cdef _Bool b_trunc, b_atomic, b_aggr_valid
    cdef _Str b_path_raw, b_ecomm_item, b_aggr_addr
    cdef _DictCol b_nh_item, b_cluster_item
    cdef _Fixed b_aggr_asn
    # attrs: map<string, string>
    cdef _Offsets attrs
    cdef _Str attr_key, attr_value
    # children written so far
    cdef Py_ssize_t nh_n, path_n, sets_n, set_asn_n, bnh_n, comm_n, lcomm_n, ecomm_n
    cdef Py_ssize_t ecomm_item_n, cluster_n, attrs_n
    cdef Py_ssize_t row_cap       # rows the unchecked writers (row32, row) have room for

    def __cinit__(self, Py_ssize_t cap):
        # Columns start small and double as rows come: every byte given is zeroed (that is
        # what makes an unwritten entry null), so room for a whole batch in every column
        # would zero tens of MB per batch, mostly for columns a reply never fills.
        pa = _pyarrow()
        i32, i64, u32 = pa.int32(), pa.int64(), pa.uint32()
        self.row_cap = cap
        self.prefix = _Str(False, cap)
        self.table, self.proto, self.since = _DictCol(cap), _DictCol(cap), _DictCol(cap)
        self.rtype = _DictCol(cap, False)
        for name in ROUTE_TYPES:               # index == RouteType
            self.rtype.dict.index(name.encode(), len(name))
        self.from_, self.flags, self.origin, self.info = (_DictCol(cap), _DictCol(cap),
                                                           _DictCol(cap), _DictCol(cap))
        for name in (b"i", b"e", b"?"):        # _ORIGIN_*
            self.origin.dict.index(name, 1)
        self.source, self.cast, self.scope = _DictCol(cap), _DictCol(cap), _DictCol(cap)
        self.primary, self.sync = _Bool(cap), _Bool(cap)
        self.pref = _Fixed(i32, 4, True, cap)
        self.metric = _Fixed(u32, 4, True, cap)       # BIRD's metrics and ASNs are u32
        self.metric2 = _Fixed(u32, 4, True, cap)
        self.origin_as = _Fixed(u32, 4, True, cap)
        self.reply = _Fixed(i32, 4, False, cap)
        self.nexthops = _Offsets(False, cap)
        self.nh_gw, self.nh_iface, self.nh_mpls = _DictCol(cap), _DictCol(cap), _DictCol(64)
        self.nh_weight = _Fixed(i32, 4, True, 64)
        self.nh_onlink = _Bool(64)
        self.bgp_valid = _Bool(cap)
        self.b_origin, self.b_origid = _DictCol(cap), _DictCol(cap)
        self.b_path, self.b_sets, self.b_set_asns = (_Offsets(False, cap), _Offsets(False, cap),
                                                     _Offsets(False, 64))
        self.b_path_asn = _Fixed(u32, 4, False, cap)
        self.b_set_pos = _Fixed(i32, 4, False, 64)
        self.b_set_asn = _Fixed(u32, 4, False, 64)
        self.b_trunc, self.b_atomic, self.b_aggr_valid = _Bool(cap), _Bool(cap), _Bool(cap)
        self.b_path_raw = _Str(True, cap)
        self.b_nh, self.b_nh_item = _Offsets(False, cap), _DictCol(cap, False)
        self.b_med = _Fixed(u32, 4, True, cap)
        self.b_lp = _Fixed(u32, 4, True, cap)
        self.b_comm, self.b_lcomm = _Offsets(False, cap), _Offsets(False, cap)
        self.b_comm_a = _Fixed(u32, 4, False, cap)
        self.b_comm_b = _Fixed(u32, 4, False, cap)
        self.b_lcomm_a = _Fixed(u32, 4, False, 64)
        self.b_lcomm_b = _Fixed(u32, 4, False, 64)
        self.b_lcomm_c = _Fixed(u32, 4, False, 64)
        self.b_ecomm, self.b_ecomm_items = _Offsets(False, cap), _Offsets(False, 64)
        self.b_ecomm_item = _Str(False, 64)
        self.b_aggr_addr = _Str(False, cap)
        self.b_aggr_asn = _Fixed(u32, 4, False, cap)
        self.b_cluster, self.b_cluster_item = _Offsets(False, cap), _DictCol(64, False)
        self.attrs = _Offsets(True, cap)
        self.attr_key, self.attr_value = _Str(False, 64), _Str(False, 64)

    cdef int reserve_rows(self, Py_ssize_t need) except -1:
        """Room for ``need`` rows in the columns written without a bounds check."""
        cdef Py_ssize_t cap = max(self.row_cap * 2, need)
        cdef _Col col
        for col in (self.table.idx, self.proto.idx, self.since.idx, self.from_.idx,
                    self.primary, self.sync, self.pref, self.metric, self.metric2,
                    self.flags.idx, self.origin.idx, self.origin_as, self.info.idx):
            if col.cap < cap:
                col.grow(cap)
        self.row_cap = cap
        return 0

    cdef object batch(self, Py_ssize_t n, bint with_reply):
        """The finished record batch of n rows."""
        pa = _pyarrow()
        t = ROUTE_SCHEMA
        hop_struct = pa.StructArray.from_arrays(
            [self.nh_gw.array(self.nh_n), self.nh_iface.array(self.nh_n),
             self.nh_weight.array(self.nh_n), self.nh_onlink.array(self.nh_n),
             self.nh_mpls.array(self.nh_n)],
            fields=list(NEXTHOP_TYPE))
        nexthops = self.nexthops.list_array(n, t.field("nexthops").type, hop_struct)
        sets = pa.StructArray.from_arrays(
            [self.b_set_pos.array(self.sets_n),
             self.b_set_asns.list_array(self.sets_n, pa.list_(pa.uint32()),
                                        self.b_set_asn.array(self.set_asn_n))],
            fields=list(AS_SET_TYPE))
        comm = pa.StructArray.from_arrays([self.b_comm_a.array(self.comm_n),
                                           self.b_comm_b.array(self.comm_n)],
                                          fields=list(COMMUNITY_TYPE))
        lcomm = pa.StructArray.from_arrays([self.b_lcomm_a.array(self.lcomm_n),
                                            self.b_lcomm_b.array(self.lcomm_n),
                                            self.b_lcomm_c.array(self.lcomm_n)],
                                           fields=list(LARGE_COMMUNITY_TYPE))
        ecomm_items = self.b_ecomm_items.list_array(self.ecomm_n, pa.list_(pa.string()),
                                                    self.b_ecomm_item.array(self.ecomm_item_n))
        aggr = _struct(AGGREGATOR_TYPE, n, self.b_aggr_valid,
                       [self.b_aggr_addr.array(n), self.b_aggr_asn.array(n)])
        bgp_type = t.field("bgp").type
        bgp_children = [
            self.b_origin.array(n),
            self.b_path.list_array(n, bgp_type.field("as_path").type,
                                   self.b_path_asn.array(self.path_n)),
            self.b_sets.list_array(n, bgp_type.field("as_path_sets").type, sets),
            self.b_trunc.array(n),
            self.b_path_raw.array(n),
            self.b_nh.list_array(n, bgp_type.field("next_hop").type,
                                 self.b_nh_item.array(self.bnh_n)),
            self.b_med.array(n),
            self.b_lp.array(n),
            self.b_comm.list_array(n, bgp_type.field("communities").type, comm),
            self.b_lcomm.list_array(n, bgp_type.field("large_communities").type, lcomm),
            self.b_ecomm.list_array(n, bgp_type.field("ext_communities").type, ecomm_items),
            self.b_atomic.array(n),
            aggr,
            self.b_origid.array(n),
            self.b_cluster.list_array(n, bgp_type.field("cluster_list").type,
                                      self.b_cluster_item.array(self.cluster_n)),
        ]
        bgp = _struct(bgp_type, n, self.bgp_valid, bgp_children)
        kv = pa.StructArray.from_arrays([self.attr_key.array(self.attrs_n),
                                         self.attr_value.array(self.attrs_n)],
                                        fields=[pa.field("key", pa.string(), nullable=False),
                                                pa.field("value", pa.string())])
        attrs = self.attrs.list_array(n, t.field("attrs").type, kv)
        columns = [
            self.prefix.array(n), self.table.array(n), self.rtype.array(n), nexthops,
            self.proto.array(n), self.since.array(n), self.from_.array(n),
            self.primary.array(n), self.sync.array(n), self.pref.array(n),
            self.metric.array(n), self.metric2.array(n), self.flags.array(n),
            self.origin.array(n), self.origin_as.array(n), self.info.array(n),
            self.source.array(n), self.cast.array(n), self.scope.array(n), bgp, attrs,
        ]
        if with_reply:
            return pa.RecordBatch.from_arrays(columns + [self.reply.array(n)],
                                              schema=ROUTE_SCHEMA_REPLY)
        return pa.RecordBatch.from_arrays(columns, schema=ROUTE_SCHEMA)


cdef object _struct(object type, Py_ssize_t n, _Bool valid, list children):
    """A nullable struct array of n rows whose valid rows ``valid`` marks."""
    bits = valid.array(n)
    nulls = n - bits.true_count
    return _pyarrow().Array.from_buffers(type, n, [bits.buffers()[1]], nulls,
                                         children=children)


@cython.final
cdef class _ColumnSink(_RouteSink):
    """Routes as Arrow record batches of up to ``batch_rows`` rows (``take()`` hands the
    finished ones over). ``with_reply`` adds the reply index of each route (a pipelined
    session's routes come from several replies)."""
    cdef _RouteColumns c
    cdef Py_ssize_t batch_rows
    cdef Py_ssize_t row           # rows finished in this batch
    cdef bint with_reply
    cdef Py_ssize_t reply_index
    cdef list done                # finished record batches
    cdef _Dict hop_text           # a next hop's text -> index into hop_recs
    cdef _Bytes hop_recs          # col_hop_t per distinct next-hop text
    cdef bytes carry_net          # the last net, when a batch was cut after it
    cdef bytes table_name         # the Table heading in force (None: none)
    cdef int32_t table_i
    cdef col_row_t r
    cdef bint bgp                 # the route has typed BGP attributes
    cdef int last_attr
    cdef uint32_t seen            # typed BGP attributes this route had (1 << A_*)
    cdef bint raw_path            # this route's as_path_raw is written
    # child counts where this route's lists begin: an attribute given again replaces
    cdef Py_ssize_t r0_path, r0_sets, r0_set_asn, r0_bnh, r0_comm, r0_lcomm, r0_ecomm
    cdef Py_ssize_t r0_ecomm_item, r0_cluster
    cdef dict raw                 # the route's untyped attributes, in order (rare)
    cdef str last_raw
    cdef _Bytes stage             # the route's next hops (col_hop_t), for its template

    def __cinit__(self, Py_ssize_t batch_rows=1 << 17, bint with_reply=False):
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, got {batch_rows}")
        route_schema()
        self.batch_rows = batch_rows
        self.with_reply = with_reply
        self.done = []
        self.stage = _Bytes()
        self._new_batch()

    cdef int _new_batch(self) except -1:
        self.c = _RouteColumns(min(self.batch_rows, 1024))
        self.hop_text = _Dict()
        self.hop_recs = _Bytes()
        self.row = 0
        self.table_i = -1 if self.table_name is None else \
            self.c.table.key(self.table_name, len(self.table_name))
        self.generation += 1          # the grammar drops templates made for the last batch
        return 0

    def take(self):
        """The record batches finished since the last call."""
        out, self.done = self.done, []
        return out

    def finish(self):
        """End of input: the last, partial batch joins the finished ones."""
        if self.row:
            self._cut()
        return self.take()

    cdef int _cut(self) except -1:
        self.done.append(self.c.batch(self.row, self.with_reply))
        self.carry_net = self.c.prefix.last()
        self._new_batch()
        return 0

    # -- route lines -----------------------------------------------------------------------

    cdef int table(self, const char* p, Py_ssize_t n) except -1:
        self.table_name = PyBytes_FromStringAndSize(p, n) if n >= 0 else None
        self.table_i = self.c.table.key(p, n) if n >= 0 else -1
        return 0

    cdef inline int _net(self, route_line_t* v) except -1:
        if v.net.n >= 0:
            return self.c.prefix.set(self.row, v.net.p, v.net.n)
        if self.row == 0 and self.carry_net is not None:    # the batch was cut just before
            return self.c.prefix.set(0, self.carry_net, len(self.carry_net))
        return self.c.prefix.repeat(self.row)

    cdef int line(self, route_line_t* v) except -1:
        cdef _RouteColumns c = self.c
        self._net(v)
        self.r.rtype = v.rtype
        self.r.proto = c.proto.key(v.proto.p, v.proto.n)
        self.r.since = c.since.key(v.since.p, v.since.n)
        self.r.from_ = c.from_.key(v.from_.p, v.from_.n) if v.from_.n >= 0 else -1
        self.r.flags = c.flags.key(v.flags, v.flags_n) if v.flags_n else -1
        self.r.origin = _origin_key(v.origin)
        if v.info != NULL:
            text = (<str>v.info).encode("utf-8", "surrogateescape")
            self.r.info = c.info.key(text, len(text))
        else:
            self.r.info = -1
        self.r.pref = v.pref
        self.r.metric = v.metric
        self.r.metric2 = v.metric2
        self.r.origin_as = v.origin_as
        self.r.primary = v.primary
        self.r.sync = v.sync
        self.stage.size = 0
        if v.hops.n > 0:
            self.hop(v.hops.p, v.hops.n)
        self.bgp = False
        self.last_attr = 0
        self.raw = None
        self._route_start()
        return 0

    cdef int copy(self, route_line_t* v, object tmpl, bint tagged, char origin,
                  long long origin_as) except -1:
        cdef _ColTmpl t = <_ColTmpl>tmpl
        cdef Py_ssize_t i, k
        cdef const col_hop_t* h
        self._net(v)
        self.r = t.row
        if tagged:
            self.r.origin = _origin_key(origin)
            self.r.origin_as = origin_as
        k = PyBytes_GET_SIZE(t.hops) // sizeof(col_hop_t)
        h = <const col_hop_t*>PyBytes_AS_STRING(t.hops)
        for i in range(k):                     # a copy never becomes a template: no stage
            self._put_hop(&h[i], False)
        self.bgp = False
        self.last_attr = 0
        self.raw = None
        self._route_start()
        return 0

    cdef inline int _put_hop(self, const col_hop_t* h, bint stage) except -1:
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t i = c.nh_n
        if h.gw >= 0:
            c.nh_gw.idx.set(i, h.gw)
        if h.iface >= 0:
            c.nh_iface.idx.set(i, h.iface)
        if h.weight >= 0:
            c.nh_weight.set(i, h.weight)
        if h.onlink:
            c.nh_onlink.set(i)
        if h.mpls >= 0:
            c.nh_mpls.idx.set(i, h.mpls)
        c.nh_n += 1
        if stage:
            self.stage.put(<const char*>h, sizeof(col_hop_t))
        return 0

    cdef int hop(self, const char* p, Py_ssize_t n) except -1:
        """A next hop's text -> its record (parsed once per batch per distinct text)."""
        cdef int32_t k = self.hop_text.index(p, n)
        cdef col_hop_t rec
        cdef hop_t h
        cdef _RouteColumns c = self.c
        if k * <Py_ssize_t>sizeof(col_hop_t) >= self.hop_recs.size:
            _scan_hop(p, n, &h)
            rec.gw = c.nh_gw.key(h.gw.p, h.gw.n) if h.gw.n > 0 else -1
            rec.iface = c.nh_iface.key(h.iface.p, h.iface.n) if h.iface.n > 0 else -1
            rec.mpls = c.nh_mpls.key(h.mpls.p, h.mpls.n) if h.mpls.n > 0 else -1
            rec.weight = h.weight
            rec.onlink = h.onlink
            self.hop_recs.put(<const char*>&rec, sizeof(col_hop_t))
        return self._put_hop(<col_hop_t*>(self.hop_recs.data + k * sizeof(col_hop_t)), True)

    cdef int type_line(self, slice_t* w, int k) except -1:
        cdef _RouteColumns c = self.c
        if k >= 1:
            c.source.put(self.row, w[0].p, w[0].n)
        if k >= 3:
            c.cast.put(self.row, w[1].p, w[1].n)
            c.scope.put(self.row, w[2].p, w[2].n)
        elif k == 2:
            c.scope.put(self.row, w[1].p, w[1].n)
        return 0

    # -- attributes ------------------------------------------------------------------------

    cdef int attr(self, const char* p, Py_ssize_t n) except -1:
        cdef const char* c = <const char*>memchr(p, 58, n)     # ':'
        cdef Py_ssize_t kn, v0
        cdef int a
        while n > 0 and p[n - 1] == 32 and (c == NULL or p + n - 1 > c):
            n -= 1
        if c == NULL:
            return self._raw(_s(p, n), "")
        kn = c - p
        v0 = kn + 1
        if v0 < n and p[v0] == 32:
            v0 += 1
        if kn > 4 and memcmp(p, b"BGP.", 4) == 0:
            a = _bgp_attr_id(p + 4, kn - 4)
            if a != A_NONE and self._bgp(a, p + v0, n - v0):
                self.last_attr = a
                return 0
        return self._raw(_s(p, kn), _s(p + v0, n - v0))

    cdef int _raw(self, str name, str value) except -1:
        if self.raw is None:
            self.raw = {}
        if name in self.raw:                       # repeated name: keep both
            value = self.raw[name] + "\n" + value
        self.raw[name] = value
        self.last_attr = A_RAW
        self.last_raw = name
        return 0

    cdef int _route_start(self) except -1:
        cdef _RouteColumns c = self.c
        self.seen = 0
        self.raw_path = False
        self.r0_path, self.r0_sets, self.r0_set_asn = c.path_n, c.sets_n, c.set_asn_n
        self.r0_bnh, self.r0_comm, self.r0_lcomm = c.bnh_n, c.comm_n, c.lcomm_n
        self.r0_ecomm, self.r0_ecomm_item, self.r0_cluster = c.ecomm_n, c.ecomm_item_n, \
            c.cluster_n
        return 0

    cdef int _again(self, int a) except -1:
        """A typed attribute this route already had: the new line replaces it, as in the
        Route (BIRD prints each once; a reply that lost a route line can repeat one)."""
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t row = self.row
        if not (self.seen >> a) & 1:
            self.seen |= <uint32_t>1 << a
            return 0
        if a == A_PATH:
            c.path_n, c.sets_n, c.set_asn_n = self.r0_path, self.r0_sets, self.r0_set_asn
            c.b_trunc.clear(row)
            if self.raw_path:
                c.b_path_raw.drop(row)
                self.raw_path = False
        elif a == A_NH:
            c.bnh_n = self.r0_bnh
        elif a == A_COMM:
            c.comm_n = self.r0_comm
        elif a == A_LCOMM:
            c.lcomm_n = self.r0_lcomm
        elif a == A_ECOMM:
            c.ecomm_n, c.ecomm_item_n = self.r0_ecomm, self.r0_ecomm_item
            c.b_ecomm_item.truncate(self.r0_ecomm_item)
        elif a == A_CLUSTER:
            c.cluster_n = self.r0_cluster
        elif a == A_AGGR:
            c.b_aggr_addr.drop(row)
        return 0

    cdef bint _bgp(self, int a, const char* p, Py_ssize_t n) except -1:
        """A typed BGP attribute into its column; False if it is not of its type (kept raw,
        as the struct sink keeps it)."""
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t row = self.row
        cdef const char* sp
        cdef long long v
        if a == A_AGGR:                            # "10.0.0.1 AS65000"
            sp = <const char*>memchr(p, 32, n)
            if sp == NULL or (sp - p) + 3 > n or sp[1] != 65 or sp[2] != 83:
                return False
            v = _uint(p, (sp - p) + 3, n)
            if v < 0 or v > 0xffffffff:
                return False
            self.bgp = True
            self._again(a)
            c.b_aggr_addr.set(row, p, sp - p)
            c.b_aggr_asn.set(row, v)
            c.b_aggr_valid.set(row)
            return True
        cdef bint bgp0 = self.bgp
        self._again(a)
        self.bgp = True
        if a == A_PATH:
            self._as_path(p, n)
        elif a == A_COMM or a == A_LCOMM or a == A_ECOMM:
            try:
                if a == A_ECOMM:
                    self._ext(p, n)
                else:
                    self._parens(p, n, 2 if a == A_COMM else 3)
            except BaseException:
                self.bgp = bgp0                # a faulty line adds nothing, as in Route
                raise
        elif a == A_ORIGIN:
            c.b_origin.put(row, p, n)
        elif a == A_NH:
            self._words(p, n, c.b_nh_item, &c.bnh_n, False)
        elif a == A_MED or a == A_LP:
            v = _uint(p, 0, n)
            if v < 0 or v > 0xffffffff:
                self.bgp = bgp0                # a faulty line adds nothing, as in Route
                raise ValueError(f"invalid literal for "
                                 f"{'MED' if a == A_MED else 'local preference'}: {_s(p, n)!r}")
            (c.b_med if a == A_MED else c.b_lp).set(row, v)
        elif a == A_ATOMIC:
            c.b_atomic.set(row)
        elif a == A_ORIGINATOR:
            c.b_origid.put(row, p, n)
        elif a == A_CLUSTER:
            self._words(p, n, c.b_cluster_item, &c.cluster_n, True)
        return True

    cdef int _words(self, const char* p, Py_ssize_t n, _DictCol items, Py_ssize_t* count,
                    bint skip_dots) except -1:
        """Space-separated words as list items (``...`` dropped where BIRD cut a list)."""
        cdef Py_ssize_t i = 0, j
        while True:
            i = _skip_ws(p, i, n)
            if i >= n:
                return 0
            j = _tok_end(p, i, n)
            if not (skip_dots and _eq(p + i, j - i, b"...", 3)):
                items.put(count[0], p + i, j - i)
                count[0] += 1
            i = j

    cdef int _as_path(self, const char* p, Py_ssize_t n) except -1:
        """``65001 { 1 2 } 65002 ...``: ASNs in order, AS_SETs apart (with the position
        they hold in the path), a cut path flagged, an odd one kept as text too."""
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t i = 0, j, pos = 0, set_start = 0, x
        cdef long long v
        cdef bint odd = False, trunc = False, in_set = False, seen
        cdef char ch
        while i < n:
            ch = p[i]
            if ch == 32 or ch == 9:
                i += 1
            elif _isdigit(ch):
                j = i
                while j < n and _isdigit(p[j]):
                    j += 1
                if j + 3 <= n and memcmp(p + j, b"...", 3) == 0:
                    trunc = True               # half an ASN: drop it
                    i = j + 3
                    continue
                v = _uint(p, i, j)
                if v < 0 or v > 0xffffffff:
                    odd = True
                elif in_set:                   # a set: each ASN once (a frozenset in Route)
                    seen = False
                    for x in range(set_start, c.set_asn_n):
                        if (<uint32_t*>c.b_set_asn.values)[x] == <uint32_t>v:
                            seen = True
                            break
                    if not seen:
                        c.b_set_asn.set(c.set_asn_n, v)
                        c.set_asn_n += 1
                else:
                    c.b_path_asn.set(c.path_n, v)
                    c.path_n += 1
                    pos += 1
                i = j
            elif ch == 123:                    # '{' (again before '}': the set restarts)
                if in_set:
                    c.set_asn_n = set_start
                in_set = True
                set_start = c.set_asn_n
                i += 1
            elif ch == 125:                    # '}'
                if in_set:
                    self._close_set(pos)
                    pos += 1
                in_set = False
                i += 1
            elif i + 3 <= n and memcmp(p + i, b"...", 3) == 0:
                trunc = True
                i += 3
            else:                              # '(' ')' confederations, anything else
                odd = True
                i += 1
        if in_set:                             # "{ 1 2 ..." cut by the truncation
            self._close_set(pos)
        if trunc:
            c.b_trunc.set(self.row)
        if odd:
            c.b_path_raw.set(self.row, p, n)
            self.raw_path = True
        return 0

    cdef int _close_set(self, Py_ssize_t pos) except -1:
        cdef _RouteColumns c = self.c
        c.b_set_pos.set(c.sets_n, pos)
        c.b_set_asns.end(c.sets_n, c.set_asn_n)
        c.sets_n += 1
        return 0

    cdef int _parens(self, const char* p, Py_ssize_t n, int width) except -1:
        """``(65000,100) (65000,200)`` / ``(65000, 1, 2)`` into the community columns; a
        line with a fault part way adds none of its items."""
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t comm0 = c.comm_n, lcomm0 = c.lcomm_n
        try:
            return self._parens_items(p, n, width)
        except BaseException:
            c.comm_n, c.lcomm_n = comm0, lcomm0
            raise

    cdef int _parens_items(self, const char* p, Py_ssize_t n, int width) except -1:
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t i = 0, j
        cdef long long vals[3]
        cdef long long v
        cdef int k
        while True:
            while i < n and (p[i] == 32 or p[i] == 9):
                i += 1
            if i >= n:
                return 0
            if p[i] != 40:
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
                vals[k] = v
                i = j
                while i < n and p[i] == 32:
                    i += 1
                if i >= n or p[i] != (44 if k < width - 1 else 41):   # ',' then ')'
                    raise ValueError(f"expected {width} numbers in parentheses: {_s(p, n)[:60]!r}")
                i += 1
            if width == 2:
                c.b_comm_a.set(c.comm_n, vals[0])
                c.b_comm_b.set(c.comm_n, vals[1])
                c.comm_n += 1
            else:
                c.b_lcomm_a.set(c.lcomm_n, vals[0])
                c.b_lcomm_b.set(c.lcomm_n, vals[1])
                c.b_lcomm_c.set(c.lcomm_n, vals[2])
                c.lcomm_n += 1

    cdef int _ext(self, const char* p, Py_ssize_t n) except -1:
        """``(rt, 65000, 1) (ro, 10.0.0.1, 7)``: each a list of its texts (parsed whole
        before any is added: a faulty line adds nothing)."""
        cdef _RouteColumns c = self.c
        for item in _parse_ext_list(_s(p, n)):
            for word in item:
                b = (<str>word).encode("utf-8", "surrogateescape")
                c.b_ecomm_item.set(c.ecomm_item_n, b, len(b))
                c.ecomm_item_n += 1
            c.b_ecomm_items.end(c.ecomm_n, c.ecomm_item_n)
            c.ecomm_n += 1
        return 0

    cdef int attr_wrap(self, const char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t i = _skip_ws(p, 0, n)
        cdef int a = self.last_attr
        if a == 0:
            raise _Bad("wrapped attribute line (\\t\\t) with no attribute before it")
        if a == A_COMM:
            return self._parens(p + i, n - i, 2)
        if a == A_LCOMM:
            return self._parens(p + i, n - i, 3)
        if a == A_ECOMM:
            return self._ext(p + i, n - i)
        if a == A_CLUSTER:
            return self._words(p + i, n - i, self.c.b_cluster_item, &self.c.cluster_n, True)
        if a == A_RAW:
            text = _s(p + i, n - i).rstrip()
            self.raw[self.last_raw] = self.raw[self.last_raw] + " " + text
            return 0
        raise _Bad(f"attribute {a} does not wrap onto a \\t\\t line")

    # -- the row ---------------------------------------------------------------------------

    cdef object flush(self, bint template):
        cdef _RouteColumns c = self.c
        cdef Py_ssize_t row = self.row        # < batch_rows
        cdef _ColTmpl t = None
        if row >= c.row_cap:
            c.reserve_rows(min(row + 1, self.batch_rows))
        if self.table_i >= 0:
            c.table.idx.row32(row, self.table_i)
        c.rtype.idx.set(row, self.r.rtype)
        if c.nh_n:
            c.nexthops.end(row, c.nh_n)
        if self.r.proto >= 0:
            c.proto.idx.row32(row, self.r.proto)
        if self.r.since >= 0:
            c.since.idx.row32(row, self.r.since)
        if self.r.from_ >= 0:
            c.from_.idx.row32(row, self.r.from_)
        if self.r.primary:
            c.primary.row(row)
        if self.r.sync:
            c.sync.row(row)
        if self.r.pref >= 0:
            c.pref.row32(row, <int32_t>self.r.pref)
        if self.r.metric >= 0:
            c.metric.row32(row, <int32_t>self.r.metric)
        if self.r.metric2 >= 0:
            c.metric2.row32(row, <int32_t>self.r.metric2)
        if self.r.flags >= 0:
            c.flags.idx.row32(row, self.r.flags)
        if self.r.origin >= 0:
            c.origin.idx.row32(row, self.r.origin)
        if self.r.origin_as >= 0:
            c.origin_as.row32(row, <int32_t>self.r.origin_as)
        if self.r.info >= 0:
            c.info.idx.row32(row, self.r.info)
        if self.bgp:
            c.bgp_valid.set(row)
            c.b_path.end(row, c.path_n)
            c.b_sets.end(row, c.sets_n)
            c.b_nh.end(row, c.bnh_n)
            c.b_comm.end(row, c.comm_n)
            c.b_lcomm.end(row, c.lcomm_n)
            c.b_ecomm.end(row, c.ecomm_n)
            c.b_cluster.end(row, c.cluster_n)
        if self.raw is not None:
            for k, v in self.raw.items():
                kb = (<str>k).encode("utf-8", "surrogateescape")
                vb = (<str>v).encode("utf-8", "surrogateescape")
                c.attr_key.set(c.attrs_n, kb, len(kb))
                c.attr_value.set(c.attrs_n, vb, len(vb))
                c.attrs_n += 1
            c.attrs.end(row, c.attrs_n)
        if self.with_reply:
            c.reply.set(row, self.reply_index)
        if template:
            t = _ColTmpl.__new__(_ColTmpl)
            t.row = self.r
            t.hops = PyBytes_FromStringAndSize(self.stage.data, self.stage.size)
        self.row += 1
        if self.row >= self.batch_rows:
            self._cut()
            return None                      # the template's indices were this batch's
        return t

    cdef int end_reply(self) except -1:
        self.reply_index += 1
        return 0
