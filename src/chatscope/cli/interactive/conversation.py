"""The application of one interactive session, and the chat scope it talks in.

The application container is built once per interactive session, in the background while the
first prompt already shows (`Startup`): settings read, containers imported and built, resources
started (database migrated, MCP servers up). Every switch of provider or model, and every new
or resumed session, builds a new foreground scope (`Conversation`); a switch keeps the session
id, so the conversation goes on where it was (in memory, the new scope takes over the old
scope's history).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatscope.errors import ConfigurationError

if TYPE_CHECKING:
    import argparse

    from chatscope.adapters.storage.catalog import SessionSummary
    from chatscope.config.settings import Settings
    from chatscope.containers.application import ApplicationContainer
    from chatscope.services.chat import ChatSession
    from chatscope.services.runtime.context import AgentRuntimeContext
    from chatscope.services.runtime.scopes import ScopeRequest
    from chatscope.services.runtime.state import AgentRuntimeState
    from chatscope.services.tools.ports import Approver

__all__ = ["ChatOptions", "Compressed", "Conversation", "Startup", "start_application"]

MEMORY_SESSIONS = (
    "saved sessions need history_backend=database (env CHATSCOPE_HISTORY_BACKEND); "
    "this chat keeps its history in memory"
)


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What the command line asked of the interactive chat."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    preset: str | None = None
    system_prompt: str | None = None
    session_id: str | None = None
    env_file: Path | None = None
    no_color: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, no_color: bool) -> ChatOptions:
        """The options of `chatscope [chat] [flags]` (`chatscope` alone has none)."""
        given = vars(args)
        return cls(
            provider=given.get("provider"),
            model=given.get("model"),
            base_url=given.get("base_url"),
            preset=given.get("preset"),
            system_prompt=given.get("system"),
            session_id=given.get("session"),
            env_file=given.get("env_file"),
            no_color=no_color,
        )


@dataclass(frozen=True, slots=True)
class Compressed:
    """What `/compress` did (a `CompressionStatus` value), and the history's estimated tokens
    before and after."""

    status: str
    tokens_before: int
    tokens_after: int


Warn = Callable[[str], None]
Known = Callable[[Path | None], None]
Start = Callable[[Known], Awaitable["ApplicationContainer"]]
Stop = Callable[["ApplicationContainer"], Awaitable[None]]


class Startup:
    """The application, coming up in the background; `app()` waits for it.

    `start(known)` starts it, and calls `known(data_dir)` (from any thread) as soon as the
    settings are read. `data_dir()` may be called from any thread (the prompt history's): it
    blocks until then, and is None if the settings could not be read.
    """

    __slots__ = ("_app", "_data_dir", "_known", "_start", "_stop", "_task")

    def __init__(self, start: Start, stop: Stop | None = None) -> None:
        self._start = start
        self._stop = stop
        self._task: asyncio.Task[ApplicationContainer] | None = None
        self._app: ApplicationContainer | None = None
        self._known = threading.Event()
        self._data_dir: Path | None = None

    @classmethod
    def of(cls, app: ApplicationContainer) -> Startup:
        """An application that is up already (its owner shuts it down)."""

        async def ready(known: Known) -> ApplicationContainer:
            known(app.settings().data_dir)
            return app

        return cls(ready)

    def begin(self) -> None:
        """Start it (idempotent); called once the first prompt is on the screen."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> ApplicationContainer:
        try:
            self._app = await self._start(self._settings_read)
            return self._app
        finally:
            self._known.set()

    def _settings_read(self, data_dir: Path | None) -> None:
        self._data_dir = data_dir
        self._known.set()

    @property
    def task(self) -> asyncio.Task[ApplicationContainer] | None:
        """The start, once begun."""
        return self._task

    async def app(self) -> ApplicationContainer:
        """The started application; raises what its start raised."""
        self.begin()
        assert self._task is not None  # noqa: S101 - `begin` made it
        return await asyncio.shield(self._task)

    def data_dir(self, timeout: float = 30.0) -> Path | None:
        """The settings' data directory, once known (from any thread)."""
        self._known.wait(timeout)
        return self._data_dir

    async def close(self) -> None:
        """Stop a start still running, and shut a started application down."""
        self._known.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._app is not None and self._stop is not None:
            await self._stop(self._app)


def start_application(options: ChatOptions, environ: Mapping[str, str], warn: Warn) -> Startup:
    """The application the command line's settings describe, started in the background."""

    async def start(known: Known) -> ApplicationContainer:
        read = functools.partial(_read_settings, options.env_file, environ, warn, known)
        settings = await asyncio.to_thread(read)
        app = await asyncio.to_thread(_container, settings, environ, warn)
        result = app.init_resources()
        if result is not None:
            await result
        return app

    return Startup(start, _shutdown)


def _read_settings(
    env_file: Path | None, environ: Mapping[str, str], warn: Warn, known: Known
) -> Settings:
    """The settings (read in a thread, which tells `known` their data directory at once: the
    prompt's history may be waiting for it, holding the event loop)."""
    from chatscope.config.loading import load_settings
    from chatscope.config.unknown import unknown_setting_warnings

    settings = load_settings(env_file)
    known(settings.data_dir)
    for warning in unknown_setting_warnings(environ, env_file):
        warn(f"chatscope: warning: {warning}")
    return settings


def _container(settings: Settings, environ: Mapping[str, str], warn: Warn) -> ApplicationContainer:
    """The application, exporting traces if `OTEL_*` variables ask (as every command does)."""
    from chatscope.containers.application import ApplicationContainer
    from chatscope.containers.tracing import export_traces

    app = ApplicationContainer(settings=settings, environ=dict(environ))
    export_traces(app, environ, lambda message: warn(f"chatscope: warning: {message}"))
    return app


async def _shutdown(app: ApplicationContainer) -> None:
    result = app.shutdown_resources()
    if result is not None:
        await result


class Conversation:
    """The foreground scope one interactive session talks in, rebuilt on every switch."""

    __slots__ = ("_app", "_chat", "_context", "_request")

    def __init__(self, app: ApplicationContainer, request: ScopeRequest) -> None:
        self._app = app
        self._request = request
        self._context: AgentRuntimeContext = app.runtime.scopes().foreground(request)
        self._chat: ChatSession = app.runtime.chat_session(context=self._context)

    @classmethod
    async def open(
        cls, app: ApplicationContainer, options: ChatOptions, approver: Approver
    ) -> Conversation:
        """The scope the options ask for; `session_id` continues that saved session."""
        from chatscope.cli.commands import scope_request
        from chatscope.cli.sessions import check_session

        await check_session(app, options.session_id)
        fields: dict[str, Any] = dataclasses.asdict(options)
        fields |= {"system_prompt": options.system_prompt, "approver": approver}
        return cls(app, scope_request(fields))

    @property
    def app(self) -> ApplicationContainer:
        """The application this conversation runs in."""
        return self._app

    @property
    def chat(self) -> ChatSession:
        """The chat session of the current scope."""
        return self._chat

    @property
    def context(self) -> AgentRuntimeContext:
        """The current scope."""
        return self._context

    @property
    def state(self) -> AgentRuntimeState:
        """Provider, model, session and runtime ids of the current scope."""
        return self._context.state

    @property
    def saved(self) -> bool:
        """Whether this conversation's turns are saved (the database history backend)."""
        return bool(self._app.settings().history_backend == "database")

    def switch_model(self, model: str) -> Conversation:
        """The same conversation on `model` (same provider, endpoint and key)."""
        return self._rebuilt(dataclasses.replace(self._request, model=model))

    def switch_provider(self, provider: str) -> Conversation:
        """The same conversation on `provider`, at its default endpoint and model."""
        from chatscope.config.settings import PROVIDER_NAMES
        from chatscope.services.runtime.scopes import ScopeRequest

        if provider not in PROVIDER_NAMES:
            names = ", ".join(PROVIDER_NAMES)
            raise ConfigurationError(f"unknown provider {provider!r}; one of: {names}")
        request = ScopeRequest(
            provider=provider,
            system_prompt=self._request.system_prompt,
            approver=self._request.approver,
        )
        return self._rebuilt(request)

    def new_session(self) -> Conversation:
        """A new, empty session on the same provider and model."""
        request = dataclasses.replace(self._request, session_id=None, history=None)
        return Conversation(self._app, request)

    async def resume(self, session_id: str) -> Conversation:
        """Saved session `session_id` (or the one session whose id starts with it)."""
        found = await self._find_session(session_id)
        request = dataclasses.replace(self._request, session_id=found, history=None)
        return Conversation(self._app, request)

    def _rebuilt(self, request: ScopeRequest) -> Conversation:
        """A new scope for `request`, in this conversation's session."""
        carried = None if self.saved else self._context.history
        request = dataclasses.replace(request, session_id=self.state.session_id, history=carried)
        return Conversation(self._app, request)

    async def turns(self) -> int:
        """How many prompts this session holds."""
        from chatscope.services.messages import Role

        messages = await self._context.history.messages()
        return sum(1 for message in messages if message.role is Role.USER)

    async def compress(self) -> Compressed:
        """Condense the older part of the history now, whatever its size: the threshold is
        taken as reached, and only the newest turn has to stay."""
        from chatscope.services.history.compression import HistoryCompressor
        from chatscope.services.messages import estimate_tokens

        settings = self._app.settings().compression.model_copy(update={"enabled": True})
        compressor = HistoryCompressor(self._app.summariser(), settings=settings)
        overrides = {"compression-threshold": 0.0, "compression-min-age": 1}
        ephemerals = self._context.ephemerals.with_overrides(overrides)
        history = self._context.history
        before = await history.messages()
        outcome = await compressor.maybe_compress(
            dataclasses.replace(self._context, ephemerals=ephemerals)
        )
        after = await history.messages()
        return Compressed(str(outcome.status), estimate_tokens(before), estimate_tokens(after))

    def tool_rows(self) -> list[dict[str, Any]]:
        """Name, source, description and approval of each tool of this scope."""
        from chatscope.cli.tools import tool_rows

        return tool_rows(self._app, self._context)

    async def saved_sessions(self) -> tuple[SessionSummary, ...]:
        """This user's saved sessions, the most recent first."""
        from chatscope.adapters.storage.schema import LOCAL_OWNER

        if not self.saved:
            raise ConfigurationError(MEMORY_SESSIONS)
        sessions: tuple[
            SessionSummary, ...
        ] = await self._app.storage.session_catalog().list_sessions(LOCAL_OWNER)
        return sessions

    async def _find_session(self, prefix: str) -> str:
        matches = [s.id for s in await self.saved_sessions() if s.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ConfigurationError(f"no saved session {prefix!r}; /session list shows them")
        raise ConfigurationError(f"{len(matches)} sessions start with {prefix!r}; type more of it")
