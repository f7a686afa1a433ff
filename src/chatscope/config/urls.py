"""The one check every configured endpoint URL passes: an HTTP(S) URL, nothing else."""

from __future__ import annotations

__all__ = ["check_http_url"]


def check_http_url(value: str | None) -> str | None:
    """`value` unchanged if it is unset or starts with http:// or https://; else `ValueError`."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value
