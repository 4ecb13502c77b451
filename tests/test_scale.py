"""Scale: pollers share the work, a round's SQL does not grow per unchanged order, selections use
their indexes. Counted where it happens (rows claimed, SQL statements, calls at the simulator),
never timed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from panel_ssl_plugin import schema
from panel_ssl_plugin.store import Store, make_engine, orders

LEASE = timedelta(minutes=5)


def seed_due(store: Store, count: int, now: datetime, **values) -> list[int]:
    """``count`` pending orders due at ``now`` (rows only: the claim needs no provider)."""
    account = store.add_provider_account(
        provider_key="sandbox", label="Sandbox", settings_encrypted="x", enabled=True
    )
    row = {
        "account_id": "1", "provider_account_id": account, "product_id": "dv-single",
        "period_months": 12, "server_type": "nginx", "dcv_method": "email", "key_type": "ec256",
        "csr": "csr", "status": "pending", "created_at": now, "updated_at": now,
        "next_check_at": now, **values,
    }  # fmt: skip
    rows = [
        {
            **row,
            "provider_order_id": f"p{n}",
            "domain": f"site{n}.example.com",
            "idempotency_key": uuid.uuid4().hex,
        }
        for n in range(count)
    ]
    with store.engine.begin() as conn:
        conn.execute(orders.insert(), rows)
        return list(conn.execute(sa.select(orders.c.id).order_by(orders.c.id)).scalars())


@contextmanager
def held_after(engine: sa.Engine, marker: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Stop the first statement containing ``marker`` on ``engine`` right after it ran, its
    transaction open, until the test says go: two claims then overlap for certain."""
    reached, go = threading.Event(), threading.Event()

    def hold(conn, cursor, statement, parameters, context, executemany) -> None:
        if marker in statement and not reached.is_set():
            reached.set()
            go.wait(30)

    sa.event.listen(engine, "after_cursor_execute", hold)
    try:
        yield reached, go
    finally:
        go.set()
        sa.event.remove(engine, "after_cursor_execute", hold)


def test_two_claims_at_once_each_get_their_share(row_locking_database_url):
    """The claim reads the due orders through an index, so FOR UPDATE SKIP LOCKED locks only the
    rows it takes: a poller claiming while another holds its claim open gets the next share.
    (Before, MariaDB scanned and sorted the whole table, locking every row: the second got 0.)"""
    url = row_locking_database_url
    schema.upgrade(url)
    first, second = Store(make_engine(url)), Store(make_engine(url))
    now = datetime.now(UTC)
    # settled orders too: the claim must not lock its way through them
    seed_due(first, 300, now - timedelta(days=1), status="issued", next_check_at=None)
    seed_due(first, 200, now)
    claimed: dict[str, list[int]] = {}

    def claim_first() -> None:
        claimed["first"] = [o.id for o in first.claim_due(now, 50, LEASE)]

    with held_after(first.engine, "FOR UPDATE") as (reached, go):
        thread = threading.Thread(target=claim_first)
        thread.start()
        assert reached.wait(30)
        claimed["second"] = [o.id for o in second.claim_due(now, 50, LEASE)]
        go.set()
        thread.join()

    assert len(claimed["first"]) == 50
    assert len(claimed["second"]) == 50, "the second poller found nothing to claim"
    assert not set(claimed["first"]) & set(claimed["second"])
