"""Custom scalars: GraphQL's Int is 32-bit, but byte counters and epoch milliseconds are not."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

Long = NewType("Long", int)

SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=int,
        description="A 64-bit integer (byte and packet counters, epoch milliseconds UTC).",
    )
}
