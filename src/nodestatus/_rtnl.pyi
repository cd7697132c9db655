"""Stub of the rtnetlink route decoder (src/_rtnl.pyx): what it offers, for type checkers.

key   = family (4 | 6) + dst_len + dst address (4 | 16 bytes, host bits cleared)
value = type u8, protocol u8, flags u8, pad u8, metric u32le            (8-byte header)
        nh_count u8, then per next hop [gateway 16 bytes, oif u32le, weight u8],
        sorted by (gateway bytes, oif); IPv4 gateways fill the first 4 bytes, zeros = none.
Two values are in sync iff ``value[0]`` (type) and ``value[8:]`` (forwarding part) are equal.
A PackedTable maps key -> value, or -> tuple of values when the prefix exists more than once.
"""
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Union, final

Buffer = Union[bytes, bytearray, memoryview]
Value = Union[bytes, Tuple[bytes, ...]]

FLAG_LINKDOWN: int  # a next hop has RTNH_F_LINKDOWN
FLAG_ONLINK: int  # a next hop has RTNH_F_ONLINK
FLAG_DEAD: int  # a next hop has RTNH_F_DEAD
FLAG_NH_OBJECT: int  # the route uses a nexthop object (RTA_NH_ID): next hops not shown
RTN_NAMES: Dict[int, str]
RTN_IDS: Dict[str, int]
RTPROT_NAMES: Dict[int, str]  # route protocols as ``ip route`` prints them
RTPROT_IDS: Dict[str, int]
PROTO_BIRD: int  # 12, BIRD's kernel routes

@final
class PackedTable:
    """Packed routes in a C hash table (insertion order kept): read like a dict."""

    def __new__(cls, mapping: Optional[Mapping[bytes, Value]] = ...) -> "PackedTable": ...
    def add(self, key: bytes, value: bytes) -> int:
        """Store one more value under ``key``; 0 if that exact value is there already."""
    @staticmethod
    def from_records(records: bytes) -> "PackedTable":
        """The parse core's packed records (klen u8, key, vlen u16le, value); a key seen
        again replaces its value. ValueError when the records are cut short."""
    def get(self, key: bytes, default: Optional[Value] = ...) -> Optional[Value]: ...
    def __getitem__(self, key: bytes, /) -> Value: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def n_values(self) -> int: ...
    def keys(self) -> List[bytes]: ...
    def values(self) -> List[Value]: ...
    def items(self) -> List[Tuple[bytes, Value]]: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __eq__(self, other: object, /) -> bool: ...

def decode_dump(
    buf: Buffer, nbytes: int, family: int, table: int, out: PackedTable, *,
    all_types: bool = False,
) -> Tuple[int, bool]:
    """Decode ``buf[:nbytes]`` (netlink messages of a route dump) into ``out``, with the
    GIL released.

    ``family`` 4 or 6 (0 = both); ``table`` the table id (RTA_TABLE over rtm_table; 0 = all).
    Skips cloned routes, and local/broadcast/anycast/multicast unless ``all_types``. An
    identical repeat of a stored value is dropped. Returns (routes stored, NLMSG_DONE seen).
    Raises KernelReadError (with ``offset``) on NLMSG_ERROR or malformed bytes.
    """

def recv_dump(
    fd: int, buf: Buffer, family: int, table: int, out: PackedTable, *,
    all_types: bool = False, timeout_ms: int = -1,
) -> Tuple[int, int, bool]:
    """Receive one route dump from the netlink socket ``fd`` into ``out`` to NLMSG_DONE,
    recv and decode alternating without the GIL; ``buf`` is reused for each datagram.

    ``timeout_ms`` (-1: none) bounds each wait of a non-blocking socket. Returns (routes
    stored, bytes read, NLMSG_DONE seen: False if the socket closed first). Raises OSError
    (TimeoutError) on a failed recv and KernelReadError as :func:`decode_dump`.
    """

def decode_keys(buf: Buffer, nbytes: int, family: int, table: int, out: Set[bytes]) -> Tuple[int, bool]:
    """Add the keys of RTM_NEWROUTE/RTM_DELROUTE messages (a route monitor's) to ``out``."""

def pack_key(prefix: str) -> bytes:
    """``"10.0.0.0/24"`` -> key (host bits cleared; no length = host route)."""

def unpack_key(key: bytes) -> str:
    """key -> ``"10.0.0.0/24"``."""

def pack_expected(
    prefix: str, rtype: Union[int, str],
    nexthops: Iterable[Tuple[Optional[str], int, int]] = ..., *,
    protocol: int = 12, metric: int = 0, flags: int = 0,
) -> Tuple[bytes, bytes]:
    """One route as (key, value) in the kernel layout; by default BIRD's side (protocol
    12, metric 0, flags 0). ``nexthops`` = (gateway or None, oif, weight 1..256); ignored
    for types >= blackhole."""

def value_fields(value: bytes) -> Tuple[int, int, int, int]:
    """``(type, protocol, flags, metric)`` of one value."""

def key_family(key: bytes) -> int:
    """4 or 6."""

def in_sync(a: bytes, b: bytes) -> bool:
    """Same type and forwarding part."""

def compare(
    expected: PackedTable, kernel: PackedTable
) -> Tuple[int, List[bytes], List[bytes], List[bytes]]:
    """(agree, missing, mismatched, extra_bird), judged on protocol-12 kernel values only."""

def describe(value: bytes, family: int = 0) -> Dict[str, Any]:
    """{type, type_id, protocol (name), protocol_id, metric, flags, linkdown, onlink,
    nexthops: [{gateway, oif, weight}]}; ``family`` = key[0] prints gateways right."""

def values_of(kv: Value) -> Tuple[bytes, ...]:
    """A kernel dict entry as a tuple of values."""

def scan(kernel: PackedTable, expected: Optional[PackedTable] = ...) -> Tuple[List[bytes], List[bytes]]:
    """One pass over a kernel table: (keys of ``expected`` with several kernel values,
    candidates for shadowing; keys with a next hop whose link is down)."""
