"""A local OpenAI-compatible chat server for the interactive chat's end-to-end tests.

Each answer names the model it was asked for and quotes the prompt, in Markdown (bold text and a
code block); a prompt containing "slowly" gets a long answer, one word every `slow_delay`
seconds, so a test has time to stop it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.cli import openai_text_stream
from tests.support.replay_server import RecordedRequest, ReplayServer, ScriptedResponse

__all__ = ["SLOW_WORD", "answer_of", "chat_server", "last_prompt"]

SLOW_WORD = "tick"


def last_prompt(request: RecordedRequest) -> str:
    """The text of the last user message of a Chat Completions request."""
    messages = request.json()["messages"]
    content: Any = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def answer_of(model: str, prompt: str) -> list[str]:
    """The pieces of the quick answer to `prompt` from `model`."""
    return [
        "**Hello** from ",
        f"{model}. You said: {prompt}\n\n",
        "```python\nprint('hi')\n",
        "```\n",
    ]


def _respond(slow_delay: float) -> Any:
    def respond(request: RecordedRequest) -> ScriptedResponse:
        prompt = last_prompt(request)
        if "slowly" in prompt:
            words = [f"{SLOW_WORD}{index} " for index in range(400)]
            return ScriptedResponse.sse(openai_text_stream(*words), chunk_delay=slow_delay)
        model = request.json()["model"]
        return ScriptedResponse.sse(openai_text_stream(*answer_of(model, prompt)))

    return respond


@contextmanager
def chat_server(slow_delay: float = 0.05) -> Iterator[ReplayServer]:
    """A started server answering every chat request as described above."""
    server = ReplayServer()
    server.respond_with(_respond(slow_delay))
    server.start()
    try:
        yield server
    finally:
        server.stop()
