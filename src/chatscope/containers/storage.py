"""The session database: one per application, migrated on start, closed on shutdown."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import containers, providers
from pydantic import SecretStr

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.engine import open_database
from chatscope.adapters.storage.schema import database_lifecycle


class StorageContainer(containers.DeclarativeContainer):
    """The database is made on first use; with the memory backend nothing opens at all."""

    data_dir = providers.Dependency(instance_of=Path)
    database_url: providers.Dependency[SecretStr | None] = providers.Dependency()
    history_backend = providers.Dependency(instance_of=str)

    database = providers.Singleton(open_database, data_dir=data_dir, database_url=database_url)
    lifecycle = providers.Resource(
        database_lifecycle, open_database=database.provider, history_backend=history_backend
    )
    session_catalog = providers.Factory(SessionCatalog, database=database)
