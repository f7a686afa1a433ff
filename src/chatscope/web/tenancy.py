"""Who is calling, and what one application instance owns.

A tenant proves itself with `Authorization: Bearer <key>`: the key's SHA-256 is compared in
constant time with every configured hash (`server.api_keys`, tenant name to `sha256:<hex>`), so
the server never holds a key. With no keys configured there is one tenant, `local` (the owner of
the CLI's sessions too), and only loopback clients are served. A request may bring its own
provider key in `X-Provider-Key`: it goes into that request's `ScopeRequest` and nowhere else.

`ServerState` is what `create_app` builds for one application: the container, the key ring, the
turn limiter and the running turns. Requests reach it through `request.app.state`; each builds
its own scope from it, so nothing of one request is reachable from another.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import SecretStr

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.schema import LOCAL_OWNER
from chatscope.config.settings import Settings
from chatscope.containers.application import ApplicationContainer
from chatscope.services.chat import ChatSession
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.subagents.profile import SubagentProfile
from chatscope.web.errors import PROVIDER_KEY_HEADER, ApiError
from chatscope.web.turns import TurnLimiter, Turns

__all__ = [
    "HASH_PREFIX",
    "Caller",
    "CallerDep",
    "KeyRing",
    "ServerDep",
    "ServerState",
    "current_caller",
    "hash_key",
    "is_loopback",
    "server_of",
]

HASH_PREFIX = "sha256:"
_BEARER = "bearer "


def hash_key(key: str) -> str:
    """The form a key is configured in: `sha256:<hex digest of its UTF-8 bytes>`."""
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or `localhost`) can only be reached from this machine."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class KeyRing:
    """The configured key hashes, by tenant; tells which tenant a key belongs to."""

    __slots__ = ("_hashes",)

    def __init__(self, api_keys: Mapping[str, str]) -> None:
        self._hashes = tuple(api_keys.items())

    @property
    def open(self) -> bool:
        """No keys configured: one local tenant, loopback clients only."""
        return not self._hashes

    def tenant_of(self, key: str) -> str | None:
        """The tenant whose hash matches `key`'s, or None. Every hash is compared, in constant
        time, whether or not one matched earlier."""
        offered = hash_key(key).encode()
        found = None
        for tenant, hashed in self._hashes:
            if hmac.compare_digest(offered, hashed.encode()):
                found = tenant
        return found


@dataclass(frozen=True, slots=True)
class Caller:
    """The tenant of one request and the provider key it brought, if any (never shown)."""

    tenant: str
    provider_key: SecretStr | None = None

    def secret(self) -> str | None:
        """The provider key's plain text, to scrub it from anything shown."""
        return self.provider_key.get_secret_value() if self.provider_key else None


class ServerState:
    """What one application instance owns; built by `create_app`, kept on `app.state`."""

    __slots__ = ("container", "keys", "limiter", "settings", "turns")

    def __init__(self, container: ApplicationContainer) -> None:
        self.container = container
        self.settings: Settings = container.settings()
        self.keys = KeyRing(self.settings.server.api_keys)
        self.limiter = TurnLimiter(self.settings.server.max_turns_per_tenant)
        self.turns = Turns()

    def profiles(self) -> Mapping[str, SubagentProfile]:
        """The subagent profiles, by name (read once by the container)."""
        profiles: Mapping[str, SubagentProfile] = self.container.subagent_profiles()
        return profiles

    def catalog(self) -> SessionCatalog:
        """The saved sessions; 501 when history is kept in memory only."""
        if self.settings.history_backend != "database":
            raise ApiError(
                501,
                "this server keeps no sessions (history_backend is memory)",
                code="sessions_unavailable",
            )
        catalog: SessionCatalog = self.container.storage.session_catalog()
        return catalog

    def open_chat(self, request: ScopeRequest, *, max_turns: int | None = None) -> ChatSession:
        """A chat in a fresh scope built from `request`."""
        context = self.container.runtime.scopes().foreground(request)
        options: dict[str, Any] = {"context": context}
        if max_turns is not None:
            options["max_turns"] = max_turns
        chat: ChatSession = self.container.runtime.chat_session(**options)
        return chat


async def server_of(request: Request) -> ServerState:
    """The application instance's state (async: FastAPI runs plain functions in threads)."""
    server: ServerState = request.app.state.chatscope
    return server


ServerDep = Annotated[ServerState, Depends(server_of)]


async def current_caller(request: Request, server: ServerDep) -> Caller:
    """The calling tenant (401 for a missing or wrong key) and its provider key."""
    tenant = _tenant(request, server.keys)
    key = request.headers.get(PROVIDER_KEY_HEADER, "").strip()
    return Caller(tenant, SecretStr(key) if key else None)


CallerDep = Annotated[Caller, Depends(current_caller)]


def _tenant(request: Request, keys: KeyRing) -> str:
    if keys.open:
        client = request.client.host if request.client else None
        if request.client is not None and not is_loopback(client):
            raise _unauthorised("this server has no API keys and serves loopback clients only")
        return LOCAL_OWNER
    header = request.headers.get("authorization", "")
    if not header.lower().startswith(_BEARER):
        raise _unauthorised("send your API key as 'Authorization: Bearer <key>'")
    tenant = keys.tenant_of(header[len(_BEARER) :].strip())
    if tenant is None:
        raise _unauthorised("the API key is not valid")
    return tenant


def _unauthorised(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})
