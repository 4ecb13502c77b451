"""The plugin's tables and every query on them: the only module that writes SQL.

SQLAlchemy Core, portable across SQLite, PostgreSQL and MariaDB. Two portability rules shape the
columns: MariaDB cannot index a TEXT column, so indexed text is ``String(n)``; and MariaDB's
DATETIME has no time zone, so every timestamp is stored as naive UTC and handed back aware.
"""

from __future__ import annotations

import contextvars
import fcntl
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

from panel_ssl_plugin import notifications

TABLE_PREFIX = "ssl_"
# The largest id an Integer column holds on all three databases (32 bits on PostgreSQL and
# MariaDB). An id beyond it names no row, and asking for it would be an error on PostgreSQL
# (integer out of range) and SQLite (beyond 64 bits), so lookups answer "none" without asking.
MAX_ID = 2**31 - 1

# Identifier columns: compared byte for byte on every database (MariaDB's default collation
# ignores case and trailing spaces; migration 0008 gives these a binary one there).
EXACT = {"exact": True}

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database.

    MariaDB's DATETIME keeps whole seconds unless asked for more; events a few milliseconds
    apart must keep their order, so it gets microseconds like the other two.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


provider_accounts = sa.Table(
    "ssl_provider_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider_key", sa.String(40), nullable=False, info=EXACT),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("settings_encrypted", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("auto_renew", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

orders = sa.Table(
    "ssl_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False, info=EXACT),
    sa.Column(
        "provider_account_id",
        sa.Integer,
        sa.ForeignKey("ssl_provider_accounts.id"),
        nullable=False,
    ),
    sa.Column("provider_order_id", sa.String(100), info=EXACT),
    sa.Column("product_id", sa.String(100), nullable=False),
    sa.Column("product_name", sa.String(200), nullable=False, default=""),
    sa.Column("addons", sa.Text, nullable=False, default="[]"),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("sans", sa.Text, nullable=False, default="[]"),
    sa.Column("period_months", sa.Integer, nullable=False),
    sa.Column("server_type", sa.String(40), nullable=False),
    sa.Column("dcv_method", sa.String(20), nullable=False),
    sa.Column("approver_email", sa.String(254)),
    sa.Column("organization", sa.String(200), nullable=False, default=""),
    sa.Column("unit", sa.String(200), nullable=False, default=""),
    sa.Column("state", sa.String(200), nullable=False, default=""),
    sa.Column("country", sa.String(2), nullable=False, default=""),
    sa.Column("contact", sa.Text, nullable=False, default="{}"),
    sa.Column("key_type", sa.String(20), nullable=False),
    sa.Column("csr", sa.Text, nullable=False),
    sa.Column("private_key_encrypted", sa.Text),
    sa.Column("certificate", sa.Text),
    sa.Column("chain", sa.Text),
    sa.Column("not_before", UTCDateTime),
    sa.Column("not_after", UTCDateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("provider_status", sa.String(100), nullable=False, default=""),
    sa.Column("status_detail", sa.Text, nullable=False, default=""),
    sa.Column("validation", sa.Text, nullable=False, default="[]"),
    sa.Column("provider_data", sa.Text, nullable=False, default="{}"),
    sa.Column("renewal_of", sa.Integer, sa.ForeignKey("ssl_orders.id")),
    sa.Column("reissue_of", sa.Integer, sa.ForeignKey("ssl_orders.id")),
    sa.Column("idempotency_key", sa.String(100), nullable=False, info=EXACT),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_checked_at", UTCDateTime),
    sa.Column("next_check_at", UTCDateTime),
    sa.Column("check_failures", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", UTCDateTime),
    # the original order of a renewal or reissue chain; None for an original order
    sa.Column("root_id", sa.Integer, sa.ForeignKey("ssl_orders.id")),
    # "renewal:<root>" or "reissue:<root>" while a follow-up is in flight: the database itself
    # refuses a second one, whatever races
    sa.Column("flight", sa.String(80), info=EXACT),
    sa.Column("sent_at", UTCDateTime),  # when the last create call left for the provider
    # JSON, NULL in rows written before them: an OV/EV order's organization address, and the
    # approver chosen for each additional name
    sa.Column("organization_address", sa.Text),
    sa.Column("san_approvers", sa.Text),
    sa.UniqueConstraint("idempotency_key"),
    sa.UniqueConstraint("flight"),
    # the indexes of the list, the poller's claim, and expiry and renewal (migration 0004)
    sa.Index("ix_ssl_orders_account_list", "account_id", "created_at", "id"),
    sa.Index("ix_ssl_orders_next_check", "next_check_at", "id"),
    sa.Index("ix_ssl_orders_status_not_after", "status", "not_after"),
    sa.Index("ix_ssl_orders_provider_ref", "provider_account_id", "provider_order_id"),
    sa.Index("ix_ssl_orders_renewal_of", "renewal_of"),
    sa.Index("ix_ssl_orders_reissue_of", "reissue_of"),
    sa.Index("ix_ssl_orders_root_id", "root_id"),
)

order_events = sa.Table(
    "ssl_order_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("ssl_orders.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False, default=""),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Index("ix_ssl_order_events_order_at", "order_id", "at"),
)

# --- the bridge (panel_ssl_plugin/bridge, revision 0006) ------------------------------------------
# What `panel-ssl serve` remembers lives in the database, so several service processes act as
# one. The queries of the first three are in bridge/records.py; the outbox is written here, in
# the transaction of the order's transition, and delivered by bridge/webhooks.py.

bridge_launches = sa.Table(  # launch token ids already used, kept until the token expires
    "ssl_bridge_launches",
    metadata,
    sa.Column("jti", sa.String(128), primary_key=True, info=EXACT),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_ssl_bridge_launches_expires_at", "expires_at"),
)

bridge_sessions = sa.Table(  # a launch token's session: the cookie holds a token, this its hash
    "ssl_bridge_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, info=EXACT),
    sa.Column("actor_id", sa.String(100), nullable=False, info=EXACT),
    sa.Column("actor_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("token_hash"),
    sa.Index("ix_ssl_bridge_sessions_expires_at", "expires_at"),
)

bridge_grants = sa.Table(  # the accounts a session was granted, one launch token each
    "ssl_bridge_grants",
    metadata,
    sa.Column(
        "session_id",
        sa.Integer,
        sa.ForeignKey("ssl_bridge_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("account_id", sa.String(64), primary_key=True, info=EXACT),
)

bridge_events = sa.Table(  # ids of signed events received, kept while their timestamp is valid
    "ssl_bridge_events",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True, info=EXACT),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_ssl_bridge_events_expires_at", "expires_at"),
)

webhook_outbox = sa.Table(  # webhooks to the panel, written in the transition's transaction
    "ssl_webhook_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.String(64), nullable=False, info=EXACT),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("ssl_orders.id"), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint("message_id"),
    sa.Index("ix_ssl_webhook_outbox_due", "delivered_at", "next_attempt_at"),
    sa.Index("ix_ssl_webhook_outbox_order_id", "order_id"),
)

# Expiry reminders (reminders.py). A schedule per provider account, and the global one in the
# row of GLOBAL_SCHEDULE (0, an id no account has); NULL in a column: as the global schedule says.
reminder_schedules = sa.Table(
    "ssl_reminder_schedules",
    metadata,
    sa.Column("provider_account_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("days", sa.String(100)),  # "30,14,7,3,1"; "" sends none
    sa.Column("copy_reseller", sa.Boolean),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# One row per certificate and threshold, written before the mail leaves: the unique constraint
# lets one worker send it. ``claim`` and ``claim_until`` hold a worker's lease while it sends;
# ``sent_at`` is set once the host accepted the mail, and then nothing sends it again.
reminders = sa.Table(
    "ssl_reminders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("ssl_orders.id"), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("claim", sa.String(32), nullable=False, info=EXACT),
    sa.Column("claim_until", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("recipients", sa.String(600), nullable=False, default=""),
    sa.UniqueConstraint("order_id", "days"),
)


def _is_id(value: object) -> bool:
    """Whether ``value`` could be the id of a row (see MAX_ID)."""
    return isinstance(value, int) and 0 < value <= MAX_ID


def utcnow() -> datetime:
    """The store's clock: aware UTC, as every timestamp column expects."""
    return datetime.now(UTC)


def make_engine(database: sa.Engine | str) -> sa.Engine:
    """An Engine for a URL, or the host's own Engine unchanged.

    The rows hold contacts and encrypted keys, so a database error must not carry them into
    a log: ``hide_parameters`` keeps the SQL in the message and leaves the values out.
    No ping before each checkout (a round trip per statement group, a tenth of a poll round):
    connections are recycled before a server's idle timeout (MariaDB's is 8 hours), and one
    dropped by a server restart fails its statement once and is replaced.
    """
    if isinstance(database, sa.Engine):
        return database
    return sa.create_engine(database, pool_recycle=3600, hide_parameters=True)


# --- records --------------------------------------------------------------------------------------

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
class ProviderAccountRecord:
    """A provider account as stored; ``settings_encrypted`` is opened by accounts.py only."""

    id: int
    provider_key: str
    label: str
    settings_encrypted: str
    enabled: bool
    is_default: bool
    auto_renew: bool
    created_at: datetime
    updated_at: datetime


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


@dataclass(frozen=True)
class EventRecord:
    id: int
    order_id: int
    at: datetime
    actor: str
    event: str
    detail: str


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


# The provider accounts read in this unit of work (see Store.remembering_accounts); None: outside
# one, every read asks the database.
_remembered: contextvars.ContextVar[dict[tuple[sa.Engine, int], Any] | None] = (
    contextvars.ContextVar("panel_ssl_remembered_accounts", default=None)
)


class Store:
    """Every query of the plugin, on the host's engine."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # --- provider accounts ---------------------------------------------------------------------

    def add_provider_account(self, **values: Any) -> int:
        self._forget_accounts()
        now = utcnow()
        with self.engine.begin() as conn:
            if values.get("is_default"):
                conn.execute(provider_accounts.update().values(is_default=False))
            return conn.execute(
                provider_accounts.insert().values(created_at=now, updated_at=now, **values)
            ).inserted_primary_key[0]

    @contextmanager
    def remembering_accounts(self) -> Iterator[None]:
        """Inside, each provider account is read once: placing one order asks for its account
        in the form, the draft check, the adapter and the sending, and each asked the database.
        A write to any account forgets what was read, so nothing inside sees an old row."""
        token = _remembered.set({})
        try:
            yield
        finally:
            _remembered.reset(token)

    def _forget_accounts(self) -> None:
        remembered = _remembered.get()
        if remembered is not None:
            remembered.clear()

    def update_provider_account(self, account_id: int, **values: Any) -> None:
        self._forget_accounts()
        with self.engine.begin() as conn:
            if values.get("is_default"):
                conn.execute(provider_accounts.update().values(is_default=False))
            conn.execute(
                provider_accounts.update()
                .where(provider_accounts.c.id == account_id)
                .values(updated_at=utcnow(), **values)
            )

    def provider_account(self, account_id: int) -> ProviderAccountRecord | None:
        if not _is_id(account_id):
            return None
        remembered, key = _remembered.get(), (self.engine, account_id)
        if remembered is not None and key in remembered:
            return remembered[key]
        with self.engine.connect() as conn:
            row = conn.execute(
                provider_accounts.select().where(provider_accounts.c.id == account_id)
            ).first()
        record = ProviderAccountRecord(**row._mapping) if row else None
        if remembered is not None:
            remembered[key] = record
        return record

    def provider_accounts(self, *, enabled_only: bool = False) -> list[ProviderAccountRecord]:
        query = provider_accounts.select().order_by(
            provider_accounts.c.is_default.desc(), provider_accounts.c.label
        )
        if enabled_only:
            query = query.where(provider_accounts.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [ProviderAccountRecord(**row._mapping) for row in conn.execute(query)]

    def reencrypt(self, rotate: Callable[[str], str]) -> int:
        """Pass every encrypted value through ``rotate`` in one transaction; how many changed.

        One transaction, so a key rotation either rewrites everything or nothing: a half-rotated
        database would leave values only the old key can read after that key is removed.
        """
        columns = (
            (provider_accounts, provider_accounts.c.settings_encrypted),
            (orders, orders.c.private_key_encrypted),
        )
        count = 0
        with self.engine.begin() as conn:
            for table, column in columns:
                rows = conn.execute(sa.select(table.c.id, column).where(column.is_not(None)))
                for row_id, value in rows.all():
                    conn.execute(
                        table.update()
                        .where(table.c.id == row_id)
                        .values({column.name: rotate(value)})
                    )
                    count += 1
        return count

    # --- orders --------------------------------------------------------------------------------

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
                orders.c.idempotency_key == idempotency_key, orders.c.account_id == account_id
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
            self._event(conn, order.id, actor, event, detail)
            updated = replace(order, **_as_read(values))
            if announce_from is not None and updated.status != announce_from:
                _queue_webhooks(conn, updated, str(announce_from))
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

    def add_event(self, order_id: int, actor: str, event: str, detail: str = "") -> None:
        with self.engine.begin() as conn:
            self._event(conn, order_id, actor, event, detail)

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

    @staticmethod
    def _event(conn: sa.Connection, order_id: int, actor: str, event: str, detail: str) -> None:
        conn.execute(
            order_events.insert().values(
                order_id=order_id, at=utcnow(), actor=actor[:100], event=event[:40], detail=detail
            )
        )


# --- the webhook outbox ---------------------------------------------------------------------------

OUTBOX_KEEP = timedelta(days=30)  # how long the outbox keeps a webhook delivered, or never tried


def _queue_webhooks(conn: sa.Connection, order: OrderRecord, old: str) -> None:
    """The webhooks of one transition (notifications.py says what they carry), as the hooks
    ssl_order_status_changed and ssl_certificate_issued hear it after the commit.

    Queued whatever the host is: the transition may be made by any process (the service, a
    cron poller, an event script), and only some of them know where webhooks go; a row costs
    one INSERT per event, and the rows of a host without webhooks are pruned by the plugin's
    tick (Outbox.prune)."""
    now, replaced = utcnow(), None
    if order.status == "issued" and order.follows is not None:
        row = conn.execute(orders.select().where(orders.c.id == order.follows)).first()
        replaced = _order(row) if row is not None else None
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


class Outbox:
    """The webhook outbox's queries for its deliverers (bridge/webhooks.py) and admin page."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

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
