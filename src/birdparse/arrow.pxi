# Arrow array builders for the columns sink. Buffers are zero-filled memory (calloc: pages
# nothing is written to are never touched), written by index: a value is one store and a
# validity bit, a null costs nothing. They go to pyarrow without a copy (foreign buffers
# whose base is the builder); a column nothing was written to in a batch becomes a view of
# one shared zero block. Memory comes from PyMem_Raw*, which tracemalloc sees. Included by
# _birdparse.pyx.

from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint32_t

cdef object _pa = None        # pyarrow, imported on the first columns sink (the [arrow] extra)


cdef object _pyarrow():
    global _pa
    if _pa is None:
        try:
            import pyarrow
        except ModuleNotFoundError:
            raise ModuleNotFoundError("Arrow columns need pyarrow: pip install "
                                      "'nodestatus[arrow]'", name="pyarrow") from None
        _pa = pyarrow
    return _pa


cdef object _ZEROS = b""


cdef object _zeros(Py_ssize_t n):
    """A pyarrow buffer of n zero bytes: a view of one shared zero block."""
    global _ZEROS
    if len(_ZEROS) < n:
        _ZEROS = bytes(max(n, 2 * len(_ZEROS), 1 << 16))
    return _pyarrow().py_buffer(_ZEROS)[:n]


cdef object _utf8_fixed(const char* p, Py_ssize_t n):
    """None if p[:n] is valid UTF-8 (Arrow's strings must be), else its text with the bad
    bytes as ``\\xNN`` escapes: what the struct sink's strings show."""
    try:
        PyUnicode_DecodeUTF8(p, n, "strict")
        return None
    except UnicodeDecodeError:
        return (<str>PyUnicode_DecodeUTF8(p, n, "backslashreplace")).encode("utf-8")


cdef inline char* _calloc(Py_ssize_t n) except NULL:
    cdef char* p = <char*>PyMem_RawCalloc(n if n > 0 else 1, 1)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline char* _regrow(char* p, Py_ssize_t old, Py_ssize_t new) except NULL:
    """``p`` of ``old`` bytes made ``new`` bytes long, the new part zeroed."""
    cdef char* q = <char*>PyMem_RawRealloc(p, new)
    if q == NULL:
        raise MemoryError()
    memset(q + old, 0, new - old)
    return q


cdef inline char* _trim(char* p, Py_ssize_t n) noexcept:
    """Give back what lies past byte n (the pages never written cost nothing, but
    tracemalloc counts them)."""
    cdef char* q = <char*>PyMem_RawRealloc(p, n if n > 0 else 1)
    return q if q != NULL else p


cdef extern from *:
    int __builtin_popcountll(unsigned long long x) nogil


cdef Py_ssize_t _popcount(const char* bits, Py_ssize_t n) noexcept nogil:
    """Set bits among the first n of a bitmap."""
    cdef Py_ssize_t i, count = 0
    cdef uint64_t w
    for i in range(n >> 6):
        memcpy(&w, bits + 8 * i, 8)
        count += __builtin_popcountll(w)
    for i in range(n & ~63, n):
        count += (bits[i >> 3] >> (i & 7)) & 1
    return count


cdef class _Col:
    """A column being built for up to ``cap`` entries (rows, or children of a list column:
    those grow). ``array(n)`` makes the pyarrow array of its first n entries."""
    cdef Py_ssize_t cap
    cdef bint touched             # anything written this batch

    cdef int grow(self, Py_ssize_t need) except -1:
        raise NotImplementedError


@cython.final
cdef class _Fixed(_Col):
    """int32/int64/uint32 values; on a nullable column an unwritten entry is null."""
    cdef char* values
    cdef char* valid
    cdef int width
    cdef bint nullable
    cdef object type

    def __cinit__(self, type, int width, bint nullable, Py_ssize_t cap):
        self.type = type
        self.width = width
        self.nullable = nullable
        self.cap = cap
        self.values = _calloc(cap * width)
        if nullable:
            self.valid = _calloc((cap + 7) >> 3)

    def __dealloc__(self):
        PyMem_RawFree(self.values)
        PyMem_RawFree(self.valid)

    cdef int grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = max(self.cap * 2, need, 1024)
        self.values = _regrow(self.values, self.cap * self.width, cap * self.width)
        if self.nullable:
            self.valid = _regrow(self.valid, (self.cap + 7) >> 3, (cap + 7) >> 3)
        self.cap = cap
        return 0

    cdef inline void row32(self, Py_ssize_t i, int32_t v) noexcept:
        """Entry i of a nullable int32 column of rows (i < cap: no growing) is v."""
        (<int32_t*>self.values)[i] = v
        self.valid[i >> 3] |= <char>(1 << (i & 7))
        self.touched = True

    cdef inline int set(self, Py_ssize_t i, int64_t v) except -1:
        """Entry i is v (written once)."""
        if i >= self.cap:
            self.grow(i + 1)
        if self.width == 4:
            (<int32_t*>self.values)[i] = <int32_t>v
        else:
            (<int64_t*>self.values)[i] = v
        if self.nullable:
            self.valid[i >> 3] |= <char>(1 << (i & 7))
        self.touched = True
        return 0

    cdef object array(self, Py_ssize_t n):
        pa = _pyarrow()
        if not self.touched:
            return pa.Array.from_buffers(self.type, n, [
                _zeros((n + 7) >> 3) if self.nullable else None, _zeros(n * self.width)],
                n if self.nullable else 0)
        if n > self.cap:
            self.grow(n)
        self.values = _trim(self.values, n * self.width)
        valid = None
        nulls = 0
        if self.nullable:
            self.valid = _trim(self.valid, (n + 7) >> 3)
            valid = pa.foreign_buffer(<size_t>self.valid, (n + 7) >> 3, self)
            nulls = n - _popcount(self.valid, n)
            if nulls == 0:
                valid = None
        self.cap = n
        return pa.Array.from_buffers(self.type, n, [
            valid, pa.foreign_buffer(<size_t>self.values, n * self.width, self)], nulls)


@cython.final
cdef class _Bool(_Col):
    """Non-null booleans (unwritten: false)."""
    cdef char* bits

    def __cinit__(self, Py_ssize_t cap):
        self.cap = cap
        self.bits = _calloc((cap + 7) >> 3)

    def __dealloc__(self):
        PyMem_RawFree(self.bits)

    cdef int grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = max(self.cap * 2, need, 1024)
        self.bits = _regrow(self.bits, (self.cap + 7) >> 3, (cap + 7) >> 3)
        self.cap = cap
        return 0

    cdef inline void row(self, Py_ssize_t i) noexcept:
        """Entry i of a column of rows (i < cap: no growing) is true."""
        self.bits[i >> 3] |= <char>(1 << (i & 7))
        self.touched = True

    cdef inline int set(self, Py_ssize_t i) except -1:
        """Entry i is true."""
        if i >= self.cap:
            self.grow(i + 1)
        self.bits[i >> 3] |= <char>(1 << (i & 7))
        self.touched = True
        return 0

    cdef inline void clear(self, Py_ssize_t i) noexcept:
        """Entry i is false again."""
        if i < self.cap:
            self.bits[i >> 3] &= <char>~(1 << (i & 7))

    cdef object array(self, Py_ssize_t n):
        pa = _pyarrow()
        if not self.touched:
            return pa.Array.from_buffers(pa.bool_(), n, [None, _zeros((n + 7) >> 3)], 0)
        if n > self.cap:
            self.grow(n)
        self.bits = _trim(self.bits, (n + 7) >> 3)
        self.cap = n
        return pa.Array.from_buffers(pa.bool_(), n, [
            None, pa.foreign_buffer(<size_t>self.bits, (n + 7) >> 3, self)], 0)


@cython.final
cdef class _Offsets(_Col):
    """int32 offsets of a string or list column: entry i+1 is where entry i ends. An
    unwritten entry is empty (``array`` carries the last end over it) or null when the
    column is nullable and ``valid`` was not set for it."""
    cdef int32_t* offs
    cdef char* valid
    cdef bint nullable
    cdef Py_ssize_t ones

    def __cinit__(self, bint nullable, Py_ssize_t cap):
        self.nullable = nullable
        self.cap = cap
        self.offs = <int32_t*>_calloc((cap + 1) * 4)
        if nullable:
            self.valid = _calloc((cap + 7) >> 3)

    def __dealloc__(self):
        PyMem_RawFree(self.offs)
        PyMem_RawFree(self.valid)

    cdef int grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = max(self.cap * 2, need, 1024)
        self.offs = <int32_t*>_regrow(<char*>self.offs, (self.cap + 1) * 4, (cap + 1) * 4)
        if self.nullable:
            self.valid = _regrow(self.valid, (self.cap + 7) >> 3, (cap + 7) >> 3)
        self.cap = cap
        return 0

    cdef inline int end(self, Py_ssize_t i, Py_ssize_t end) except -1:
        """Entry i ends at ``end`` (and is valid)."""
        if i >= self.cap:
            self.grow(i + 1)
        if end > 0x7fffffff:
            raise OverflowError("more than 2**31 values in one batch: use smaller batches")
        self.offs[i + 1] = <int32_t>end
        if self.nullable:
            self.valid[i >> 3] |= <char>(1 << (i & 7))
            self.ones += 1
        self.touched = True
        return 0

    cdef list buffers(self, Py_ssize_t n):
        """[validity, offsets] of the first n entries."""
        cdef Py_ssize_t i
        cdef int32_t last = 0
        pa = _pyarrow()
        if not self.touched:
            return [_zeros((n + 7) >> 3) if self.nullable else None, _zeros(4 * (n + 1))]
        if n > self.cap:
            self.grow(n)
        for i in range(1, n + 1):             # unwritten entries: empty, where the last ended
            if self.offs[i] < last:
                self.offs[i] = last
            last = self.offs[i]
        self.offs = <int32_t*>_trim(<char*>self.offs, (n + 1) * 4)
        valid = None
        if self.nullable and self.ones < n:
            self.valid = _trim(self.valid, (n + 7) >> 3)
            valid = pa.foreign_buffer(<size_t>self.valid, (n + 7) >> 3, self)
        self.cap = n
        return [valid, pa.foreign_buffer(<size_t>self.offs, (n + 1) * 4, self)]

    cdef int unset(self, Py_ssize_t i, Py_ssize_t end) except -1:
        """Entry i, the last one written, is unwritten again (it ends where it began)."""
        self.offs[i + 1] = <int32_t>end
        if self.nullable and (self.valid[i >> 3] >> (i & 7)) & 1:
            self.valid[i >> 3] &= <char>~(1 << (i & 7))
            self.ones -= 1
        return 0

    cdef Py_ssize_t nulls(self, Py_ssize_t n):
        if not self.nullable:
            return 0
        return n - self.ones if self.touched else n

    cdef object list_array(self, Py_ssize_t n, object type, object child):
        return _pyarrow().Array.from_buffers(type, n, self.buffers(n), self.nulls(n),
                                             children=[child])


@cython.final
cdef class _Bytes:
    """The bytes of a string column, appended in order."""
    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t cap

    def __dealloc__(self):
        PyMem_RawFree(self.data)

    cdef inline int put(self, const char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap
        if self.size + n > self.cap:
            cap = max(self.cap * 2, self.size + n, 4096)
            self.data = _regrow(self.data, self.cap, cap)
            self.cap = cap
        memcpy(self.data + self.size, p, n)
        self.size += n
        return 0

    cdef object buffer(self):
        if self.size == 0:
            return _zeros(0)
        self.data = _trim(self.data, self.size)
        self.cap = self.size
        return _pyarrow().foreign_buffer(<size_t>self.data, self.size, self)


@cython.final
cdef class _Str:
    """utf8 strings by index (entries written in index order; unwritten: empty, or null
    on a nullable column)."""
    cdef _Offsets offsets
    cdef _Bytes data
    cdef Py_ssize_t last_a, last_b     # where the last value written lies in data

    def __cinit__(self, bint nullable, Py_ssize_t cap):
        self.offsets = _Offsets(nullable, cap)
        self.data = _Bytes()

    cdef inline int set(self, Py_ssize_t i, const char* p, Py_ssize_t n) except -1:
        cdef object fixed = None
        if not _ascii(p, n):
            fixed = _utf8_fixed(p, n)
            if fixed is not None:
                p, n = PyBytes_AS_STRING(fixed), PyBytes_GET_SIZE(fixed)
        self.last_a = self.data.size
        self.data.put(p, n)
        self.last_b = self.data.size
        return self.offsets.end(i, self.data.size)

    cdef int repeat(self, Py_ssize_t i) except -1:
        """Entry i is the last value written again (an alternative route's net)."""
        cdef Py_ssize_t length = self.last_b - self.last_a, cap
        if self.data.size + length > self.data.cap:       # grow before taking the source
            cap = max(self.data.cap * 2, self.data.size + length, 4096)
            self.data.data = _regrow(self.data.data, self.data.cap, cap)
            self.data.cap = cap
        memcpy(self.data.data + self.data.size, self.data.data + self.last_a, length)
        self.last_a = self.data.size
        self.data.size += length
        self.last_b = self.data.size
        return self.offsets.end(i, self.data.size)

    cdef bytes last(self):
        return PyBytes_FromStringAndSize(self.data.data + self.last_a, self.last_b - self.last_a)

    cdef int truncate(self, Py_ssize_t k) except -1:
        """Entries from k on are rewritten next (a column of list items, all written)."""
        self.data.size = self.offsets.offs[k] if k < self.offsets.cap + 1 else self.data.size
        self.last_a = self.last_b = self.data.size
        return 0

    cdef int drop(self, Py_ssize_t i) except -1:
        """Forget entry i, the value written last (a route's attribute given again)."""
        self.data.size = self.last_a
        self.last_b = self.last_a
        return self.offsets.unset(i, self.last_a)

    cdef object array(self, Py_ssize_t n):
        pa = _pyarrow()
        bufs = self.offsets.buffers(n)
        return pa.Array.from_buffers(pa.string(), n, bufs + [self.data.buffer()],
                                     self.offsets.nulls(n))


@cython.final
cdef class _Dict:
    """Strings -> int32 indices, with the strings kept as an Arrow string array (the
    dictionary): its offsets and bytes are both the hash table's keys and the Arrow buffers."""
    cdef _Offsets offsets
    cdef _Bytes data
    cdef uint64_t* hashes
    cdef int32_t* slots
    cdef Py_ssize_t mask
    cdef int32_t count
    cdef int32_t last            # the index handed out last (-1: none): values repeat in runs

    def __cinit__(self):
        self.offsets = _Offsets(False, 64)
        self.data = _Bytes()
        self.last = -1
        self.mask = 63
        self.hashes = <uint64_t*>_calloc(64 * sizeof(uint64_t))
        self.slots = <int32_t*>_calloc(64 * sizeof(int32_t))

    def __dealloc__(self):
        PyMem_RawFree(self.hashes)
        PyMem_RawFree(self.slots)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t newmask = self.mask * 2 + 1, i, j
        cdef uint64_t* nh = <uint64_t*>_calloc((newmask + 1) * sizeof(uint64_t))
        cdef int32_t* ns = <int32_t*>PyMem_RawMalloc((newmask + 1) * sizeof(int32_t))
        if ns == NULL:
            PyMem_RawFree(nh)
            raise MemoryError()
        for i in range(self.mask + 1):
            if self.hashes[i]:
                j = <Py_ssize_t>(self.hashes[i] & <uint64_t>newmask)
                while nh[j]:
                    j = (j + 1) & newmask
                nh[j] = self.hashes[i]
                ns[j] = self.slots[i]
        PyMem_RawFree(self.hashes)
        PyMem_RawFree(self.slots)
        self.hashes = nh
        self.slots = ns
        self.mask = newmask
        return 0

    cdef inline const char* key_at(self, int32_t k, Py_ssize_t* n) noexcept:
        """The bytes of value ``k``; ``n`` gets their length."""
        cdef int32_t a = self.offsets.offs[k]
        n[0] = self.offsets.offs[k + 1] - a
        return self.data.data + a

    cdef int32_t index(self, const char* p, Py_ssize_t n) except -1:
        cdef int32_t k = self.last, a
        if k >= 0:                   # the same value as the last one: no hashing
            a = self.offsets.offs[k]
            if self.offsets.offs[k + 1] - a == n and memcmp(self.data.data + a, p, n) == 0:
                return k
        cdef uint64_t h = _hash(p, n)
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>self.mask)
        while self.hashes[i]:
            if self.hashes[i] == h:
                k = self.slots[i]
                a = self.offsets.offs[k]
                if self.offsets.offs[k + 1] - a == n and memcmp(self.data.data + a, p, n) == 0:
                    self.last = k
                    return k
            i = (i + 1) & self.mask
        k = self.count
        self.last = k
        self.hashes[i] = h
        self.slots[i] = k
        fixed = None
        if not _ascii(p, n):          # a new value: Arrow's strings must be valid UTF-8
            fixed = _utf8_fixed(p, n)
            if fixed is not None:     # (its raw bytes never match it again: rare garbage)
                p, n = PyBytes_AS_STRING(fixed), PyBytes_GET_SIZE(fixed)
        self.data.put(p, n)
        self.offsets.end(k, self.data.size)
        self.count += 1
        if self.count * 2 > self.mask:
            self._grow()
        return k

    cdef object array(self):
        pa = _pyarrow()
        return pa.Array.from_buffers(pa.string(), self.count,
                                     self.offsets.buffers(self.count) + [self.data.buffer()], 0)


@cython.final
cdef class _DictCol:
    """Dictionary-encoded strings: int32 indices (unwritten: null) into a per-batch dict."""
    cdef _Fixed idx
    cdef _Dict dict

    def __cinit__(self, Py_ssize_t cap, bint nullable=True):
        self.idx = _Fixed(None, 4, nullable, cap)
        self.dict = _Dict()

    cdef inline int32_t key(self, const char* p, Py_ssize_t n) except -2:
        return self.dict.index(p, n)

    cdef inline int put(self, Py_ssize_t i, const char* p, Py_ssize_t n) except -1:
        return self.idx.set(i, self.dict.index(p, n))

    cdef object array(self, Py_ssize_t n):
        pa = _pyarrow()
        self.idx.type = pa.int32()
        return pa.DictionaryArray.from_arrays(self.idx.array(n), self.dict.array())
