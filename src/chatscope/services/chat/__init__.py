"""The chat loop: `ChatSession`, how a model call is retried and its events assembled, the
repair of tool-call pairs every request's history passes, the typed output a turn may ask
for, and what a model call reports (`CallTelemetry`). Other rooms use these public names.
"""

from __future__ import annotations

from chatscope.services.chat.assembly import ResponseAssembler
from chatscope.services.chat.call_telemetry import CallTelemetry
from chatscope.services.chat.output import OutputSpec, output_spec, strict_json_schema
from chatscope.services.chat.ports import Compressor
from chatscope.services.chat.retry import (
    OpenedStream,
    RetryNotice,
    RetryPolicy,
    Sleep,
    open_stream,
    should_retry,
    stream_with_retry,
)
from chatscope.services.chat.session import ChatRules, ChatSession, open_chat_session
from chatscope.services.chat.tool_pairs import (
    INTERRUPTED_CALL_ERROR,
    is_well_paired,
    repair_tool_pairs,
)

__all__ = [
    "INTERRUPTED_CALL_ERROR",
    "CallTelemetry",
    "ChatRules",
    "ChatSession",
    "Compressor",
    "OpenedStream",
    "OutputSpec",
    "ResponseAssembler",
    "RetryNotice",
    "RetryPolicy",
    "Sleep",
    "is_well_paired",
    "open_chat_session",
    "open_stream",
    "output_spec",
    "repair_tool_pairs",
    "should_retry",
    "stream_with_retry",
    "strict_json_schema",
]
