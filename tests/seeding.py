"""Many due orders fast, for tests and benchmarks of polling: one order placed for real (key,
CSR, the provider's create call), then its row and the simulator's order copied under new ids.
Each copy is a real order the simulator answers for."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from panel_ssl_plugin import store
from panel_ssl_plugin.runtime import Runtime

from .ordering import draft


def seed_pending(
    runtime: Runtime,
    clone: Callable[[str, int], list[str]],
    account_id: int,
    count: int,
    due: datetime,
) -> list[int]:
    """``count`` pending GoGetSSL orders on one provider account, due at ``due``; their ids,
    the order placed for real first (the others' certificates would not name their domains).
    ``clone(order_id, n)`` copies an order at the simulator (GoGetSSLSim.clone)."""
    template = runtime.orders.place(
        draft(account_id, product_id="71", domain="seed.example.com"), "seed"
    ).order
    copies = clone(template.provider_order_id, count - 1)
    kept = {
        name: value
        for name, value in store._encode(asdict(template)).items()
        if name not in ("id", "idempotency_key", "provider_order_id", "domain")
    }
    rows = [
        {
            **kept,
            "idempotency_key": uuid.uuid4().hex,
            "provider_order_id": provider_id,
            "domain": f"site{n}.example.com",
        }
        for n, provider_id in enumerate(copies, start=1)
    ]
    mine = store.orders.c.provider_account_id == account_id
    with runtime.engine.begin() as conn:
        if rows:
            conn.execute(store.orders.insert(), rows)
        conn.execute(
            store.orders.update()
            .where(mine)
            .values(status="pending", next_check_at=due, lease_until=None)
        )
        return list(
            conn.execute(
                sa.select(store.orders.c.id).where(mine).order_by(store.orders.c.id)
            ).scalars()
        )
