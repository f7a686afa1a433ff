"""Documented output-token limits per model family, applied to the `maxOutputTokens` setting.

The seed default (65536) is above what several model families accept, and their APIs refuse a
larger value rather than lower it. Each table lists model-name prefixes, most specific first;
a model no table knows is sent the setting unchanged.
"""

from __future__ import annotations

__all__ = ["ANTHROPIC_OUTPUT_LIMITS", "GEMINI_OUTPUT_LIMITS", "capped_output_tokens"]

OutputLimits = tuple[tuple[str, int], ...]

ANTHROPIC_OUTPUT_LIMITS: OutputLimits = (
    ("claude-opus-4", 32_000),
    ("claude-sonnet-4", 64_000),
    ("claude-haiku-4", 64_000),
    ("claude-3-7-sonnet", 64_000),
    ("claude-3-5", 8_192),
    ("claude-3", 4_096),
)

# Gemini 2.5 and 3 accept 65536; the 2.0 and 1.5 families answer 400 above 8192.
GEMINI_OUTPUT_LIMITS: OutputLimits = (
    ("gemini-3", 65_536),
    ("gemini-2.5", 65_536),
    ("gemini-2.0", 8_192),
    ("gemini-1.5", 8_192),
    ("gemini-1.0", 2_048),
    ("gemini-pro", 2_048),
)


def capped_output_tokens(model: str, ceiling: int, limits: OutputLimits) -> int:
    """`ceiling` (the `maxOutputTokens` setting), lowered to the model's limit where known.

    Gemini model names may come as `models/gemini-...`; the prefix is ignored.
    """
    name = model.removeprefix("models/")
    limit = next((tokens for prefix, tokens in limits if name.startswith(prefix)), None)
    return ceiling if limit is None else min(ceiling, limit)
