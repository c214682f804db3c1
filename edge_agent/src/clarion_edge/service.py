"""Which side of a flow is the service: the edge must point from client to server.

A flow record's "source" is only whoever sent the packets it counts; replies come back as
records with the ports swapped. Taking ``dst`` blindly would double every conversation into two
edges pointing opposite ways. The rules, strongest first:

1. TCP with SYN but never ACK: the source opened the connection, the destination listens.
2. Exactly one port below 1024 (IANA well-known): that side. Both below: the lower port.
3. Fan-in: an (address, port) that many records of the same reduction chunk share is a listener
   (at least ``FANIN_MIN`` records and twice as many as the other side's (address, port)).
4. Exactly one port in a list of common registered service ports (databases, web, brokers...).
5. Otherwise the lower port (ephemeral ports are high); a tie keeps the record's direction.

Protocols without ports get port 0; an ICMP/ICMPv6 echo reply is turned to point at the pinged host.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from clarion_edge.grouping import group_sizes

U64 = npt.NDArray[np.uint64]
UInt = npt.NDArray[np.unsignedinteger[Any]]
BoolArr = npt.NDArray[np.bool_]

PORT_PROTOCOLS = (6, 17, 33, 132)  # TCP, UDP, DCCP, SCTP
FANIN_MIN = 3
REGISTERED_SERVICES = np.array(
    sorted(
        {
            1080, 1194, 1433, 1434, 1521, 1645, 1646, 1812, 1813, 1883, 2049, 2055, 2375, 2376, 3000, 3128,
            3268, 3269, 3306, 3389, 3478, 4739, 4789, 5000, 5060, 5061, 5222, 5432, 5671, 5672, 5900, 5938,
            5984, 5985, 5986, 6343, 6379, 6443, 6514, 7000, 7001, 8000, 8008, 8080, 8081, 8086, 8088, 8443,
            8883, 8888, 9000, 9042, 9090, 9092, 9100, 9200, 9300, 9418, 9443, 10050, 10051, 11211, 15672,
            27017,
        }
    ),
    dtype=np.uint64,
)  # fmt: skip
#: One flag per port number: a table lookup is several times faster than ``np.isin`` on every record.
_REGISTERED_TABLE = np.zeros(65536, dtype=bool)
_REGISTERED_TABLE[REGISTERED_SERVICES] = True


def service_side(
    protocol: UInt, sport: UInt, dport: UInt, tcp_flags: UInt, s_hi: U64, s_lo: U64, d_hi: U64, d_lo: U64
) -> tuple[BoolArr, UInt]:
    """Return (reverse, port): ``reverse`` is True where the record's source is the service side."""
    n = len(protocol)
    has_ports = (protocol == 6) | (protocol == 17) | (protocol == 33) | (protocol == 132)
    reverse = np.zeros(n, dtype=bool)
    decided = ~has_ports

    # ICMP echo reply (type 0) / ICMPv6 echo reply (type 129): the replier is the service.
    icmp_type = dport >> 8
    reverse |= ((protocol == 1) & (icmp_type == 0)) | ((protocol == 58) & (icmp_type == 129))

    syn_only = (protocol == 6) & ((tcp_flags & 0x12) == 0x02)
    decided |= syn_only

    s_wk = sport < 1024
    d_wk = dport < 1024
    wk = ~decided & (s_wk | d_wk)
    reverse |= wk & ((s_wk & ~d_wk) | (s_wk & d_wk & (sport < dport)))
    decided |= wk

    rest = np.flatnonzero(~decided)
    if len(rest):
        r_rev, r_done = _fanin(protocol[rest], sport[rest], dport[rest], s_hi[rest], s_lo[rest], d_hi[rest], d_lo[rest])
        s_reg = _REGISTERED_TABLE[sport[rest].astype(np.uint16, copy=False)]
        d_reg = _REGISTERED_TABLE[dport[rest].astype(np.uint16, copy=False)]
        reg = ~r_done & (s_reg != d_reg)
        r_rev |= reg & s_reg
        r_done |= reg
        r_rev |= ~r_done & (sport[rest] < dport[rest])
        reverse[rest] = r_rev

    port = np.where(reverse & has_ports, sport, np.where(has_ports, dport, 0))
    return reverse, port


def _fanin(
    protocol: U64, sport: U64, dport: U64, s_hi: U64, s_lo: U64, d_hi: U64, d_lo: U64
) -> tuple[BoolArr, BoolArr]:
    """(reverse, decided) by how many rows share each side's (protocol, address, port)."""
    n = len(protocol)
    c = group_sizes([np.concatenate([protocol, protocol]), np.concatenate([s_hi, d_hi]),
                     np.concatenate([s_lo, d_lo]), np.concatenate([sport, dport])])  # fmt: skip
    cs, cd = c[:n], c[n:]
    src_listens = (cs >= FANIN_MIN) & (cs >= 2 * cd)
    dst_listens = (cd >= FANIN_MIN) & (cd >= 2 * cs)
    return src_listens & ~dst_listens, src_listens ^ dst_listens
