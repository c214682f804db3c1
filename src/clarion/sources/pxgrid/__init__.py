"""Cisco ISE pxGrid 2.0 consumer: control plane, Session Directory REST, WebSocket/STOMP pub/sub, and the service.

Public entry points: ``service.run(settings, sink)``, ``settings.load_settings``, the sinks in ``sink``, and the
typer sub-app ``cli.app`` mounted as ``clarion pxgrid``.
"""

from clarion.sources.pxgrid.consumer import PxGridConsumer
from clarion.sources.pxgrid.convert import session_from_ise
from clarion.sources.pxgrid.service import PxGridService, run
from clarion.sources.pxgrid.settings import PxGridSettings, load_settings
from clarion.sources.pxgrid.sink import HttpSink, MemorySink, SessionSink

__all__ = [
    "HttpSink",
    "MemorySink",
    "PxGridConsumer",
    "PxGridService",
    "PxGridSettings",
    "SessionSink",
    "load_settings",
    "run",
    "session_from_ise",
]
