"""The plugin's tables and every query on them: the only module that writes SQL.

SQLAlchemy Core, portable across SQLite, PostgreSQL and MariaDB. Two portability rules shape the
columns: MariaDB cannot index a TEXT column, so indexed text is ``String(n)``; and MariaDB's
DATETIME has no time zone, so every timestamp is stored as naive UTC and handed back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

TABLE_PREFIX = "ssl_"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = sa.DateTime
    cache_ok = True

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
    sa.Column("provider_key", sa.String(40), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("settings_encrypted", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

orders = sa.Table(
    "ssl_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column(
        "provider_account_id",
        sa.Integer,
        sa.ForeignKey("ssl_provider_accounts.id"),
        nullable=False,
    ),
    sa.Column("provider_order_id", sa.String(100)),
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
    sa.Column("idempotency_key", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_checked_at", UTCDateTime),
    sa.Column("next_check_at", UTCDateTime),
    sa.Column("check_failures", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", UTCDateTime),
    sa.UniqueConstraint("idempotency_key"),
    sa.Index("ix_ssl_orders_account_created", "account_id", "created_at"),
    sa.Index("ix_ssl_orders_status_next_check", "status", "next_check_at"),
    sa.Index("ix_ssl_orders_not_after", "not_after"),
    sa.Index("ix_ssl_orders_provider_ref", "provider_account_id", "provider_order_id"),
    sa.Index("ix_ssl_orders_renewal_of", "renewal_of"),
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


def utcnow() -> datetime:
    """The store's clock: aware UTC, as every timestamp column expects."""
    return datetime.now(UTC)


def make_engine(database: sa.Engine | str) -> sa.Engine:
    """An Engine for a URL, or the host's own Engine unchanged."""
    if isinstance(database, sa.Engine):
        return database
    return sa.create_engine(database, pool_pre_ping=True)
