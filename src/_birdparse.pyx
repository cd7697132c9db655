# cython: language_level=3, embedsignature=True
"""The parse core: BIRD control-socket bytes -> nodestatus.structs records.

Owns bytes -> structs and nothing else (no sockets, files or policy). Three framings are
accepted and detected from the first line: raw socket bytes (``DDDD-``/``DDDD ``/`` ``), the
``birdc -v`` transcript (continuations indented by five spaces, ``0000`` hidden) and plain
``birdc``/``birdcl`` text (no codes: banner, headings and indentation tell the structure).

The route grammar - the only part that sees millions of lines - is scanned in C over the
line's bytes; repeated strings (interfaces, gateways, protocol names, times) and repeated
attribute values (next hops, AS paths, community lists) come from bounded intern tables,
so a million routes do not make a million copies. A route line whose text after the net
column repeats an earlier one is a copy of that line's Route with its own prefix (and
origin tag). The caches are sized to stay in the CPU cache and pause when a table stops
repeating: at a million routes, memory traffic costs more than instructions. The rarer
replies (status, protocols, counts, errors) are decoded to ``str`` and parsed with plain
string methods.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
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

# --------------------------------------------------------------------------- constants

cdef enum Framing:
    F_AUTO = 0
    F_RAW = 1       # socket bytes: one-space continuations, 0000 visible
    F_VERBOSE = 2   # birdc -v: five-space continuations, 0000 hidden
    F_PLAIN = 3     # birdc / birdcl: no codes at all
    F_CODED = 4     # coded, raw vs -v not decided yet

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
_STATE_WORDS = frozenset(("down", "start", "up", "wait", "feed", "stop", "flush", "???"))
_BGP_STATES = frozenset(("Idle", "Connect", "Active", "OpenSent", "OpenConfirm",
                         "Established", "Close", "Passive", "Down"))
_FINAL_STATUS = {
    "Daemon is up and running": "up",
    "Reconfiguration in progress": "reconfiguring",
    "Shutdown in progress": "shutting down",
}

# --------------------------------------------------------------------------- C helpers

cdef inline bint _isdigit(char c) noexcept nogil:
    return c >= 48 and c <= 57

cdef inline bint _isws(char c) noexcept nogil:
    return c == 32 or c == 9

cdef inline Py_ssize_t _skip_ws(const char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and _isws(p[i]):
        i += 1
    return i

cdef inline Py_ssize_t _tok_end(const char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and not _isws(p[i]):
        i += 1
    return i

cdef inline bint _eq(const char* p, Py_ssize_t n, const char* lit, Py_ssize_t m) noexcept nogil:
    return n == m and memcmp(p, lit, m) == 0

cdef inline bint _starts(const char* p, Py_ssize_t n, const char* lit, Py_ssize_t m) noexcept nogil:
    return n >= m and memcmp(p, lit, m) == 0

cdef inline long long _uint(const char* p, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Decimal digits p[i:j] -> value, or -1 if empty, not all digits or too long."""
    cdef long long v = 0
    if i >= j or j - i > 18:
        return -1
    while i < j:
        if not _isdigit(p[i]):
            return -1
        v = v * 10 + (p[i] - 48)
        i += 1
    return v

cdef extern from *:
    void __builtin_prefetch(const void* addr) noexcept nogil

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)


cdef inline str _s(const char* p, Py_ssize_t n):
    """Bytes -> str: a straight copy for ASCII (all of BIRD's syntax), UTF-8 otherwise
    (descriptions); undecodable bytes are kept visible as backslash escapes."""
    cdef Py_ssize_t i
    cdef unsigned char acc = 0
    for i in range(n):
        acc |= <unsigned char>p[i]
    if acc < 128:
        o = PyUnicode_New(n, 127)
        memcpy(PyUnicode_DATA(o), p, n)
        return <str>o
    return PyUnicode_DecodeUTF8(p, n, "backslashreplace")

cdef inline uint64_t _hash(const char* p, Py_ssize_t n) noexcept nogil:
    """Word-at-a-time multiplicative hash; only used to find intern slots."""
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL ^ <uint64_t>n
    cdef uint64_t w
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        h = (h ^ w) * 0xff51afd7ed558ccdULL
        h ^= h >> 29
        i += 8
    if i < n:
        if n >= 8:                             # the last 8 bytes, overlapping: one load
            memcpy(&w, p + n - 8, 8)
        else:
            w = 0
            memcpy(&w, p + i, n - i)
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL
        h ^= h >> 32
    return h | 1  # 0 marks an empty slot


@cython.final
cdef class _Intern:
    """Bytes -> shared object without allocating on a hit: open addressing over keys kept
    in one C arena. Starts small (a parser per small file must be cheap) and doubles up to
    ``max_entries`` (INTERN_MAX) entries; when full it is emptied (objects handed out stay
    valid)."""
    cdef uint64_t* hashes
    cdef Py_ssize_t* slots
    cdef Py_ssize_t mask
    cdef char* arena
    cdef Py_ssize_t arena_used
    cdef Py_ssize_t arena_size
    cdef Py_ssize_t* koff
    cdef Py_ssize_t* klen
    cdef PyObject** vals
    cdef Py_ssize_t count
    cdef Py_ssize_t cap                # entries the key arrays hold (mask + 1) / 2
    cdef Py_ssize_t max_entries
    cdef Py_ssize_t max_arena

    def __init__(self, Py_ssize_t max_entries=INTERN_MAX, Py_ssize_t max_arena=1 << 22):
        self.max_entries = max_entries
        self.max_arena = max_arena

    def __cinit__(self):
        self.mask = 255
        self.cap = 128
        self.arena_size = 4096
        self.count = 0
        self.hashes = <uint64_t*>malloc((self.mask + 1) * sizeof(uint64_t))
        self.slots = <Py_ssize_t*>malloc((self.mask + 1) * sizeof(Py_ssize_t))
        self.koff = <Py_ssize_t*>malloc(self.cap * sizeof(Py_ssize_t))
        self.klen = <Py_ssize_t*>malloc(self.cap * sizeof(Py_ssize_t))
        self.vals = <PyObject**>malloc(self.cap * sizeof(PyObject*))
        self.arena = <char*>malloc(self.arena_size)
        if not (self.hashes and self.slots and self.koff and self.klen and self.vals and self.arena):
            raise MemoryError()
        self.clear()

    def __dealloc__(self):
        if self.vals != NULL:
            self.clear()
        free(self.hashes)
        free(self.slots)
        free(self.koff)
        free(self.klen)
        free(<void*>self.vals)
        free(self.arena)

    cdef void clear(self):
        cdef Py_ssize_t i
        for i in range(self.count):
            Py_XDECREF(self.vals[i])
        self.count = 0
        self.arena_used = 0
        memset(self.hashes, 0, (self.mask + 1) * sizeof(uint64_t))

    cdef bint grow(self):
        """Double the table (rehashing) while under max_entries; False if it may not."""
        cdef Py_ssize_t newmask = self.mask * 2 + 1, i, j
        cdef Py_ssize_t newcap = self.cap * 2
        cdef uint64_t h
        if newcap > self.max_entries:
            return False
        cdef uint64_t* nh = <uint64_t*>malloc((newmask + 1) * sizeof(uint64_t))
        cdef Py_ssize_t* ns = <Py_ssize_t*>malloc((newmask + 1) * sizeof(Py_ssize_t))
        cdef Py_ssize_t* nko = <Py_ssize_t*>realloc(self.koff, newcap * sizeof(Py_ssize_t))
        if nko != NULL:
            self.koff = nko
        cdef Py_ssize_t* nkl = <Py_ssize_t*>realloc(self.klen, newcap * sizeof(Py_ssize_t))
        if nkl != NULL:
            self.klen = nkl
        cdef PyObject** nv = <PyObject**>realloc(<void*>self.vals, newcap * sizeof(PyObject*))
        if nv != NULL:
            self.vals = nv
        if nh == NULL or ns == NULL or nko == NULL or nkl == NULL or nv == NULL:
            free(nh)
            free(ns)
            return False
        memset(nh, 0, (newmask + 1) * sizeof(uint64_t))
        for i in range(self.mask + 1):
            h = self.hashes[i]
            if h != 0:
                j = <Py_ssize_t>(h & <uint64_t>newmask)
                while nh[j] != 0:
                    j = (j + 1) & newmask
                nh[j] = h
                ns[j] = self.slots[i]
        free(self.hashes)
        free(self.slots)
        self.hashes = nh
        self.slots = ns
        self.mask = newmask
        self.cap = newcap
        return True

    cdef inline PyObject* get(self, const char* p, Py_ssize_t n, uint64_t h) noexcept:
        """Borrowed reference to the object stored for p[:n], or NULL."""
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>self.mask), k
        while self.hashes[i] != 0:
            if self.hashes[i] == h:
                k = self.slots[i]
                if self.klen[k] == n and memcmp(self.arena + self.koff[k], p, n) == 0:
                    return self.vals[k]
            i = (i + 1) & self.mask
        return NULL

    cdef inline PyObject** slot(self, const char* p, Py_ssize_t n, uint64_t h) noexcept:
        """Where the object stored for p[:n] lives (to replace it in place), or NULL."""
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>self.mask), k
        while self.hashes[i] != 0:
            if self.hashes[i] == h:
                k = self.slots[i]
                if self.klen[k] == n and memcmp(self.arena + self.koff[k], p, n) == 0:
                    return &self.vals[k]
            i = (i + 1) & self.mask
        return NULL

    cdef inline void set_val(self, Py_ssize_t k, object v):
        """Replace the object of entry k (an index ``put`` handed out via ``count - 1``)."""
        Py_INCREF(v)
        Py_XDECREF(self.vals[k])
        self.vals[k] = <PyObject*>v

    cdef inline void put(self, const char* p, Py_ssize_t n, uint64_t h, object v):
        cdef Py_ssize_t i
        cdef char* na
        if n > 4096:
            return                             # not worth keeping
        if self.count >= self.cap and not self.grow():
            self.clear()
        while self.arena_used + n > self.arena_size:
            if self.arena_size >= self.max_arena:
                self.clear()
                break
            na = <char*>realloc(self.arena, self.arena_size * 2)
            if na == NULL:
                self.clear()
                break
            self.arena = na
            self.arena_size *= 2
        i = <Py_ssize_t>(h & <uint64_t>self.mask)
        while self.hashes[i] != 0:
            i = (i + 1) & self.mask
        self.hashes[i] = h
        self.slots[i] = self.count
        memcpy(self.arena + self.arena_used, p, n)
        self.koff[self.count] = self.arena_used
        self.klen[self.count] = n
        Py_INCREF(v)
        self.vals[self.count] = <PyObject*>v
        self.arena_used += n
        self.count += 1

    cdef inline str string(self, const char* p, Py_ssize_t n):
        cdef uint64_t h = _hash(p, n)
        cdef PyObject* v = self.get(p, n, h)
        if v != NULL:
            return <str>v
        o = _s(p, n)
        self.put(p, n, h, o)
        return o


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
cdef bint _CLONE_OK = _CLONE_LAYOUT


def _use_templates(bint on=True):
    """Turn route-line templates off (tests compare both paths); returns whether they are
    in use. Off when Route's layout did not pass the import-time check."""
    global _CLONE_OK
    _CLONE_OK = on and _CLONE_LAYOUT
    return _CLONE_OK


cdef inline tuple _untracked(tuple t):
    """Tuples of ints, strings and other untracked tuples cannot form reference cycles;
    untracking them at birth keeps the GC from walking a million of them."""
    PyObject_GC_UnTrack(<void*>t)
    return t


# 16-bit ints, made once per process on first use: standard communities are two 16-bit
# halves, so a full table never misses where a hashed cache would thrash on real tables.
cdef PyObject* _U16[65536]
memset(_U16, 0, sizeof(_U16))


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
                if v < 0:
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


# --------------------------------------------------------------------------- value parsers
# Pure functions from a value's text to typed values; results are cached by the caller.

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


# --------------------------------------------------------------------------- the parser

@cython.final
cdef class Parser:
    """Incremental parser: ``feed(chunk)`` returns the records completed so far,
    ``close()`` the rest (and reports a truncated reply).

    framing: None/"auto", "raw", "birdc-v", "birdc". command: the command that produced
    the input, when known ("show route all" …); it settles replies that content alone
    cannot classify (an empty plain-birdc reply). reply_markers: emit a ``ReplyEnd``
    after every reply.
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
    # status
    cdef object status
    # protocols
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
    # routes
    cdef _Intern strings
    cdef _Intern hops
    cdef _Intern values           # short BGP values: origin, next hop, MED, local pref …
    cdef _Intern lists            # AS paths and community lists (they repeat less)
    cdef Py_ssize_t vtried, vhits, vskip   # long BGP values: lookups, hits, lines to skip
    cdef _Intern tails            # route-line text after the net column -> template Route
    cdef bint tails_off           # detail lines in this reply: the templates would not hold
    cdef object r_tmpl            # the template this route line repeats, or None
    cdef Py_ssize_t tmpl_index    # tails entry waiting for this route as its template, or -1
    cdef Py_ssize_t tails_tried   # route lines looked up in this window
    cdef Py_ssize_t tails_hits
    cdef Py_ssize_t tails_skip    # route lines left to parse without looking up
    cdef bint tmpl_tagged         # the template key stops before the [AS…i] tag: its own
    cdef object tag_origin        # origin and origin AS replace the template's
    cdef long long tag_asn        # -1: none
    cdef object table
    cdef object prefix
    cdef bint have_route
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
    cdef _Numbers nums
    cdef int last_attr            # which attribute a "\t\t" wrap continues
    cdef str last_attr_name

    def __init__(self, framing=None, command=None, *, reply_markers=False, strict=False):
        if framing not in _FRAMINGS:
            raise ValueError(f"framing must be one of auto, raw, birdc-v, birdc; got {framing!r}")
        self.framing = _FRAMINGS[framing]
        self.markers = reply_markers
        self.strict = strict
        self.tail = b""
        self.base = 0
        self.lineno = 0
        self.last_code = 0
        self.out = []
        self.strings = _Intern()
        self.hops = _Intern()
        self.values = _Intern()
        self.lists = _Intern()
        self.tails = _Intern(TAILS_MAX, TAILS_ARENA_MAX)
        self.r_tmpl = None
        self.tmpl_index = -1
        self.nums = _Numbers()
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
        self.out = []
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
        out, self.out = self.out, []
        return out

    def close(self):
        """End of input: finish the pending reply; a reply cut short raises
        ``TruncatedReplyError`` (its ``partial`` holds what that reply had parsed)."""
        cdef bytes t
        if self.closed:
            return []
        self.closed = True
        self.out = []
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
        except ParseError as exc:
            self._fail_partial(exc)
            raise
        except Exception as exc:
            err = self._error(f"{type(exc).__name__}: {exc}")
            self._fail_partial(err)
            raise err from exc
        out, self.out = self.out, []
        return out

    cdef _fail_partial(self, exc):
        """Hand everything that parsed before the fault to the error, including the
        record still being built (its lines were fine)."""
        try:
            self._finish_pending()
        except Exception:
            pass
        exc.partial[:0] = self.out
        self.out = []

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
            if code == 1007 or code == 1008 or code == 1012:
                self.reply_lines += 1
                return self._route_payload(p + 1, n - 1)
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
        raise self._error(f"not a BIRD reply line: {_s(p, min(n, 80))!r}")

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
        if code == 1007 or code == 1008 or code == 1012:
            if k == 20 or k == 22:             # blank net column: 1.6 19, 2.0 21 wide
                self.framing = F_RAW
            elif k == 5 or k == 24 or k == 26:
                self.framing = F_VERBOSE       # "     10.0.1.0/24 …", "     7 of 7 routes…"
        elif code == 1006:                     # protocol details are indented >= 2
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
        self.status = None
        self.proto = None
        self.section = None
        self.bgp = None
        self.in_stats = False
        self.caps_target = None
        self._set_table(None)
        self.prefix = None
        self.have_route = False
        self.r_tmpl = None
        self.tmpl_index = -1
        self.tails_off = False
        self.last_attr = 0

    cdef int _start_reply(self, int code, const char* p, Py_ssize_t n, bint final) except -1:
        self.in_reply = True
        self.reply_line = self.lineno
        self.reply_lines = 0
        self.reply_first = _s(p, n)
        if code == 1 and final:
            self.kind = K_BANNER
        elif code == 1000 or code == 1011 or code == 13 or code == 24:
            self.kind = K_STATUS
            self.status = BirdStatus()
        elif code == 2002 or code == 1002 or code == 1006:
            self.kind = K_PROTOCOLS
        elif code == 1007 or code == 1008 or code == 1012:
            self.kind = K_ROUTES
        elif code == 14:
            self.kind = K_COUNT
        elif code >= 8000:
            self.kind = K_ERROR
        elif code == 0:
            self.kind = K_EMPTY if final else K_UNSUPPORTED
        elif code == 16 or code == 3 or code == 18 or code == 19 or code == 20:
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
        self._reset_reply()
        self.hint_kind = K_NONE
        return 0

    cdef int _finish_pending(self) except -1:
        """Emit the record still being built (a route waiting for attribute lines, a
        protocol waiting for its detail, a status waiting for its final line)."""
        if self.have_route:
            self._flush_route()
        if self.proto is not None:
            self._flush_protocol()
        if self.status is not None and self.kind == K_STATUS:
            self.out.append(self.status)
            self.status = None
        return 0

    cdef int _payload(self, int code, const char* p, Py_ssize_t n, bint final) except -1:
        """One line of a coded framing, prefix removed."""
        if not self.in_reply:
            self._start_reply(code, p, n, final)
            self.reply_code = code
        self.reply_lines += 1
        if code == 0:
            if final:
                if self.framing == F_CODED:    # a visible 0000 line proves raw framing
                    self.framing = F_RAW
                return self._end_reply(code, True)
            return 0
        if code >= 8000:
            rec = ErrorReply(code=code, message=_s(p, n), final=final, line=self.lineno)
            if self.kind == K_ERROR or final:
                self._finish_pending()
            self.out.append(rec)
            if final:
                return self._end_reply(code, True)
            return 0
        if code == 1 and final:
            self.saw_banner = True
            self.out.append(Banner(version=_banner_version(_s(p, n))))
            return self._end_reply(code, True)
        if self.kind == K_ROUTES:
            if code == 1007 or code == 1008 or code == 1012:
                self._route_payload(p, n)
            elif code == 14:
                self._finish_pending()
                self.out.append(_route_count(_s(p, n)))
            else:
                self._foreign_code(code, p, n)
        elif self.kind == K_PROTOCOLS:
            if code == 2002:
                pass                           # heading
            elif code == 1002:
                self._protocol_row(_s(p, n))
            elif code == 1006:
                self._protocol_detail(_s(p, n))
            else:
                self._foreign_code(code, p, n)
        elif self.kind == K_STATUS:
            self._status_line(_s(p, n), code == 13)
        elif self.kind == K_COUNT:
            self.out.append(_route_count(_s(p, n)))
        elif self.kind == K_BANNER:
            self._foreign_code(code, p, n)
        if final:
            return self._end_reply(code, True)
        return 0

    cdef int _foreign_code(self, int code, const char* p, Py_ssize_t n) except -1:
        """A reply code that has no place in the current reply's grammar."""
        raise self._error(f"code {code:04d} does not belong in a "
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
            if self.kind == K_PROTOCOLS and self.proto is not None:
                self.proto.detail = True       # only `show protocols all` has blank lines
                self._flush_protocol()
            return 0
        if _starts(p, n, b"BIRD ", 5) and n > 11 and memcmp(p + n - 7, b" ready.", 7) == 0:
            if self.in_reply:
                self._end_reply(0, True)
            self.saw_banner = True
            self.out.append(Banner(version=_banner_version(_s(p, n))))
            return 0
        text = None
        if self.in_reply and self.kind == K_ROUTES:
            if p[0] == 9 or p[0] == 32 or _route_head(p, n):
                self.reply_lines += 1
                return self._route_payload(p, n)
        text = _s(p, n)
        if self.in_reply and self.kind == K_PROTOCOLS:
            if p[0] == 32 or p[0] == 9:
                self.reply_lines += 1
                if text.strip() == "<line overflow>":
                    self.out.append(ErrorReply(code=8000, message="<line overflow>",
                                              final=False, line=self.lineno))
                    return 0
                return self._protocol_detail(text)
        if self.in_reply and self.kind == K_STATUS:
            self.reply_lines += 1
            self._status_line(text, text in _FINAL_STATUS)
            if text in _FINAL_STATUS:
                self._end_reply(13, True)
            return 0
        if self.in_reply and self.kind == K_PROTOCOLS and not _is_error_text(text):
            self.reply_lines += 1
            if _is_protocol_heading(text):
                return 0
            return self._protocol_row(text)
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
                self.status = BirdStatus()
        self.reply_lines += 1
        if kind == K_ERROR:
            code = _plain_error_code(text)
            self.out.append(ErrorReply(code=code, message=text, final=True, line=self.lineno))
            self.reply_code = code if code is not None else -1
            if code != 8000:
                self._end_reply(code if code is not None else -1, True)
            else:
                self.kind = K_ROUTES if self.hint_kind == K_ROUTES else self.kind
            return 0
        if kind == K_OK:
            return self._end_reply(0, True)
        if kind == K_STATUS:
            self._status_line(text, text in _FINAL_STATUS)
            if text in _FINAL_STATUS:
                self._end_reply(13, True)
            return 0
        if kind == K_PROTOCOLS:
            if _is_protocol_heading(text):
                return 0
            return self._protocol_row(text)
        if kind == K_COUNT:
            self.out.append(_route_count(text))
            return 0
        if kind == K_ROUTES:
            return self._route_payload(p, n)
        return 0                               # K_UNSUPPORTED: counted, reported at the end

    # ------------------------------------------------------------------ status

    cdef int _status_line(self, str text, bint final) except -1:
        st = self.status
        if st is None:
            st = self.status = BirdStatus()
        if text.startswith("BIRD "):
            st.version = text[5:].strip()
        elif text.startswith("Router ID is "):
            st.router_id = text[13:].strip()
        elif text.startswith("Hostname is "):
            st.hostname = text[12:].strip()
        elif text.startswith("Current server time is "):
            st.server_time = text[23:].strip()
        elif text.startswith("Last reboot on "):
            st.last_reboot = text[15:].strip()
        elif text.startswith("Last reconfiguration on "):
            st.last_reconfiguration = text[24:].strip()
        elif text.startswith("Graceful restart recovery in progress"):
            st.graceful_restart_recovery = True
        elif text.strip().startswith("Waiting for "):
            words = text.split()
            if len(words) > 2 and words[2].isdigit():
                st.gr_waiting = int(words[2])
            st.gr_details = st.gr_details + (text.strip(),)
        elif text.strip().startswith("Wait timer is "):
            st.gr_wait_timer = text.strip()[14:]
            st.gr_details = st.gr_details + (text.strip(),)
        elif text in _FINAL_STATUS:
            st.state = _FINAL_STATUS[text]
            st.state_text = text
        elif final:
            st.state_text = text
            st.state = None
        elif st.graceful_restart_recovery and text.startswith(" "):
            st.gr_details = st.gr_details + (text.strip(),)
        else:
            raise self._error(f"unexpected line in show status: {text[:80]!r}")
        return 0

    # ------------------------------------------------------------------ protocols

    cdef int _protocol_row(self, str text) except -1:
        if self.proto is not None:
            self._flush_protocol()
        words = text.split()
        if len(words) < 3:
            raise self._error(f"protocol row has {len(words)} columns, expected 5 or more: "
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

    cdef int _flush_protocol(self) except -1:
        p = self.proto
        self._close_stats()
        if self.bgp is not None:
            p.bgp = self.bgp
        self.out.append(p)
        self.proto = None
        self.section = None
        self.bgp = None
        return 0

    cdef int _close_stats(self) except -1:
        if self.in_stats:
            self.stats_owner.stats = ChangeStats(**self.stats_rows)
            self.in_stats = False
        return 0

    cdef int _protocol_detail(self, str raw) except -1:
        p = self.proto
        if p is None:
            if raw.strip() == "":
                return 0
            raise self._error(f"protocol detail line before any protocol row: {raw[:80]!r}")
        stripped = raw.strip()
        p.detail = True                        # even an empty block says "show protocols all"
        if not stripped:                       # separator between protocols
            self._flush_protocol()
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
            self._close_stats()
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
            return self._bgp_detail(key, value)
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

    cdef int _bgp_detail(self, str key, str value) except -1:
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

    # ------------------------------------------------------------------ routes (hot path)

    cdef int _route_payload(self, const char* p, Py_ssize_t n) except -1:
        """One line of a route dump, framing already removed."""
        cdef Py_ssize_t i, j
        cdef char c
        if n == 0:
            return 0                           # 2.0: blank line between tables
        c = p[0]
        if c == 9 or c == 32:
            if c == 9 and n > 1 and p[1] == 9:
                return self._attr_wrap(p, n)   # "\t\t(…)": a wrapped attribute value
            i = _skip_ws(p, 0, n)
            if i == n:
                return 0
            return self._indented(p, i, n)
        if c == 84 and n > 7 and _starts(p, n, b"Table ", 6) and p[n - 1] == 58:
            if self.have_route:
                self._flush_route()
            self._set_table(self.strings.string(p + 6, n - 7))
            return 0
        cdef unsigned char acc = 0
        j = 0
        while j < n and not _isws(p[j]):       # the net, checked for ASCII on the way
            acc |= <unsigned char>p[j]
            j += 1
        if _isdigit(c) and memchr(p, 47, j) == NULL and _is_count_bytes(p, n):
            if self.have_route:
                self._flush_route()
            self.out.append(_route_count(_s(p, n)))
            return 0
        if self.have_route:
            self._flush_route()
        if acc < 128:
            prefix = PyUnicode_New(j, 127)
            memcpy(PyUnicode_DATA(prefix), p, j)
            self.prefix = prefix
        else:
            self.prefix = _s(p, j)
        return self._route_body(p, j, n)

    cdef int _indented(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """An indented line: alternative route (blank net column), next hop, ``Type:``
        or attribute. 1.6 indents alternatives with 19 spaces, 2.0 with 21; copies of
        birdc output sometimes use tabs or spaces for either, so decide by content."""
        cdef Py_ssize_t j = _tok_end(p, i, n)
        cdef const char* w = p + i
        cdef Py_ssize_t wn = j - i
        if wn > 0 and w[wn - 1] == 58:         # "Name:" -> Type or attribute (most lines)
            if not self.have_route:
                raise self._error(f"route detail line before any route: {_s(p, min(n, 80))!r}")
            if _eq(w, wn, b"Type:", 5):
                return self._type_line(p, j, n)
            return self._attr(p + i, n - i)
        if _is_dest(w, wn):
            if (wn == 3 and (memcmp(w, b"via", 3) == 0 or memcmp(w, b"dev", 3) == 0)
                    and not self._bracket_route(p, i, n)):
                if not self.have_route:
                    raise self._error(f"next hop line before any route: {_s(p, min(n, 80))!r}")
                return self._hop_line(p + i, n - i)
            if memchr(w, 91, n - i) != NULL:
                if self.prefix is None:
                    raise self._error("alternative route (blank destination) before any route")
                if self.have_route:
                    self._flush_route()
                return self._route_body(p, i, n)
        if not self.have_route:
            raise self._error(f"route detail line before any route: {_s(p, min(n, 80))!r}")
        return self._attr(p + i, n - i)

    cdef bint _bracket_route(self, const char* p, Py_ssize_t i, Py_ssize_t n):
        """``via X on Y [proto time]`` (an alternative route) vs ``via X on Y weight 1``."""
        cdef const char* b = <const char*>memchr(p + i, 91, n - i)
        return b != NULL and memchr(b, 93, n - (b - p)) != NULL

    cdef int _route_body(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """``<dest> [<proto> <since>[ from <ip>]]< *|!>< info>`` from position i."""
        cdef Py_ssize_t j, k, e, s0, s1
        cdef const char* b
        cdef const char* f
        cdef long long v
        cdef list info = None
        cdef uint64_t h
        cdef Py_ssize_t kn
        cdef PyObject** tmpl_slot = NULL
        i = _skip_ws(p, i, n)
        self.tmpl_index = -1
        if self.tails_skip > 0:
            self.tails_skip -= 1
        elif _CLONE_OK and not self.tails_off:
            # The text after the net column repeats across routes (same peer, time, flags):
            # the first Route built from a text becomes its template, and later lines with
            # that text are copies of it with their own prefix.
            # Key: the text after the net column; a trailing origin tag is left out of it
            # (a full table has one per origin AS) and applied to the copy instead.
            kn = self._template_key(p, i, n)
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
                    if self.tmpl_tagged and 0 <= self.tag_asn < 65536 and _U16[self.tag_asn] != NULL:
                        __builtin_prefetch(_U16[self.tag_asn])   # the int itself, for the copy
                    self.r_tmpl = <object>tmpl_slot[0]
                    self.have_route = True
                    self.last_attr = 0
                    return 0
            elif 0 < kn <= 4096:
                self.tails.put(p + i, kn, h, None)      # filled in by _flush_route
                self.tmpl_index = self.tails.count - 1
        j = _tok_end(p, i, n)
        self.have_route = False                # set again once the whole line parsed
        self.r_hops = None
        self.r_hops_t = ()
        self.r_primary = False
        self.r_sync = False
        self.r_pref = -1
        self.r_metric = -1
        self.r_metric2 = -1
        self.r_origin_as = -1
        if self.r_opt:                   # rarely set: reset only when used
            self.r_opt = False
            self.r_from = None
            self.r_flags = None
            self.r_origin = None
            self.r_info = None
        if self.r_detail:
            self._clear_detail()
        self.last_attr = 0
        b = <const char*>memchr(p + i, 91, n - i)     # '['
        if b == NULL:
            raise self._error(f"route line without [protocol time]: {_s(p, min(n, 120))!r}")
        k = b - p
        if _eq(p + i, j - i, b"via", 3) or _eq(p + i, j - i, b"dev", 3):
            e = k
            while e > i and _isws(p[e - 1]):
                e -= 1
            self.r_type = "unicast"
            self.r_hops_t = self._hops(p + i, e - i)
        elif _eq(p + i, j - i, b"unicast", 7) or _eq(p + i, j - i, b"multipath", 9):
            self.r_type = "unicast"
        elif _eq(p + i, j - i, b"blackhole", 9):
            self.r_type = "blackhole"
        elif _eq(p + i, j - i, b"unreachable", 11):
            self.r_type = "unreachable"
        elif _eq(p + i, j - i, b"prohibited", 10):
            self.r_type = "prohibited"
        elif j - i > 2 and p[i] == 65 and p[i + 1] == 83 and _uint(p, i + 2, j) >= 0:
            self.r_type = "roa"                        # 2.0 ROA table: "prefix-max ASn [...]"
            info = [self.strings.string(p + i, j - i)]
        elif i == k or _eq(p + i, j - i, b"???", 3):
            self.r_type = "unknown"
        else:
            raise self._error(f"unknown route destination {_s(p + i, j - i)!r}")
        # [proto since[ from ip]]
        f = <const char*>memchr(b, 93, n - k)           # ']'
        if f == NULL:
            raise self._error(f"unterminated [protocol time] in route line: {_s(p, min(n, 120))!r}")
        e = f - p
        s0 = k + 1
        s1 = _tok_end(p, s0, e)
        self.r_proto = self.strings.string(p + s0, s1 - s0)
        s0 = _skip_ws(p, s1, e)
        s1 = e
        j = s0
        while j + 6 <= e:
            f = <const char*>memchr(p + j, 102, e - j)  # 'f' of " from "
            if f == NULL:
                break
            j = f - p
            if j >= 1 and j + 5 <= e and memcmp(p + j - 1, b" from ", 6) == 0:
                self.r_from = self.strings.string(p + j + 5, e - j - 5)
                self.r_opt = True
                s1 = j - 1
                break
            j += 1
        while s1 > s0 and _isws(p[s1 - 1]):
            s1 -= 1
        self.r_since = self.strings.string(p + s0, s1 - s0)
        k = _skip_ws(p, e + 1, n)
        if k < n and p[k] == 42:                       # '*'
            self.r_primary = True
            k += 1
        elif k < n and p[k] == 33:                     # '!'
            self.r_primary = True
            self.r_sync = True
            k += 1
        k = _skip_ws(p, k, n)
        # words before "(pref…)": OSPF's I/IA/E1/E2
        while k < n and p[k] != 40 and p[k] != 91:
            j = _tok_end(p, k, n)
            if info is None:
                info = []
            info.append(self.strings.string(p + k, j - k))
            k = _skip_ws(p, j, n)
        if k < n and p[k] == 40:                       # '('
            k = self._pref_group(p, k + 1, n)
            k = _skip_ws(p, k, n)
        while k < n:
            if p[k] == 91:                             # '[' tag
                f = <const char*>memchr(p + k, 93, n - k)
                if f == NULL:
                    j = n
                else:
                    j = (f - p) + 1
                if not (self.r_origin is None and self.r_origin_as < 0
                        and self._origin_tag(p + k + 1, j - k - 2)):
                    if info is None:
                        info = []
                    info.append(self.strings.string(p + k, j - k))
            else:
                j = _tok_end(p, k, n)
                if info is None:
                    info = []
                info.append(self.strings.string(p + k, j - k))
            k = _skip_ws(p, j, n)
        if info is not None:
            self.r_info = " ".join(info)
            self.r_opt = True
        self.have_route = True
        return 0

    cdef Py_ssize_t _template_key(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
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
        self.tag_origin = _origin(letter) if letter else None
        self.tag_asn = asn
        if 0 <= asn < 65536:
            # The AS's int is wanted only when the route is flushed (the next line): start
            # loading its slot now; a full table's origin ASes are too many to stay cached.
            __builtin_prefetch(&_U16[asn])
        return (b + 1) - (p + i)

    cdef inline object _tag_as(self):
        if self.tag_asn < 0:
            return None
        return self.nums.int_(<unsigned long long>self.tag_asn)

    cdef int _set_table(self, table) except -1:
        """Templates carry the table: a new table heading starts them afresh."""
        if table is not self.table:
            self.table = table
            if self.tails is not None and self.tails.count:
                self.tails.clear()
                self.tmpl_index = -1
        return 0

    cdef inline int _extend_route(self, bint detail) except -1:
        """A next-hop, ``Type:`` or attribute line adds to the route being built: its line
        makes no template, a template it copied becomes fields to extend, and after detail
        lines the reply's route lines skip the lookup (their Routes get extended too)."""
        self.tmpl_index = -1
        if self.r_tmpl is not None:
            self._untemplate()
        if detail:
            self.tails_off = True
        return 0

    cdef int _untemplate(self) except -1:
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

    cdef Py_ssize_t _pref_group(self, const char* p, Py_ssize_t k, Py_ssize_t n) except -1:
        """``(100)``, ``(100/20)``, ``(100/-)``, ``(100/?)``, ``(100-s)``, ``(150/20/0)``."""
        cdef Py_ssize_t j = k, f0
        while j < n and _isdigit(p[j]):
            j += 1
        self.r_pref = _uint(p, k, j) if j > k else -1
        if j > k and self.r_pref < 0:
            raise self._error("preference out of range")
        f0 = j
        while j < n and (p[j] == 45 or p[j] == 115):   # '-' suppressed, 's' stale
            j += 1
        cdef char fbuf[8]
        cdef Py_ssize_t fn = 0
        while f0 < j and fn < 4:
            fbuf[fn] = p[f0]
            fn += 1
            f0 += 1
        if j < n and p[j] == 47:                       # '/'
            j += 1
            k = j
            while j < n and _isdigit(p[j]):
                j += 1
            if j > k:
                self.r_metric = _uint(p, k, j)
            elif j < n and (p[j] == 45 or p[j] == 63):
                fbuf[fn] = 47
                fbuf[fn + 1] = p[j]
                fn += 2
                j += 1
            if j < n and p[j] == 47:
                j += 1
                k = j
                while j < n and _isdigit(p[j]):
                    j += 1
                if j > k:
                    self.r_metric2 = _uint(p, k, j)
        if j >= n or p[j] != 41:                       # ')'
            raise self._error(f"malformed (preference/metric) group: {_s(p, min(n, 120))!r}")
        if fn:
            self.r_flags = self.strings.string(fbuf, fn)
            self.r_opt = True
        return j + 1

    cdef bint _origin_tag(self, const char* p, Py_ssize_t n):
        """``AS65001i`` / ``i`` / ``?`` / empty -> origin and origin AS; False if not one."""
        cdef char letter
        cdef long long asn
        if not _scan_origin_tag(p, n, &letter, &asn):
            return False
        if n > 0:
            self.r_origin_as = asn
            if letter:
                self.r_origin = _origin(letter)
            self.r_opt = True
        return True

    cdef tuple _hops(self, const char* p, Py_ssize_t n):
        """``via GW on IF[ onlink][ weight W][ mpls …]`` / ``dev IF`` -> (Nexthop,), shared."""
        cdef uint64_t h = _hash(p, n)
        cdef PyObject* c = self.hops.get(p, n, h)
        if c != NULL:
            return <tuple>c
        v = _untracked((self._parse_hop(p, n),))   # Nexthop is gc=False: no cycles
        self.hops.put(p, n, h, v)
        return v

    cdef object _parse_hop(self, const char* p, Py_ssize_t n):
        """Scan ``via GW on IF [onlink] [weight W] [mpls L]`` / ``dev IF`` in C."""
        cdef Py_ssize_t i = 0, j, k, m
        cdef long long w
        gw = None
        iface = None
        weight = None
        onlink = False
        mpls = None
        while True:
            i = _skip_ws(p, i, n)
            if i >= n:
                break
            j = _tok_end(p, i, n)
            k = _skip_ws(p, j, n)
            m = _tok_end(p, k, n)                 # the value after the keyword, if any
            if _eq(p + i, j - i, b"via", 3) and m > k:
                gw = self.strings.string(p + k, m - k)
                i = m
            elif (_eq(p + i, j - i, b"on", 2) or _eq(p + i, j - i, b"dev", 3)) and m > k:
                iface = self.strings.string(p + k, m - k)
                i = m
            elif _eq(p + i, j - i, b"weight", 6) and m > k:
                w = _uint(p, k, m)
                if w < 0:
                    raise ValueError(f"bad weight in next hop {_s(p, n)!r}")
                weight = w
                i = m
            elif _eq(p + i, j - i, b"onlink", 6):
                onlink = True
                i = j
            elif _eq(p + i, j - i, b"mpls", 4) and m > k:
                mpls = _s(p + k, m - k)
                i = m
            else:
                raise ValueError(f"unexpected {_s(p + i, j - i)!r} in next hop {_s(p, n)!r}")
        return Nexthop(gw, iface, weight, onlink, mpls)

    cdef int _hop_line(self, const char* p, Py_ssize_t n) except -1:
        cdef tuple t
        self._extend_route(False)
        while n > 0 and _isws(p[n - 1]):
            n -= 1
        t = self._hops(p, n)
        if self.r_hops is None:
            self.r_hops = []
            self.r_hops_t = t
        self.r_hops.append(t[0])
        return 0

    cdef int _type_line(self, const char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """1.6 ``Type: BGP unicast univ``; 2.0 ``Type: BGP univ``."""
        cdef Py_ssize_t a0, a1, b0, b1, c0, c1
        self._extend_route(True)
        a0 = _skip_ws(p, i, n); a1 = _tok_end(p, a0, n)
        b0 = _skip_ws(p, a1, n); b1 = _tok_end(p, b0, n)
        c0 = _skip_ws(p, b1, n); c1 = _tok_end(p, c0, n)
        self.r_detail = True
        if a1 > a0:
            self.r_source = self.strings.string(p + a0, a1 - a0)
        if c1 > c0:
            self.r_cast = self.strings.string(p + b0, b1 - b0)
            self.r_scope = self.strings.string(p + c0, c1 - c0)
        elif b1 > b0:
            self.r_scope = self.strings.string(p + b0, b1 - b0)
        return 0

    cdef int _attr(self, const char* p, Py_ssize_t n) except -1:
        """``Proto.name: value``. BGP attributes are typed (values cached by their text);
        everything else is kept raw in ``attrs``."""
        cdef const char* c = <const char*>memchr(p, 58, n)     # ':'
        cdef Py_ssize_t kn, v0
        cdef uint64_t h
        cdef object val
        cdef PyObject* cached
        cdef bint lists
        cdef _Intern table
        self._extend_route(True)
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
            lists = _is_list_attr(p + 4, kn - 4)
            if lists and self.vskip > 0:
                # paths and community lists that have not been repeating: hashing and
                # keeping them costs more than parsing them again
                self.vskip -= 1
                val = self._bgp_value(p + 4, kn - 4, p + v0, n - v0)
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
                val = self._bgp_value(p + 4, kn - 4, p + v0, n - v0)
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

    cdef object _bgp_value(self, const char* k, Py_ssize_t kn, const char* vp, Py_ssize_t vn):
        """(attribute id, parsed value[, extra]) for a known BGP attribute, else None."""
        cdef bint trunc = False, odd = False
        if _eq(k, kn, b"as_path", 7):
            path = self.nums.as_path(vp, vn, &trunc, &odd)
            return (A_PATH, path, trunc, _s(vp, vn) if odd else None)
        if _eq(k, kn, b"community", 9):
            return (A_COMM, self.nums.parens(vp, vn, 2))
        if _eq(k, kn, b"large_community", 15):
            return (A_LCOMM, self.nums.parens(vp, vn, 3))
        value = _s(vp, vn)
        if _eq(k, kn, b"origin", 6):
            return (A_ORIGIN, value)
        if _eq(k, kn, b"next_hop", 8):
            return (A_NH, _untracked(tuple(value.split())))
        if _eq(k, kn, b"med", 3):
            return (A_MED, int(value))
        if _eq(k, kn, b"local_pref", 10):
            return (A_LP, int(value))
        if _eq(k, kn, b"ext_community", 13):
            return (A_ECOMM, _parse_ext_list(value))   # untracked there
        if _eq(k, kn, b"atomic_aggr", 11):
            return (A_ATOMIC, True)
        if _eq(k, kn, b"aggregator", 10):
            ip, _, asn = value.partition(" ")
            asn = asn.strip()
            if asn.startswith("AS") and asn[2:].isdigit():
                return (A_AGGR, _untracked((ip, int(asn[2:]))))
            return None
        if _eq(k, kn, b"originator_id", 13):
            return (A_ORIGINATOR, value)
        if _eq(k, kn, b"cluster_list", 12):
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

    cdef int _attr_wrap(self, const char* p, Py_ssize_t n) except -1:
        """``\\t\\t…``: BIRD wraps long community lists onto more lines (1.6 and 2.0)."""
        cdef Py_ssize_t i = _skip_ws(p, 0, n)
        self._extend_route(False)
        text = _s(p + i, n - i).rstrip()
        a = self.last_attr
        if not self.have_route or a == 0:
            raise self._error("wrapped attribute line (\\t\\t) with no attribute before it")
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
            raise self._error(f"attribute {a} does not wrap onto a \\t\\t line")
        return 0

    cdef int _flush_route(self) except -1:
        if self.r_tmpl is not None:
            if self.tmpl_tagged:
                self.out.append(ns_clone_route_tagged(self.r_tmpl, self.prefix,
                                                      self.tag_origin, self._tag_as()))
            else:
                self.out.append(ns_clone_route(self.r_tmpl, self.prefix))
            self.r_tmpl = None
        else:
            route = self._make_route(self.prefix)
            self.out.append(route)
            # a template, unless its line was extended, or (a tagged key) other info words
            # make the tag's place in the line matter
            if self.tmpl_index >= 0 and not (self.tmpl_tagged and self.r_info is not None):
                self.tails.set_val(self.tmpl_index, route)
            self.tmpl_index = -1
        self.have_route = False
        return 0

    cdef object _make_route(self, prefix):
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
            prefix, self.table, self.r_type, hops, self.r_proto, self.r_since, self.r_from,
            self.r_primary, self.r_sync,
            None if self.r_pref < 0 else self.r_pref,
            None if self.r_metric < 0 else self.r_metric,
            None if self.r_metric2 < 0 else self.r_metric2,
            self.r_flags, self.r_origin,
            None if self.r_origin_as < 0 else self.r_origin_as,
            self.r_info, self.r_source,
            self.r_cast, self.r_scope, bgp, self.r_attrs)


# --------------------------------------------------------------------------- module helpers

cdef enum Attr:
    A_NONE = 0
    A_RAW
    A_ORIGIN
    A_PATH
    A_NH
    A_MED
    A_LP
    A_COMM
    A_LCOMM
    A_ECOMM
    A_ATOMIC
    A_AGGR
    A_ORIGINATOR
    A_CLUSTER

cdef str _O_I = "i", _O_E = "e", _O_Q = "?"


cdef inline str _origin(char c):
    """Origin letter of the ``[AS…i]`` tag (BIRD prints i/e/?; some copies show I)."""
    if c == 101:
        return _O_E
    if c == 63:
        return _O_Q
    return _O_I



cdef inline bint _scan_origin_tag(const char* p, Py_ssize_t n, char* letter, long long* asn) noexcept:
    """The inside of a ``[AS65001i]`` / ``[i]`` / ``[?]`` / ``[]`` tag: its origin letter
    (0: none) and AS (-1: none); False if the text is not such a tag."""
    cdef Py_ssize_t j
    cdef long long v = 0
    letter[0] = 0
    asn[0] = -1
    if n < 0:
        return False
    if n == 0:
        return True
    if n >= 2 and p[0] == 65 and p[1] == 83:           # "AS"
        j = 2
        while j < n and _isdigit(p[j]):
            v = v * 10 + (p[j] - 48)
            j += 1
        if j == 2 or j < n - 1:
            return False
        if j == n - 1 and not (p[j] == 105 or p[j] == 101 or p[j] == 63):
            return False
        asn[0] = v if j - 2 <= 18 else -1
        if j == n - 1:
            letter[0] = p[j]
        return True
    if n == 1 and (p[0] == 105 or p[0] == 101 or p[0] == 63 or p[0] == 73):
        letter[0] = p[0]
        return True
    return False


cdef inline bint _is_list_attr(const char* p, Py_ssize_t n) noexcept:
    """``as_path``, ``community``, ``large_community``: values with a long tail of
    distinct texts (a full table: one per route), cached apart from the short ones."""
    if n == 7:
        return memcmp(p, b"as_path", 7) == 0
    if n == 9:
        return memcmp(p, b"community", 9) == 0
    if n == 15:
        return memcmp(p, b"large_community", 15) == 0
    return False


cdef inline bint _is_dest(const char* p, Py_ssize_t n) noexcept:
    """A route's destination word: via dev blackhole unreachable prohibited multipath
    unicast ???"""
    if n == 3:
        return memcmp(p, b"via", 3) == 0 or memcmp(p, b"dev", 3) == 0 or memcmp(p, b"???", 3) == 0
    if n == 7:
        return memcmp(p, b"unicast", 7) == 0
    if n == 9:
        return memcmp(p, b"blackhole", 9) == 0 or memcmp(p, b"multipath", 9) == 0
    if n == 10:
        return memcmp(p, b"prohibited", 10) == 0
    if n == 11:
        return memcmp(p, b"unreachable", 11) == 0
    return False


cdef bint _is_count_bytes(const char* p, Py_ssize_t n):
    """``19 of 19 routes for …`` (digits then `` of ``)."""
    cdef Py_ssize_t i = 0
    while i < n and _isdigit(p[i]):
        i += 1
    return i > 0 and i + 4 <= n and memcmp(p + i, b" of ", 4) == 0


cdef bint _route_head(const char* p, Py_ssize_t n):
    """Plain birdc: does this line start a route (a prefix token) or a table?"""
    cdef Py_ssize_t j = _tok_end(p, 0, n)
    cdef char c = p[0]
    if n > 7 and _starts(p, n, b"Table ", 6) and p[n - 1] == 58:
        return True
    if not (_isdigit(c) or (c >= 97 and c <= 102) or (c >= 65 and c <= 70) or c == 58):
        return False
    if _is_count_bytes(p, n):
        return True
    return memchr(p, 47, j) != NULL


cdef object _route_count(str text):
    words = text.split()
    try:
        if words and words[0] == "Total:":
            # Total: S of T routes for N networks in K tables
            return RouteCount(shown=int(words[1]), total=int(words[3]), networks=int(words[6]),
                              is_total=True, tables=int(words[9]))
        table = None
        if len(words) >= 10 and words[7] == "in" and words[8] == "table":
            table = words[9]
        if words[1] != "of" or words[3] != "routes":
            raise ValueError
        return RouteCount(shown=int(words[0]), total=int(words[2]), networks=int(words[5]),
                          table=table)
    except (ValueError, IndexError):
        raise ValueError(f"not a route count line: {text[:80]!r}") from None


cdef str _banner_version(str text):
    text = text.strip()
    if text.startswith("BIRD "):
        text = text[5:]
    if text.endswith(" ready."):
        text = text[:-7]
    return text


cdef int _command_kind(str command):
    words = command.strip().lower().split()
    if len(words) < 2 or not "show".startswith(words[0]):
        return K_UNSUPPORTED
    w = words[1]
    if len(w) >= 2 and "status".startswith(w):
        return K_STATUS
    if len(w) >= 1 and "protocols".startswith(w):
        return K_PROTOCOLS
    if len(w) >= 1 and "route".startswith(w):
        if "count" in words[2:]:
            return K_COUNT
        return K_ROUTES
    return K_UNSUPPORTED


cdef bint _is_time_word(str w):
    """``06:04:57``, ``06:05:21.596``, ``06:04``."""
    if len(w) < 5 or not (w[0].isdigit() and w[1].isdigit() and w[2] == ":"):
        return False
    return all(c.isdigit() or c in ":." for c in w)


cdef bint _is_protocol_heading(str text):
    words = text.lower().split()
    return len(words) >= 3 and words[0] == "name" and words[1] == "proto" and words[2] == "table"


cdef bint _is_count(str text):
    return text.startswith("Total: ") or (" of " in text and " routes for " in text
                                          and text.split(" ", 1)[0].isdigit())


cdef bint _is_error_text(str text):
    return _plain_error_code(text) != -2


cdef object _plain_error_code(str text):
    """Code of a known error text of plain birdc output; None if the text is an error
    without a code; -2 if it is not an error text."""
    t = text.strip()
    for msg, code in _PLAIN_ERRORS:
        if t.startswith(msg):
            return code
    if t.endswith(" is not a protocol"):
        return 9002
    return -2


cdef int _plain_kind(const char* p, Py_ssize_t n, str text, int hint):
    """What kind of reply a plain birdc line starts."""
    if _plain_error_code(text) != -2:
        return K_ERROR
    if text.strip() in _PLAIN_OK:
        return K_OK
    if (text.startswith("BIRD ") and len(text) > 5 and (text[5].isdigit() or text[5] == "v")) \
            or text.startswith("Router ID is "):
        return K_STATUS
    if _is_protocol_heading(text):
        return K_PROTOCOLS
    if _is_count(text):
        return K_ROUTES if hint == K_ROUTES else K_COUNT
    if _route_head(p, n):
        return K_ROUTES
    if hint == K_PROTOCOLS:
        return K_PROTOCOLS
    return K_UNSUPPORTED
