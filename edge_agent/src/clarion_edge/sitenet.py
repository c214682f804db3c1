"""Addresses as pairs of uint64 columns, site prefixes, and their text forms.

FLOW_DTYPE keeps addresses as 16 bytes (IPv4 mapped to ::ffff:a.b.c.d); splitting them into two
big-endian uint64 columns lets numpy hash, compare and prefix-match millions of them per second.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
BoolArr = npt.NDArray[np.bool_]

#: Used when no site prefix is configured: the private and link-local ranges.
DEFAULT_SITE_PREFIXES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10")
_MAPPED_HI = 0
_MAPPED_TAG = 0xFFFF


def split_addr(column: npt.NDArray[np.void]) -> tuple[U64, U64]:
    """A V16 address column as (high, low) native uint64 columns holding the big-endian halves."""
    pairs = np.ascontiguousarray(column).view(">u8").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def parse_prefix(text: str) -> tuple[int, int, int, int]:
    """(value_hi, value_lo, mask_hi, mask_lo) of a CIDR in the IPv4-mapped 128-bit space."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"site prefix {text!r} is not an IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)") from exc
    if isinstance(net, ipaddress.IPv4Network):
        value = (0xFFFF << 32) | int(net.network_address)
        bits = 96 + net.prefixlen
    else:
        value = int(net.network_address)
        bits = net.prefixlen
    mask = ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF, mask >> 64, mask & 0xFFFF_FFFF_FFFF_FFFF


class SitePrefixes:
    """Decides which addresses are local to the site (this switch's side of the network)."""

    def __init__(self, prefixes: Iterable[str] = ()) -> None:
        texts = list(prefixes) or list(DEFAULT_SITE_PREFIXES)
        self.texts: tuple[str, ...] = tuple(texts)
        self._parsed = [parse_prefix(t) for t in texts]

    def is_local(self, hi: U64, lo: U64) -> BoolArr:
        out = np.zeros(hi.shape, dtype=bool)
        for vh, vl, mh, ml in self._parsed:
            out |= ((hi & np.uint64(mh)) == np.uint64(vh)) & ((lo & np.uint64(ml)) == np.uint64(vl))
        return out


def ip_texts(hi: Sequence[int], lo: Sequence[int]) -> list[str]:
    """Canonical text of each address (dotted quad for IPv4-mapped ones)."""
    out = []
    for h, low in zip(hi, lo, strict=True):
        if h == _MAPPED_HI and (low >> 32) == _MAPPED_TAG:
            v = low & 0xFFFF_FFFF
            out.append(f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}")
        else:
            out.append(str(ipaddress.IPv6Address((h << 64) | low)))
    return out


def mac_texts(macs: Sequence[int]) -> list[str]:
    """``aa:bb:cc:dd:ee:ff`` for each 48-bit MAC value."""
    out = []
    for m in macs:
        h = f"{m:012x}"
        out.append(f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}")
    return out


def addr_bytes(text: str) -> bytes:
    """16-byte FLOW_DTYPE form of an address text (tests and tools)."""
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed
