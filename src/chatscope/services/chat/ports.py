"""What the chat loop asks of the rest: a compressor of long histories."""

from __future__ import annotations

from typing import Protocol

from chatscope.services.runtime.context import AgentRuntimeContext

__all__ = ["Compressor"]


class Compressor(Protocol):
    """Shrinks a scope's stored history before a turn when its size calls for it.

    The chat loop only asks; how history is summarised (`HistoryCompressor`) lives with the
    history, so the chat loop never imports it.
    """

    async def maybe_compress(self, context: AgentRuntimeContext) -> object:
        """Compress `context.history` if due; whatever happens, the turn goes on."""
        ...
