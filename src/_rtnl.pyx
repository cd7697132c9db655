# cython: language_level=3, embedsignature=True
"""The kernel half of the FIB check: rtnetlink route-dump bytes -> a compact keyed form.

Exists because pyroute2's message objects cost ~4 KiB and tens of µs per route, far too much
for a million-route table. This module owns bytes -> (key, value) and nothing else: no
sockets, no namespaces, no policy. Every read of the raw buffer is bounds-checked by hand; a
truncated message or a bad length raises ``nodestatus.errors.KernelReadError`` with the byte
offset, never an out-of-bounds read.

key   = family (4 | 6) + dst_len + dst address (4 | 16 bytes, host bits cleared)
value = type u8, protocol u8, flags u8, pad u8, metric u32le          (header, 8 bytes)
        nh_count u8, then nh_count x [gateway 16 bytes, oif u32le, weight u8]
        next hops sorted by (gateway bytes, oif); gateway IPv4 = first 4 bytes, 0 = none.
Two routes are in sync iff ``value[0]`` and ``value[8:]`` are equal.
"""
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_Next, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.set cimport PySet_Add
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcmp, memcpy, memset, strerror

from nodestatus.errors import KernelReadError

cdef extern from "arpa/inet.h" nogil:
    int inet_pton(int af, const char* src, void* dst)
    const char* inet_ntop(int af, const void* src, char* dst, unsigned int size)

cdef extern from "sys/socket.h":
    enum:
        AF_INET
        AF_INET6

cdef enum:
    NLMSG_HDRLEN = 16
    RTMSG_LEN = 12
    NLMSG_NOOP = 1
    NLMSG_ERROR = 2
    NLMSG_DONE = 3
    RTM_NEWROUTE = 24
    RTM_DELROUTE = 25
    RTA_DST = 1
    RTA_OIF = 4
    RTA_GATEWAY = 5
    RTA_PRIORITY = 6
    RTA_MULTIPATH = 9
    RTA_TABLE = 15
    RTA_VIA = 18
    RTA_NH_ID = 30
    NLA_TYPE_MASK = 0x3fff
    RTM_F_CLONED = 0x200
    RTNH_F_DEAD = 1
    RTNH_F_ONLINK = 4
    RTNH_F_LINKDOWN = 0x10
    RTN_UNICAST = 1
    RTN_LOCAL = 2
    RTN_MULTICAST = 5
    RTN_BLACKHOLE = 6
    RTPROT_BIRD = 12
    HDR = 8            # value header size
    NH_SIZE = 21       # gateway 16 + oif 4 + weight 1
    MAX_NH = 255

# value flag bits (informational, never compared)
FLAG_LINKDOWN = 1
FLAG_ONLINK = 2
FLAG_DEAD = 4
FLAG_NH_OBJECT = 8

RTN_NAMES = {
    0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
    6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve",
}
RTN_IDS = {name: num for num, name in RTN_NAMES.items()}
#: Route protocols as ``ip route`` prints them (iproute2's rt_protos table).
RTPROT_NAMES = {
    0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
    10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
    17: "mrouted", 18: "keepalived", 42: "babel", 99: "openr", 186: "bgp", 187: "isis",
    188: "ospf", 189: "rip", 192: "eigrp",
}
RTPROT_IDS = {name: num for num, name in RTPROT_NAMES.items()}
PROTO_BIRD = RTPROT_BIRD

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

cdef inline int family_of(int family) except -1:
    """4/AF_INET -> AF_INET, 6/AF_INET6 -> AF_INET6, 0 -> 0 (both)."""
    if family == 4 or family == AF_INET:
        return AF_INET
    if family == 6 or family == AF_INET6:
        return AF_INET6
    if family == 0:
        return 0
    raise ValueError(f"family must be 4 or 6 (or 0 for both), not {family}")

cdef object make_key(int af, int dst_len, const uint8_t* dst):
    cdef int alen = 4 if af == AF_INET else 16
    cdef object key = PyBytes_FromStringAndSize(NULL, 2 + alen)
    cdef uint8_t* k = <uint8_t*>PyBytes_AS_STRING(key)
    k[0] = 4 if af == AF_INET else 6
    k[1] = dst_len
    memcpy(k + 2, dst, alen)
    mask_host_bits(k + 2, alen, dst_len)
    return key

cdef object make_value(uint8_t rtype, uint8_t proto, uint8_t flags, uint32_t metric,
                       nexthop_t* nh, int n):
    cdef object value = PyBytes_FromStringAndSize(NULL, HDR + 1 + n * NH_SIZE)
    cdef uint8_t* v = <uint8_t*>PyBytes_AS_STRING(value)
    cdef int i
    v[0] = rtype
    v[1] = proto
    v[2] = flags
    v[3] = 0
    wr32le(v + 4, metric)
    v[HDR] = n
    v += HDR + 1
    for i in range(n):
        memcpy(v, nh[i].gw, 16)
        wr32le(v + 16, nh[i].oif)
        v[20] = nh[i].weight
        v += NH_SIZE
    return value

cdef int store(dict out, object key, object value) except -1:
    """Insert; a key seen again gets a tuple of values; an identical value is a repeat
    (non-atomic dumps can return a route twice) and is dropped. Returns 1 if stored."""
    cdef PyObject* old = PyDict_GetItem(out, key)
    cdef object prev
    if old == NULL:
        PyDict_SetItem(out, key, value)
        return 1
    prev = <object>old
    if PyBytes_Check(prev):
        if prev == value:
            return 0
        PyDict_SetItem(out, key, (prev, value))
        return 1
    if value in prev:
        return 0
    PyDict_SetItem(out, key, prev + (value,))
    return 1


# ------------------------------------------------------------------------------ errors

cdef int fail(str reason, Py_ssize_t offset, Py_ssize_t msg_offset) except -1:
    raise KernelReadError(reason, offset=offset, message_offset=msg_offset)


cdef int check_error_payload(const uint8_t* msg, Py_ssize_t mlen, Py_ssize_t pos,
                             int mtype) except -1:
    """NLMSG_ERROR (and a DONE carrying an error) hold an int errno, negative on failure."""
    cdef int32_t err
    if mlen < NLMSG_HDRLEN + 4:
        if mtype == NLMSG_DONE:
            return 0      # old kernels send DONE without payload
        fail(f"NLMSG_ERROR message of {mlen} bytes has no error code", pos, pos)
    memcpy(&err, msg + NLMSG_HDRLEN, 4)
    if err < 0:
        raise KernelReadError(
            f"kernel answered the dump with error {-err} ({strerror(-err).decode()})",
            offset=pos, message_offset=pos, errno=-err)
    return 0


# ------------------------------------------------------------------------------ attributes

cdef int gw_from_attr(int rty, const uint8_t* pay, Py_ssize_t plen, int alen, uint8_t* gw,
                      Py_ssize_t at, Py_ssize_t msg_at) except -1:
    cdef uint16_t via_family
    if rty == RTA_GATEWAY:
        if plen < alen:
            fail(f"RTA_GATEWAY payload of {plen} bytes, expected {alen}", at, msg_at)
        memcpy(gw, pay, alen)
    else:  # RTA_VIA: struct rtvia { u16 family; u8 addr[] }
        if plen < 2:
            fail(f"RTA_VIA payload of {plen} bytes is too short", at, msg_at)
        via_family = rd16(pay)
        alen = 4 if via_family == AF_INET else 16
        if plen - 2 < alen:
            fail(f"RTA_VIA address of {plen - 2} bytes, expected {alen}", at, msg_at)
        memcpy(gw, pay + 2, alen)
    return 0


cdef int decode_multipath(const uint8_t* mp, Py_ssize_t mplen, int alen, nexthop_t* nh,
                          int* flags, Py_ssize_t at, Py_ssize_t msg_at) except -1:
    """RTA_MULTIPATH: a run of struct rtnexthop {u16 len; u8 flags; u8 hops; i32 ifindex}
    each followed by its own attributes. Returns the number of next hops."""
    cdef Py_ssize_t off = 0, aoff, rlen, nlen
    cdef int n = 0, rty
    cdef uint8_t nflags
    while off < mplen:
        if mplen - off < 8:
            fail(f"truncated rtnexthop: {mplen - off} bytes left, need 8", at + off, msg_at)
        nlen = rd16(mp + off)
        if nlen < 8 or nlen > mplen - off:
            fail(f"rtnexthop length {nlen} outside 8..{mplen - off}", at + off, msg_at)
        if n >= MAX_NH:
            fail(f"more than {MAX_NH} next hops in one route", at + off, msg_at)
        memset(&nh[n], 0, sizeof(nexthop_t))
        nflags = mp[off + 2]
        nh[n].weight = <uint8_t>(mp[off + 3] + 1)   # weight 256 wraps to 0
        nh[n].oif = rd32(mp + off + 4)
        if nflags & RTNH_F_LINKDOWN:
            flags[0] |= FLAG_LINKDOWN
        if nflags & RTNH_F_ONLINK:
            flags[0] |= FLAG_ONLINK
        if nflags & RTNH_F_DEAD:
            flags[0] |= FLAG_DEAD
        aoff = off + 8
        while aoff < off + nlen:
            if off + nlen - aoff < 4:
                fail("truncated attribute header inside rtnexthop", at + aoff, msg_at)
            rlen = rd16(mp + aoff)
            rty = rd16(mp + aoff + 2) & NLA_TYPE_MASK
            if rlen < 4:
                fail(f"attribute length {rlen} < 4 inside rtnexthop", at + aoff, msg_at)
            if rlen > off + nlen - aoff:
                fail(f"attribute type {rty} length {rlen} runs past its rtnexthop",
                     at + aoff, msg_at)
            if rty == RTA_GATEWAY or rty == RTA_VIA:
                gw_from_attr(rty, mp + aoff + 4, rlen - 4, alen, nh[n].gw, at + aoff, msg_at)
            aoff += align4(rlen)
        n += 1
        off += align4(nlen)
    return n


cdef int decode_route(const uint8_t* msg, Py_ssize_t mlen, Py_ssize_t pos, int want_af,
                      long want_table, bint all_types, dict out, set keys_out,
                      nexthop_t* nh) except -1:
    """One RTM_NEWROUTE/RTM_DELROUTE message. Fills ``out`` (values) or ``keys_out``
    (keys only). Returns 1 if a route was stored, 0 if filtered out or repeated."""
    cdef const uint8_t* rtm
    cdef const uint8_t* a
    cdef const uint8_t* mp = NULL
    cdef Py_ssize_t off, rlen, mplen = 0, mp_at = 0
    cdef int af, alen, rty, n = 0, flags = 0
    cdef uint8_t dst_len, rtype, proto
    cdef uint32_t rflags, table, metric = 0, oif = 0
    cdef uint8_t dst[16]
    cdef uint8_t gw[16]
    if mlen < NLMSG_HDRLEN + RTMSG_LEN:
        fail(f"route message of {mlen} bytes is shorter than nlmsghdr + rtmsg", pos, pos)
    rtm = msg + NLMSG_HDRLEN
    af = rtm[0]
    if af != AF_INET and af != AF_INET6:
        return 0
    if want_af and af != want_af:
        return 0
    alen = 4 if af == AF_INET else 16
    dst_len = rtm[1]
    table = rtm[4]
    proto = rtm[5]
    rtype = rtm[7]
    rflags = rd32(rtm + 8)
    if dst_len > alen * 8:
        fail(f"rtm_dst_len {dst_len} too long for the address family", pos + 17, pos)
    memset(dst, 0, 16)
    memset(gw, 0, 16)
    off = NLMSG_HDRLEN + RTMSG_LEN
    while off < mlen:
        if mlen - off < 4:
            fail(f"truncated attribute header: {mlen - off} bytes left", pos + off, pos)
        a = msg + off
        rlen = rd16(a)
        rty = rd16(a + 2) & NLA_TYPE_MASK
        if rlen < 4:
            fail(f"attribute length {rlen} < 4", pos + off, pos)
        if rlen > mlen - off:
            fail(f"attribute type {rty} length {rlen} runs past the message end "
                 f"({mlen - off} bytes left)", pos + off, pos)
        if rty == RTA_DST:
            if rlen - 4 < alen:
                fail(f"RTA_DST payload of {rlen - 4} bytes, expected {alen}", pos + off, pos)
            memcpy(dst, a + 4, alen)
        elif rty == RTA_TABLE:
            if rlen - 4 < 4:
                fail(f"RTA_TABLE payload of {rlen - 4} bytes, expected 4", pos + off, pos)
            table = rd32(a + 4)
        elif rty == RTA_PRIORITY:
            if rlen - 4 < 4:
                fail(f"RTA_PRIORITY payload of {rlen - 4} bytes, expected 4", pos + off, pos)
            metric = rd32(a + 4)
        elif rty == RTA_OIF:
            if rlen - 4 < 4:
                fail(f"RTA_OIF payload of {rlen - 4} bytes, expected 4", pos + off, pos)
            oif = rd32(a + 4)
        elif rty == RTA_GATEWAY or rty == RTA_VIA:
            gw_from_attr(rty, a + 4, rlen - 4, alen, gw, pos + off, pos)
        elif rty == RTA_MULTIPATH:
            mp = a + 4
            mplen = rlen - 4
            mp_at = pos + off + 4
        elif rty == RTA_NH_ID:
            flags |= FLAG_NH_OBJECT
        off += align4(rlen)

    if want_table and table != <uint32_t>want_table:
        return 0
    if rflags & RTM_F_CLONED:
        return 0
    if keys_out is not None:
        keys_out.add(make_key(af, dst_len, dst))
        return 1
    if not all_types and RTN_LOCAL <= rtype <= RTN_MULTICAST:
        return 0
    if rtype < RTN_BLACKHOLE:
        if mp != NULL:
            n = decode_multipath(mp, mplen, alen, nh, &flags, mp_at, pos)
        elif oif or memcmp(gw, b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) != 0:
            memcpy(nh[0].gw, gw, 16)
            nh[0].oif = oif
            nh[0].weight = 1
            n = 1
            if rflags & RTNH_F_LINKDOWN:
                flags |= FLAG_LINKDOWN
            if rflags & RTNH_F_ONLINK:
                flags |= FLAG_ONLINK
            if rflags & RTNH_F_DEAD:
                flags |= FLAG_DEAD
        if n > 1:
            nh_sort(nh, n)
    return store(out, make_key(af, dst_len, dst),
                 make_value(rtype, proto, <uint8_t>flags, metric, nh, n))


cdef tuple walk(object buf, Py_ssize_t nbytes, int family, long table, bint all_types,
                dict out, set keys_out):
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t pos = 0, mlen
    cdef int mtype
    cdef long n = 0
    cdef bint done = False
    cdef nexthop_t nh[MAX_NH]
    cdef int af = family_of(family)
    if table < 0:
        raise ValueError(f"table must be >= 0 (0 = every table), not {table}")
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if nbytes < 0 or nbytes > view.len:
            raise ValueError(f"nbytes {nbytes} outside the buffer (0..{view.len})")
        p = <const uint8_t*>view.buf
        while pos < nbytes:
            if nbytes - pos < NLMSG_HDRLEN:
                fail(f"truncated netlink header: {nbytes - pos} bytes left, need 16", pos, pos)
            mlen = rd32(p + pos)
            mtype = rd16(p + pos + 4)
            if mlen < NLMSG_HDRLEN:
                fail(f"nlmsg_len {mlen} is smaller than the header", pos, pos)
            if mlen > nbytes - pos:
                fail(f"nlmsg_len {mlen} runs past the buffer ({nbytes - pos} bytes left)",
                     pos, pos)
            if mtype == NLMSG_DONE:
                check_error_payload(p + pos, mlen, pos, mtype)
                done = True
                break
            elif mtype == NLMSG_ERROR:
                check_error_payload(p + pos, mlen, pos, mtype)   # errno 0 = an ACK
            elif mtype == RTM_NEWROUTE or (keys_out is not None and mtype == RTM_DELROUTE):
                n += decode_route(p + pos, mlen, pos, af, table, all_types, out, keys_out, nh)
            pos += align4(mlen)
    finally:
        PyBuffer_Release(&view)
    return n, done


# ------------------------------------------------------------------------------ public API

def decode_dump(buf, Py_ssize_t nbytes, int family, long table, dict out, *,
                bint all_types=False):
    """Decode ``buf[:nbytes]`` (one recv of a route dump) into ``out`` {key: value | tuple}.

    ``family`` 4 or 6 (0 = both); ``table`` the table id (RTA_TABLE wins over rtm_table;
    0 = every table, keys then collide). Cloned/cached routes are skipped, and local,
    broadcast, anycast and multicast routes unless ``all_types``. Returns ``(n_stored, done)``:
    done once NLMSG_DONE was seen. Raises KernelReadError on NLMSG_ERROR or malformed bytes.
    """
    return walk(buf, nbytes, family, table, all_types, out, None)


def decode_keys(buf, Py_ssize_t nbytes, int family, long table, set out):
    """Add the key of every RTM_NEWROUTE/RTM_DELROUTE in ``buf[:nbytes]`` to ``out`` (route
    monitor messages). Returns ``(n_messages, done)`` like :func:`decode_dump`."""
    return walk(buf, nbytes, family, table, True, None, out)


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


cdef int parse_addr(str text, uint8_t* addr, int* af) except -1:
    cdef Py_ssize_t n
    cdef const char* s = PyUnicode_AsUTF8AndSize(text, &n)
    return parse_addr_c(s, n, addr, af, text)


cdef object key_from_prefix(str prefix):
    cdef uint8_t addr[16]
    cdef int af, plen = -1, alen
    cdef Py_ssize_t n, i, slash = -1
    cdef const char* s = PyUnicode_AsUTF8AndSize(prefix, &n)
    while n and (s[0] == b" " or s[0] == b"\t"):
        s += 1
        n -= 1
    while n and (s[n - 1] == b" " or s[n - 1] == b"\t" or s[n - 1] == b"\n"):
        n -= 1
    for i in range(n):
        if s[i] == b"/":
            slash = i
            break
    parse_addr_c(s, slash if slash >= 0 else n, addr, &af, prefix)
    alen = 4 if af == AF_INET else 16
    if slash >= 0:
        if slash + 1 == n or n - slash > 4:
            raise ValueError(f"bad prefix length in {prefix!r}")
        plen = 0
        for i in range(slash + 1, n):
            if not b"0" <= s[i] <= b"9":
                raise ValueError(f"bad prefix length in {prefix!r}")
            plen = plen * 10 + (s[i] - 48)
        if plen > alen * 8:
            raise ValueError(f"prefix length {plen} too long in {prefix!r}")
    else:
        plen = alen * 8
    return make_key(af, plen, addr)


def pack_key(str prefix):
    """``"10.0.0.0/24"`` -> key bytes (host bits cleared, as the kernel does)."""
    return key_from_prefix(prefix)


cdef str addr_text(int af, const uint8_t* addr):
    cdef char out[64]
    if inet_ntop(af, addr, out, 64) == NULL:
        raise ValueError("address does not print")
    return out.decode("ascii")


cdef int check_key(bytes key) except -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key)
    cdef const uint8_t* k = <const uint8_t*>PyBytes_AS_STRING(key)
    if not ((n == 6 and k[0] == 4 and k[1] <= 32) or (n == 18 and k[0] == 6 and k[1] <= 128)):
        raise ValueError(f"not a route key: {key!r}")
    return 0


def unpack_key(bytes key):
    """Key bytes -> ``"10.0.0.0/24"`` / ``"fd00::/64"``."""
    check_key(key)
    cdef const uint8_t* k = <const uint8_t*>PyBytes_AS_STRING(key)
    return f"{addr_text(AF_INET if k[0] == 4 else AF_INET6, k + 2)}/{k[1]}"


def pack_expected(str prefix, rtype, nexthops=(), *, int protocol=RTPROT_BIRD,
                  unsigned long metric=0, int flags=0):
    """One route in the kernel's layout: ``(key, value)``; by default BIRD's side (protocol
    12, metric 0, flags 0). ``rtype`` is a route type number or name ("unicast",
    "blackhole", ...); ``nexthops`` an iterable of ``(gateway or None, oif, weight)``,
    ignored for types without next hops (blackhole, unreachable, prohibit, ...)."""
    cdef nexthop_t nh[MAX_NH]
    cdef int n = 0, af, rt
    cdef object key = key_from_prefix(prefix)
    if isinstance(rtype, str):
        if rtype not in RTN_IDS:
            raise ValueError(f"unknown route type {rtype!r}")
        rt = RTN_IDS[rtype]
    else:
        rt = rtype
    if not 0 <= rt <= 255:
        raise ValueError(f"route type {rt} out of range")
    if not 0 <= protocol <= 255 or not 0 <= flags <= 255 or metric > 0xffffffff:
        raise ValueError(f"protocol, flags or metric out of range for {prefix}")
    if rt < RTN_BLACKHOLE:
        for gateway, oif, weight in nexthops:
            if n >= MAX_NH:
                raise ValueError(f"more than {MAX_NH} next hops for {prefix}")
            memset(&nh[n], 0, sizeof(nexthop_t))
            if gateway:
                parse_addr(gateway, nh[n].gw, &af)
            if not 0 <= oif <= 0xffffffff:
                raise ValueError(f"oif {oif} out of range for {prefix}")
            nh[n].oif = oif
            if not 1 <= weight <= 256:
                raise ValueError(f"weight {weight} outside 1..256 for {prefix}")
            nh[n].weight = <uint8_t>(<int>weight & 0xff)   # 256 is stored as 0
            n += 1
        if n > 1:
            nh_sort(nh, n)
    return key, make_value(<uint8_t>rt, <uint8_t>protocol, <uint8_t>flags, <uint32_t>metric,
                           nh, n)


cdef int check_value(bytes value) except -1:
    cdef Py_ssize_t size = PyBytes_GET_SIZE(value)
    cdef const uint8_t* v = <const uint8_t*>PyBytes_AS_STRING(value)
    if size < HDR + 1 or size != HDR + 1 + v[HDR] * NH_SIZE:
        raise ValueError(f"not a route value ({size} bytes)")
    return 0


def value_fields(bytes value):
    """``(type, protocol, flags, metric)`` of one value: what callers may read of it
    without knowing the layout."""
    check_value(value)
    cdef const uint8_t* v = <const uint8_t*>PyBytes_AS_STRING(value)
    return v[0], v[1], v[2], rd32le(v + 4)


def key_family(bytes key):
    """4 or 6."""
    check_key(key)
    return (<const uint8_t*>PyBytes_AS_STRING(key))[0]


cdef inline bint forwarding_equal(bytes a, bytes b) noexcept:
    cdef Py_ssize_t na = PyBytes_GET_SIZE(a), nb = PyBytes_GET_SIZE(b)
    cdef const char* pa = PyBytes_AS_STRING(a)
    cdef const char* pb = PyBytes_AS_STRING(b)
    if na != nb or na < HDR + 1:
        return False
    return pa[0] == pb[0] and memcmp(pa + HDR, pb + HDR, na - HDR) == 0


def in_sync(bytes a, bytes b):
    """True iff two values have the same type and forwarding part (protocol, metric and
    flags are not compared)."""
    return forwarding_equal(a, b)


cdef inline bint is_bird(object v) noexcept:
    return PyBytes_Check(v) and PyBytes_GET_SIZE(v) > HDR and \
        (<const uint8_t*>PyBytes_AS_STRING(v))[1] == RTPROT_BIRD


cdef int match_bird(object kv, bytes want) except -2:
    """-1: no protocol-12 value in ``kv`` (bytes or tuple); 1: one agrees; 0: none agrees."""
    cdef Py_ssize_t i, n
    cdef object v
    cdef int seen = -1
    if PyBytes_Check(kv):
        if not is_bird(kv):
            return -1
        return 1 if forwarding_equal(want, <bytes>kv) else 0
    if not PyTuple_Check(kv):
        raise TypeError(f"kernel values must be bytes or tuples of bytes, not {type(kv)}")
    n = PyTuple_GET_SIZE(kv)
    for i in range(n):
        v = <object>PyTuple_GET_ITEM(kv, i)
        if is_bird(v):
            if forwarding_equal(want, <bytes>v):
                return 1
            seen = 0
    return seen


cdef bint has_bird(object kv):
    cdef Py_ssize_t i
    if PyBytes_Check(kv):
        return is_bird(kv)
    for i in range(PyTuple_GET_SIZE(kv)):
        if is_bird(<object>PyTuple_GET_ITEM(kv, i)):
            return True
    return False


def compare(dict expected, dict kernel):
    """Classify BIRD's expected routes against the kernel table (both ``{key: value}``;
    kernel values may be tuples). Returns ``(agree, missing, mismatched, extra_bird)``:
    missing = no protocol-12 kernel value for the key; mismatched = protocol-12 values
    exist but none has the same type and forwarding part; extra_bird = kernel keys with a
    protocol-12 value and no expected entry (stale ``proto bird`` routes)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* pk
    cdef PyObject* pv
    cdef PyObject* found
    cdef long agree = 0
    cdef int r
    cdef list missing = [], mismatched = [], extra = []
    while PyDict_Next(expected, &pos, &pk, &pv):
        if not PyBytes_Check(<object>pv):
            raise TypeError(f"expected values must be bytes, not {type(<object>pv)}")
        found = PyDict_GetItem(kernel, <object>pk)
        if found == NULL:
            missing.append(<object>pk)
            continue
        r = match_bird(<object>found, <bytes>pv)
        if r == 1:
            agree += 1
        elif r == 0:
            mismatched.append(<object>pk)
        else:
            missing.append(<object>pk)
    # extra proto-bird routes: count them in one sequential pass; only when there are more
    # than the expected keys that matched one do we need the (random-access) lookups
    cdef long with_bird = agree + len(mismatched), kernel_bird = 0
    pos = 0
    while PyDict_Next(kernel, &pos, &pk, &pv):
        if has_bird(<object>pv):
            kernel_bird += 1
    if kernel_bird > with_bird:
        pos = 0
        while PyDict_Next(kernel, &pos, &pk, &pv):
            if has_bird(<object>pv) and PyDict_GetItem(expected, <object>pk) == NULL:
                extra.append(<object>pk)
    return agree, missing, mismatched, extra


def describe(bytes value, int family=0):
    """One value as Python, for reports: type, type_id, protocol, metric, flags, linkdown,
    onlink, nexthops [{gateway, oif, weight}]. ``family`` (4/6, or the key's first byte)
    says how to print gateways; 0 guesses IPv4 when bytes 4..15 of the gateway are zero."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(value)
    cdef const uint8_t* v = <const uint8_t*>PyBytes_AS_STRING(value)
    cdef const uint8_t* g
    cdef int i, n, af
    cdef list hops = []
    check_value(value)
    n = v[HDR]
    for i in range(n):
        g = v + HDR + 1 + i * NH_SIZE
        if memcmp(g, b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) == 0:
            gateway = None
        else:
            if family == 4 or family == AF_INET:
                af = AF_INET
            elif family == 6 or family == AF_INET6:
                af = AF_INET6
            else:
                af = AF_INET if memcmp(g + 4, b"\0\0\0\0\0\0\0\0\0\0\0\0", 12) == 0 else AF_INET6
            gateway = addr_text(af, g)
        hops.append({"gateway": gateway, "oif": rd32le(g + 16),
                     "weight": g[20] if g[20] else 256})
    return {
        "type": RTN_NAMES.get(v[0], str(v[0])),
        "type_id": v[0],
        "protocol": RTPROT_NAMES.get(v[1], str(v[1])),
        "protocol_id": v[1],
        "metric": rd32le(v + 4),
        "flags": v[2],
        "linkdown": bool(v[2] & FLAG_LINKDOWN),
        "onlink": bool(v[2] & FLAG_ONLINK),
        "nexthops": hops,
    }


def values_of(kv):
    """A kernel dict entry as a tuple of values (it is bytes, or a tuple when repeated)."""
    return (kv,) if PyBytes_Check(kv) else tuple(kv)


# --------------------------------------------------------------------------- BIRD's side, in bulk
# A million routes packed one Python call at a time cost seconds; these loops run the same
# rules (fibcheck.expected_from_routes documents them) over the Route records in C.

cdef dict _RT_IDS = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibited": 8}

# Route/Nexthop fields read straight from their slots: msgspec structs keep fields in
# member slots (member_descriptor), whose offsets CPython publishes in PyMemberDef. A
# getattr per field cost more than the packing itself at a million routes.
cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef Py_ssize_t _offset(object cls, str name) except -1:
    descr = cls.__dict__.get(name)
    if type(descr).__name__ != "member_descriptor":
        raise TypeError(f"{cls.__name__}.{name} is not a slot field")
    return (<PyMemberDescrObject*><PyObject*>descr).d_member.offset

cdef inline object _slot(object obj, Py_ssize_t off):
    cdef PyObject* v = (<PyObject**>((<char*><PyObject*>obj) + off))[0]
    return None if v == NULL else <object>v

from nodestatus.structs import Nexthop as _Nexthop, Route as _Route

cdef Py_ssize_t R_PREFIX = _offset(_Route, "prefix")
cdef Py_ssize_t R_TYPE = _offset(_Route, "type")
cdef Py_ssize_t R_NEXTHOPS = _offset(_Route, "nexthops")
cdef Py_ssize_t R_PROTOCOL = _offset(_Route, "protocol")
cdef Py_ssize_t R_PRIMARY = _offset(_Route, "primary")
cdef Py_ssize_t R_PREFERENCE = _offset(_Route, "preference")
cdef Py_ssize_t R_SOURCE = _offset(_Route, "source")
cdef Py_ssize_t N_GATEWAY = _offset(_Nexthop, "gateway")
cdef Py_ssize_t N_INTERFACE = _offset(_Nexthop, "interface")
cdef Py_ssize_t N_WEIGHT = _offset(_Nexthop, "weight")


cdef object pack_route(object r, object key, tuple hops, dict ifindex, bint weights, int rt,
                       dict gwcache):
    """One Route (its ``key``, with ``hops``: its own or a merged set) -> value."""
    cdef nexthop_t nh[MAX_NH]
    cdef int n = 0, af
    cdef Py_ssize_t nh_total = len(hops)
    cdef object w
    cdef bytes gwb
    if rt == 1:
        for h in hops:
            if n >= MAX_NH:
                raise ValueError(f"more than {MAX_NH} next hops for {_slot(r, R_PREFIX)}")
            if type(h) is not _Nexthop:     # slots are read by offset: be sure of the type
                raise TypeError(f"expected Nexthop records, got {type(h).__name__}")
            memset(&nh[n], 0, sizeof(nexthop_t))
            gw = _slot(h, N_GATEWAY)
            if gw:
                cached = gwcache.get(gw)       # gateways repeat (and are shared strings)
                if cached is None:
                    parse_addr(gw, nh[n].gw, &af)
                    gwcache[gw] = PyBytes_FromStringAndSize(<char*>nh[n].gw, 16)
                else:
                    gwb = <bytes>cached
                    memcpy(nh[n].gw, PyBytes_AS_STRING(gwb), 16)
            iface = _slot(h, N_INTERFACE)
            if iface:
                oif = ifindex.get(iface)
                nh[n].oif = 0xFFFFFFFF if oif is None else <uint32_t>oif
            w = _slot(h, N_WEIGHT)
            nh[n].weight = <uint8_t>((<int>w) & 0xff) if (weights and w and nh_total > 1) else 1
            n += 1
        if n > 1:
            nh_sort(nh, n)
    return make_value(<uint8_t>rt, RTPROT_BIRD, 0, 0, nh, n)


cdef Py_ssize_t R_SYNC_ERROR = _offset(_Route, "sync_error")


cdef bint _installable(object r, bint bird2, object keep_protocol, dict pcache) except -1:
    if _slot(r, R_TYPE) not in _RT_IDS:
        return False
    source = _slot(r, R_SOURCE)
    if source == "inherit" or (not bird2 and source == "device"):
        return False              # learned from the kernel / a device route 1.6 keeps out
    proto = _slot(r, R_PROTOCOL)
    ok = pcache.get(proto)
    if ok is None:                # the rule is Python's (fibcheck): asked once per name
        ok = pcache[proto] = bool(keep_protocol(proto or ""))
    return ok


cdef bint _same_kind(object a, object b):
    """Calico's `merge paths on`: equally preferred routes of the same kind merge."""
    return (_slot(a, R_TYPE) == "unicast" and _slot(b, R_TYPE) == "unicast"
            and _slot(a, R_PREFERENCE) == _slot(b, R_PREFERENCE)
            and (_slot(a, R_SOURCE) or "") == (_slot(b, R_SOURCE) or "")
            and (_slot(a, R_PROTOCOL) or "")[:4] == (_slot(b, R_PROTOCOL) or "")[:4])


cdef class _Expected:
    """BIRD's side of both families, filled by :func:`expected_from`."""
    cdef dict expected4, merged4, expected6, merged6
    cdef list sync4, sync6

    def __cinit__(self):
        self.expected4, self.merged4, self.expected6, self.merged6 = {}, {}, {}, {}
        self.sync4, self.sync6 = [], []

    def family(self, int family):
        """``(expected, merged, sync_failed)`` of one family."""
        if family == 4:
            return self.expected4, self.merged4, self.sync4
        if family == 6:
            return self.expected6, self.merged6, self.sync6
        raise ValueError(f"family must be 4 or 6, not {family}")


def expected_from(routes, dict ifindex, bint exported, keep_protocol, bint bird2=False,
                  bint merge_paths=True, route_type=None):
    """Route records (both families, one pass) -> an object whose ``family(f)`` is
    ``(expected {key: value}, merged {key: value}, sync_failed [key])``; see
    ``fibcheck.expected_from_routes`` for the rules. ``keep_protocol(name)`` says whether
    routes of a protocol can be in the kernel table at all (asked once per name). A ``!``
    route (BIRD's best, refused by the kernel) goes to ``sync_failed``, not ``expected``.
    With ``route_type``, records of other types in ``routes`` are skipped (a parser's output
    can be passed as it is)."""
    cdef _Expected out = _Expected()
    cdef dict gwcache = {}
    cdef dict pcache = {}
    cdef object last = None
    cdef list group = None         # the alternatives merged with `last` (rarely any)
    cdef str prefix

    for r in routes:
        if type(r) is not _Route:
            if route_type is not None:
                continue               # other records of a parser's output
            raise TypeError(f"expected Route records, got {type(r).__name__}")
        prefix = _slot(r, R_PREFIX)
        if exported:
            if _slot(r, R_PRIMARY) is True or last is None or prefix != _slot(last, R_PREFIX):
                _flush(last, group, ifindex, bird2, merge_paths, out, gwcache)
                last = r if _installable(r, bird2, keep_protocol, pcache) else None
                group = None
            continue
        if _slot(r, R_PRIMARY) is True:
            _flush(last, group, ifindex, bird2, merge_paths, out, gwcache)
            last = r if _installable(r, bird2, keep_protocol, pcache) else None
            group = None
        elif last is not None and prefix == _slot(last, R_PREFIX) and _same_kind(r, last):
            if group is None:
                group = [last]
            group.append(r)
    _flush(last, group, ifindex, bird2, merge_paths, out, gwcache)
    return out


cdef int _flush(object last, list group, dict ifindex, bint bird2, bint merge_paths,
                _Expected out, dict gwcache) except -1:
    if last is None:
        return 0
    cdef int rt = _RT_IDS[_slot(last, R_TYPE)]
    cdef object key = key_from_prefix(_slot(last, R_PREFIX))
    cdef bint v4 = (<const uint8_t*>PyBytes_AS_STRING(key))[0] == 4
    # BIRD 1.6's bird6 adds IPv6 multipath one next hop at a time: the kernel has weight 1
    cdef bint weights = bird2 or v4
    if _slot(last, R_SYNC_ERROR) is True:
        (out.sync4 if v4 else out.sync6).append(key)
        return 0
    (out.expected4 if v4 else out.expected6)[key] = pack_route(
        last, key, _slot(last, R_NEXTHOPS), ifindex, weights, rt, gwcache)
    if merge_paths and group is not None:
        hops = []
        for r in group:
            hops.extend(_slot(r, R_NEXTHOPS))
        (out.merged4 if v4 else out.merged6)[key] = pack_route(
            last, key, tuple(hops), ifindex, weights, rt, gwcache)
    return 0


def scan(dict kernel, dict expected):
    """One pass over a kernel table: (keys of BIRD's routes that have several kernel
    values — candidates for shadowing —, keys with a next hop whose link is down)."""
    cdef list multi = []
    cdef list down = []
    cdef Py_ssize_t pos = 0, i, n
    cdef PyObject* k
    cdef PyObject* v
    cdef object vv
    while PyDict_Next(kernel, &pos, &k, &v):
        vv = <object>v
        if PyTuple_Check(vv):
            if PyDict_GetItem(expected, <object>k) != NULL:
                multi.append(<object>k)
            n = PyTuple_GET_SIZE(vv)
            for i in range(n):
                x = <object>PyTuple_GET_ITEM(vv, i)
                if PyBytes_GET_SIZE(x) > 2 and (<const uint8_t*>PyBytes_AS_STRING(x))[2] & 1:
                    down.append(<object>k)
                    break
        elif PyBytes_GET_SIZE(vv) > 2 and (<const uint8_t*>PyBytes_AS_STRING(vv))[2] & 1:
            down.append(<object>k)
    return multi, down
