"""Clarion edge agent: collects NetFlow at a switch and sends per-switch graphs to the server."""

__version__ = "0.1.0"
