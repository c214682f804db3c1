"""Bearer tokens: an agent token writes only as its own agent_id; readers read; admins do all.

Tokens come from settings for development (``CLARION_AGENT_TOKENS``, ``CLARION_READER_TOKEN``,
``CLARION_ADMIN_TOKEN``) or a tokens file for production. Tokens are compared by their
SHA-256 digests and never logged.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from clarion.config import Settings


class Role(StrEnum):
    AGENT = "agent"
    READER = "reader"
    ADMIN = "admin"
    IDENTITY = "identity"  # the pxGrid service: may post identity, nothing else


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    agent_id: str | None = None

    def may_read(self) -> bool:
        return self.role in (Role.READER, Role.ADMIN)

    def may_write_as(self, agent_id: str) -> bool:
        return self.role is Role.ADMIN or (self.role is Role.AGENT and self.agent_id == agent_id)


def _h(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class TokenRegistry:
    by_digest: dict[bytes, Principal] = field(default_factory=dict)

    def add(self, token: str, principal: Principal) -> None:
        if len(token) < 16:
            who = principal.agent_id or principal.role.value
            raise ValueError(f"the token for {who} is too short: use at least 16 random characters")
        self.by_digest[_h(token)] = principal

    def lookup(self, token: str) -> Principal | None:
        return self.by_digest.get(_h(token))

    @property
    def empty(self) -> bool:
        return not self.by_digest

    @classmethod
    def from_settings(cls, s: Settings) -> TokenRegistry:
        reg = cls()
        for item in filter(None, (p.strip() for p in s.agent_tokens.split(","))):
            agent_id, sep, token = item.partition("=")
            if not sep or not agent_id.strip() or not token.strip():
                raise ValueError(
                    f"CLARION_AGENT_TOKENS: {agent_id.strip() or item[:12]!r}... is not 'agent-id=token' "
                    "(expected a comma-separated list like 'edge-sw1=TOKEN1,edge-sw2=TOKEN2')"
                )
            reg.add(token.strip(), Principal(Role.AGENT, agent_id.strip()))
        if s.reader_token is not None:
            reg.add(s.reader_token.get_secret_value(), Principal(Role.READER))
        if s.admin_token is not None:
            reg.add(s.admin_token.get_secret_value(), Principal(Role.ADMIN))
        if s.tokens_file is not None:
            reg._load_file(s)
        return reg

    def _load_file(self, s: Settings) -> None:
        assert s.tokens_file is not None
        try:
            data = tomllib.loads(s.tokens_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"CLARION_TOKENS_FILE {s.tokens_file}: {e}") from e
        for agent_id, token in dict(data.get("agents", {})).items():
            self.add(str(token), Principal(Role.AGENT, str(agent_id)))
        for token in data.get("readers", []):
            self.add(str(token), Principal(Role.READER))
        for token in data.get("admins", []):
            self.add(str(token), Principal(Role.ADMIN))
        for token in data.get("identity", []):
            self.add(str(token), Principal(Role.IDENTITY))


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


def principal_from_header(registry: TokenRegistry, header: str | None) -> Principal:
    if registry.empty:
        raise _unauthorized(
            "no API tokens are configured on this server: set CLARION_ADMIN_TOKEN, CLARION_READER_TOKEN, "
            "CLARION_AGENT_TOKENS or CLARION_TOKENS_FILE"
        )
    if not header:
        raise _unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    principal = registry.lookup(token.strip())
    if principal is None:
        raise _unauthorized("unknown or revoked token")
    return principal


def current_principal(request: Request) -> Principal:
    registry: TokenRegistry = request.app.state.tokens
    return principal_from_header(registry, request.headers.get("authorization"))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
