"""Errors of the pxGrid client, each naming the system, the node and what an operator can do about it."""

from __future__ import annotations


class PxGridError(Exception):
    """Anything that went wrong talking to ISE pxGrid; the message says where and what to check."""


class PxGridAuthError(PxGridError):
    """ISE refused our credentials (401) or our client certificate (TLS handshake)."""


class AccountDisabledError(PxGridError):
    """The pxGrid client account is DISABLED on ISE; an administrator must enable it."""


class AccountPendingError(PxGridError):
    """The account still waits for approval in ISE (raised only when waiting is turned off)."""


class ServiceUnavailableError(PxGridError):
    """ServiceLookup gave no provider, or every provider node failed."""


class StompError(PxGridError):
    """The pubsub node sent a STOMP ERROR frame, or a frame we cannot parse."""


class SinkError(PxGridError):
    """The session sink (graph merger or Clarion server) refused or failed a batch."""
