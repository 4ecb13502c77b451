"""What the benchmarks stand on: PostgreSQL databases, hosts, and many orders seeded fast.

Many due orders are seeded by tests/seeding.py (one placed, the rest copied).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from panel_ssl_plugin import hookimpls, schema
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.runtime import Runtime, runtime_for
from tests.providers.gogetssl_sim import PASSWORD, USER

POSTGRES = os.environ.get(
    "PANEL_SSL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB = os.environ.get("PANEL_SSL_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
KEYS = [Vault.generate_key()]


@contextmanager
def fresh_database(server: str = POSTGRES) -> Iterator[str]:
    """A new database on ``server`` with the plugin's tables, dropped afterwards."""
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"panel_ssl_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        schema.upgrade(url)
        yield url
    finally:
        drop = f"DROP DATABASE {name}" + (
            " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
        )
        with admin.connect() as conn:
            conn.execute(sa.text(drop))
        admin.dispose()


def host(url: str, *plugins: object) -> Runtime:
    """The plugin's runtime in a minipanel on ``url``, as a host process has it."""
    app = create_app(
        {"DATABASE_URL": url, "PLUGINS": [hookimpls, *plugins], "SSL_SECRET_KEYS": KEYS}
    )
    return runtime_for(app.extensions["hosting_panel"])


def gogetssl_account(runtime: Runtime, sim_url: str, provider_key: str = "gogetssl") -> int:
    settings = {"base_url": sim_url, "username": USER, "password": PASSWORD}
    return runtime.accounts.create(provider_key, f"GoGetSSL {uuid.uuid4().hex[:6]}", settings)
