"""Expiry reminders: the schedules admins save, the query of what is due, and the reminder rows.

The rules (which thresholds, who gets the mail, what it says) are panel_ssl_plugin/reminders.py's;
it hands the schedules in as plain tuples of days, so the query knows nothing of its types. The
exactly-once guarantee is here: a row (certificate, threshold) under a unique constraint, whose
insert or lapsed-lease takeover gives one worker the right to send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from panel_ssl_plugin.store.order_queries import IN_FLIGHT
from panel_ssl_plugin.store.tables import (
    Queries,
    orders,
    provider_accounts,
    reminder_schedules,
    reminders,
    utcnow,
)

Days = tuple[int, ...]  # a schedule's thresholds in days, largest first; () sends none


@dataclass(frozen=True)
class Due:
    """A certificate that has crossed ``threshold`` and was not reminded of it yet."""

    order_id: int
    account_id: str
    provider_account_id: int
    domain: str
    product_name: str
    contact: dict
    not_after: datetime
    threshold: int
    auto_renew: bool
    renewal_id: int | None  # a renewal of this certificate in flight


class ReminderQueries(Queries):
    """The reminders' queries of Store."""

    # --- schedules ------------------------------------------------------------------------------

    def reminder_schedule_rows(self) -> dict[int, tuple[str | None, bool | None]]:
        """Each stored schedule's (days, copy_reseller) by provider account id, as saved."""
        with self.engine.connect() as conn:
            rows = conn.execute(reminder_schedules.select()).all()
        return {row.provider_account_id: (row.days, row.copy_reseller) for row in rows}

    def save_reminder_schedule(
        self, provider_account_id: int, days: str | None, copy_reseller: bool | None
    ) -> None:
        """Store a provider account's schedule; None in a value means "as the global schedule
        says". Update first, insert if there was none; an insert that loses a race updates."""
        values = {"days": days, "copy_reseller": copy_reseller, "updated_at": utcnow()}
        update = reminder_schedules.update().values(values)
        update = update.where(reminder_schedules.c.provider_account_id == provider_account_id)
        with self.engine.begin() as conn:
            if conn.execute(update).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                insert = reminder_schedules.insert()
                conn.execute(insert.values(provider_account_id=provider_account_id, **values))
        except sa.exc.IntegrityError:  # another admin saved it meanwhile: this save wins
            with self.engine.begin() as conn:
                conn.execute(update)

    # --- a round --------------------------------------------------------------------------------

    def reminders_due(self, now: datetime, default: Days, own: dict[int, Days]) -> list[Due]:
        """The reminders due at ``now``, in one query (due_query), with ``default`` the global
        schedule's days and ``own`` the days of each provider account that has its own."""
        query = due_query(now, default, own)
        if query is None:
            return []
        with self.engine.connect() as conn:
            return [_due(row) for row in conn.execute(query)]

    def claim_reminder(self, item: Due, token: str, now: datetime, lease: timedelta) -> bool:
        """Take the reminder for the worker holding ``token``: the row's insert, or the
        takeover of a lease that ran out unsent. False: another worker holds it or sent it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    reminders.insert().values(
                        order_id=item.order_id,
                        days=item.threshold,
                        claim=token,
                        claim_until=now + lease,
                        attempts=1,
                        recipients="",
                    )
                )
            return True
        except sa.exc.IntegrityError:
            pass
        with self.engine.begin() as conn:
            taken = conn.execute(
                reminders.update()
                .where(
                    _row(item),
                    reminders.c.sent_at.is_(None),
                    reminders.c.claim_until <= now,
                )
                .values(claim=token, claim_until=now + lease, attempts=reminders.c.attempts + 1)
            ).rowcount
        return taken == 1

    def reminder_sent(self, item: Due, token: str, now: datetime, recipients: str) -> None:
        """Mark the reminder sent, so nothing sends it again."""
        values = {"sent_at": now, "claim_until": None, "recipients": recipients[:600]}
        self._settle_reminder(item, token, values)

    def reminder_retry(self, item: Due, token: str, retry_at: datetime) -> None:
        """Leave the reminder unsent for a round after ``retry_at``."""
        self._settle_reminder(item, token, {"claim_until": retry_at})

    def _settle_reminder(self, item: Due, token: str, values: dict) -> None:
        """By this worker's claim only, so a worker whose lease was taken over changes
        nothing."""
        with self.engine.begin() as conn:
            conn.execute(
                reminders.update().where(_row(item), reminders.c.claim == token).values(values)
            )


def due_query(now: datetime, default: Days, own: dict[int, Days]) -> sa.Select | None:
    """Current issued certificates past a threshold they were not reminded of: an index
    range on ``not_after`` up to the longest threshold (the certificates ending within it,
    never the rest of the table), each row checked by primary key and unique index (a newer
    certificate of its chain, a renewal in flight, a reminder sent). None when no schedule
    sends anything."""
    longest = max(max(days, default=0) for days in (default, *own.values()))
    if not longest:
        return None
    threshold = _threshold(now, default, own)
    root = sa.func.coalesce(orders.c.root_id, orders.c.id)
    later, renewal, reminded = (orders.alias(n) for n in ("later", "renewal", "reminded"))
    newer = sa.exists().where(
        later.c.status.in_(("issued", "expired")),
        sa.or_(later.c.root_id == root, later.c.id == orders.c.root_id),
        sa.or_(
            later.c.not_after > orders.c.not_after,
            sa.and_(later.c.not_after == orders.c.not_after, later.c.id > orders.c.id),
        ),
    )
    # sent (or being sent) for this certificate, or for an older one of its chain with the
    # same end: a reissue keeps the end date, and its client was reminded already
    done = sa.exists().where(
        reminders.c.order_id == reminded.c.id,
        sa.or_(reminded.c.id == root, reminded.c.root_id == root),
        reminded.c.not_after == orders.c.not_after,
        reminders.c.days <= threshold,
        sa.or_(reminders.c.sent_at.is_not(None), reminders.c.claim_until > now),
    )
    in_flight = (
        sa.select(sa.func.min(renewal.c.id))
        .where(
            renewal.c.root_id == root,
            renewal.c.renewal_of.is_not(None),
            renewal.c.status.in_(IN_FLIGHT),
        )
        .scalar_subquery()
    )
    return (
        sa.select(
            orders.c.id,
            orders.c.account_id,
            orders.c.provider_account_id,
            orders.c.domain,
            orders.c.product_name,
            orders.c.contact,
            orders.c.not_after,
            threshold.label("threshold"),
            provider_accounts.c.auto_renew,
            in_flight.label("renewal_id"),
        )
        .join(provider_accounts, provider_accounts.c.id == orders.c.provider_account_id)
        .where(
            orders.c.status == "issued",
            orders.c.not_after > now,
            orders.c.not_after <= now + timedelta(days=longest),
            threshold.is_not(None),
            ~newer,
            ~done,
        )
        .order_by(orders.c.not_after, orders.c.id)
    )


def _threshold(now: datetime, default: Days, own: dict[int, Days]) -> sa.ColumnElement:
    """The nearest threshold each certificate has crossed at ``now`` (NULL: none), as SQL: the
    smallest d of its account's schedule with not_after <= now + d days."""

    def crossed(days: Days) -> sa.ColumnElement:
        if not days:
            return sa.null()
        whens = [
            (orders.c.not_after <= now + timedelta(days=d), sa.literal(d, sa.Integer))
            for d in sorted(days)
        ]
        return sa.case(*whens, else_=sa.null())

    accounts_by_days: dict[Days, list[int]] = {}
    for account_id, days in own.items():
        if days != default:
            accounts_by_days.setdefault(days, []).append(account_id)
    if not accounts_by_days:
        return crossed(default)
    branches = [
        (orders.c.provider_account_id.in_(ids), crossed(days))
        for days, ids in accounts_by_days.items()
    ]
    return sa.case(*branches, else_=crossed(default))


def _row(item: Due) -> sa.ColumnElement:
    return sa.and_(reminders.c.order_id == item.order_id, reminders.c.days == item.threshold)


def _due(row: sa.Row) -> Due:
    return Due(
        order_id=row.id,
        account_id=row.account_id,
        provider_account_id=row.provider_account_id,
        domain=row.domain,
        product_name=row.product_name,
        contact=json.loads(row.contact or "{}"),
        not_after=row.not_after,
        threshold=row.threshold,
        auto_renew=bool(row.auto_renew),
        renewal_id=row.renewal_id,
    )
