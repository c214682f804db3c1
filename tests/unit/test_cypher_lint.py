"""Every Neo4j statement in cypher/ passes Neo4j's own front end, and the lint really fails bad ones.

Neo4j cannot run here, so this lint (tools/cypher-lint, @neo4j-cypher/language-support) is the
check between a Cypher typo and a failed production write. `make test` installs it first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clarion.store import cypher

ROOT = Path(__file__).resolve().parents[2]
LINT_DIR = ROOT / "tools" / "cypher-lint"
CYPHER = ROOT / "cypher"
NODE = os.environ.get("CLARION_NODE") or shutil.which("node")  # CLARION_NODE: try another Node.js

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: the Neo4j Cypher lint needs Node.js 20+"),
    pytest.mark.skipif(
        not (LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support").is_dir(),
        reason="tools/cypher-lint/node_modules is missing: run `cd tools/cypher-lint && npm install` (make test does)",
    ),
]


def run_lint(*args: str | Path) -> tuple[int, dict[str, Any] | None, str]:
    assert NODE is not None
    proc = subprocess.run(
        [NODE, str(LINT_DIR / "lint.mjs"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, report, proc.stderr


def neo4j_statement_files() -> set[Path]:
    return {
        p for p in CYPHER.rglob("*.cypher") if p.name != "falkordb.cypher" and not p.name.endswith(".falkordb.cypher")
    }


@pytest.fixture(scope="module")
def repo_report() -> dict[str, Any]:
    code, report, stderr = run_lint(CYPHER)
    assert report is not None, f"lint printed no report (exit {code}): {stderr}"
    assert code == (0 if report["ok"] else 1), stderr
    return report


def test_every_neo4j_statement_passes_the_neo4j_front_end(repo_report: dict[str, Any]) -> None:
    diagnostics = [
        f"{d['file']}:{d['line']}:{d['column']} {d['severity']}: {d['message']}" for d in repo_report["diagnostics"]
    ]
    assert diagnostics == []
    assert repo_report["ok"] is True
    assert repo_report["model"] == str(CYPHER / "schema" / "model.json")


def test_the_lint_saw_every_neo4j_file_and_no_falkordb_one(repo_report: dict[str, Any]) -> None:
    linted = {(ROOT / f).resolve() for f in repo_report["files"]}
    assert linted == {p.resolve() for p in neo4j_statement_files()}
    assert CYPHER / "merge" / "batch.cypher" in linted
    assert all("falkordb" not in p.name for p in linted)


def test_statement_count_matches_what_the_loader_runs(repo_report: dict[str, Any]) -> None:
    """Schema scripts are split by the loader; single-statement files are one statement each."""
    files = neo4j_statement_files()
    schema = CYPHER / "schema" / "neo4j.cypher"
    expected = len(cypher.load_script("schema/neo4j")) + len(files - {schema})
    assert repo_report["statements"] == expected


BROKEN = {
    "merge/syntax.cypher": "// params: rows\nUNWIND $rows AS row\nMERGE (d:Device {uid: row.uid}\nRETURN d\n",
    "merge/undeclared.cypher": (
        "// params: rows\nUNWIND $rows AS row\nMERGE (d:Device {uid: row.uid})\nSET d.last_seen = $now\n"
    ),
    "merge/typo_label.cypher": "// params: uid\nMERGE (d:Devcie {uid: $uid})\n",
    "query/unused.cypher": "// params: uid, extra\nMATCH (d:Device {uid: $uid}) RETURN d.uid AS uid\n",
    "query/no_header.cypher": "MATCH (d:Device) RETURN count(d) AS n\n",
    "query/semantic.cypher": "// params: -\nMATCH (d:Device) RETURN e.uid AS uid, nosuchfn(d) AS x\n",
    "schema/neo4j.cypher": (
        "// params: -\nCREATE INDEX a IF NOT EXISTS FOR (d:Device) ON (d.mac);\n"
        "CREATE CONSTRAINT b IF NOT EXISTS FOR (d:Device) REQUIRE d.uid IS UNIQE;\n"
    ),
    # FalkorDB-only text is not Neo4j's business: both spellings are skipped.
    "schema/falkordb.cypher": "// params: -\nthis is not cypher;\n",
    "merge/syntax.falkordb.cypher": "// params: -\nthis is not cypher either\n",
}


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("cypher")
    for rel, text in BROKEN.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    model = root / "model.json"
    model.write_text(json.dumps({"labels": ["Device"], "relationship_types": ["FLOWS_TO"]}))
    code, report, stderr = run_lint("--no-cache", "--model", model, root)
    assert report is not None, stderr
    return code, report, root


def found(report: dict[str, Any], root: Path, rel: str) -> list[tuple[Any, ...]]:
    return [
        (d["statement"], d["severity"], d["source"], d["line"], d["column"], d["message"])
        for d in report["diagnostics"]
        if Path(d["file"]) == root / rel
    ]


def test_broken_statements_fail_the_lint(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    code, report, root = broken_report
    assert code == 1
    assert report["ok"] is False
    assert {Path(f).relative_to(root).as_posix() for f in report["files"]} == {k for k in BROKEN if "falkordb" not in k}


def test_a_syntax_error_is_reported_where_it_is(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    diags = found(report, root, "merge/syntax.cypher")
    assert diags[0][:5] == (0, "error", "neo4j", 4, 1)
    assert diags[0][5].startswith("Invalid input 'RETURN'")


def test_an_undeclared_parameter_is_an_error(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    assert found(report, root, "merge/undeclared.cypher") == [
        (0, "error", "neo4j", 4, 19, "Parameter $now is not defined.")
    ]


def test_a_declared_but_unused_parameter_is_an_error(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    assert found(report, root, "query/unused.cypher") == [
        (None, "error", "clarion", 1, 1, "parameter $extra is declared in the header but no statement uses it")
    ]


def test_a_missing_header_is_an_error(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    [diag] = found(report, root, "query/no_header.cypher")
    assert diag[:5] == (None, "error", "clarion", 1, 1)
    assert "// params:" in diag[5]


def test_a_misspelt_label_in_a_merge_is_reported(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    [diag] = found(report, root, "merge/typo_label.cypher")
    assert diag[:5] == (0, "warning", "clarion", 2, 10)
    assert diag[5].startswith("Label or relationship type Devcie is not in the data model")


def test_semantic_errors_come_from_neo4j(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    messages = [d[5] for d in found(report, root, "query/semantic.cypher")]
    assert "Variable `e` not defined" in messages
    assert any(m.startswith("Function nosuchfn is not present in the database") for m in messages)


def test_schema_scripts_are_split_and_each_statement_located(broken_report: tuple[int, dict[str, Any], Path]) -> None:
    _, report, root = broken_report
    diags = found(report, root, "schema/neo4j.cypher")
    assert diags, "the second schema statement is invalid (UNIQE) and must be reported"
    assert {(d[0], d[3]) for d in diags} == {(1, 3)}


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, report, stderr = run_lint(tmp_path / "nope")
    assert code == 2
    assert report is None
    assert "path not found" in stderr


def test_a_long_report_reaches_the_reader_whole(tmp_path: Path) -> None:
    """Node cuts piped output at exit(): a report far above a pipe buffer (here ~0.8 MB) must still parse."""
    names = [f"p{i}" for i in range(3000)]
    (tmp_path / "many.cypher").write_text(f"// params: {', '.join(names)}\nRETURN 1 AS one\n")
    code, report, stderr = run_lint("--no-model", tmp_path)
    assert code == 1, stderr
    assert report is not None
    assert sorted(d["message"] for d in report["diagnostics"]) == sorted(
        f"parameter ${n} is declared in the header but no statement uses it" for n in names
    )


def test_the_cache_never_hides_a_changed_statement(tmp_path: Path) -> None:
    target = tmp_path / "q.cypher"
    target.write_text("// params: -\nMATCH (n) RETURN n AS node\n")
    assert run_lint("--no-model", tmp_path)[0] == 0
    target.write_text("// params: -\nMATCH (n) RETURN n AS node, m\n")
    code, report, _ = run_lint("--no-model", tmp_path)
    assert code == 1
    assert report is not None
    assert [d["message"] for d in report["diagnostics"]] == ["Variable `m` not defined"]
