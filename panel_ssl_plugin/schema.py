"""Run the plugin's Alembic migrations against a host's database.

The plugin's history lives in its own version table under its own branch label, so a host that
already runs Alembic for its own tables keeps its history untouched, and so does ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.store import make_engine

VERSION_TABLE = "alembic_version_panel_ssl"
BRANCH_LABEL = "panel_ssl"
HEAD = f"{BRANCH_LABEL}@head"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config for the plugin's scripts, bound to ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(resource_path("migrations")))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _connected(database: sa.Engine | str) -> Iterator[Config]:
    engine = make_engine(database)
    with engine.begin() as connection:
        yield alembic_config(connection)


def upgrade(database: sa.Engine | str, revision: str = HEAD) -> None:
    """Bring the plugin's tables up to ``revision`` (its newest by default)."""
    with _connected(database) as config:
        command.upgrade(config, revision)


def downgrade(database: sa.Engine | str, revision: str) -> None:
    """Take the plugin's tables back to ``revision``; ``"base"`` removes all of them."""
    if revision == "base":
        revision = f"{BRANCH_LABEL}@base"
    with _connected(database) as config:
        command.downgrade(config, revision)  # at base, env.py drops the version table too


def current(database: sa.Engine | str) -> str | None:
    """The revision the database is at, or ``None`` before the first upgrade."""
    engine = make_engine(database)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def history() -> list[tuple[str, str]]:
    """Every revision, newest first, as (revision id, one-line description)."""
    script = ScriptDirectory.from_config(alembic_config())
    return [(rev.revision, rev.doc.splitlines()[0]) for rev in script.walk_revisions()]


def head() -> str:
    """The newest revision id the installed scripts know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
