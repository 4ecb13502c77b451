"""Bridge hardening: event ids used once, and identifiers compared exactly on MariaDB (issue 19).

``ssl_bridge_events`` remembers the id of every signed event the panel posted until its
timestamp is outside the window: its primary key refuses the same signed event twice.

MariaDB (and MySQL) compare text by the column's collation, and the database default,
``utf8mb4_general_ci``, ignores case and trailing spaces: account ``"7 "`` found account
``"7"``'s certificates, ``"ACME"`` found ``"acme"``'s. Identifier columns get the binary collation
that pads nothing (MariaDB ``utf8mb4_nopad_bin``, MySQL 8 ``utf8mb4_0900_bin``); other
databases compare exactly already. Domain names and e-mail addresses keep the default: they
are case-insensitive, and the plugin stores them in lower case.

Revision ID: 0008_panel_ssl_bridge_hardening
Revises: 0006_panel_ssl_bridge
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from panel_ssl_plugin.store import UTCDateTime

revision = "0008_panel_ssl_bridge_hardening"
down_revision = "0006_panel_ssl_bridge"
branch_labels = None
depends_on = None

# (table, column, length, nullable): the identifiers, as they are at this revision
EXACT_COLUMNS = (
    ("ssl_provider_accounts", "provider_key", 40, False),
    ("ssl_orders", "account_id", 64, False),
    ("ssl_orders", "provider_order_id", 100, True),
    ("ssl_orders", "idempotency_key", 100, False),
    ("ssl_orders", "flight", 80, True),
    ("ssl_bridge_launches", "jti", 128, False),
    ("ssl_bridge_sessions", "token_hash", 64, False),
    ("ssl_bridge_sessions", "actor_id", 100, False),
    ("ssl_bridge_grants", "account_id", 64, False),
    ("ssl_bridge_events", "id", 64, False),
    ("ssl_webhook_outbox", "message_id", 64, False),
    ("ssl_reminders", "claim", 32, False),
)


def upgrade() -> None:
    op.create_table(
        "ssl_bridge_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_ssl_bridge_events_expires_at", "ssl_bridge_events", ["expires_at"])
    _collate(_binary_collation())


def downgrade() -> None:
    _collate(None)
    op.drop_index("ix_ssl_bridge_events_expires_at", "ssl_bridge_events")
    op.drop_table("ssl_bridge_events")


def _binary_collation() -> str | None:
    dialect = op.get_bind().dialect
    if dialect.name not in ("mysql", "mariadb"):
        return None
    return "utf8mb4_nopad_bin" if dialect.is_mariadb else "utf8mb4_0900_bin"


def _collate(collation: str | None) -> None:
    """Give every identifier column ``collation`` (None: the table's default) on MariaDB and
    MySQL; nothing elsewhere. MODIFY keeps the column's indexes and keys."""
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, column, length, nullable in EXACT_COLUMNS:
        if table == "ssl_bridge_events" and collation is None:
            continue  # dropped next
        collate = f" COLLATE {collation}" if collation else ""
        null = "NULL" if nullable else "NOT NULL"
        op.execute(
            f"ALTER TABLE {table} MODIFY {column} VARCHAR({length}) "
            f"CHARACTER SET utf8mb4{collate} {null}"
        )
