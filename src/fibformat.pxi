# The FIB check's key and value layout, one home for both extensions: _rtnl packs the
# kernel's routes with it, the parse core's FIB sink packs BIRD's. Included by both.
#
# key   = family (4 | 6) + dst_len + dst address (4 | 16 bytes, host bits cleared)
# value = type u8, protocol u8, flags u8, pad u8, metric u32le          (header, 8 bytes)
#         nh_count u8, then nh_count x [gateway 16 bytes, oif u32le, weight u8]
#         next hops sorted by (gateway bytes, oif); gateway IPv4 = first 4 bytes, 0 = none.
# Two routes are in sync iff ``value[0]`` and ``value[8:]`` are equal.

from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef extern from "arpa/inet.h" nogil:
    int inet_pton(int af, const char* src, void* dst)
    const char* inet_ntop(int af, const void* src, char* dst, unsigned int size)

cdef extern from "sys/socket.h":
    enum:
        AF_INET
        AF_INET6

cdef enum:
    RTN_UNICAST = 1
    RTN_BLACKHOLE = 6
    RTN_UNREACHABLE = 7
    RTN_PROHIBIT = 8
    RTPROT_BIRD = 12
    HDR = 8            # value header size
    NH_SIZE = 21       # gateway 16 + oif 4 + weight 1
    MAX_NH = 255

ctypedef struct nexthop_t:
    uint8_t gw[16]
    uint32_t oif
    uint8_t weight


# ------------------------------------------------------------------------------ byte helpers

cdef inline uint16_t rd16(const uint8_t* p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v

cdef inline uint32_t rd32(const uint8_t* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v

cdef inline void wr32le(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = v & 0xff
    p[1] = (v >> 8) & 0xff
    p[2] = (v >> 16) & 0xff
    p[3] = (v >> 24) & 0xff

cdef inline uint32_t rd32le(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)

cdef inline Py_ssize_t align4(Py_ssize_t n) noexcept nogil:
    return (n + 3) & ~(<Py_ssize_t>3)

cdef inline int nh_cmp(const nexthop_t* a, const nexthop_t* b) noexcept nogil:
    cdef int c = memcmp(a.gw, b.gw, 16)
    if c != 0:
        return c
    if a.oif < b.oif:
        return -1
    if a.oif > b.oif:
        return 1
    return 0

cdef inline void nh_sort(nexthop_t* nh, int n) noexcept nogil:
    # insertion sort: n is small (ECMP sets) and usually 1
    cdef int i, j
    cdef nexthop_t tmp
    for i in range(1, n):
        tmp = nh[i]
        j = i - 1
        while j >= 0 and nh_cmp(&nh[j], &tmp) > 0:
            nh[j + 1] = nh[j]
            j -= 1
        nh[j + 1] = tmp

cdef inline void mask_host_bits(uint8_t* addr, int alen, int plen) noexcept nogil:
    cdef int i
    for i in range(alen):
        if plen >= 8:
            plen -= 8
        elif plen > 0:
            addr[i] &= <uint8_t>(0xff << (8 - plen))
            plen = 0
        else:
            addr[i] = 0

cdef enum:
    KEY_MAX = 18       # family + length + 16 address bytes
    VALUE_MAX = HDR + 1 + MAX_NH * NH_SIZE


cdef inline int write_key(int af, int dst_len, const uint8_t* dst, uint8_t* k) noexcept nogil:
    """The key into ``k`` (KEY_MAX bytes); returns its length."""
    cdef int alen = 4 if af == AF_INET else 16
    k[0] = 4 if af == AF_INET else 6
    k[1] = dst_len
    memcpy(k + 2, dst, alen)
    mask_host_bits(k + 2, alen, dst_len)
    return 2 + alen


cdef inline int write_value(uint8_t rtype, uint8_t proto, uint8_t flags, uint32_t metric,
                            const nexthop_t* nh, int n, uint8_t* v) noexcept nogil:
    """The value into ``v`` (VALUE_MAX bytes); returns its length."""
    cdef int i
    v[0] = rtype
    v[1] = proto
    v[2] = flags
    v[3] = 0
    wr32le(v + 4, metric)
    v[HDR] = n
    for i in range(n):
        memcpy(v + HDR + 1 + i * NH_SIZE, nh[i].gw, 16)
        wr32le(v + HDR + 1 + i * NH_SIZE + 16, nh[i].oif)
        v[HDR + 1 + i * NH_SIZE + 20] = nh[i].weight
    return HDR + 1 + n * NH_SIZE


cdef object make_key(int af, int dst_len, const uint8_t* dst):
    cdef uint8_t k[KEY_MAX]
    return PyBytes_FromStringAndSize(<char*>k, write_key(af, dst_len, dst, k))


cdef inline object make_value(uint8_t rtype, uint8_t proto, uint8_t flags, uint32_t metric,
                              const nexthop_t* nh, int n):
    cdef object value = PyBytes_FromStringAndSize(NULL, HDR + 1 + n * NH_SIZE)
    write_value(rtype, proto, flags, metric, nh, n, <uint8_t*>PyBytes_AS_STRING(value))
    return value

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL


cdef inline bint _dotted_quad(const char* s, Py_ssize_t n, uint8_t* addr) noexcept:
    """Strict ``a.b.c.d`` (no leading zeros); False lets inet_pton judge anything else."""
    cdef Py_ssize_t i = 0
    cdef int part = 0, digits = 0, value = 0
    while i < n:
        if b"0" <= s[i] <= b"9":
            if digits and value == 0:
                return False
            value = value * 10 + (s[i] - 48)
            digits += 1
            if value > 255:
                return False
        elif s[i] == b"." and digits and part < 3:
            addr[part] = <uint8_t>value
            part += 1
            digits = value = 0
        else:
            return False
        i += 1
    if part != 3 or not digits:
        return False
    addr[3] = <uint8_t>value
    return True


cdef int parse_addr_c(const char* s, Py_ssize_t n, uint8_t* addr, int* af, object text) except -1:
    """``s[:n]`` as an IPv4/IPv6 address (a ``%scope`` suffix is dropped) into ``addr``."""
    cdef char tmp[64]
    cdef Py_ssize_t i
    cdef bint colon = False
    for i in range(n):
        if s[i] == b"%":
            n = i
            break
        if s[i] == b":":
            colon = True
    if n == 0 or n >= 64:
        raise ValueError(f"not an IP address: {text!r}")
    af[0] = AF_INET6 if colon else AF_INET
    memset(addr, 0, 16)
    if not colon and _dotted_quad(s, n, addr):
        return 0                               # the common case, without inet_pton
    memcpy(tmp, s, n)
    tmp[n] = 0
    if inet_pton(af[0], tmp, addr) != 1:
        raise ValueError(f"not an IP address: {text!r}")
    return 0


cdef inline int parse_addr(str text, uint8_t* addr, int* af) except -1:
    cdef Py_ssize_t n
    cdef const char* s = PyUnicode_AsUTF8AndSize(text, &n)
    return parse_addr_c(s, n, addr, af, text)


cdef object key_from_bytes(const char* s, Py_ssize_t n, object text):
    """``10.0.0.0/24`` (bytes) -> key; ValueError naming ``text`` if it is not a prefix."""
    cdef uint8_t addr[16]
    cdef int af, plen = -1, alen
    cdef Py_ssize_t i, slash = -1
    while n and (s[0] == b" " or s[0] == b"\t"):
        s += 1
        n -= 1
    while n and (s[n - 1] == b" " or s[n - 1] == b"\t" or s[n - 1] == b"\n"):
        n -= 1
    for i in range(n):
        if s[i] == b"/":
            slash = i
            break
    parse_addr_c(s, slash if slash >= 0 else n, addr, &af, text)
    alen = 4 if af == AF_INET else 16
    if slash >= 0:
        if slash + 1 == n or n - slash > 4:
            raise ValueError(f"bad prefix length in {text!r}")
        plen = 0
        for i in range(slash + 1, n):
            if not b"0" <= s[i] <= b"9":
                raise ValueError(f"bad prefix length in {text!r}")
            plen = plen * 10 + (s[i] - 48)
        if plen > alen * 8:
            raise ValueError(f"prefix length {plen} too long in {text!r}")
    else:
        plen = alen * 8
    return make_key(af, plen, addr)


cdef inline object key_from_prefix(str prefix):
    cdef Py_ssize_t n
    cdef const char* s = PyUnicode_AsUTF8AndSize(prefix, &n)
    return key_from_bytes(s, n, prefix)
