"""Pollers running at once on PostgreSQL and MariaDB check each due order exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from panel_ssl_plugin import hookimpls, schema
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.runtime import runtime_for

from .ordering import draft
from .providers.gogetssl_sim import PASSWORD, USER

ORDERS = 200


def poller_runtime(url: str, keys: list[str]):
    """A separate host process's view of the same database: own engine, own adapters."""
    app = create_app({"DATABASE_URL": url, "PLUGINS": [hookimpls], "SSL_SECRET_KEYS": keys})
    return runtime_for(app.extensions["hosting_panel"])


def place_many(runtime, provider_account_id: int) -> list[int]:
    ids = []
    for n in range(ORDERS):
        domain = f"site{n}.example.com"
        ids.append(
            runtime.orders.place(
                draft(provider_account_id, product_id="71", domain=domain), "alice"
            ).order.id
        )
    return ids


def test_two_pollers_check_every_due_order_once(row_locking_database_url, gogetssl_sim):
    url, keys = row_locking_database_url, [Vault.generate_key()]
    schema.upgrade(url)
    first, second = poller_runtime(url, keys), poller_runtime(url, keys)
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD}
    account = first.accounts.create("gogetssl", "GoGetSSL", settings)
    order_ids = place_many(first, account)
    provider_ids = [first.orders.get(i).provider_order_id for i in order_ids]
    before = Counter(gogetssl_sim.order_calls)

    due = datetime.now(UTC) + timedelta(minutes=5)
    claimed: Counter[str] = Counter()
    barrier = threading.Barrier(2)

    def poll(name: str, runtime) -> None:
        barrier.wait()
        while report := poll_due(runtime.orders, due, limit=20, workers=2):
            if not report.claimed:
                return
            claimed[name] += report.claimed
            assert claimed[name] <= ORDERS, "an order was claimed again in the same round"

    threads = [threading.Thread(target=poll, args=p) for p in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(claimed.values()) == ORDERS
    checks = {pid: gogetssl_sim.order_calls[pid] - before[pid] for pid in provider_ids}
    assert set(checks.values()) == {1}, "every order is asked about exactly once"
    assert all(first.orders.get(i).last_checked_at is not None for i in order_ids)
