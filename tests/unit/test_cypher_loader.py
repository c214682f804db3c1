"""Named statements: every file declares its parameters, and a mismatch raises."""

from __future__ import annotations

import pytest

from clarion.store import cypher

ALL = sorted(
    p.relative_to(cypher.cypher_dir()).with_suffix("").as_posix()
    for p in cypher.cypher_dir().rglob("*.cypher")
    if p.parent.name in ("merge", "query", "examples") and ".falkordb" not in p.name
)


def test_there_are_statements() -> None:
    assert "merge/batch" in ALL
    assert "query/policy_matrix" in ALL


@pytest.mark.parametrize("name", ALL)
def test_every_statement_declares_exactly_the_parameters_it_uses(name: str) -> None:
    import re

    st = cypher.load(name, "neo4j")
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", st.text))
    assert used == set(st.params), f"{name}: header declares {sorted(st.params)}, text uses {sorted(used)}"


def test_missing_and_undeclared_parameters_raise() -> None:
    st = cypher.load("query/batch_lookup", "falkordb")
    with pytest.raises(ValueError, match=r"missing \['seq'\]"):
        st.check({"agent_id": "a"})
    with pytest.raises(ValueError, match=r"undeclared \['sequence'\]"):
        st.check({"agent_id": "a", "seq": 1, "sequence": 1})
    st.check({"agent_id": "a", "seq": 1})


def test_header_is_required_and_names_are_checked() -> None:
    with pytest.raises(ValueError, match="params"):
        cypher.parse("x", "MATCH (n) RETURN n")
    with pytest.raises(ValueError, match="invalid statement name"):
        cypher.load("../etc/passwd", "neo4j")
    with pytest.raises(FileNotFoundError, match="no Cypher statement"):
        cypher.load("query/nope", "neo4j")
