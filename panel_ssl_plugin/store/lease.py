"""The one lease both workers take: the poller's due orders and the deliverer's due webhooks.

Its own module because two query families share it (order_queries.claim_due, outbox.Outbox.claim)
and neither owns the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa


def _lease(
    conn: sa.Connection, table: sa.Table, pick: sa.Select, due: sa.ColumnElement[bool],
    now: datetime, limit: int, lease: timedelta,
) -> list[sa.Row]:  # fmt: skip
    """Lease up to ``limit`` rows of ``table`` that are ``due`` and no worker holds, in
    ``pick``'s order, and give them back: the poller's orders and the deliverer's webhooks.

    The rows are picked FOR UPDATE SKIP LOCKED where the database has row locks, so workers
    running at once split the rows instead of waiting on each other, and the lease written in
    the same transaction keeps them out of later picks until it runs out."""
    free = sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    query = pick.where(due, free).limit(limit).with_for_update(skip_locked=True)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(table.update().where(table.c.id.in_(ids)).values(lease_until=now + lease))
    return list(conn.execute(table.select().where(table.c.id.in_(ids)).order_by(table.c.id)))
