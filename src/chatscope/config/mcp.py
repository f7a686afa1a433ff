"""MCP servers the application may connect to (`CHATSCOPE_MCP_SERVERS__<name>__...`).

A server is either a command chatscope starts (stdio) or a URL it connects to (streamable
HTTP). Header values may be tokens: they are secrets and never print.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from chatscope.config.urls import check_http_url

__all__ = ["McpServerSettings", "check_server_name"]

_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def check_server_name(name: str) -> str:
    """`name` if it can prefix a tool name the model sees; a `ValueError` otherwise.

    The model sees `{server}__{tool}`: a server name without `__` that does not end in `_`
    makes the first `__` the boundary, so two servers never give two tools one name.
    """
    if not _SERVER_NAME.match(name) or "__" in name or name.endswith("_"):
        raise ValueError(
            f"MCP server name {name!r} must be 1-32 letters, digits, '-' or '_' "
            "(no '__'), starting with a letter or digit and not ending with '_'"
        )
    return name


class McpServerSettings(BaseModel):
    """One MCP server: `command` (+ `args`, `env`) for stdio, or `url` (+ `headers`).

    `env` is the whole environment of a stdio server beyond a minimal safe set (PATH, HOME,
    locale): nothing else of chatscope's environment, and never a provider key, reaches it.
    `cwd` is a stdio server's working directory. `headers` go with every request to a URL
    server; a scope may add its own (`ScopeRequest.mcp_headers`), HTTP servers only.
    `timeout` (seconds) bounds starting the server and each call. With `requires_approval`
    every call of the server's tools waits for the scope's approver (`tools.auto_approve`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0)
    requires_approval: bool = False

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command (stdio) or url (streamable HTTP)")
        if self.url is not None and (self.args or self.env or self.cwd):
            raise ValueError("args, env and cwd apply to a command, not to a url")
        if self.command is not None and self.headers:
            raise ValueError("headers apply to a url, not to a command")
        return self

    def __repr_args__(self) -> list[tuple[str | None, object]]:
        """The fields, without `env` values (a server's own keys may be in them)."""
        return [
            (key, sorted(value) if key == "env" else value)
            for key, value in super().__repr_args__()
        ]

    @property
    def transport(self) -> str:
        """`stdio` or `http`."""
        return "stdio" if self.command is not None else "http"
