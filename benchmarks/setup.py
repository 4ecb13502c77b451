"""What the benchmarks stand on: PostgreSQL databases, hosts, and many orders seeded fast.

Seeding places one order for real (key, CSR, the provider's create call), then copies its row
and the simulator's order under new ids: a thousand orders in a second instead of a minute, each
one a real order the simulator answers for.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from panel_ssl_plugin import hookimpls, schema, store
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.runtime import Runtime, runtime_for
from tests.ordering import draft
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


def seed_pending(runtime: Runtime, sim, account_id: int, count: int, due: datetime) -> list[int]:
    """``count`` pending orders on one provider account, all due at ``due``; their ids."""
    template = runtime.orders.place(
        draft(account_id, product_id="71", domain="seed.example.com"), "bench"
    ).order
    provider_ids = [template.provider_order_id, *sim.clone(template.provider_order_id, count - 1)]
    row = {
        column: value
        for column, value in store._encode(template.__dict__).items()
        if column not in ("id", "idempotency_key", "provider_order_id", "domain")
    }
    rows = [
        {
            **row,
            "idempotency_key": uuid.uuid4().hex,
            "provider_order_id": provider_id,
            "domain": f"site{n}.example.com",
        }
        for n, provider_id in enumerate(provider_ids[1:], start=1)
    ]
    with runtime.engine.begin() as conn:
        conn.execute(store.orders.insert(), rows)
        conn.execute(
            store.orders.update()
            .where(store.orders.c.provider_account_id == account_id)
            .values(status="pending", next_check_at=due, lease_until=None)
        )
        ids = conn.execute(
            sa.select(store.orders.c.id).where(store.orders.c.provider_account_id == account_id)
        ).scalars()
        return list(ids)
