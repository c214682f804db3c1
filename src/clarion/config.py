"""Settings, read from ``CLARION_*`` environment variables (and a ``.env`` file).

Injected through ``get_settings`` so tests override them; never a module-level singleton.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GRAPH_URL_SCHEMES = (
    "falkordb://", "falkordbs://", "redis://",
    "neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://",
)  # fmt: skip


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_", env_file=".env", extra="ignore")

    #: Unset: embedded FalkorDB under ``data_dir``. ``falkordb://host:port`` external FalkorDB;
    #: ``neo4j://``, ``bolt://`` (and ``+s``/``+ssc`` variants) Neo4j 5.
    graph_url: str | None = None
    graph_name: str = "clarion"
    data_dir: Path = Path(".clarion")
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")
    neo4j_database: str = "neo4j"
    falkordb_password: SecretStr | None = None
    store_timeout_s: float = 120.0

    #: ``agent-id=token,agent-id2=token2`` (development); production uses ``tokens_file``.
    agent_tokens: str = ""
    reader_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    #: TOML file with ``[agents] id = "token"``, ``readers = [..]``, ``admins = [..]``.
    tokens_file: Path | None = None

    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_nodes: int = Field(default=100_000, ge=1)
    max_edges: int = Field(default=100_000, ge=1)
    graphql_max_depth: int = Field(default=10, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_page_cap: int = Field(default=500, ge=1)

    #: A background job (clustering) running longer is stopped, its worker killed.
    job_timeout_s: float = Field(default=1800.0, ge=10)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    @field_validator("graph_url")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(GRAPH_URL_SCHEMES):
            raise ValueError(
                f"CLARION_GRAPH_URL={v!r}: unknown scheme; use falkordb://host:port, neo4j://host:7687 "
                "or bolt://host:7687, or leave it unset for the embedded FalkorDB"
            )
        return v


@lru_cache
def get_settings() -> Settings:
    return Settings()
