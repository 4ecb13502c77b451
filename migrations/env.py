"""Alembic environment of panel-ssl-plugin: its own version table, only its own tables."""

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


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        run_with(connection)


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
