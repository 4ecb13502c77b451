"""The bridge: launch tokens used once, sessions and their accounts, the webhook outbox (issue 13).

``ssl_bridge_launches`` remembers each launch token's id until the token expires: its primary
key makes a second use fail in the database, whichever service process sees it. A session's
cookie holds a random token; ``ssl_bridge_sessions`` keeps only its hash, ``ssl_bridge_grants``
the accounts its launch tokens named. ``ssl_webhook_outbox`` holds each notification for the
panel from the transaction of the order's transition until the panel has it.

Revision ID: 0006_panel_ssl_bridge
Revises: 0005_panel_ssl_reminders
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from panel_ssl_plugin.store import UTCDateTime

revision = "0006_panel_ssl_bridge"
down_revision = "0005_panel_ssl_reminders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssl_bridge_launches",
        sa.Column("jti", sa.String(128), primary_key=True),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_ssl_bridge_launches_expires_at", "ssl_bridge_launches", ["expires_at"])
    op.create_table(
        "ssl_bridge_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(100), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_ssl_bridge_sessions_token_hash"),
    )
    op.create_index("ix_ssl_bridge_sessions_expires_at", "ssl_bridge_sessions", ["expires_at"])
    op.create_table(
        "ssl_bridge_grants",
        sa.Column(
            "session_id",
            sa.Integer,
            sa.ForeignKey(
                "ssl_bridge_sessions.id",
                name="fk_ssl_bridge_grants_session_id_ssl_bridge_sessions",
                ondelete="CASCADE",
            ),
            primary_key=True,
        ),
        sa.Column("account_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "ssl_webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column(
            "order_id",
            sa.Integer,
            sa.ForeignKey("ssl_orders.id", name="fk_ssl_webhook_outbox_order_id_ssl_orders"),
            nullable=False,
        ),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.UniqueConstraint("message_id", name="uq_ssl_webhook_outbox_message_id"),
    )
    op.create_index(
        "ix_ssl_webhook_outbox_due", "ssl_webhook_outbox", ["delivered_at", "next_attempt_at"]
    )
    op.create_index("ix_ssl_webhook_outbox_order_id", "ssl_webhook_outbox", ["order_id"])


def downgrade() -> None:
    op.drop_table("ssl_webhook_outbox")
    op.drop_table("ssl_bridge_grants")
    op.drop_table("ssl_bridge_sessions")
    op.drop_table("ssl_bridge_launches")
