"""Alembic environment: the metadata of every feature, on SQLite or PostgreSQL."""

from __future__ import annotations

import importlib

from alembic import context

from core.app import FEATURES
from core.config import load_settings
from core.db import Base, make_engine

for name in ("core", *FEATURES):
    try:
        importlib.import_module(f"{name}.models")
    except ModuleNotFoundError as exc:
        if exc.name != f"{name}.models":
            raise

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(
            connection=connectable, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
