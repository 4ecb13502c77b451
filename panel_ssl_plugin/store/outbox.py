"""The webhook outbox as its deliverers (bridge/webhooks.py) and the admin page read it.

Rows are queued by events.py inside an order's transition; this module leases them to a
deliverer, records each attempt, counts what waits, and prunes what is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from panel_ssl_plugin.store.lease import _lease
from panel_ssl_plugin.store.tables import Queries, webhook_outbox

OUTBOX_KEEP = timedelta(days=30)  # how long the outbox keeps a webhook delivered, or never tried


@dataclass(frozen=True)
class WebhookRecord:
    """One webhook of the outbox; ``payload`` is the exact body every attempt sends."""

    id: int
    message_id: str
    event_type: str
    order_id: int
    payload: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    lease_until: datetime | None
    delivered_at: datetime | None
    last_error: str


class Outbox(Queries):
    """The webhook outbox's queries for its deliverers (bridge/webhooks.py) and admin page."""

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[WebhookRecord]:
        """Lease up to ``limit`` webhooks due for an attempt, so no other deliverer sends them
        while this one does; as Store.claim_due, with SKIP LOCKED where there are row locks."""
        table = webhook_outbox
        due = sa.and_(table.c.delivered_at.is_(None), table.c.next_attempt_at <= now)
        pick = sa.select(table.c.id).order_by(table.c.next_attempt_at, table.c.id)
        with self.engine.begin() as conn:
            rows = _lease(conn, table, pick, due, now, limit, lease)
            return [WebhookRecord(**row._mapping) for row in rows]

    def delivered(self, webhook: WebhookRecord, now: datetime) -> None:
        self._finish(webhook, delivered_at=now, attempts=webhook.attempts + 1, last_error="")

    def failed(self, webhook: WebhookRecord, error: str, retry_at: datetime) -> None:
        self._finish(
            webhook, attempts=webhook.attempts + 1, last_error=error, next_attempt_at=retry_at
        )

    def _finish(self, webhook: WebhookRecord, **values: Any) -> None:
        """End this deliverer's lease with the attempt's outcome; only while it holds the lease,
        so a deliverer whose lease ran out cannot overwrite the next one's result."""
        with self.engine.begin() as conn:
            conn.execute(
                webhook_outbox.update()
                .where(
                    webhook_outbox.c.id == webhook.id,
                    webhook_outbox.c.lease_until == webhook.lease_until,
                )
                .values(lease_until=None, **values)
            )

    def undelivered(self, limit: int = 100) -> tuple[list[WebhookRecord], int]:
        """Webhooks not delivered yet, those tried most often first, and how many there are."""
        waiting = webhook_outbox.c.delivered_at.is_(None)
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(webhook_outbox).where(waiting)
            ).scalar_one()
            rows = conn.execute(
                webhook_outbox.select()
                .where(waiting)
                .order_by(webhook_outbox.c.attempts.desc(), webhook_outbox.c.id)
                .limit(limit)
            )
            return [WebhookRecord(**row._mapping) for row in rows], total

    def failing(self) -> int:
        """How many webhooks were tried and are not delivered yet."""
        query = sa.select(sa.func.count()).where(
            webhook_outbox.c.delivered_at.is_(None), webhook_outbox.c.attempts > 0
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def prune(self, now: datetime) -> int:
        """Delete webhooks delivered more than OUTBOX_KEEP ago, and those nobody has tried to
        deliver for that long (a host without webhooks); how many."""
        cutoff = now - OUTBOX_KEEP
        with self.engine.begin() as conn:
            return conn.execute(
                webhook_outbox.delete().where(
                    sa.or_(
                        webhook_outbox.c.delivered_at < cutoff,
                        sa.and_(
                            webhook_outbox.c.delivered_at.is_(None),
                            webhook_outbox.c.attempts == 0,
                            webhook_outbox.c.next_attempt_at < cutoff,
                        ),
                    )
                )
            ).rowcount
