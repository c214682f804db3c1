"""Agent settings: a TOML file, overridden by CLARION_EDGE_* variables, overridden by CLI flags.

Every value is checked here, once, with an error that names the setting, where it came from and
what is accepted, so a typo in a config file fails at start rather than at the first window.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from clarion_edge.sitenet import parse_prefix

ENV_PREFIX = "CLARION_EDGE_"
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message says which, from where, and what is accepted."""


@dataclass(frozen=True)
class Settings:
    """Everything ``clarion-edge run`` needs; field names are the TOML keys of their section."""

    agent_id: str = ""
    server: str = ""
    token: str = field(default="", repr=False)
    switch_id: str = ""
    listen: tuple[str, ...] = ("0.0.0.0:2055",)
    status_listen: str = "127.0.0.1:9102"
    window: float = 60.0
    spool_dir: Path = Path("/var/lib/clarion-edge")
    site_prefixes: tuple[str, ...] = ()
    exporters: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    retries: int = 5
    verify: bool | str = True
    spool_max_batches: int = 10_000
    spool_max_bytes: int = 1 << 30
    spool_full_policy: str = "drop_oldest"
    max_keys: int = 250_000
    max_nodes: int = 50_000
    max_edges: int = 50_000
    queue_batches: int = 16
    receive_buffer: int = 32 << 20
    log_every: float = 60.0
    worker: str = "process"


#: TOML layout: section -> {key in the file: Settings field}.
SECTIONS: dict[str, dict[str, str]] = {
    "agent": {
        "agent_id": "agent_id", "switch_id": "switch_id", "listen": "listen", "status_listen": "status_listen",
        "window": "window", "spool_dir": "spool_dir", "site_prefixes": "site_prefixes", "log_every": "log_every",
        "worker": "worker", "receive_buffer": "receive_buffer",
    },
    "server": {"url": "server", "token": "token", "token_file": "token_file", "timeout": "timeout",
               "retries": "retries", "verify": "verify"},
    "spool": {"max_batches": "spool_max_batches", "max_bytes": "spool_max_bytes", "full_policy": "spool_full_policy"},
    "limits": {"max_keys": "max_keys", "max_nodes": "max_nodes", "max_edges": "max_edges",
               "queue_batches": "queue_batches", "rcvbuf": "receive_buffer"},  # rcvbuf: the old name
}  # fmt: skip
ENV_VARS = (
    "listen",
    "server",
    "token",
    "token_file",
    "agent_id",
    "switch_id",
    "window",
    "spool_dir",
    "status_listen",
    "site_prefixes",
    "worker",
    "receive_buffer",
)
#: receive_buffer bounds: below, a burst of one second at modest rates is dropped; above, kernel memory is wasted.
RECEIVE_BUFFER_MIN, RECEIVE_BUFFER_MAX = 64 << 10, 1 << 30
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(raw: object) -> int:
    """Bytes from an int or text such as ``33554432``, ``32M``, ``32MiB``, ``1G`` (binary units)."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError
    if isinstance(raw, int):
        return raw
    m = _SIZE.match(raw)
    if m is None:
        raise ValueError
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


def parse_hostport(text: str, *, what: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if m is None or not 0 <= int(m.group(2) or m.group(4)) <= 65535:
        raise ConfigError(f"{what} {text!r} is not host:port (e.g. 0.0.0.0:2055, [::]:2055)")
    return (m.group(1) or m.group(3)), int(m.group(2) or m.group(4))


def load_settings(
    config: Path | None = None, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Merge file < environment < flags, then validate."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if config is not None:
        for k, v in _read_toml(config).items():
            values[k], origin[k] = v, str(config)
    env = os.environ if env is None else env
    for name in ENV_VARS:
        var = ENV_PREFIX + name.upper()
        if env.get(var):
            raw = env[var]
            values[name] = raw.split(",") if name in ("listen", "site_prefixes") else raw
            origin[name] = f"${var}"
    for k, v in (overrides or {}).items():
        if v is not None and v != ():
            values[k], origin[k] = v, f"--{k.replace('_', '-')}"
    token_file = values.pop("token_file", None)
    if token_file and not values.get("token"):
        try:
            values["token"] = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read token_file {token_file!r} (from {origin['token_file']}): {exc}") from exc
        origin["token"] = str(token_file)
    return _validate(values, origin)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    out: dict[str, Any] = {}
    for section, body in doc.items():
        if section == "exporters":
            if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
                raise ConfigError(f'{path}: [exporters] maps exporter IP to switch id, e.g. "10.0.0.1" = "sw-core-1"')
            out["exporters"] = dict(body)
            continue
        keys = SECTIONS.get(section)
        if keys is None or not isinstance(body, dict):
            raise ConfigError(
                f"{path}: unknown section [{section}]; expected one of {sorted([*SECTIONS, 'exporters'])}"
            )
        for k, v in body.items():
            if k not in keys:
                raise ConfigError(f"{path}: unknown key {k!r} in [{section}]; expected one of {sorted(keys)}")
            out[keys[k]] = v
    return out


def _validate(values: dict[str, Any], origin: dict[str, str]) -> Settings:
    known = {f.name: f for f in fields(Settings)}
    kw: dict[str, Any] = {}

    def where(name: str) -> str:
        return f"{name} (from {origin.get(name, 'the default')})"

    for name, raw in values.items():
        default = known[name].default
        try:
            if name in ("listen", "site_prefixes"):
                items = [raw] if isinstance(raw, str) else list(raw)
                kw[name] = tuple(str(x).strip() for x in items if str(x).strip())
            elif name == "spool_dir":
                kw[name] = Path(raw)
            elif name == "verify":
                kw[name] = raw if isinstance(raw, bool) else {"true": True, "false": False}.get(str(raw).lower(), raw)
            elif name == "exporters":
                kw[name] = dict(raw)
            elif name == "receive_buffer":
                kw[name] = parse_size(raw)
            elif isinstance(default, bool):
                kw[name] = bool(raw)
            elif isinstance(default, int):
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                kw[name] = int(raw)
            elif isinstance(default, float):
                kw[name] = float(raw)
            else:
                kw[name] = str(raw)
        except (TypeError, ValueError):
            if name == "receive_buffer":
                msg = f"{where(name)}: {raw!r} is not a size in bytes (e.g. 33554432, 32M, 256MiB)"
                raise ConfigError(msg) from None
            raise ConfigError(f"{where(name)}: {raw!r} is not a valid {type(default).__name__}") from None
    s = Settings(**kw)
    _check(s, where)
    return s


def _check(s: Settings, where: Any) -> None:
    if not s.agent_id:
        raise ConfigError("agent_id is required: set [agent] agent_id, CLARION_EDGE_AGENT_ID or --agent-id")
    for name in ("agent_id", "switch_id"):
        value = getattr(s, name)
        if value and not IDENT.match(value):
            raise ConfigError(f"{where(name)}: {value!r} must be 1-128 of A-Z a-z 0-9 . _ : @ / - (starting alnum)")
    if not s.server.startswith(("http://", "https://")):
        raise ConfigError(f"{where('server')}: {s.server!r} must be an http:// or https:// URL of the Clarion server")
    if not s.token:
        raise ConfigError("the agent token is required: [server] token or token_file, CLARION_EDGE_TOKEN or --token")
    if not s.listen:
        raise ConfigError(f"{where('listen')}: at least one UDP address to listen on is required")
    for item in s.listen:
        parse_hostport(item, what=where("listen"))
    if s.status_listen:
        parse_hostport(s.status_listen, what=where("status_listen"))
    for p in s.site_prefixes:
        try:
            parse_prefix(p)
        except ValueError as exc:
            raise ConfigError(f"{where('site_prefixes')}: {exc}") from None
    for ip, sw in s.exporters.items():
        if not IDENT.match(sw):
            raise ConfigError(f"[exporters] {ip!r} = {sw!r}: the switch id must match {IDENT.pattern}")
    if not 1 <= s.window <= 86_400:
        raise ConfigError(f"{where('window')}: {s.window} must be 1..86400 seconds")
    if s.worker not in ("thread", "process"):
        raise ConfigError(f"{where('worker')}: {s.worker!r}; accepted: thread, process")
    if s.spool_full_policy not in ("drop_oldest", "drop_newest"):
        raise ConfigError(f"{where('spool_full_policy')}: {s.spool_full_policy!r}; accepted: drop_oldest, drop_newest")
    if not RECEIVE_BUFFER_MIN <= s.receive_buffer <= RECEIVE_BUFFER_MAX:
        raise ConfigError(
            f"{where('receive_buffer')}: {s.receive_buffer} bytes; accepted: {RECEIVE_BUFFER_MIN} (64K) to "
            f"{RECEIVE_BUFFER_MAX} (1G), e.g. 32M"
        )
    if not 2 <= s.queue_batches <= 1024:
        raise ConfigError(f"{where('queue_batches')}: {s.queue_batches}; accepted: 2..1024 slots of 1 MiB")
    positive = ("spool_max_batches", "spool_max_bytes", "max_keys", "timeout", "log_every")
    for name in positive:
        if getattr(s, name) <= 0:
            raise ConfigError(f"{where(name)}: must be positive, got {getattr(s, name)}")
    for name in ("max_nodes", "max_edges"):
        if getattr(s, name) < 3:
            raise ConfigError(f"{where(name)}: must be at least 3, got {getattr(s, name)}")
    if s.retries < 0:
        raise ConfigError(f"{where('retries')}: must be >= 0, got {s.retries}")
