"""Settings of the pxGrid consumer service, from a TOML file (``[pxgrid]`` table) and CLI overrides.

Timings are settings so tests can run the real state machine in milliseconds; the defaults follow Cisco's guidance
(poll a PENDING account every ≥60 s, a DISABLED one every ≥5 min, back off up to about 60 s between reconnects).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

_NODE_NAME = re.compile(r"^[a-z0-9_.\-]{1,100}$")
_DESCRIPTION = re.compile(r"^[A-Za-z0-9 _,.\-]{0,50}$")


@dataclass(frozen=True, slots=True)
class PxGridSettings:
    """Everything the consumer needs; ``validate()`` says what is wrong and what is accepted."""

    node_name: str = ""
    hosts: tuple[str, ...] = ()  # pxGrid (PSN/PAN) hostnames or IPs; control calls fall back through them
    port: int = 8910
    client_cert: Path | None = None  # certificate account: PEM chain presented on every TLS connection
    client_key: Path | None = None
    ca_cert: Path | None = None  # CA bundle that signed ISE's pxGrid certificate; None = system trust store
    password_file: Path | None = None  # password account: read it, or AccountCreate and store it here (0600)
    description: str = "Clarion identity consumer"
    verify_hostname: bool = True
    subscribe_sgt: bool = True  # TrustSec security group and SGACL topics
    subscribe_user_groups: bool = True
    session_topic_all: bool = True  # prefer sessionTopicAll (ISE 3.3p2+: also sessions without an IP) when offered
    # timings (seconds)
    pending_retry_s: float = 60.0
    disabled_retry_s: float = 300.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    http_timeout_s: float = 30.0
    ping_interval_s: float = 20.0
    read_timeout_s: float = 60.0
    receipt_timeout_s: float = 5.0
    recovery_margin_s: float = 60.0  # backfill starts this long before the last merged timestamp
    # limits
    max_batch: int = 1000  # sessions handed to the sink at once
    dedup_window: int = 200_000  # recently merged sessions remembered to drop exact repeats
    max_message_bytes: int = 64 * 1024 * 1024
    # the service's status/control HTTP API
    status_host: str = "127.0.0.1"
    status_port: int | None = 8911  # None: no status API; 0: any free port
    server: str | None = None  # Clarion server base URL for the HTTP sink
    token_file: Path | None = None

    @property
    def cert_mode(self) -> bool:
        return self.client_cert is not None

    def validate(self) -> PxGridSettings:
        problems: list[str] = []
        if not _NODE_NAME.match(self.node_name.lower()):
            problems.append(f"node_name {self.node_name!r}: 1-100 characters of a-z 0-9 - _ . (case-insensitive)")
        if not self.hosts:
            problems.append("hosts: give at least one pxGrid node, e.g. hosts = ['ise-psn1.corp.local']")
        if not 1 <= self.port <= 65535:
            problems.append(f"port {self.port}: must be 1..65535")
        if self.client_cert is None and self.password_file is None:
            problems.append("give client_cert (+ client_key) for a certificate account, or password_file")
        if self.client_cert is not None and self.password_file is not None:
            problems.append("client_cert and password_file are exclusive: an account is either kind")
        for name in ("client_cert", "client_key", "ca_cert"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                problems.append(f"{name} {path}: no such file")
        if not _DESCRIPTION.match(self.description):
            problems.append("description: at most 50 characters of letters, digits, space _ , - .")
        for name in ("pending_retry_s", "disabled_retry_s", "backoff_base_s", "backoff_cap_s", "http_timeout_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0")
        if self.status_port is not None and not 0 <= self.status_port <= 65535:
            problems.append(f"status_port {self.status_port}: must be 0..65535")
        if self.max_batch < 1:
            problems.append("max_batch: must be >= 1")
        if problems:
            raise ValueError("pxGrid settings are invalid:\n  " + "\n  ".join(problems))
        return replace(self, node_name=self.node_name.lower())


_PATHS = {"client_cert", "client_key", "ca_cert", "password_file", "token_file"}


def load_settings(path: Path | None = None, **overrides: Any) -> PxGridSettings:
    """Read ``[pxgrid]`` from a TOML file (if given), apply non-None overrides, validate."""
    values: dict[str, Any] = {}
    known = {f.name for f in fields(PxGridSettings)}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read pxGrid config {path}: {exc}") from exc
        table = doc.get("pxgrid", doc)
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [pxgrid] must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{path}: unknown [pxgrid] keys {unknown}; accepted: {sorted(known)}")
        values.update(table)
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in _PATHS & values.keys():
        values[key] = Path(values[key])
    if isinstance(values.get("hosts"), str):
        values["hosts"] = tuple(h.strip() for h in values["hosts"].split(",") if h.strip())
    elif "hosts" in values:
        values["hosts"] = tuple(values["hosts"])
    try:
        settings = PxGridSettings(**values)
    except TypeError as exc:
        raise ValueError(f"pxGrid settings: {exc}") from exc
    return settings.validate()
