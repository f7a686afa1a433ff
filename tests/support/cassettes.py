"""Load the recorded provider traffic in ../shared/fixtures into plain interactions.

Three cassette dialects are read (see the fixtures README): pydantic-ai's `parsed_body`, vcrpy's
`body` / `body.string`, and raw bodies (`*.txt` SSE, `*.json`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

__all__ = [
    "FIXTURES",
    "FIXTURES_VARIABLE",
    "Interaction",
    "fixture_path",
    "load_cassette",
    "raw_fixture",
]

FIXTURES_VARIABLE = "CHATSCOPE_FIXTURES_DIR"


def _fixtures_dir() -> Path:
    configured = os.environ.get(FIXTURES_VARIABLE)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


FIXTURES = _fixtures_dir()


def fixture_path(relative: str) -> Path:
    """`relative` under the fixtures directory; a missing directory fails the test (or its
    module's collection) with one line saying which it is and how to point at another."""
    if not FIXTURES.is_dir():
        pytest.fail(
            f"the recorded provider fixtures directory {FIXTURES} does not exist; set "
            f"{FIXTURES_VARIABLE} to the directory holding openai/, anthropic/ and gemini/ "
            "(see docs/testing.md)",
            pytrace=False,
        )
    return FIXTURES / relative


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its response."""

    method: str
    uri: str
    request_body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def path(self) -> str:
        """The request path with its query, as a local server sees it."""
        parts = urlsplit(self.uri)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def content_type(self) -> str:
        """The response content type (`application/json` when unrecorded)."""
        return self.headers.get("content-type", "application/json")

    @property
    def is_sse(self) -> bool:
        """Whether the response is a server-sent event stream."""
        return "text/event-stream" in self.content_type

    def json(self) -> Any:
        """The response body parsed as JSON."""
        return json.loads(self.body)


def load_cassette(relative: str) -> list[Interaction]:
    """The interactions of a YAML cassette, e.g. `openai/test_chat_completion_streaming.yaml`."""
    document = yaml.safe_load(fixture_path(relative).read_text(encoding="utf-8"))
    return [_interaction(item) for item in document["interactions"]]


def raw_fixture(relative: str) -> bytes:
    """The bytes of a body-only fixture (`*.txt` SSE or `*.json`)."""
    return fixture_path(relative).read_bytes()


def _interaction(item: dict[str, Any]) -> Interaction:
    request, response = item["request"], item["response"]
    headers = {key.lower(): _first(value) for key, value in (response.get("headers") or {}).items()}
    return Interaction(
        method=request["method"],
        uri=request["uri"],
        request_body=_request_body(request),
        status=int(response["status"]["code"]),
        headers=headers,
        body=_response_body(response),
    )


def _first(value: Any) -> str:
    return str(value[0]) if isinstance(value, list) else str(value)


def _request_body(request: dict[str, Any]) -> Any:
    if "parsed_body" in request:
        return request["parsed_body"]
    body = request.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body in (None, ""):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _response_body(response: dict[str, Any]) -> bytes:
    if "parsed_body" in response:
        return json.dumps(response["parsed_body"]).encode()
    body = response.get("body")
    if isinstance(body, dict):
        body = body.get("string", "")
    if isinstance(body, bytes):
        return body
    return str(body or "").encode()
