"""The allocator setting that keeps batch temporaries from page-faulting (netflow/alloc.py).

Its effect is measured by the decode benchmark (minor faults per run of decode + aggregate fall
from about 8,700 to near zero); here, that glibc accepts it and that it is applied once.
"""

from __future__ import annotations

import platform

import pytest

from clarion_edge.netflow import alloc
from clarion_edge.netflow.decoder import Decoder


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc only")
def test_glibc_accepts_the_settings_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alloc, "_applied", None)
    Decoder()  # a decoder applies it on creation
    assert alloc._applied is True
    calls = []
    monkeypatch.setattr(alloc.ctypes, "CDLL", lambda *a: calls.append(a))
    assert alloc.keep_freed_memory() is True  # the first answer is kept: no second call into libc
    assert calls == []


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alloc, "_applied", None)
    monkeypatch.setattr(alloc.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert alloc.keep_freed_memory() is False
