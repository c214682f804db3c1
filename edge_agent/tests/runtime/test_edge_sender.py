"""The sender against a real HTTP server: acknowledgement, rejection, retry and backoff."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest
from edge_samples import sample_graph
from edge_test_server import GraphServer

from clarion_edge import wire
from clarion_edge.sender import Sender, backoff_delays, parse_retry_after


class Sleeps:
    """Records the backoff delays instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.delays.append(seconds)
        return True


def _sender(url: str, sleeps: Sleeps | None = None, token: str = "tok-edge-1", retries: int = 3) -> Sender:  # noqa: S107
    return Sender(url, token, timeout=5, retries=retries, sleep=sleeps or Sleeps(), rng=random.Random(7))


def test_applied_then_exact_replay_is_a_duplicate(graph_server: GraphServer) -> None:
    with _sender(graph_server.url) as s:
        first = s.send(sample_graph(1))
        again = s.send(sample_graph(1))
    assert (first.outcome, first.status, first.acked) == ("applied", 200, True)
    assert first.body == {"applied": True, "duplicate": False, "agent_id": "edge-1", "seq": 1, "nodes": 3, "edges": 2}
    assert (again.outcome, again.acked, again.body["duplicate"]) == ("duplicate", True, True)
    assert len(graph_server.ledger.graphs) == 1


def test_same_seq_other_content_is_rejected_not_retried(graph_server: GraphServer) -> None:
    sleeps = Sleeps()
    with _sender(graph_server.url, sleeps) as s:
        s.send(sample_graph(1))
        conflict = s.send(sample_graph(1, bytes_=2))
    assert (conflict.outcome, conflict.status, conflict.attempts) == ("rejected", 409, 1)
    assert "another digest" in conflict.error
    assert sleeps.delays == []


def test_invalid_body_is_rejected_with_the_servers_field_path(graph_server: GraphServer) -> None:
    body = wire.encode(sample_graph(1).sealed()).replace(b'"192.0.2.7"', b'"192.0.2.07"')
    with _sender(graph_server.url) as s:
        result = s.send_bytes(body)
    assert (result.outcome, result.status) == ("rejected", 422)
    assert result.body["detail"]["path"] in ("$.nodes[1].ip", "$")


def test_bad_token_is_refused_once_and_kept(graph_server: GraphServer) -> None:
    sleeps = Sleeps()
    with _sender(graph_server.url, sleeps, token="wrong") as s:
        result = s.send(sample_graph(1))
    assert (result.outcome, result.status, result.attempts, result.acked) == ("refused", 401, 1, False)
    assert sleeps.delays == []


def test_retry_after_is_honoured_on_503_and_429(graph_server: GraphServer) -> None:
    graph_server.fail_next = [(503, {"Retry-After": "2"}), (429, {"Retry-After": "1"})]
    sleeps = Sleeps()
    with _sender(graph_server.url, sleeps) as s:
        result = s.send(sample_graph(1))
    assert (result.outcome, result.attempts) == ("applied", 3)
    assert sleeps.delays == [2.0, 1.0]


def test_5xx_exhausts_retries_with_full_jitter_backoff(graph_server: GraphServer) -> None:
    graph_server.fail_next = [(500, {})] * 10
    sleeps = Sleeps()
    with Sender(graph_server.url, "tok-edge-1", retries=4, backoff_base=0.5, backoff_max=3.0, sleep=sleeps) as s:
        result = s.send(sample_graph(1))
    assert (result.outcome, result.status, result.attempts) == ("unavailable", 500, 5)
    assert len(sleeps.delays) == 4
    for n, d in enumerate(sleeps.delays):
        assert 0.0 <= d <= min(3.0, 0.5 * 2**n)


def test_connection_refused_is_unavailable_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    with _sender(f"http://127.0.0.1:{port}", sleeps, retries=2) as s:
        result = s.send(sample_graph(1))
    assert (result.outcome, result.status, result.attempts) == ("unavailable", None, 3)
    assert "connection error" in result.error
    assert len(sleeps.delays) == 2


def test_a_200_that_is_not_an_acknowledgement_is_not_taken_as_one(graph_server: GraphServer) -> None:
    graph_server.fail_next = [(200, {})]
    with _sender(graph_server.url) as s:
        result = s.send(sample_graph(1))
    assert (result.outcome, result.status, result.acked) == ("refused", 200, False)
    assert "without an EdgeGraph acknowledgement" in result.error


def test_backoff_schedule_is_full_jitter_capped() -> None:
    delays = backoff_delays(0.5, 8.0, random.Random(1))
    got = [next(delays) for _ in range(200)]
    caps = [min(8.0, 0.5 * 2**n) for n in range(200)]
    assert all(0 <= d <= c for d, c in zip(got, caps, strict=True))
    tail = got[10:]
    assert max(tail) > 6.0
    assert min(tail) < 2.0
    assert sum(tail) / len(tail) == pytest.approx(4.0, rel=0.2)


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_sender_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        Sender("clarion:8000", "t")
    with pytest.raises(ValueError, match="agent token is required"):
        Sender("http://clarion:8000", "")


def test_a_ca_bundle_path_is_loaded_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    import certifi

    Sender("https://clarion:8000", "t", verify=certifi.where()).close()
    with pytest.raises(FileNotFoundError):
        Sender("https://clarion:8000", "t", verify=str(tmp_path / "missing-ca.pem"))
