"""The application factory: one FastAPI app per `ApplicationContainer`.

The app's lifespan owns the container's resources (`init_resources` on start-up,
`shutdown_resources` on shutdown, after the running turns have had their grace period). Every
request builds a fresh scope from itself; what lives as long as the app is in `ServerState`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from chatscope.adapters.storage.engine import database_answers
from chatscope.config.loading import load_settings
from chatscope.containers.application import ApplicationContainer
from chatscope.containers.tracing import export_traces
from chatscope.web.completions import completions_router
from chatscope.web.errors import ApiError, BodyLimit, CatchAll, install_error_handlers
from chatscope.web.sessions import sessions_router
from chatscope.web.tenancy import ServerDep, ServerState

__all__ = ["ENV_FILE_VARIABLE", "app_from_environment", "create_app", "static_directory"]

ENV_FILE_VARIABLE = "CHATSCOPE_SERVE_ENV_FILE"
"""The `.env` file `app_from_environment` reads too (`chatscope serve --env-file` sets it for
its worker processes)."""

_READY_TIMEOUT = 5.0


def create_app(container: ApplicationContainer) -> FastAPI:
    """The HTTP API (and the chat page, when its files are installed) over `container`."""
    server = ServerState(container)
    app = FastAPI(
        title="chatscope",
        summary="Chat agents with subagents, each chat in its own isolated scope.",
        lifespan=_lifespan(server),
    )
    app.state.chatscope = server
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=server.settings.server.max_body_bytes)
    app.add_middleware(CatchAll)  # added last, so it wraps everything else
    app.include_router(_health_router())
    app.include_router(completions_router())
    app.include_router(sessions_router())
    _serve_static(app, static_directory())
    return app


def app_from_environment() -> FastAPI:
    """The app over settings read from the environment (and `CHATSCOPE_SERVE_ENV_FILE`): the
    factory each `chatscope serve --workers N` process calls to build its own container, which
    exports its own traces when `OTEL_*` variables ask."""
    env_file = os.environ.get(ENV_FILE_VARIABLE)
    settings = load_settings(Path(env_file) if env_file else None)
    container = ApplicationContainer(settings=settings, environ=dict(os.environ))
    export_traces(container, os.environ, _warn)
    app = create_app(container)
    # The process serves only this app: what start-up made lives as long as it, so the
    # collector need not walk it again (`gc.freeze`, as `chatscope serve` does in one process).
    gc.freeze()
    return app


def _warn(message: str) -> None:
    sys.stderr.write(f"chatscope: warning: {message}\n")


def static_directory() -> Path:
    """Where the chat page's files are installed: `static/` beside this package's modules."""
    return Path(str(resources.files(__package__ or "chatscope.web").joinpath("static")))


def _lifespan(server: ServerState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _awaited(server.container.init_resources())
        server.container.price_table()  # load the price table now, not in the first turn
        _announce(server)
        try:
            yield
        finally:
            await server.turns.drain(server.settings.server.grace_seconds)
            await _awaited(server.container.shutdown_resources())

    return lifespan


async def _awaited(result: Awaitable[Any] | None) -> None:
    if result is not None:
        await result


def _announce(server: ServerState) -> None:
    logger = structlog.get_logger("chatscope.web")
    if server.keys.open:
        logger.warning(
            "server_without_api_keys",
            detail="no API keys configured: serving one local tenant, to loopback clients only",
        )
    else:
        logger.info("server_started", tenants=len(server.settings.server.api_keys))


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])
    router.add_api_route("/healthz", healthz, methods=["GET"])
    router.add_api_route("/readyz", readyz, methods=["GET"], response_model=None)
    return router


async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def readyz(server: ServerDep) -> JSONResponse:
    """Ready when the session database answers (always, with history in memory)."""
    if server.settings.history_backend != "database":
        return JSONResponse({"status": "ok", "database": "memory"})
    database = server.container.storage.database()
    try:
        async with asyncio.timeout(_READY_TIMEOUT):
            ready = await database_answers(database)
    except TimeoutError:
        ready = False
    if ready:
        return JSONResponse({"status": "ok", "database": "ok"})
    failure = ApiError(503, "the session database does not answer", code="database_unavailable")
    return failure.response()


def _serve_static(app: FastAPI, directory: Path) -> None:
    """`/static/*` and the page at `/`, when the page's files are there."""
    if not directory.is_dir():
        return
    app.mount("/static", StaticFiles(directory=directory), name="static")
    index = directory / "index.html"
    if index.is_file():

        async def index_page() -> FileResponse:
            return FileResponse(index)

        app.add_api_route("/", index_page, methods=["GET"], include_in_schema=False)
