"""The embedded FalkorDB child process: persistence, stale sockets, one owner per data dir."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from clarion.ingest.merger import merge
from clarion.store.embedded import EmbeddedFalkorDB
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import StoreUnavailableError
from tests.helpers import small_graph

pytestmark = pytest.mark.integration


def test_data_survives_a_restart(tmp_path: Path) -> None:
    s = FalkorDBStore.embedded(tmp_path, "g")
    s.ensure_schema()
    merge(s, small_graph())
    s.close()
    s2 = FalkorDBStore.embedded(tmp_path, "g")
    try:
        assert int(s2.read("query/stats")[0]["bytes"]) == 6300
        assert merge(s2, small_graph()).duplicate  # the batch record persisted too
    finally:
        s2.close()


def test_data_survives_sigkill_of_the_server(tmp_path: Path) -> None:
    s = FalkorDBStore.embedded(tmp_path, "g")
    s.ensure_schema()
    merge(s, small_graph())
    assert s._embedded is not None
    assert s._embedded.proc is not None
    os.kill(s._embedded.proc.pid, signal.SIGKILL)  # appendfsync everysec: allow the last second
    s._embedded.proc.wait()
    s.close()
    s2 = FalkorDBStore.embedded(tmp_path, "g")
    try:
        rows = s2.read("query/stats")[0]
        assert int(rows["bytes"]) in (0, 6300)  # all or nothing, never half a batch
    finally:
        s2.close()


def test_second_instance_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = EmbeddedFalkorDB(tmp_path)
    first.start()
    try:
        with pytest.raises(StoreUnavailableError, match="in use by clarion pid"):
            EmbeddedFalkorDB(tmp_path).start()
    finally:
        first.stop()


def test_stale_socket_is_recovered(tmp_path: Path) -> None:
    stale = tmp_path / "falkordb.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
        sk.bind(str(stale))  # a socket file nobody listens on, as a killed server leaves it
    server = EmbeddedFalkorDB(tmp_path)
    try:
        assert server.start() == str(stale)
    finally:
        server.stop()


def test_failed_start_shows_the_server_log(tmp_path: Path) -> None:
    (tmp_path / "appendonlydir").write_text("not a directory")  # redis cannot open its AOF dir
    with pytest.raises(StoreUnavailableError, match="last log lines") as e:
        EmbeddedFalkorDB(tmp_path, start_timeout_s=20).start()
    assert "Can't open or create append-only dir appendonlydir" in str(e.value)
    (tmp_path / "appendonlydir").unlink()
    retry = EmbeddedFalkorDB(tmp_path)  # the lock was released: fixing the cause and retrying works
    retry.start()
    retry.stop()


def test_long_data_dir_gets_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    server = EmbeddedFalkorDB(deep)
    try:
        sock = server.start()
        assert len(sock) < 100
    finally:
        server.stop()
    assert not Path(sock).exists()
