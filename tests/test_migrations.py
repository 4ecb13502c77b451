"""The plugin's migrations on SQLite, PostgreSQL and MariaDB, beside a host's own history."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pluggy
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from panel_ssl_plugin import hookimpls, hookspecs, schema
from panel_ssl_plugin.cli import main
from panel_ssl_plugin.store import orders, provider_accounts

PLUGIN_TABLES = {
    "ssl_provider_accounts",
    "ssl_orders",
    "ssl_order_events",
    "ssl_bridge_launches",
    "ssl_bridge_sessions",
    "ssl_bridge_grants",
    "ssl_bridge_events",
    "ssl_webhook_outbox",
    "ssl_reminder_schedules",
    "ssl_reminders",
    schema.VERSION_TABLE,
}


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    schema.upgrade(database_url)
    assert tables(database_url) == PLUGIN_TABLES
    assert schema.current(database_url) == schema.head()

    schema.downgrade(database_url, "base")
    assert tables(database_url) == set()

    schema.upgrade(database_url)
    assert tables(database_url) == PLUGIN_TABLES


def test_indexes_the_queries_need(database_url):
    schema.upgrade(database_url)
    inspector = sa.inspect(sa.create_engine(database_url))
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("ssl_orders")}
    # the list's keyset pages, the poller's claim, expiry and renewal (migration 0004)
    assert {
        ("account_id", "created_at", "id"),
        ("next_check_at", "id"),
        ("status", "not_after"),
    } <= indexed
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("ssl_orders")}
    unique |= {
        tuple(ix["column_names"]) for ix in inspector.get_indexes("ssl_orders") if ix["unique"]
    }
    assert ("idempotency_key",) in unique


HOST_ENV = """
from alembic import context
connection = context.config.attributes["connection"]
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
"""

HOST_REVISION = """
import sqlalchemy as sa
from alembic import op
revision = "host0001"
down_revision = None
branch_labels = None
depends_on = None
def upgrade():
    op.create_table("host_customers", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50)))
    op.execute("INSERT INTO host_customers (id, name) VALUES (1, 'kept')")
def downgrade():
    op.drop_table("host_customers")
"""


def host_migrate(url: str, tmp_path) -> None:
    """Give the database a host's own Alembic history, in the default alembic_version table."""
    scripts = tmp_path / "host_migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(textwrap.dedent(HOST_ENV))
    (scripts / "versions" / "host0001.py").write_text(HOST_REVISION)
    config = Config()
    config.set_main_option("script_location", str(scripts))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()


def host_state(url: str) -> tuple:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        rows = conn.execute(sa.text("SELECT id, name FROM host_customers")).all()
    engine.dispose()
    return version, [tuple(r) for r in rows]


def test_host_history_and_tables_untouched(database_url, tmp_path):
    host_migrate(database_url, tmp_path)
    before = host_state(database_url)
    assert before == ("host0001", [(1, "kept")])

    schema.upgrade(database_url)
    assert host_state(database_url) == before
    assert tables(database_url) == PLUGIN_TABLES | {"alembic_version", "host_customers"}

    schema.downgrade(database_url, "base")
    assert host_state(database_url) == before
    assert tables(database_url) == {"alembic_version", "host_customers"}


def test_host_runs_migrations_through_the_hook(sqlite_url):
    """A host that drives Alembic itself needs only what panel_migrations() returns."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(hookimpls)
    (migrations,) = pm.hook.panel_migrations(pm=pm)
    config = Config()
    config.set_main_option("script_location", str(migrations.script_location))
    config.set_main_option("sqlalchemy.url", sqlite_url)
    command.upgrade(config, f"{migrations.branch_label}@head")
    assert tables(sqlite_url) == PLUGIN_TABLES
    assert migrations.version_table == schema.VERSION_TABLE


def test_cli_db_commands(sqlite_url):
    runner = CliRunner()
    result = runner.invoke(main, ["db", "current", "--database-url", sqlite_url])
    assert result.exit_code == 0 and "base" in result.output
    result = runner.invoke(main, ["db", "upgrade", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert schema.head() in result.output
    result = runner.invoke(main, ["db", "history"])
    assert schema.head() in result.output
    result = runner.invoke(main, ["db", "downgrade", "base", "--database-url", sqlite_url])
    assert result.exit_code == 0 and tables(sqlite_url) == set()


def test_money_safety_revision_fills_in_every_chain(database_url):
    """Orders of the first revision get their chain's original in root_id; the flight slot is
    unique, so the database itself refuses a second follow-up in flight."""
    schema.upgrade(database_url, "0001_panel_ssl_initial")
    engine = sa.create_engine(database_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            provider_accounts.insert().values(
                id=1, provider_key="sandbox", label="S", settings_encrypted="x", enabled=True,
                is_default=True, auto_renew=False, created_at=now, updated_at=now,
            )
        )  # fmt: skip
        for order_id, renewal_of, reissue_of in (
            (1, None, None),
            (2, 1, None),
            (3, None, 2),
            (4, None, None),
        ):
            conn.execute(
                orders.insert().values(
                    id=order_id, account_id="1", provider_account_id=1, product_id="p",
                    domain="example.com", period_months=12, server_type="other",
                    dcv_method="email", key_type="ec256", csr="csr", status="issued",
                    idempotency_key=f"key-{order_id}", renewal_of=renewal_of,
                    reissue_of=reissue_of, created_at=now, updated_at=now,
                )
            )  # fmt: skip
    schema.upgrade(database_url)
    with engine.connect() as conn:
        roots = dict(conn.execute(sa.text("SELECT id, root_id FROM ssl_orders")).all())
    assert roots == {1: None, 2: 1, 3: 1, 4: None}
    inspector = sa.inspect(engine)
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("ssl_orders")}
    unique |= {tuple(i["column_names"]) for i in inspector.get_indexes("ssl_orders") if i["unique"]}
    assert ("flight",) in unique
    engine.dispose()


def hook_migrations(database_url: str):
    """A host's PluginManager with the plugin, and what its panel_migrations hook returns."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)

    class Host:
        @hookspecs.hookimpl
        def host_database(self):
            return database_url

    pm.register(Host())
    pm.register(hookimpls)
    (migrations,) = pm.hook.panel_migrations(pm=pm)
    return migrations


def hook_config(migrations) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations.script_location))
    return config


def test_the_hook_alone_is_enough_to_migrate_the_hosts_database(database_url):
    """As the hookspec's example reads: no URL given, the host's database is the one."""
    migrations = hook_migrations(database_url)
    config = hook_config(migrations)
    config.attributes["database"] = migrations.database
    command.upgrade(config, f"{migrations.branch_label}@head")
    assert tables(database_url) == PLUGIN_TABLES
    command.downgrade(config, f"{migrations.branch_label}@base")
    assert tables(database_url) == set()  # as `panel-ssl db downgrade base` leaves it


def test_a_host_runs_ours_on_its_own_connection_after_its_own(database_url, tmp_path):
    """Inside the host's own Alembic run: its connection, its transaction, both histories."""
    migrations = hook_migrations(database_url)
    host_migrate(database_url, tmp_path)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        config = hook_config(migrations)
        config.attributes["connection"] = connection
        command.upgrade(config, f"{migrations.branch_label}@head")
    engine.dispose()
    assert tables(database_url) == PLUGIN_TABLES | {"alembic_version", "host_customers"}
    assert host_state(database_url) == ("host0001", [(1, "kept")])


def test_without_any_database_the_error_says_what_to_give(tmp_path):
    config = hook_config(hook_migrations(None))
    with pytest.raises(RuntimeError, match="need a database"):
        command.upgrade(config, "panel_ssl@head")
