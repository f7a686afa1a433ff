"""The one check every configured endpoint URL passes: an HTTP(S) URL, nothing else.

It runs where the URL is given (settings, `--base-url`, profiles, MCP servers), so a URL that
cannot be requested is a configuration error reported at once, not a network failure found on
the first call and retried.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["check_http_url"]

_MAX_PORT = 65535


def check_http_url(value: str | None) -> str | None:
    """`value` unchanged if it is unset or an http:// or https:// URL with a host (and, if it
    names one, a port from 1 to 65535); else `ValueError` saying what is wrong."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    if any(character.isspace() or not character.isprintable() for character in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise ValueError(f"is not a valid URL ({exc})") from None
    if not parts.hostname:
        raise ValueError("has no host")
    if port == 0:
        raise ValueError(f"port 0 cannot be connected to; use a port from 1 to {_MAX_PORT}")
    return value
