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
