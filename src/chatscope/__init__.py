"""chatscope: multi-provider LLM chat agents and subagents, each in its own frozen runtime scope.

The public surface is re-exported here; everything else is an implementation module.
"""

from __future__ import annotations

from chatscope.config import EphemeralSettings, ExplicitSettings, Settings, load_settings
from chatscope.config.presets import PRESETS, Preset
from chatscope.containers import ApplicationContainer
from chatscope.errors import (
    AuthenticationRequiredError,
    ChatscopeError,
    ConfigurationError,
    ErrorCategory,
    HistoryStoreError,
    MissingProviderRuntimeError,
    OutputValidationError,
    ProfileError,
    ProviderError,
    ToolError,
    UnknownSessionError,
)
from chatscope.services.chat import ChatSession
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    FinishReason,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
    TurnDone,
    UsageEvent,
)
from chatscope.services.history.compression import HistoryCompressor
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, Role, Usage
from chatscope.services.runtime.context import AgentRuntimeContext, create_agent_runtime_context
from chatscope.services.runtime.ports import (
    HistoryOpener,
    HistoryStore,
    ModelProvider,
    TelemetrySink,
)
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.services.tools.function import FunctionTool, tool
from chatscope.services.tools.ports import (
    ApprovalRequest,
    Approver,
    Tool,
    ToolContext,
    ToolDeclaration,
)

__all__ = [
    "AgentRuntimeContext",
    "AgentRuntimeState",
    "ApplicationContainer",
    "ApprovalRequest",
    "Approver",
    "AuthenticationRequiredError",
    "ChatEvent",
    "ChatSession",
    "ChatscopeError",
    "CompletedTurn",
    "ConfigurationError",
    "EphemeralSettings",
    "ErrorCategory",
    "ExplicitSettings",
    "FinishReason",
    "FunctionTool",
    "HistoryCompressor",
    "HistoryOpener",
    "HistoryStore",
    "HistoryStoreError",
    "InMemoryHistory",
    "Message",
    "MissingProviderRuntimeError",
    "ModelProvider",
    "OutputValidationError",
    "PRESETS",
    "Preset",
    "ProfileError",
    "ProviderError",
    "Role",
    "ScopeRequest",
    "Settings",
    "SubAgentScope",
    "SubagentProfile",
    "TelemetrySink",
    "TextDelta",
    "ThinkingDelta",
    "Tool",
    "ToolCallEvent",
    "ToolContext",
    "ToolDeclaration",
    "ToolError",
    "ToolResultEvent",
    "TurnDone",
    "UnknownSessionError",
    "Usage",
    "UsageEvent",
    "create_agent_runtime_context",
    "load_settings",
    "tool",
]
