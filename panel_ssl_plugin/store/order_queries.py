"""Orders: the record, and every query on ``ssl_orders`` of one order or many.

Adding an order (its history's first events in the same transaction), reading it by id, key or
provider reference, the poller's claim and lease, the client's list pages, the compare-and-set
updates, and renewal and reissue chains. An update's event and webhooks are written through
events.py, in the update's transaction.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from panel_ssl_plugin.store.events import _event, _queue_webhooks
from panel_ssl_plugin.store.lease import _lease
from panel_ssl_plugin.store.tables import (
    Queries,
    UTCDateTime,
    _is_id,
    order_events,
    orders,
    provider_accounts,
    utcnow,
)

JSON_COLUMNS = (
    "addons", "sans", "contact", "validation", "provider_data", "organization_address",
    "san_approvers",
)  # fmt: skip
# States in which an order may still come to something at the provider. A follow-up holds its
# chain's flight slot only in these; any other status frees it.
IN_FLIGHT = ("submitted", "unknown", "pending")
# The event of a refused order its reseller discarded: the row stays for the audit trail, the
# client's list leaves it out.
DISCARDED = "discarded"


@dataclass(frozen=True)
class OrderRecord:
    """One row of ``ssl_orders`` with its JSON columns decoded."""

    id: int
    account_id: str
    provider_account_id: int
    provider_order_id: str | None
    product_id: str
    product_name: str
    addons: list
    domain: str
    sans: list
    period_months: int
    server_type: str
    dcv_method: str
    approver_email: str | None
    organization: str
    unit: str
    state: str
    country: str
    contact: dict
    key_type: str
    csr: str
    private_key_encrypted: str | None
    certificate: str | None
    chain: str | None
    not_before: datetime | None
    not_after: datetime | None
    status: str
    provider_status: str
    status_detail: str
    validation: list
    provider_data: dict
    renewal_of: int | None
    reissue_of: int | None
    idempotency_key: str
    version: int
    created_at: datetime
    updated_at: datetime
    last_checked_at: datetime | None
    next_check_at: datetime | None
    check_failures: int
    lease_until: datetime | None
    root_id: int | None
    flight: str | None
    sent_at: datetime | None
    organization_address: dict
    san_approvers: dict

    @property
    def chain_root(self) -> int:
        """The original order of this order's renewal and reissue chain (itself if original)."""
        return self.root_id if self.root_id is not None else self.id

    @property
    def follows(self) -> int | None:
        """The order this one renews or reissues; None for an original order."""
        return self.renewal_of if self.renewal_of is not None else self.reissue_of

    def public(self) -> dict[str, Any]:
        """Every field but the private key, for hooks and templates."""
        values = asdict(self)
        values.pop("private_key_encrypted")
        return values


def _order(row: sa.Row) -> OrderRecord:
    values = dict(row._mapping)
    for name in JSON_COLUMNS:
        # NULL: a column added after the row was written, which holds nothing for it yet
        values[name] = {} if values[name] is None else json.loads(values[name])
    return OrderRecord(**values)


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()}


def _as_read(values: dict[str, Any]) -> dict[str, Any]:
    """Values as reading them back would give them: JSON through JSON, times in UTC, plain
    strings. A write then knows its row without reading it again (a statement less, every time
    an order moves)."""
    read: dict[str, Any] = {}
    for name, value in _encode(values).items():
        if name in JSON_COLUMNS:
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC)
        elif isinstance(value, str):
            value = str(value)  # a StrEnum reads back as its text
        read[name] = value
    return read


class DuplicateOrder(Exception):
    """An order with this idempotency key, or a follow-up holding this flight slot, exists
    already; ``order_id`` is that order."""

    def __init__(self, order_id: int):
        super().__init__(order_id)
        self.order_id = order_id


class StaleOrder(Exception):
    """The order changed since it was read (another request or poller got there first)."""


class PollerBusy(RuntimeError):
    """Another poller works on this SQLite database now (Store.poller_lock)."""


SORTABLE = {
    "created": orders.c.created_at,
    "domain": orders.c.domain,
    "status": orders.c.status,
    "expires": orders.c.not_after,
}
# Orders not issued have no end yet: they sort as ending last, so every row has a sort key
NO_END = datetime(9999, 12, 31, tzinfo=UTC)


def _sort_column(sort: str, table: sa.FromClause = orders) -> sa.ColumnElement:
    """The column a list sorts by, in ``table`` (orders or an alias of it)."""
    column = table.c[SORTABLE.get(sort, orders.c.created_at).name]
    if column.name == "not_after":
        return sa.func.coalesce(column, sa.literal(NO_END, UTCDateTime))
    return column


# MariaDB must read the claim in index order to stop after the rows it takes: when many orders
# are due its optimizer prefers scanning and sorting the table, which locks every row, and a
# poller claiming at the same time then finds nothing (migration 0004).
CLAIM_INDEX_HINT = "FORCE INDEX (ix_ssl_orders_next_check)"


class OrderQueries(Queries):
    """The orders' queries of Store."""

    def add_order(self, actor: str, *, events: tuple[str, ...] = (), **values: Any) -> OrderRecord:
        """Insert an order and its history's first ``events`` (its status by default) and give
        it back as stored (RETURNING: no second read); DuplicateOrder when its idempotency key
        or its flight slot is taken (the unique constraints decide, not a read before it)."""
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                order = _order(
                    conn.execute(
                        orders.insert()
                        .values(created_at=now, updated_at=now, **_encode(values))
                        .returning(*orders.columns)
                    ).one()
                )
                history = [
                    {"order_id": order.id, "at": now, "actor": actor[:100], "event": event,
                     "detail": ""}
                    for event in events or (str(values["status"]),)
                ]  # fmt: skip
                conn.execute(order_events.insert(), history)
                return order
        except sa.exc.IntegrityError:
            existing = self._holder(values["idempotency_key"], values.get("flight"))
            if existing is None:
                raise
            raise DuplicateOrder(existing) from None

    def _holder(self, idempotency_key: str, flight: str | None) -> int | None:
        """The order holding this key, else the one holding this flight slot."""
        with self.engine.connect() as conn:
            for column, value in (
                (orders.c.idempotency_key, idempotency_key),
                (orders.c.flight, flight),
            ):
                if value is not None:
                    found = conn.execute(sa.select(orders.c.id).where(column == value)).scalar()
                    if found is not None:
                        return found
        return None

    def order(self, order_id: int) -> OrderRecord | None:
        if not _is_id(order_id):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(orders.select().where(orders.c.id == order_id)).first()
        return _order(row) if row else None

    def order_by_key(self, account_id: str, idempotency_key: str) -> OrderRecord | None:
        """The order of ``account_id`` made with this key; another account's is none of its
        business (the key is unique across accounts, since providers derive ids from it)."""
        with self.engine.connect() as conn:
            query = orders.select().where(
                orders.c.idempotency_key == idempotency_key,
                orders.c.account_id == str(account_id),
            )
            row = conn.execute(query).first()
        return _order(row) if row else None

    def order_by_provider_ref(self, provider_account_id: int, provider_order_id: str):
        """The newest order the provider knows by this id (reissues keep the id)."""
        with self.engine.connect() as conn:
            query = (
                orders.select()
                .where(
                    orders.c.provider_account_id == provider_account_id,
                    orders.c.provider_order_id == provider_order_id,
                )
                .order_by(orders.c.id.desc())
            )
            row = conn.execute(query).first()
        return _order(row) if row else None

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OrderRecord]:
        """Lease up to ``limit`` orders whose check is due, so no other poller takes them.

        On PostgreSQL and MariaDB the rows are picked with FOR UPDATE SKIP LOCKED, so pollers
        running at once split the work instead of waiting on each other; the lease (committed
        before the provider is asked) keeps the rows out of later claims until it runs out.
        SQLite has no row locks: run one poller there.
        """
        due = sa.and_(orders.c.status.in_(IN_FLIGHT), orders.c.next_check_at <= now)
        pick = (
            sa.select(orders.c.id)
            .order_by(orders.c.next_check_at, orders.c.id)
            .with_hint(orders, CLAIM_INDEX_HINT, "mysql")
            .with_hint(orders, CLAIM_INDEX_HINT, "mariadb")
        )
        with self.engine.begin() as conn:
            return [_order(row) for row in _lease(conn, orders, pick, due, now, limit, lease)]

    def unknown_orders(self, now: datetime) -> list[OrderRecord]:
        """Orders of unknown outcome that no worker holds now, held ones included."""
        query = orders.select().where(
            orders.c.status == "unknown",
            sa.or_(orders.c.lease_until.is_(None), orders.c.lease_until < now),
        )
        with self.engine.connect() as conn:
            return [_order(row) for row in conn.execute(query.order_by(orders.c.id))]

    def issued_ending_before(
        self, moment: datetime, *, auto_renew_only: bool = False
    ) -> list[OrderRecord]:
        """Issued orders whose certificate ends before ``moment``, soonest first: a range of
        the (status, not_after) index, however many expired certificates pile up.

        With ``auto_renew_only`` the accounts are read first, not joined: joined, PostgreSQL
        misjudges how many issued certificates end soon (expired ones' end dates share the
        statistics) and plans a parallel hash join costing more than the rows it finds."""
        query = orders.select().where(orders.c.status == "issued", orders.c.not_after < moment)
        with self.engine.connect() as conn:
            if auto_renew_only:
                renewing = sa.select(provider_accounts.c.id).where(
                    provider_accounts.c.auto_renew.is_(True)
                )
                query = query.where(orders.c.provider_account_id.in_(conn.scalars(renewing).all()))
            return [_order(row) for row in conn.execute(query.order_by(orders.c.not_after))]

    def follow_up_chains(self, root_ids: list[int]) -> dict[int, list[OrderRecord]]:
        """Every renewal and reissue descending from each root, oldest first: one query."""
        chains: dict[int, list[OrderRecord]] = {root: [] for root in root_ids}
        if not root_ids:
            return chains
        query = orders.select().where(orders.c.root_id.in_(root_ids)).order_by(orders.c.id)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                order = _order(row)
                chains[order.root_id].append(order)
        return chains

    def chain(self, root_id: int) -> list[OrderRecord]:
        """A chain: its original order and every renewal and reissue of it, oldest first."""
        query = orders.select().where(sa.or_(orders.c.id == root_id, orders.c.root_id == root_id))
        with self.engine.connect() as conn:
            return [_order(row) for row in conn.execute(query.order_by(orders.c.id))]

    def provider_order_ids(self, provider_account_id: int) -> frozenset[str]:
        """Every provider order id the plugin tracks on one provider account."""
        query = sa.select(orders.c.provider_order_id).where(
            orders.c.provider_account_id == provider_account_id,
            orders.c.provider_order_id.is_not(None),
        )
        with self.engine.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def account_orders(
        self,
        account_id: str,
        *,
        sort: str = "created",
        descending: bool = True,
        limit: int = 25,
        after: int | None = None,
        before: int | None = None,
    ) -> tuple[list[OrderRecord], bool]:
        """One page of an account's original orders (no follow-ups, none discarded) in the
        order of ``sort`` then id, and whether more lie beyond it.

        Keyset pages, not OFFSET: the page after the order ``after``, or the one before the
        order ``before`` (ids of orders on the page next to it). A last page costs what the
        first does, and nothing counts the account's orders."""
        discarded = sa.exists().where(
            order_events.c.order_id == orders.c.id, order_events.c.event == DISCARDED
        )
        where = [orders.c.account_id == account_id, orders.c.root_id.is_(None), ~discarded]
        column = _sort_column(sort)
        forward = descending if before is None else not descending
        edge = after if after is not None else before
        if edge is not None:
            other = orders.alias("edge")
            value = sa.select(_sort_column(sort, other)).where(other.c.id == edge)
            value = value.scalar_subquery()
            # The row comparison is exact; the plain one beside it lets every database read
            # the page from the index instead of filtering the rows before it.
            key, edge_key = sa.tuple_(column, orders.c.id), sa.tuple_(value, edge)
            if forward:
                where += [column <= value, key < edge_key]
            else:
                where += [column >= value, key > edge_key]
        order_by = (column.desc(), orders.c.id.desc()) if forward else (column, orders.c.id)
        query = orders.select().where(*where).order_by(*order_by).limit(limit + 1)
        with self.engine.connect() as conn:
            found = [_order(row) for row in conn.execute(query)]
        page = found[:limit]
        return (page if before is None else page[::-1]), len(found) > limit

    def update_order(
        self,
        order: OrderRecord,
        actor: str,
        event: str,
        detail: str = "",
        *,
        announce_from: str | None = None,
        **values: Any,
    ) -> OrderRecord:
        """Change an order and log the event in one transaction; StaleOrder if it moved on.

        The version column makes this a compare-and-set: two requests that read the same order
        cannot both apply a transition. A status that leaves flight frees the chain's flight
        slot in the same statement. With ``announce_from`` (the status the host last heard of),
        a status that differs from it also puts its webhooks in the outbox, in the same
        transaction: committed together, so a crash after the commit loses no notification.
        """
        if "status" in values and values["status"] not in IN_FLIGHT:
            values["flight"] = None
        values.update(version=order.version + 1, updated_at=utcnow())
        with self.engine.begin() as conn:
            result = conn.execute(
                orders.update()
                .where(orders.c.id == order.id, orders.c.version == order.version)
                .values(**_encode(values))
            )
            if result.rowcount != 1:
                raise StaleOrder(order.id)
            _event(conn, order.id, actor, event, detail)
            updated = replace(order, **_as_read(values))
            if announce_from is not None and updated.status != announce_from:
                _queue_webhooks(conn, updated, str(announce_from), _replaced(conn, updated))
        return updated

    def mark_checked(
        self, records: list[OrderRecord], now: datetime, next_check_at: datetime
    ) -> list[OrderRecord]:
        """Record that the provider's answer changed nothing about these orders but when they
        were checked and when to ask again: one UPDATE for all (the poller's bulk path), no
        event (``last_checked_at`` says it). Each order is a compare-and-set on its version, as
        in update_order; the ones that moved on meanwhile are read back as they are now."""
        if not records:
            return []
        values = {
            "last_checked_at": now, "next_check_at": next_check_at, "check_failures": 0,
            "lease_until": None, "updated_at": utcnow(),
        }  # fmt: skip
        versions = [(record.id, record.version) for record in records]
        with self.engine.begin() as conn:
            result = conn.execute(
                orders.update()
                .where(sa.tuple_(orders.c.id, orders.c.version).in_(versions))
                .values(version=orders.c.version + 1, **values)
            )
        if result.rowcount != len(records):
            return self.orders_by_id([record.id for record in records])
        read = _as_read(values)
        return [replace(record, version=record.version + 1, **read) for record in records]

    def orders_by_id(self, order_ids: list[int]) -> list[OrderRecord]:
        query = orders.select().where(orders.c.id.in_(order_ids)).order_by(orders.c.id)
        with self.engine.connect() as conn:
            return [_order(row) for row in conn.execute(query)]

    @contextmanager
    def poller_lock(self) -> Iterator[None]:
        """Hold while polling. SQLite has no row locks, so two pollers on one SQLite database
        would claim the same orders and ask the provider twice about each: there one poller at
        a time holds a lock file beside the database (released by the system if it dies), and
        another gets PollerBusy at once. PostgreSQL and MariaDB share the work by row locks
        (claim_due): nothing to hold."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
            yield
            return
        path = Path(f"{database}.poller-lock")
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PollerBusy(
                    f"Another poller is checking orders on this SQLite database now (it holds "
                    f"{path}). SQLite cannot share the work between pollers: run one at a time, "
                    "or use PostgreSQL or MariaDB to run several."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _replaced(conn: sa.Connection, order: OrderRecord) -> OrderRecord | None:
    """The certificate an issued renewal or reissue replaces (its certificate.superseded)."""
    if order.status != "issued" or order.follows is None:
        return None
    row = conn.execute(orders.select().where(orders.c.id == order.follows)).first()
    return _order(row) if row is not None else None
