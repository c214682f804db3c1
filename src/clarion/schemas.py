"""The exported contracts: GraphQL SDL and the EdgeGraph JSON Schema, rendered from the code."""

from __future__ import annotations

import json

from clarion.api.graphql.schema import build_schema
from clarion.config import Settings
from clarion_edge import wire


def render_graphql_sdl() -> str:
    return build_schema(Settings()).as_str() + "\n"


def render_edgegraph_json_schema() -> str:
    return json.dumps(wire.json_schema(), indent=2, sort_keys=True) + "\n"
