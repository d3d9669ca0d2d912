"""The migrations create exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exchange.models import Base


async def test_models_and_migrations_do_not_drift(db):
    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], "run: alembic revision --autogenerate (exchange/migrations)"


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db):
    if db.dialect != "sqlite":
        return
    async with db.engine.connect() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    assert (mode, fks) == ("wal", 1)


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    from alembic import command

    from exchange.db import sqlite_url
    from exchange.migrate import alembic_config, upgrade_sync

    url = sqlite_url(str(tmp_path / "roundtrip.db"))
    upgrade_sync(url)
    command.downgrade(alembic_config(url), "base")
    upgrade_sync(url)
