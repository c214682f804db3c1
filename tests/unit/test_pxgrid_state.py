"""Loss detection, dedup and the watermark, without sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid.errors import SinkError
from clarion.sources.pxgrid.settings import load_settings
from clarion.sources.pxgrid.sink import MemorySink
from clarion.sources.pxgrid.state import IdentityState, Sequencer


def test_sequencer_detects_gaps_and_resets() -> None:
    seq = Sequencer()
    assert [seq.check("s", n) for n in (5, 6, 7)] == [None, None, None]
    assert seq.check("s", 9) == "gap"
    assert seq.check("s", 10) is None
    assert seq.check("s", 0) == "reset"
    assert seq.check("s", 0) == "reset"  # a repeat is not in order either
    assert seq.check("other", 100) is None  # per subscription
    assert seq.check("s", None) is None  # ISE 2.x sends no sequence


def raw(i: int, ts: str = "2024-05-01T10:15:30.000Z") -> dict[str, object]:
    return {"macAddress": f"AA:BB:CC:00:00:{i:02X}", "timestamp": ts, "state": "STARTED"}


def test_batches_dedup_and_watermark() -> None:
    sink = MemorySink()
    st = IdentityState(sink, max_batch=2)
    for i in range(3):
        st.add_session(raw(i))
    assert [len(b) for b in sink.batches] == [2]  # flushed at max_batch
    st.flush()
    assert [len(b) for b in sink.batches] == [2, 1]
    st.on_session_message({"sessions": [raw(0), raw(1, "2024-05-01T10:15:31.000Z")]})
    assert st.counters.duplicates == 1
    assert st.counters.merged == 4
    assert st.watermark_ms == 1_714_558_531_000
    assert st.on_session_message({"nope": 1}) is False
    assert st.counters.malformed == 1


def test_a_failing_sink_does_not_advance_the_watermark() -> None:
    class Failing:
        def apply(self, sessions: list[Session]) -> None:
            raise RuntimeError("graph is down")

    st = IdentityState(Failing())
    st.add_session(raw(1))
    with pytest.raises(SinkError, match="graph is down"):
        st.flush()
    assert st.watermark_ms is None
    assert st.counters.sink_errors == 1
    assert st.counters.merged == 0


def test_security_group_updates_change_the_mapping() -> None:
    sink = MemorySink()
    st = IdentityState(sink)
    st.set_security_groups([{"name": "Employees", "tag": 4}, {"name": "bad"}])
    assert st.sgt_by_name == {"Employees": 4}
    assert st.counters.malformed == 1
    st.on_security_group_message({"operation": "UPDATE", "securityGroup": {"name": "Staff", "tag": 4}})
    assert st.sgt_by_name == {"Staff": 4}
    st.on_security_group_message({"operation": "DELETE", "securityGroup": {"name": "Staff", "tag": 4}})
    assert st.sgt_by_name == {}
    assert 4 not in sink.security_groups


def test_settings_validation_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="node_name") as err:
        load_settings(None, node_name="Bad Name!", hosts="ise1")
    assert "client_cert (+ client_key)" in str(err.value)
    s = load_settings(None, node_name="Clarion-1", hosts="ise1, ise2", password_file="/tmp/pw")
    assert (s.node_name, s.hosts) == ("clarion-1", ("ise1", "ise2"))


def test_settings_from_toml_reject_unknown_keys(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[pxgrid]\nnode_name = "c1"\nhosts = ["ise1"]\npassword_file = "/tmp/pw"\nport = 8910\n')
    assert load_settings(p).hosts == ("ise1",)
    p.write_text('[pxgrid]\nnode_name = "c1"\nhostz = ["ise1"]\n')
    with pytest.raises(ValueError, match="unknown \\[pxgrid\\] keys \\['hostz'\\]"):
        load_settings(p)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    import random

    from clarion.sources.pxgrid.consumer import PxGridConsumer
    from clarion.sources.pxgrid.settings import PxGridSettings

    settings = PxGridSettings(
        node_name="c", hosts=("ise",), password_file=Path("/tmp/pw"), backoff_base_s=1.0, backoff_cap_s=60.0
    )
    consumer = PxGridConsumer(settings, MemorySink(), rng=random.Random(7))
    try:
        for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0)]:
            delays = [consumer._backoff(failures) for _ in range(200)]
            assert min(delays) >= ceiling / 2
            assert max(delays) <= ceiling
            assert len(set(delays)) > 150  # jittered, so many clients do not reconnect in step
    finally:
        consumer.http.close()
