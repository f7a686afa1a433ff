"""The session database: one engine per application, migrated on start, closed on shutdown."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import containers, providers
from pydantic import SecretStr

from chatscope.adapters.storage.engine import create_database_engine
from chatscope.adapters.storage.schema import database_lifecycle
from chatscope.adapters.storage.sql_history import SessionCatalog


class StorageContainer(containers.DeclarativeContainer):
    """The engine is created on first use; with the memory backend nothing opens at all."""

    data_dir = providers.Dependency(instance_of=Path)
    database_url: providers.Dependency[SecretStr | None] = providers.Dependency()
    history_backend = providers.Dependency(instance_of=str)

    engine = providers.Singleton(
        create_database_engine, data_dir=data_dir, database_url=database_url
    )
    database = providers.Resource(
        database_lifecycle, open_engine=engine.provider, history_backend=history_backend
    )
    session_catalog = providers.Factory(SessionCatalog, engine=engine)
