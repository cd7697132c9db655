# The parse core's byte and text helpers: scanning, interning, small value parsers shared
# by the framing and every grammar. Included by _birdparse.pyx.

ctypedef struct slice_t:
    const char* p
    Py_ssize_t n


# --------------------------------------------------------------------------- C helpers

cdef inline bint _isdigit(char c) noexcept nogil:
    return c >= 48 and c <= 57

cdef inline bint _isws(char c) noexcept nogil:
    return c == 32 or c == 9


cdef inline Py_ssize_t _word_end(const char* p, Py_ssize_t n) noexcept nogil:
    """Where the first word of p[:n] ends (at a space or tab, else n): memchr finds the
    space, a net never holds a tab before it."""
    cdef const char* sp = <const char*>memchr(p, 32, n)
    cdef Py_ssize_t j = (sp - p) if sp != NULL else n
    cdef const char* tab = <const char*>memchr(p, 9, j)
    return (tab - p) if tab != NULL else j


cdef inline bint _ascii(const char* p, Py_ssize_t n) noexcept nogil:
    """No byte of p[:n] has its high bit set (eight at a time)."""
    cdef uint64_t acc = 0, w
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        acc |= w
        i += 8
    while i < n:
        acc |= <unsigned char>p[i]
        i += 1
    return (acc & 0x8080808080808080ULL) == 0

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
    # finish by mixing the high bits down: tables index by the low bits, and a product's
    # low bits only see its input's low bytes ("23:23:05" and "23:59:05" must differ)
    h ^= h >> 33
    h *= 0xff51afd7ed558ccdULL
    h ^= h >> 33
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


cdef inline tuple _untracked(tuple t):
    """Tuples of ints, strings and other untracked tuples cannot form reference cycles;
    untracking them at birth keeps the GC from walking a million of them."""
    PyObject_GC_UnTrack(<void*>t)
    return t


# 16-bit ints, made once per process on first use: standard communities are two 16-bit
# halves, so a full table never misses where a hashed cache would thrash on real tables.
cdef PyObject* _U16[65536]
memset(_U16, 0, sizeof(_U16))


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
        if j - 2 > 10 or v > 0xffffffff:               # ASNs are u32: not an origin tag
            return False
        asn[0] = v
        if j == n - 1:
            letter[0] = p[j]
        return True
    if n == 1 and (p[0] == 105 or p[0] == 101 or p[0] == 63 or p[0] == 73):
        letter[0] = p[0]
        return True
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


cdef inline int _bgp_attr_id(const char* k, Py_ssize_t kn) noexcept:
    """``as_path`` -> A_PATH … for the name after ``BGP.``; A_NONE for one kept raw."""
    if _eq(k, kn, b"as_path", 7):
        return A_PATH
    if _eq(k, kn, b"community", 9):
        return A_COMM
    if _eq(k, kn, b"large_community", 15):
        return A_LCOMM
    if _eq(k, kn, b"origin", 6):
        return A_ORIGIN
    if _eq(k, kn, b"next_hop", 8):
        return A_NH
    if _eq(k, kn, b"med", 3):
        return A_MED
    if _eq(k, kn, b"local_pref", 10):
        return A_LP
    if _eq(k, kn, b"ext_community", 13):
        return A_ECOMM
    if _eq(k, kn, b"atomic_aggr", 11):
        return A_ATOMIC
    if _eq(k, kn, b"aggregator", 10):
        return A_AGGR
    if _eq(k, kn, b"originator_id", 13):
        return A_ORIGINATOR
    if _eq(k, kn, b"cluster_list", 12):
        return A_CLUSTER
    return A_NONE


ctypedef struct hop_t:
    slice_t gw              # n == 0: none
    slice_t iface
    slice_t mpls
    long long weight        # -1: none
    bint onlink


cdef int _scan_hop(const char* p, Py_ssize_t n, hop_t* h) except -1:
    """``via GW on IF [onlink] [weight W] [mpls L]`` / ``dev IF`` -> slices, in C."""
    cdef Py_ssize_t i = 0, j, k, m
    cdef long long w
    h.gw.p = h.iface.p = h.mpls.p = NULL
    h.gw.n = 0
    h.iface.n = 0
    h.mpls.n = 0
    h.weight = -1
    h.onlink = False
    while True:
        i = _skip_ws(p, i, n)
        if i >= n:
            break
        j = _tok_end(p, i, n)
        k = _skip_ws(p, j, n)
        m = _tok_end(p, k, n)                 # the value after the keyword, if any
        if _eq(p + i, j - i, b"via", 3) and m > k:
            h.gw.p = p + k
            h.gw.n = m - k
            i = m
        elif (_eq(p + i, j - i, b"on", 2) or _eq(p + i, j - i, b"dev", 3)) and m > k:
            h.iface.p = p + k
            h.iface.n = m - k
            i = m
        elif _eq(p + i, j - i, b"weight", 6) and m > k:
            w = _uint(p, k, m)
            if not 1 <= w <= 256:                   # BIRD prints weights 1..256
                raise ValueError(f"bad weight in next hop {_s(p, n)!r}")
            h.weight = w
            i = m
        elif _eq(p + i, j - i, b"onlink", 6):
            h.onlink = True
            i = j
        elif _eq(p + i, j - i, b"mpls", 4) and m > k:
            h.mpls.p = p + k
            h.mpls.n = m - k
            i = m
        else:
            raise ValueError(f"unexpected {_s(p + i, j - i)!r} in next hop {_s(p, n)!r}")
    return 0
