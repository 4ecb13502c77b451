"""Expiry reminders: a schedule per provider account (and a global one), and the reminders
claimed or sent, once per certificate and threshold (issue 14).

Revision ID: 0005_panel_ssl_reminders
Revises: 0004_panel_ssl_scale
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from panel_ssl_plugin.store import UTCDateTime

revision = "0005_panel_ssl_reminders"
down_revision = "0004_panel_ssl_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssl_reminder_schedules",
        sa.Column("provider_account_id", sa.Integer, autoincrement=False),
        sa.Column("days", sa.String(100)),
        sa.Column("copy_reseller", sa.Boolean),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("provider_account_id", name="pk_ssl_reminder_schedules"),
    )
    op.create_table(
        "ssl_reminders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("claim", sa.String(32), nullable=False),
        sa.Column("claim_until", UTCDateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("recipients", sa.String(600), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ssl_reminders"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["ssl_orders.id"], name="fk_ssl_reminders_order_id_ssl_orders"
        ),
        sa.UniqueConstraint("order_id", "days", name="uq_ssl_reminders_order_id_days"),
    )


def downgrade() -> None:
    op.drop_table("ssl_reminders")
    op.drop_table("ssl_reminder_schedules")
