"""Alembic environment of panel-ssl-plugin: its own version table, only its own tables.

The database comes from the first of: a connection in ``config.attributes["connection"]`` (a
host's own, inside its own run), ``config.attributes["database"]`` (a URL or an Engine, as the
``panel_migrations`` hook's ``MigrationSet.database`` gives it), the ``sqlalchemy.url`` option.
Whichever it is, a downgrade to base drops the version table too: an uninstalled plugin leaves
nothing behind.
"""

import sqlalchemy as sa
from alembic import context
from sqlalchemy import engine_from_config, pool

from panel_ssl_plugin.schema import VERSION_TABLE
from panel_ssl_plugin.store import TABLE_PREFIX, metadata

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    """Autogenerate sees the plugin's tables only, never the host's."""
    if type_ == "table":
        return name.startswith(TABLE_PREFIX)
    return True


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
        if not context.get_context().get_current_heads():
            sa.Table(VERSION_TABLE, sa.MetaData()).drop(connection, checkfirst=True)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    with _engine().begin() as connection:
        run_with(connection)


def _engine() -> sa.Engine:
    database = config.attributes.get("database")
    if isinstance(database, sa.Engine):
        return database
    if database:
        return sa.create_engine(database, poolclass=pool.NullPool)
    if config.get_main_option("sqlalchemy.url"):
        return engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    raise RuntimeError(
        "panel-ssl's migrations need a database: put a connection in "
        'config.attributes["connection"], the MigrationSet\'s database in '
        'config.attributes["database"], or set sqlalchemy.url.'
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
