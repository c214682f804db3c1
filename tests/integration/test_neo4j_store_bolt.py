"""The Neo4j adapter on the wire: the real driver against a scripted Bolt 5.4 server on loopback.

Where no Neo4j can run, this still proves what the adapter asks of the driver and what it makes
of the answers: one transaction per write with the configured timeout and database, reads
routed to readers and carrying the last write's bookmark, a Batch constraint failure turned
into BatchConflictError without a retry, a deadlock retried, nodes returned as dicts. The
server plays back Neo4j's documented Bolt messages (the approach of Neo4j's own driver
testkit "stub server"); what Neo4j itself does with the Cypher is tested in
test_neo4j_store.py (testcontainers) and linted in tests/unit/test_cypher_lint.py.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from clarion.ingest.transform import prepare
from clarion.store import cypher
from clarion.store.neo4j_store import Neo4jStore
from clarion.store.port import BatchConflictError, StoreError
from tests.helpers import T0, small_graph

pytestmark = pytest.mark.integration

HELLO, GOODBYE, RESET, RUN, BEGIN, COMMIT, ROLLBACK, DISCARD, PULL = (
    0x01,
    0x02,
    0x0F,
    0x10,
    0x11,
    0x12,
    0x13,
    0x2F,
    0x3F,
)
LOGON, LOGOFF, TELEMETRY = 0x6A, 0x6B, 0x54
SUCCESS, RECORD, IGNORED, FAILURE = 0x70, 0x71, 0x7E, 0x7F
NAMES = {HELLO: "HELLO", RESET: "RESET", RUN: "RUN", BEGIN: "BEGIN", COMMIT: "COMMIT", ROLLBACK: "ROLLBACK",
         DISCARD: "DISCARD", PULL: "PULL", LOGON: "LOGON", LOGOFF: "LOGOFF", TELEMETRY: "TELEMETRY"}  # fmt: skip


@dataclass
class Struct:
    tag: int
    fields: list[Any]


# -- PackStream (the Bolt value encoding), just what the driver and these tests exchange ------------


def pack(v: Any) -> bytes:
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if -16 <= v < 128:
            return struct.pack(">b", v)
        return b"\xcb" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xc1" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0x80 + len(b)]) if len(b) < 16 else b"\xd2" + struct.pack(">I", len(b))) + b
    if isinstance(v, list):
        return b"\xd6" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xda" + struct.pack(">I", len(v)) + b"".join(pack(k) + pack(x) for k, x in v.items())
    if isinstance(v, Struct):
        return bytes([0xB0 + len(v.fields), v.tag]) + b"".join(pack(x) for x in v.fields)
    raise TypeError(f"cannot pack {v!r}")


def unpack(buf: bytes, i: int = 0) -> tuple[Any, int]:
    m = buf[i]
    i += 1
    sizes = {0: (">B", 1), 1: (">H", 2), 2: (">I", 4)}
    if m < 0x80:
        return m, i
    if m >= 0xF0:
        return m - 0x100, i
    hi, lo = m & 0xF0, m & 0x0F
    if hi in (0x80, 0x90, 0xA0, 0xB0):
        n = lo
    elif m in (0xD0, 0xD1, 0xD2, 0xD4, 0xD5, 0xD6, 0xD8, 0xD9, 0xDA, 0xCC, 0xCD, 0xCE):
        fmt, w = sizes[(m & 0x0F) % 4]
        n = struct.unpack_from(fmt, buf, i)[0]
        i += w
    elif m == 0xC0:
        return None, i
    elif m in (0xC2, 0xC3):
        return m == 0xC3, i
    elif m == 0xC1:
        return struct.unpack_from(">d", buf, i)[0], i + 8
    elif m in (0xC8, 0xC9, 0xCA, 0xCB):
        fmt, w = {0xC8: (">b", 1), 0xC9: (">h", 2), 0xCA: (">i", 4), 0xCB: (">q", 8)}[m]
        return struct.unpack_from(fmt, buf, i)[0], i + w
    else:
        raise ValueError(f"PackStream marker {m:#x} at {i - 1}")
    if hi == 0x80 or 0xD0 <= m <= 0xD2:
        return buf[i : i + n].decode(), i + n
    if 0xCC <= m <= 0xCE:
        return bytes(buf[i : i + n]), i + n
    if hi == 0xB0:
        tag = buf[i]
        i += 1
        out = []
        for _ in range(n):
            x, i = unpack(buf, i)
            out.append(x)
        return Struct(tag, out), i
    items: list[Any] = []
    for _ in range(n * (2 if hi == 0xA0 or m >= 0xD8 else 1)):
        x, i = unpack(buf, i)
        items.append(x)
    if hi == 0xA0 or m >= 0xD8:
        return dict(zip(items[::2], items[1::2], strict=True)), i
    return items, i


# -- the scripted server ---------------------------------------------------------------------------


@dataclass
class Records:
    fields: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Failure:
    code: str
    message: str
    at: str = "pull"  # Neo4j reports execution errors on PULL, compile errors on RUN


class BoltStub:
    """Speaks Bolt 5.4 to one driver; answers each RUN with the next planned outcome."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.plan: list[Records | Failure] = []
        self.seen: list[tuple[str, list[Any]]] = []
        self.commits = 0
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def sent(self, name: str) -> list[list[Any]]:
        return [f for n, f in self.seen if n == name]

    def close(self) -> None:
        self._srv.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            f = conn.makefile("rb")
            if f.read(20)[:4] != b"\x60\x60\xb0\x17":
                return
            conn.sendall(b"\x00\x00\x04\x05")  # Bolt 5.4
            failed, pending, pending_failure = False, Records([]), None
            while (msg := self._read(f)) is not None:
                tag, fields = msg.tag, msg.fields
                self.seen.append((NAMES.get(tag, hex(tag)), fields))
                reply: list[Struct] = []
                if tag == GOODBYE:
                    return
                if failed and tag != RESET:
                    reply = [Struct(IGNORED, [])]
                elif tag == HELLO:
                    reply = [Struct(SUCCESS, [{"server": "Neo4j/5.26.0", "connection_id": "bolt-7"}])]
                elif tag == LOGON:
                    if fields[0].get("credentials") != self.password:
                        msg_ = "The client is unauthorized due to authentication failure."
                        conn.sendall(
                            self._frame(
                                Struct(FAILURE, [{"code": "Neo.ClientError.Security.Unauthorized", "message": msg_}])
                            )
                        )
                        return
                    reply = [Struct(SUCCESS, [{}])]
                elif tag == RUN:
                    outcome = self.plan.pop(0)
                    if isinstance(outcome, Failure) and outcome.at == "run":
                        reply, failed = [self._failure(outcome)], True
                    else:
                        pending_failure = outcome if isinstance(outcome, Failure) else None
                        pending = outcome if isinstance(outcome, Records) else Records([])
                        reply = [Struct(SUCCESS, [{"fields": pending.fields, "t_first": 1, "qid": 0}])]
                elif tag == PULL:
                    if pending_failure is not None:
                        reply, failed, pending_failure = [self._failure(pending_failure)], True, None
                    else:
                        reply = [Struct(RECORD, [row]) for row in pending.rows]
                        reply.append(Struct(SUCCESS, [{"has_more": False, "t_last": 1, "db": "neo4j"}]))
                elif tag == COMMIT:
                    self.commits += 1
                    reply = [Struct(SUCCESS, [{"bookmark": f"stub:{self.commits}"}])]
                elif tag == RESET:
                    failed = False
                    reply = [Struct(SUCCESS, [{}])]
                else:  # BEGIN, ROLLBACK, DISCARD, LOGOFF, TELEMETRY
                    reply = [Struct(SUCCESS, [{}])]
                conn.sendall(b"".join(self._frame(r) for r in reply))

    @staticmethod
    def _failure(f: Failure) -> Struct:
        return Struct(FAILURE, [{"code": f.code, "message": f.message}])

    @staticmethod
    def _read(f: Any) -> Struct | None:
        data = b""
        while True:
            head = f.read(2)
            if len(head) < 2:
                return None
            (n,) = struct.unpack(">H", head)
            if n == 0:
                if data:
                    msg, _ = unpack(data)
                    assert isinstance(msg, Struct)
                    return msg
                continue  # NOOP keep-alive chunk
            data += f.read(n)

    @staticmethod
    def _frame(s: Struct) -> bytes:
        body = pack(s)
        return (
            b"".join(
                struct.pack(">H", len(body[i : i + 65535])) + body[i : i + 65535] for i in range(0, len(body), 65535)
            )
            + b"\x00\x00"
        )


@pytest.fixture
def stub() -> Iterator[BoltStub]:
    s = BoltStub(password="stub-password")
    yield s
    s.close()


@pytest.fixture
def store(stub: BoltStub) -> Iterator[Neo4jStore]:
    s = Neo4jStore(f"bolt://127.0.0.1:{stub.port}", user="clarion", password=stub.password, database="graphdb",
                   timeout_s=42.0, retry_s=15.0)  # fmt: skip
    yield s
    s.close()


def test_a_write_is_one_transaction_on_the_configured_database_with_its_timeout(
    stub: BoltStub, store: Neo4jStore
) -> None:
    stub.plan = [Records(["ok"], [[1]])]
    assert store.write("query/ping") == [{"ok": 1}]
    [begin] = stub.sent("BEGIN")
    assert begin[0]["db"] == "graphdb"
    assert begin[0]["tx_timeout"] == 42_000
    assert "mode" not in begin[0]  # a write goes to the leader
    [run] = stub.sent("RUN")
    assert run[:2] == [cypher.load("query/ping", "neo4j").text, {}]
    assert stub.commits == 1
    assert stub.sent("LOGON")[0][0]["principal"] == "clarion"


def test_a_read_is_routed_to_readers_and_sees_the_last_write(stub: BoltStub, store: Neo4jStore) -> None:
    stub.plan = [Records(["ok"], [[1]]), Records(["digest", "applied_at"], [["abc", T0]])]
    store.write("query/ping")
    rows = store.read("query/batch_lookup", {"agent_id": "edge-sw1", "seq": 3})
    assert rows == [{"digest": "abc", "applied_at": T0}]
    read_begin = stub.sent("BEGIN")[1][0]
    assert read_begin["mode"] == "r"
    assert read_begin["bookmarks"] == ["stub:1"]  # writes and reads share one bookmark manager
    assert stub.sent("RUN")[1][1] == {"agent_id": "edge-sw1", "seq": 3}


def test_nodes_come_back_as_property_dicts(stub: BoltStub, store: Neo4jStore) -> None:
    node = Struct(0x4E, [12, ["Device"], {"uid": "02:00:00:00:00:02", "vlan": 20}, "4:abc:12"])
    stub.plan = [Records(["device"], [[node]])]
    assert store.read("query/device_by_mac", {"mac": "02:00:00:00:00:02"}) == [
        {"device": {"uid": "02:00:00:00:00:02", "vlan": 20}}
    ]


BATCH_EXISTS = "Node(12) already exists with label `Batch` and properties `agent_id` = 'edge-sw1', `seq` = 3"


@pytest.mark.parametrize("message", [BATCH_EXISTS, "Node(12) already exists with label Batch and properties ..."])
def test_a_second_batch_record_is_a_conflict_and_is_not_retried(
    stub: BoltStub, store: Neo4jStore, message: str
) -> None:
    stub.plan = [Failure("Neo.ClientError.Schema.ConstraintValidationFailed", message)]
    params = prepare(small_graph(seq=3), applied_at_ms=T0).params
    with pytest.raises(BatchConflictError, match="Batch"):
        store.write("merge/batch", params)
    [run] = stub.sent("RUN")
    assert run[1]["seq"] == 3
    assert stub.commits == 0


def test_another_constraint_failure_is_a_plain_store_error(stub: BoltStub, store: Neo4jStore) -> None:
    stub.plan = [
        Failure("Neo.ClientError.Schema.ConstraintValidationFailed", "Node(3) already exists with label `Device`")
    ]
    with pytest.raises(StoreError, match="ConstraintValidationFailed") as err:
        store.write("query/ping")
    assert not isinstance(err.value, BatchConflictError)


def test_a_deadlock_is_retried_as_a_whole_transaction(stub: BoltStub, store: Neo4jStore) -> None:
    stub.plan = [
        Failure("Neo.TransientError.Transaction.DeadlockDetected", "ForsetiClient[1] can't acquire ExclusiveLock"),
        Records(["ok"], [[1]]),
    ]
    assert store.write("query/ping") == [{"ok": 1}]
    assert len(stub.sent("BEGIN")) == 2
    assert len(stub.sent("RUN")) == 2
    assert stub.commits == 1


def test_a_compile_error_names_the_statement(stub: BoltStub, store: Neo4jStore) -> None:
    stub.plan = [Failure("Neo.ClientError.Statement.SyntaxError", "Invalid input 'RETRUN'", at="run")]
    with pytest.raises(StoreError, match=r"\(query/sgts\): Neo.ClientError.Statement.SyntaxError"):
        store.read("query/sgts")


def test_a_wrong_password_says_which_user_and_not_the_password(stub: BoltStub) -> None:
    s = Neo4jStore(f"bolt://127.0.0.1:{stub.port}", user="clarion", password="not-the-one", retry_s=1.0)
    try:
        with pytest.raises(StoreError, match="authentication failed for user 'clarion'") as err:
            s.read("query/ping")
        assert "not-the-one" not in str(err.value)
    finally:
        s.close()


def test_ensure_schema_runs_every_statement_then_waits_for_indexes(stub: BoltStub, store: Neo4jStore) -> None:
    script = cypher.load_script("schema/neo4j")
    stub.plan = [Records([]) for _ in range(len(script) + 1)]
    store.ensure_schema()
    assert [r[0] for r in stub.sent("RUN")] == [*script, "CALL db.awaitIndexes(300)"]
    assert stub.sent("BEGIN")[-1][0]["tx_timeout"] == 310_000  # longer than the wait itself
    assert stub.commits == len(script) + 1


def test_clear_deletes_in_slices_until_nothing_is_left(stub: BoltStub, store: Neo4jStore) -> None:
    stub.plan = [Records(["deleted"], [[10_000]]), Records(["deleted"], [[17]]), Records(["deleted"], [[0]])]
    store.clear()
    assert len(stub.sent("RUN")) == 3
    assert stub.commits == 3
