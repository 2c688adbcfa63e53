"""Alembic: one head, upgrade from empty works, and the models need no new migration."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from core.cli import alembic_config
from core.db import Base


def test_there_is_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_head_built_the_schema_and_autogenerate_finds_nothing(engine: Engine) -> None:
    # The session fixture migrated this (initially empty) database with `upgrade head`.
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
