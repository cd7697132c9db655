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

include "fibformat.pxi"

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
    RTN_LOCAL = 2
    RTN_MULTICAST = 5

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

cdef inline int family_of(int family) except -1:
    """4/AF_INET -> AF_INET, 6/AF_INET6 -> AF_INET6, 0 -> 0 (both)."""
    if family == 4 or family == AF_INET:
        return AF_INET
    if family == 6 or family == AF_INET6:
        return AF_INET6
    if family == 0:
        return 0
    raise ValueError(f"family must be 4 or 6 (or 0 for both), not {family}")

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
