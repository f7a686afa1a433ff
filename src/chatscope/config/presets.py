"""Named presets for OpenAI-compatible servers: where they live and which variable holds the key.

A preset is a shorthand for a scope's provider, base URL, key variable and default model, e.g.
`chatscope chat --preset openrouter "..."`. The key itself is never part of a preset: it is read
from the named environment variable at call time, like every other key (REQ-SP4-003).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from chatscope.errors import ConfigurationError

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """One named endpoint. `key_variable` None means the server takes no key (a local server);
    `default_model` None means the server serves whatever it was started with, so the model
    must be named."""

    name: str
    base_url: str
    key_variable: str | None
    default_model: str | None
    description: str
    provider: str = "openai"

    @property
    def auth_required(self) -> bool:
        """Whether a call without a key is an error rather than a keyless request."""
        return self.key_variable is not None

    @property
    def key_variables(self) -> tuple[str, ...]:
        """The environment variables a key is read from, in order."""
        return (self.key_variable,) if self.key_variable else ()


_PRESET_LIST = (
    Preset(
        name="openrouter",
        base_url="https://openrouter.ai/api/v1",
        key_variable="OPENROUTER_API_KEY",
        default_model="openai/gpt-4o-mini",
        description="OpenRouter",
    ),
    Preset(
        name="deepseek",
        base_url="https://api.deepseek.com/v1",
        key_variable="DEEPSEEK_API_KEY",
        default_model="deepseek-chat",
        description="DeepSeek",
    ),
    Preset(
        name="xai",
        base_url="https://api.x.ai/v1",
        key_variable="XAI_API_KEY",
        default_model="grok-3-mini",
        description="xAI Grok",
    ),
    Preset(
        name="groq",
        base_url="https://api.groq.com/openai/v1",
        key_variable="GROQ_API_KEY",
        default_model="llama-3.3-70b-versatile",
        description="Groq",
    ),
    Preset(
        name="mistral",
        base_url="https://api.mistral.ai/v1",
        key_variable="MISTRAL_API_KEY",
        default_model="mistral-small-latest",
        description="Mistral",
    ),
    Preset(
        name="ollama",
        base_url="http://127.0.0.1:11434/v1",
        key_variable=None,
        default_model="llama3.2",
        description="Ollama on this machine",
    ),
    Preset(
        name="lmstudio",
        base_url="http://127.0.0.1:1234/v1",
        key_variable=None,
        default_model=None,
        description="LM Studio on this machine",
    ),
    Preset(
        name="llamacpp",
        base_url="http://127.0.0.1:8080/v1",
        key_variable=None,
        default_model="local",
        description="llama.cpp server on this machine (serves the model it was started with)",
    ),
    Preset(
        name="vllm",
        base_url="http://127.0.0.1:8000/v1",
        key_variable=None,
        default_model=None,
        description="vLLM on this machine",
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({preset.name: preset for preset in _PRESET_LIST})


def get_preset(name: str) -> Preset:
    """The preset called `name`; an unknown name is a `ConfigurationError` listing the known."""
    preset = PRESETS.get(name)
    if preset is None:
        known = ", ".join(sorted(PRESETS))
        raise ConfigurationError(f"unknown preset {name!r}; known presets: {known}")
    return preset
