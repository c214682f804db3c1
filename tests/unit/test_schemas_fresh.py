"""The exported contracts match the code: a stale SDL or JSON Schema fails here."""

from __future__ import annotations

from pathlib import Path

from clarion.schemas import render_edgegraph_json_schema, render_graphql_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_graphql_sdl_is_fresh() -> None:
    committed = (ROOT / "graphql" / "schema.graphql").read_text()
    assert committed == render_graphql_sdl(), "graphql/schema.graphql is stale: run `make schema`"


def test_edgegraph_json_schema_is_fresh() -> None:
    committed = (ROOT / "docs" / "edgegraph-v1.schema.json").read_text()
    assert committed == render_edgegraph_json_schema(), "docs/edgegraph-v1.schema.json is stale: run `make schema`"


def test_wire_format_doc_example_is_a_valid_edgegraph() -> None:
    from clarion_edge import wire

    text = (ROOT / "docs" / "wire-format.md").read_text()
    example = text.split("```json", 1)[1].split("```", 1)[0]
    g = wire.decode(example.encode())
    assert g.digest == g.content_digest()


def test_tokens_file_example_loads(tmp_path: Path) -> None:
    from clarion.api.auth import Role, TokenRegistry
    from clarion.config import Settings

    reg = TokenRegistry.from_settings(Settings(tokens_file=ROOT / "compose" / "tokens.toml.example"))
    assert reg.lookup("change-me-32-random-characters-xx").agent_id == "edge-sw1"  # type: ignore[union-attr]
    assert reg.lookup("change-me-admin-token-32-chars-xxx").role is Role.ADMIN  # type: ignore[union-attr]
    assert reg.lookup("change-me-reader-token-32-chars-xx").role is Role.READER  # type: ignore[union-attr]
