"""Settings precedence and errors; `clarion-edge send` against a real HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edge_samples import sample_graph
from edge_test_server import GraphServer
from typer.testing import CliRunner

from clarion_edge import wire
from clarion_edge.cli import app
from clarion_edge.config import ConfigError, load_settings

TOML = """
[agent]
agent_id = "edge-bldg1"
listen = ["0.0.0.0:2055", "[::]:2056"]
window = 30
site_prefixes = ["10.0.0.0/8", "2001:db8::/32"]
spool_dir = "/tmp/spool-x"

[server]
url = "https://clarion.example:8000"
token_file = "TOKEN_FILE"

[spool]
max_batches = 50
full_policy = "drop_newest"

[exporters]
"10.0.0.1" = "sw-core-1"
"""


def _config(tmp_path: Path, text: str = TOML) -> Path:
    (tmp_path / "token").write_text("s3cret\n")
    path = tmp_path / "edge.toml"
    path.write_text(text.replace("TOKEN_FILE", str(tmp_path / "token")))
    return path


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    s = load_settings(_config(tmp_path), env={})
    assert (s.agent_id, s.window, s.listen, s.token) == ("edge-bldg1", 30.0, ("0.0.0.0:2055", "[::]:2056"), "s3cret")
    assert (s.spool_max_batches, s.spool_full_policy, s.exporters) == (50, "drop_newest", {"10.0.0.1": "sw-core-1"})
    assert "s3cret" not in repr(s)
    env = {"CLARION_EDGE_WINDOW": "10", "CLARION_EDGE_TOKEN": "from-env", "CLARION_EDGE_LISTEN": "127.0.0.1:9995"}
    s = load_settings(_config(tmp_path), env=env)
    assert (s.window, s.token, s.listen) == (10.0, "from-env", ("127.0.0.1:9995",))
    s = load_settings(_config(tmp_path), env=env, overrides={"window": 5.0, "agent_id": "edge-2", "listen": ()})
    assert (s.window, s.agent_id, s.listen) == (5.0, "edge-2", ("127.0.0.1:9995",))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("window = 30", "window = 0"), r"window \(from .*edge.toml\): 0.0 must be 1..86400 seconds"),
        (("window = 30", "window = 'soon'"), r"window \(from .*\): 'soon' is not a valid float"),
        (("[spool]", "[spooler]"), r"unknown section \[spooler\]"),
        (("max_batches", "max_batchez"), r"unknown key 'max_batchez' in \[spool\]"),
        (('"10.0.0.0/8"', '"10.0.0.0/33"'), r"site prefix '10.0.0.0/33' is not an IPv4 or IPv6 CIDR"),
        (('"[::]:2056"', '"localhost"'), r"'localhost' is not host:port"),
        (('url = "https', 'url = "ftp'), r"must be an http:// or https:// URL"),
        (('"drop_newest"', '"drop_random"'), r"'drop_random'; accepted: drop_oldest, drop_newest"),
        (('agent_id = "edge-bldg1"', 'agent_id = "edge bldg1"'), r"'edge bldg1' must be 1-128 of"),
        (("window = 30", "window = [30"), r"is not valid TOML"),
    ],
)
def test_bad_settings_say_what_where_and_what_is_accepted(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_config(tmp_path, TOML.replace(*change)), env={})


def test_token_file_from_the_environment_as_systemd_credentials_give_it(tmp_path: Path) -> None:
    (tmp_path / "cred").write_text("from-credential\n")
    env = {
        "CLARION_EDGE_AGENT_ID": "a",
        "CLARION_EDGE_SERVER": "http://x",
        "CLARION_EDGE_TOKEN_FILE": str(tmp_path / "cred"),
    }
    s = load_settings(None, env=env)
    assert s.token == "from-credential"
    assert load_settings(None, env={**env, "CLARION_EDGE_WORKER": "process"}).worker == "process"
    with pytest.raises(ConfigError, match="'fork'; accepted: thread, process"):
        load_settings(None, env={**env, "CLARION_EDGE_WORKER": "fork"})


def test_missing_agent_id_and_token_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="agent_id is required"):
        load_settings(None, env={"CLARION_EDGE_SERVER": "http://x", "CLARION_EDGE_TOKEN": "t"})
    with pytest.raises(ConfigError, match="token is required"):
        load_settings(None, env={"CLARION_EDGE_SERVER": "http://x", "CLARION_EDGE_AGENT_ID": "a"})


def test_send_command_seals_posts_and_reports(tmp_path: Path, graph_server: GraphServer) -> None:
    path = tmp_path / "g.json"
    path.write_bytes(wire.encode(sample_graph(7)))  # no digest: send seals it
    runner = CliRunner()
    args = ["send", str(path), "--server", graph_server.url, "--token", "tok-edge-1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["answer"]["applied"] is True
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert json.loads(again.output)["outcome"] == "duplicate"
    path.write_bytes(wire.encode(sample_graph(7, bytes_=1)))
    conflict = runner.invoke(app, args)
    assert conflict.exit_code == 1
    assert json.loads(conflict.output)["status"] == 409


def test_send_command_refuses_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_bytes(wire.encode(sample_graph(1)).replace(b'"sw-1"', b'"sw 1"'))
    result = CliRunner().invoke(app, ["send", str(path), "--server", "http://127.0.0.1:9", "--token", "t"])
    assert result.exit_code == 2
    assert "not a valid EdgeGraph v1" in result.output
    assert "switch.switch_id" in result.output


def test_help_teaches_with_examples() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "clarion-edge run --config" in result.output
    assert "decode" in result.output


def test_run_refuses_bad_settings_before_starting() -> None:
    runner = CliRunner()
    bad_level = runner.invoke(app, ["run", "--log-level", "LOUD"])
    assert bad_level.exit_code == 2
    assert "expected DEBUG, INFO, WARNING or ERROR" in bad_level.output
    no_id = runner.invoke(
        app, ["run", "--server", "http://127.0.0.1:9", "--token", "t"], env={"CLARION_EDGE_AGENT_ID": ""}
    )
    assert no_id.exit_code == 2
    assert "agent_id is required" in no_id.output
