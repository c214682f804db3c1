"""The pxGrid consumer's life: activate the account, look services up, fetch secrets, subscribe, backfill, stream;
on any failure back off with jitter and do it all again (nodes and secrets may have changed).

Nothing is lost across a disconnect or a sequence gap: every (re)subscription is followed by a REST backfill from
the last merged timestamp (``getSessionsForRecovery``, else ``getSessions``), and dedup drops the overlap.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from typing import Any

from clarion.sources.pxgrid.control import ControlClient, ServiceNode
from clarion.sources.pxgrid.convert import format_timestamp
from clarion.sources.pxgrid.errors import PxGridError, ServiceUnavailableError, StompError
from clarion.sources.pxgrid.pubsub import ConnectionLost, MalformedFrame, PubSubConnection
from clarion.sources.pxgrid.rest import (
    SESSION_SERVICE,
    TRUSTSEC_CONFIG_SERVICE,
    NotSupported,
    SessionDirectory,
    TrustSecConfig,
)
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import STREAM_JOIN, SessionSink
from clarion.sources.pxgrid.state import IdentityState, Sequencer
from clarion.sources.pxgrid.transport import http_client, ssl_context

log = logging.getLogger(__name__)

SUB_SESSIONS, SUB_SGT, SUB_SGACL, SUB_GROUPS = "clarion-sessions", "clarion-sgt", "clarion-sgacl", "clarion-groups"
#: Sessions handed to the sink at once during a backfill, so a bulk download goes as several big requests in
#: flight (the HTTP sink's ``bulk_batch``) while the stream's batches stay small for latency (decision 0013).
BACKFILL_BATCH = 20_000


class PxGridConsumer:
    """Runs until ``stop()``; ``status()`` and ``resync()`` are safe to call from other threads."""

    def __init__(
        self,
        settings: PxGridSettings,
        sink: SessionSink,
        *,
        ctx: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx or ssl_context(settings)
        self.http = http_client(settings, self.ctx)
        self.control = ControlClient(settings, self.http)
        # queued stream messages are joined up to STREAM_JOIN requests' worth: a backlog goes as requests in flight
        self.state = IdentityState(sink, settings.max_batch * STREAM_JOIN, settings.dedup_window)
        self.sequencer = Sequencer()
        self.rng = rng or random.Random()  # noqa: S311 - backoff jitter
        self.phase = "starting"
        self.account_state: str | None = None
        self.last_error: str | None = None
        self.pubsub_node: str | None = None
        self.topics: dict[str, str] = {}
        self.attempts = 0
        self._stop = threading.Event()
        self._resync = threading.Event()
        self._conn: PubSubConnection | None = None
        #: Session messages already queued on the socket are merged into one sink batch (up to ``max_batch``);
        #: the batch is handed over as soon as no further frame is waiting, so an idle stream adds no delay.
        self._unflushed = False

    # -- control from other threads -------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def resync(self) -> None:
        """Ask for a full ``getSessions`` download at the next opportunity."""
        self._resync.set()

    def status(self) -> dict[str, Any]:
        st = self.state
        with st.lock:
            return {
                "state": self.phase,
                "account_state": self.account_state,
                "node_name": self.settings.node_name,
                "pubsub_node": self.pubsub_node,
                "topics": dict(self.topics),
                "last_message_ms": st.last_message_ms,
                "watermark_ms": st.watermark_ms,
                "last_error": self.last_error,
                "attempts": self.attempts,
                "counters": st.counters.as_dict(),
                "security_groups": len(st.sgt_by_name),
            }

    # -- main loop ------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Connect, stream, and reconnect with exponential backoff and jitter until stopped."""
        failures = 0
        try:
            while not self._stop.is_set():
                self.attempts += 1
                streamed = False
                try:
                    streamed = self._cycle()
                except PxGridError as exc:
                    self.last_error = str(exc)
                    log.error("pxGrid: %s", exc)
                except Exception as exc:  # a long-running service logs a surprise and reconnects, never dies
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("pxGrid: unexpected failure")
                finally:
                    self._close_conn()
                if self._stop.is_set():
                    break
                failures = 1 if streamed else failures + 1
                self.state.counters.reconnects += 1
                delay = self._backoff(failures)
                self.phase = "backoff"
                log.info("pxGrid: reconnecting in %.2f s", delay)
                self._stop.wait(delay)
        finally:
            self.phase = "stopped"
            self.http.close()

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2 ** max(failures - 1, 0))
        return float(ceiling / 2 + self.rng.uniform(0, ceiling / 2))

    def _on_account_state(self, state: str) -> None:
        self.account_state = state
        self.phase = {"ENABLED": "connecting", "PENDING": "pending", "DISABLED": "disabled"}[state]
        if state == "DISABLED":
            self.last_error = self.control.disabled_message()
        elif state == "PENDING":
            self.last_error = f"account {self.settings.node_name!r} is PENDING approval in ISE"

    def _cycle(self) -> bool:
        """One connection's life; returns True if it reached streaming (so the backoff starts small again)."""
        self.phase = "activating"
        if self.settings.password_file is not None and not self.control.password:
            self.control.load_or_create_password(self.settings.password_file)
        self.control.wait_enabled(self._stop, self._on_account_state)
        if self._stop.is_set():
            return False
        session_nodes = self.control.service_lookup(SESSION_SERVICE)
        directory = SessionDirectory(self.control, self.http, session_nodes)
        topic_all = session_nodes[0].prop("sessionTopicAll") if self.settings.session_topic_all else None
        topics = {SUB_SESSIONS: topic_all or _required_prop(session_nodes, "sessionTopic")}
        if self.settings.subscribe_user_groups and (group_topic := session_nodes[0].prop("groupTopic")):
            topics[SUB_GROUPS] = group_topic
        pubsub_service = _required_prop(session_nodes, "wsPubsubService")
        trustsec = self._trustsec(pubsub_service, topics)
        self._connect_pubsub(pubsub_service)
        conn = self._conn
        assert conn is not None
        self.sequencer.reset()
        last = list(topics)[-1]  # frames are handled in order: a RECEIPT for the last SUBSCRIBE covers them all
        for sub_id, topic in topics.items():
            conn.subscribe(topic, sub_id, receipt="clarion-ready" if sub_id == last else None)
        if not conn.wait_receipt("clarion-ready", self.settings.receipt_timeout_s):
            log.info("pxGrid: no RECEIPT for SUBSCRIBE within %.1f s; continuing", self.settings.receipt_timeout_s)
        self.topics = topics
        self._refresh_context(directory, trustsec)
        self._backfill(directory, full=self.state.watermark_ms is None)
        self.phase = "streaming"
        self.last_error = None
        pending, conn.pending = conn.pending, []
        for early in pending:
            self._handle(early, directory, trustsec)
        while not self._stop.is_set():
            if self._resync.is_set():
                self._resync.clear()
                self._backfill(directory, full=True)
            try:
                frame = conn.poll(0.0 if self._unflushed else 0.25)
            except MalformedFrame as exc:
                self.state.counters.malformed += 1
                log.warning("pxGrid: skipping a malformed frame: %s", exc)
                continue
            except ConnectionLost as exc:
                self.last_error = str(exc)
                log.warning("pxGrid: connection lost: %s", exc)
                return True
            if frame is not None:
                self._handle(frame, directory, trustsec)
            elif self._unflushed:
                self._flush()
        if self._unflushed:
            self._flush()  # stopping: what was received is handed over, as it was before messages were joined
        return True

    def _flush(self) -> None:
        self._unflushed = False
        self.state.flush()

    def _trustsec(self, pubsub_service: str, topics: dict[str, str]) -> TrustSecConfig | None:
        if not self.settings.subscribe_sgt:
            return None
        try:
            nodes = self.control.service_lookup(TRUSTSEC_CONFIG_SERVICE)
            trustsec = TrustSecConfig(self.control, self.http, nodes)
        except ServiceUnavailableError as exc:
            log.warning("pxGrid: no TrustSec configuration service (%s); SGT numbers stay unknown", exc)
            return None
        if (nodes[0].prop("wsPubsubService") or pubsub_service) != pubsub_service:
            log.warning("pxGrid: TrustSec topics are on another pubsub service; only its REST snapshot is used")
            return trustsec
        if sg_topic := nodes[0].prop("securityGroupTopic"):
            topics[SUB_SGT] = sg_topic
        if acl_topic := nodes[0].prop("securityGroupAclTopic"):
            topics[SUB_SGACL] = acl_topic
        return trustsec

    def _connect_pubsub(self, service: str) -> None:
        """Try the pubsub providers in ISE's order, with a fresh AccessSecret for each."""
        self.phase = "connecting"
        last: PxGridError | None = None
        for node in self.control.service_lookup(service):
            if not node.ws_url:
                continue
            secret = self.control.access_secret(node.node_name)
            conn = PubSubConnection(self.settings, self.ctx, node.ws_url, node.node_name, secret)
            try:
                conn.open()
            except ConnectionLost as exc:
                last = exc
                log.warning("pxGrid: pubsub %s unreachable: %s", node.node_name, exc)
                conn.close()
                continue
            self._conn, self.pubsub_node = conn, node.node_name
            return
        raise last or ServiceUnavailableError(f"{service}: no provider advertises wsUrl")

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        self._unflushed = False
        self.state.discard_pending()
        if conn is not None:
            conn.close()

    def _refresh_context(self, directory: SessionDirectory, trustsec: TrustSecConfig | None) -> None:
        """SGT names → tags and users' AD groups, needed before sessions are converted."""
        if trustsec is not None:
            self.state.set_security_groups(trustsec.get_security_groups())
            try:
                self.state.set_sgacls(trustsec.get_security_group_acls())
            except NotSupported as exc:
                log.info("pxGrid: %s", exc)
        if self.settings.subscribe_user_groups:
            try:
                self.state.set_user_groups(directory.get_user_groups() or {"userGroups": []})
            except NotSupported as exc:
                log.info("pxGrid: %s", exc)

    def _backfill(self, directory: SessionDirectory, *, full: bool, since_ms: int | None = None) -> None:
        """Full download, or recovery from ``since_ms`` (default: the last merged timestamp) minus a margin."""
        self.phase = "backfilling"
        self.state.counters.backfills += 1
        add = self.state.add_session
        mark = since_ms if since_ms is not None else self.state.watermark_ms
        self.state.flush()  # what the stream handed over before the backfill goes first, in its own batch
        stream_batch, self.state.max_batch = self.state.max_batch, max(self.state.max_batch, BACKFILL_BATCH)
        try:
            if full or mark is None:
                count = directory.get_sessions(add)
            else:
                start = format_timestamp(max(mark - int(self.settings.recovery_margin_s * 1000), 0))
                try:
                    count = directory.get_sessions_for_recovery(add, start)
                except NotSupported:
                    count = directory.get_sessions(add, start_timestamp=start)
            self.state.flush()
        finally:
            self.state.max_batch = stream_batch
        log.info("pxGrid: %s backfill read %d sessions", "full" if full else "recovery", count)
        self.phase = "streaming"

    def _handle(self, frame: Any, directory: SessionDirectory, trustsec: TrustSecConfig | None) -> None:
        if frame.command == "ERROR":
            PubSubConnection.raise_if_error(frame)
        if frame.command != "MESSAGE":
            return
        st = self.state
        st.counters.messages += 1
        st.last_message_ms = int(time.time() * 1000)
        sub = frame.headers.get("subscription", "")
        doc = _json_or_none(frame.body)
        seq = doc.get("sequence") if isinstance(doc, dict) else None
        loss = self.sequencer.check(sub, seq)
        if loss:
            st.counters.gaps += 1
            log.warning("pxGrid: sequence %s on %s (got %s): recovering", loss, sub, seq)
        if sub == SUB_SESSIONS:
            before_gap = st.watermark_ms  # recovery starts from the last message before the loss
            sessions = doc.get("sessions") if isinstance(doc, dict) else None
            if loss or not isinstance(sessions, list):  # a malformed one is counted there
                self._flush()  # what was joined before goes first, then this message
                st.on_session_message(doc)
            else:  # joined with the messages queued behind it (add_session hands over at max_batch)
                for raw in sessions:
                    st.add_session(raw)
                self._unflushed = True
            if loss:
                self._backfill(directory, full=False, since_ms=before_gap)
        elif sub == SUB_SGT:
            st.on_security_group_message(doc)
            if loss and trustsec is not None:
                st.set_security_groups(trustsec.get_security_groups())
        elif sub == SUB_SGACL:
            st.on_sgacl_message(doc)
        elif sub == SUB_GROUPS:
            st.set_user_groups(doc, replace=False)
        else:
            raise StompError(f"MESSAGE for unknown subscription {sub!r}")


def _required_prop(nodes: list[ServiceNode], key: str) -> str:
    value = nodes[0].prop(key)
    if not value:
        raise PxGridError(f"ServiceLookup {nodes[0].name}: provider {nodes[0].node_name} has no {key!r} property")
    return value


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return None
