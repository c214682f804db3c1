"""`clarion demo` does what the README promises, as a newcomer would run it (a real subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_prints_devices_flows_matrix_and_clusters(tmp_path: Path) -> None:
    clarion = Path(sys.executable).with_name("clarion")
    out = subprocess.run(
        [str(clarion), "demo", "--devices", "400", "--switches", "2", "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    m = re.search(r"(\d+) devices, (\d+) switches, (\d+) FLOWS_TO edges, (\d+) flows", text)
    assert m, text[-3000:]
    devices, switches, edges, flows = map(int, m.groups())
    assert devices > 400  # local devices plus remote hosts
    assert switches == 2  # the data-centre switch and one access switch, each with its agent
    assert edges > 0
    assert flows > 0
    assert "Observed SGT policy matrix" in text
    assert "duplicate=True, counters unchanged" in text
    assert "Behavioural clusters and SGT recommendations" in text
    assert "/graphql" in text
    assert (tmp_path / "demo" / "appendonlydir").is_dir()  # the embedded store persisted where asked
