"""How identities from different sources meet: one spelling for usernames, MACs and switch names.

ISE says ``CORP\\alice`` or ``alice@corp.local``, AD says ``alice``: the graph keys users by the lower-case
account name so a session and a directory entry land on the same ``User`` node.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

MAX_USERNAME = 256
_MAC = re.compile(r"^[0-9a-f]{2}([:\-.]?[0-9a-f]{2}){5}$")
_DOTTED_MAC = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")


def looks_like_mac(text: str) -> bool:
    t = text.strip().lower()
    return bool(_MAC.match(t) or _DOTTED_MAC.match(t))


@lru_cache(maxsize=65_536)
def normalise_username(raw: str | None) -> str | None:
    """``CORP\\Alice`` / ``alice@corp.local`` / ``Alice`` → ``alice``; None for MAB (the MAC) and machine auth.

    Machine authentication (``host/pc01.corp.local``) names a computer, not a person, and MAB sessions carry
    the endpoint's MAC as the user name: neither is a ``User``.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text or text.lower().startswith("host/") or looks_like_mac(text):
        return None
    if "\\" in text:
        text = text.rsplit("\\", 1)[1]
    if "@" in text:
        text = text.split("@", 1)[0]
    text = text.strip().lower()
    if not text or len(text) > MAX_USERNAME or looks_like_mac(text):
        return None
    return text


@lru_cache(maxsize=65_536)
def canonical_ip(text: str) -> str | None:
    """Canonical text of an IP address, or None when it is not one (cached: a stream repeats its IPs)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def machine_name(raw: str | None) -> str | None:
    """``host/PC01.corp.local`` (machine authentication) → ``pc01``, the AD computer's short name."""
    if raw is None or "/" not in raw or not raw.strip().lower().startswith("host/"):
        return None
    name = raw.strip()[5:].split(".", 1)[0].strip().lower()
    return name[:MAX_USERNAME] or None
