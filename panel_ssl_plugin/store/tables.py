"""The plugin's schema: every table, in the one ``metadata`` Alembic's env.py and the tests read.

The tables live together, apart from their queries, because the schema is one thing: the
migrations compare against all of it, foreign keys cross the families, and a query module
(orders, events, reminders...) reads tables of other families. Beside them, what every query
module shares: the clock, the engine, the id bound, and the base of a family of queries.

SQLAlchemy Core, portable across SQLite, PostgreSQL and MariaDB. Two portability rules shape the
columns: MariaDB cannot index a TEXT column, so indexed text is ``String(n)``; and MariaDB's
DATETIME has no time zone, so every timestamp is stored as naive UTC and handed back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

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
# one. The queries of the first three are in store/bridge.py; the outbox is written by
# store/events.py, in the transaction of the order's transition, read by store/outbox.py and
# delivered by bridge/webhooks.py.

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

# Expiry reminders (reminders.py; the queries are in store/reminder_queries.py). A schedule per
# provider account, and the global one in the row of GLOBAL_SCHEDULE (0, an id no account has);
# NULL in a column: as the global schedule says.
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


class Queries:
    """A family of queries on the host's engine. Store is several of them in one object; the
    outbox's and the bridge's stand alone, since their callers hold only those."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
