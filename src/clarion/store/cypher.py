"""Named Cypher statements, loaded from ``cypher/`` by name.

Every file starts with ``// params: a, b`` (or ``// params: -``). Running a statement with a
missing or an undeclared parameter raises, so a typo can never silently become ``null``.
A dialect variant ``<name>.falkordb.cypher`` beside ``<name>.cypher`` wins for that store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

_HEADER = re.compile(r"^//\s*params:\s*(?P<names>.*)$")
_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")


@dataclass(frozen=True, slots=True)
class Statement:
    name: str
    text: str
    params: frozenset[str]

    def check(self, given: Mapping[str, Any]) -> None:
        """Raise ValueError unless ``given`` has exactly the declared parameters."""
        keys = set(given)
        missing = self.params - keys
        extra = keys - self.params
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {sorted(missing)}")
            if extra:
                parts.append(f"undeclared {sorted(extra)}")
            raise ValueError(f"statement {self.name!r}: {', '.join(parts)} (declared: {sorted(self.params)})")


def cypher_dir() -> Path:
    """The statements folder: shipped as package data, or the repository's ``cypher/``."""
    packaged = resources.files("clarion") / "cypher"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "cypher"


def parse(name: str, text: str) -> Statement:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    m = _HEADER.match(first.strip())
    if not m:
        raise ValueError(f"statement {name!r} must start with a '// params: a, b' (or '// params: -') line")
    raw = m.group("names").strip()
    names = frozenset() if raw == "-" else frozenset(p.strip().lstrip("$") for p in raw.split(",") if p.strip())
    return Statement(name=name, text=text.strip(), params=names)


@cache
def load(name: str, dialect: str) -> Statement:
    """Load statement ``name`` (e.g. ``merge/batch``) for ``dialect`` (``falkordb`` or ``neo4j``)."""
    if not _NAME.match(name):
        raise ValueError(f"invalid statement name {name!r}")
    base = cypher_dir()
    for candidate in (base / f"{name}.{dialect}.cypher", base / f"{name}.cypher"):
        if candidate.is_file():
            return parse(name, candidate.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"no Cypher statement {name!r} for {dialect} under {base}")


def bind(name: str, dialect: str, params: Mapping[str, Any] | None) -> tuple[Statement, dict[str, Any]]:
    """The statement ``name`` for ``dialect`` with ``params`` checked against its declaration."""
    st = load(name, dialect)
    p = dict(params or {})
    st.check(p)
    return st, p


def load_script(name: str) -> list[str]:
    """A schema script: several statements separated by lines ending in ``;``; comments dropped."""
    text = (cypher_dir() / f"{name}.cypher").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
    return [s.strip() for s in body.split(";") if s.strip()]
