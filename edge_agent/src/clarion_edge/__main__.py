"""``python -m clarion_edge`` is the ``clarion-edge`` command."""

from clarion_edge.cli import app

app(prog_name="clarion-edge")
