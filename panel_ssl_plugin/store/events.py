"""An order's history (ssl_order_events) and the webhooks each transition queues.

Together because both are written inside an order's transition (order_queries.update_order), in
its transaction: the event says what happened, the webhooks tell the host, and a crash after the
commit loses neither. Reading and delivering the queued webhooks is outbox.py's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from panel_ssl_plugin import notifications
from panel_ssl_plugin.notifications import CERTIFICATE_ISSUED, STATUS_CHANGED
from panel_ssl_plugin.store.tables import Queries, order_events, utcnow, webhook_outbox

if TYPE_CHECKING:
    from panel_ssl_plugin.store.order_queries import OrderRecord

__all__ = ["CERTIFICATE_ISSUED", "STATUS_CHANGED", "EventQueries", "EventRecord"]


@dataclass(frozen=True)
class EventRecord:
    id: int
    order_id: int
    at: datetime
    actor: str
    event: str
    detail: str


class EventQueries(Queries):
    """The order events' queries of Store."""

    def add_event(self, order_id: int, actor: str, event: str, detail: str = "") -> None:
        with self.engine.begin() as conn:
            _event(conn, order_id, actor, event, detail)

    def events(self, order_id: int) -> list[EventRecord]:
        with self.engine.connect() as conn:
            query = (
                order_events.select()
                .where(order_events.c.order_id == order_id)
                .order_by(order_events.c.at, order_events.c.id)
            )
            return [EventRecord(**row._mapping) for row in conn.execute(query)]

    def latest_events(self, order_ids: list[int], names: tuple[str, ...]) -> dict[int, EventRecord]:
        """Each order's newest event among ``names`` (ids grow with time): one query for a page
        of orders, e.g. why their last check failed."""
        if not order_ids:
            return {}
        newest = (
            sa.select(sa.func.max(order_events.c.id))
            .where(order_events.c.order_id.in_(order_ids), order_events.c.event.in_(names))
            .group_by(order_events.c.order_id)
        )
        query = order_events.select().where(order_events.c.id.in_(newest))
        with self.engine.connect() as conn:
            return {row.order_id: EventRecord(**row._mapping) for row in conn.execute(query)}


def _event(conn: sa.Connection, order_id: int, actor: str, event: str, detail: str) -> None:
    conn.execute(
        order_events.insert().values(
            order_id=order_id, at=utcnow(), actor=actor[:100], event=event[:40], detail=detail
        )
    )


def _queue_webhooks(
    conn: sa.Connection, order: OrderRecord, old: str, replaced: OrderRecord | None = None
) -> None:
    """The webhooks of one transition (notifications.py says what they carry), as the hooks
    ssl_order_status_changed and ssl_certificate_issued hear it after the commit; ``replaced``
    is the certificate an issued renewal or reissue replaces.

    Queued whatever the host is: the transition may be made by any process (the service, a
    cron poller, an event script), and only some of them know where webhooks go; a row costs
    one INSERT per event, and the rows of a host without webhooks are pruned by the plugin's
    tick (Outbox.prune)."""
    now = utcnow()
    for event_type, data in notifications.transition_events(order, old, replaced):
        message_id = f"msg_{uuid.uuid4().hex}"
        conn.execute(
            webhook_outbox.insert().values(
                message_id=message_id,
                event_type=event_type,
                order_id=order.id,
                payload=notifications.body(message_id, event_type, data, now),
                created_at=now,
                next_attempt_at=now,
                attempts=0,
                last_error="",
            )
        )
