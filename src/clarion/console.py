"""Terminal output: rich consoles that stay readable when piped or logged (no 80-column wrap)."""

from __future__ import annotations

import sys

from rich.console import Console


def wide_console() -> Console:
    """A console; when stdout is not a terminal (CI logs, pipes), wide enough for the tables."""
    return Console() if sys.stdout.isatty() else Console(width=160)
