"""Keep freed memory in the process (glibc ``mallopt``): the decode stage lives on large numpy temporaries.

Every batch allocates and frees arrays of a few hundred kB to tens of MB. By default glibc maps
each large one fresh from the kernel and returns it on free, so every batch pays a page fault per
4 kB it touches: 30-40 % of the decode + aggregate time, measured. Raising the mmap threshold to
its maximum (32 MB) and the trim threshold to 256 MB lets freed blocks be reused instead; the
process keeps at most its peak working set (tens of MB). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the largest value glibc accepts on 64-bit
TRIM_THRESHOLD = 256 << 20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune the allocator once per process; True when glibc accepted both settings."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not _applied:
        log.warning("glibc refused the allocator settings: decoding will page-fault more (slower, still correct)")
    return _applied
