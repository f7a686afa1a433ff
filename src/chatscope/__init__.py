"""chatscope: multi-provider LLM chat agents and subagents, each in its own frozen runtime scope.

The public surface is re-exported here; everything else is an implementation module. A name is
imported when it is first used, so `import chatscope` (and the CLI's `--help`) costs nothing of
the containers, the database or the providers until a program asks for them.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_MODULE_OF = MappingProxyType(
    {
        "AgentRuntimeContext": "chatscope.services.runtime.context",
        "AgentRuntimeState": "chatscope.services.runtime.state",
        "ApplicationContainer": "chatscope.containers",
        "ApprovalRequest": "chatscope.services.tools.ports",
        "Approver": "chatscope.services.tools.ports",
        "AuthenticationRequiredError": "chatscope.errors",
        "ChatEvent": "chatscope.services.events",
        "ChatSession": "chatscope.services.chat",
        "ChatscopeError": "chatscope.errors",
        "CompletedTurn": "chatscope.services.events",
        "ConfigurationError": "chatscope.errors",
        "EphemeralSettings": "chatscope.config",
        "ErrorCategory": "chatscope.errors",
        "ExplicitSettings": "chatscope.config",
        "FinishReason": "chatscope.services.events",
        "FunctionTool": "chatscope.services.tools.function",
        "HistoryCompressor": "chatscope.services.history.compression",
        "HistoryOpener": "chatscope.services.runtime.ports",
        "HistoryStore": "chatscope.services.runtime.ports",
        "HistoryStoreError": "chatscope.errors",
        "InMemoryHistory": "chatscope.services.history.memory",
        "Message": "chatscope.services.messages",
        "MissingProviderRuntimeError": "chatscope.errors",
        "ModelProvider": "chatscope.services.runtime.ports",
        "OutputValidationError": "chatscope.errors",
        "PRESETS": "chatscope.config.presets",
        "Preset": "chatscope.config.presets",
        "ProfileError": "chatscope.errors",
        "ProviderError": "chatscope.errors",
        "Role": "chatscope.services.messages",
        "ScopeRequest": "chatscope.services.runtime.scopes",
        "Settings": "chatscope.config",
        "SubAgentScope": "chatscope.services.subagents.profile",
        "SubagentProfile": "chatscope.services.subagents.profile",
        "TelemetrySink": "chatscope.services.runtime.ports",
        "TextDelta": "chatscope.services.events",
        "ThinkingDelta": "chatscope.services.events",
        "Tool": "chatscope.services.tools.ports",
        "ToolCallEvent": "chatscope.services.events",
        "ToolContext": "chatscope.services.tools.ports",
        "ToolDeclaration": "chatscope.services.tools.ports",
        "ToolError": "chatscope.errors",
        "ToolResultEvent": "chatscope.services.events",
        "TurnDone": "chatscope.services.events",
        "UnknownSessionError": "chatscope.errors",
        "Usage": "chatscope.services.messages",
        "UsageEvent": "chatscope.services.events",
        "create_agent_runtime_context": "chatscope.services.runtime.context",
        "load_settings": "chatscope.config",
        "tool": "chatscope.services.tools.function",
    }
)


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'chatscope' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
