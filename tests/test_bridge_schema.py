"""Migrations 0006 and 0008 make exactly the bridge's tables of the store's metadata, on each
database."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from panel_ssl_plugin import schema
from panel_ssl_plugin.store import metadata

BRIDGE_TABLES = {
    "ssl_bridge_launches",
    "ssl_bridge_sessions",
    "ssl_bridge_grants",
    "ssl_bridge_events",
    "ssl_webhook_outbox",
}


def _of_the_bridge(diff) -> bool:
    """Whether an autogenerate difference concerns one of the bridge's tables."""
    for item in diff if isinstance(diff, list) else [diff]:
        for part in item[1:]:
            table = getattr(part, "table", part)
            if getattr(table, "name", None) in BRIDGE_TABLES:
                return True
    return False


def test_the_migration_matches_the_metadata(database_url):
    schema.upgrade(database_url)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if _of_the_bridge(d)]
    engine.dispose()
    assert differences == []


def test_down_to_0006_removes_the_event_ids_and_keeps_the_rest(database_url):
    schema.upgrade(database_url)
    schema.downgrade(database_url, "0006_panel_ssl_bridge")
    left = set(sa.inspect(sa.create_engine(database_url)).get_table_names())
    assert BRIDGE_TABLES - left == {"ssl_bridge_events"}


def test_down_to_0005_removes_them(sqlite_url):
    schema.upgrade(sqlite_url)
    schema.downgrade(sqlite_url, "0005_panel_ssl_reminders")
    assert not BRIDGE_TABLES & set(sa.inspect(sa.create_engine(sqlite_url)).get_table_names())
