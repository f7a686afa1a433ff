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
    ProfileError,
    ProviderError,
    ToolError,
    UnknownSessionError,
)
from chatscope.services.chat import ChatSession
from chatscope.services.compression import HistoryCompressor
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
from chatscope.services.history import InMemoryHistory
from chatscope.services.messages import Message, Role, Usage
from chatscope.services.ports import (
    HistoryOpener,
    HistoryStore,
    ModelProvider,
    TelemetrySink,
    Tool,
)
from chatscope.services.runtime import (
    AgentRuntimeContext,
    AgentRuntimeState,
    create_agent_runtime_context,
)
from chatscope.services.scopes import ScopeRequest
from chatscope.services.subagent import SubagentProfile, SubAgentScope

__all__ = [
    "AgentRuntimeContext",
    "AgentRuntimeState",
    "ApplicationContainer",
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
    "HistoryCompressor",
    "HistoryOpener",
    "HistoryStore",
    "HistoryStoreError",
    "InMemoryHistory",
    "Message",
    "MissingProviderRuntimeError",
    "ModelProvider",
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
    "ToolError",
    "ToolResultEvent",
    "TurnDone",
    "UnknownSessionError",
    "Usage",
    "UsageEvent",
    "create_agent_runtime_context",
    "load_settings",
]
