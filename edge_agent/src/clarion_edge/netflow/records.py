"""The decoded flow record: one numpy structured dtype shared by every decoder.

Decoders (v5, v9, IPFIX) turn datagrams into arrays of ``FLOW_DTYPE``; the aggregator
consumes them. Keeping one flat dtype lets every stage work on whole arrays.
"""

from __future__ import annotations

import numpy as np

#: Addresses are 16 bytes: IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so one column
#: serves both families. ``ip_version`` says which the exporter sent.
#: MACs are the 48-bit value in a uint64, 0 when the exporter did not send one.
#: Times are epoch milliseconds (UTC). ``sampling`` is the factor counts were scaled by
#: (1 when unsampled). SGTs are 0 when absent (0 is TrustSec's "unknown").
#: Aligned (C struct layout, 112 bytes): every field sits at a multiple of its own size, so numpy
#: reads and writes columns with its fast aligned loops (the packed 105-byte layout made every
#: 8-byte column unaligned and each column copy about twice as slow). numpy keeps an aligned
#: struct's layout when it rebuilds the dtype (``np.array`` of its items, promotion).
FLOW_DTYPE = np.dtype(
    [
        ("src_addr", "V16"),
        ("dst_addr", "V16"),
        ("ip_version", "u1"),
        ("protocol", "u1"),
        ("tcp_flags", "u1"),
        ("src_port", "u2"),
        ("dst_port", "u2"),
        ("bytes", "u8"),
        ("packets", "u8"),
        ("first_ms", "i8"),
        ("last_ms", "i8"),
        ("src_mac", "u8"),
        ("dst_mac", "u8"),
        ("vlan", "u2"),
        ("in_if", "u4"),
        ("out_if", "u4"),
        ("src_sgt", "u2"),
        ("dst_sgt", "u2"),
        ("sampling", "u4"),
    ],
    align=True,
)
