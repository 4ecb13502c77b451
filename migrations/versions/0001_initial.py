"""The plugin's first tables: provider accounts, orders, order events.

Revision ID: 0001_panel_ssl_initial
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from panel_ssl_plugin.store import UTCDateTime

revision = "0001_panel_ssl_initial"
down_revision = None
branch_labels = ("panel_ssl",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssl_provider_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider_key", sa.String(40), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("settings_encrypted", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("auto_renew", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ssl_provider_accounts"),
    )
    op.create_table(
        "ssl_orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("provider_account_id", sa.Integer, nullable=False),
        sa.Column("provider_order_id", sa.String(100)),
        sa.Column("product_id", sa.String(100), nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("addons", sa.Text, nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("sans", sa.Text, nullable=False),
        sa.Column("period_months", sa.Integer, nullable=False),
        sa.Column("server_type", sa.String(40), nullable=False),
        sa.Column("dcv_method", sa.String(20), nullable=False),
        sa.Column("approver_email", sa.String(254)),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(200), nullable=False),
        sa.Column("state", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("contact", sa.Text, nullable=False),
        sa.Column("key_type", sa.String(20), nullable=False),
        sa.Column("csr", sa.Text, nullable=False),
        sa.Column("private_key_encrypted", sa.Text),
        sa.Column("certificate", sa.Text),
        sa.Column("chain", sa.Text),
        sa.Column("not_before", UTCDateTime),
        sa.Column("not_after", UTCDateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("provider_status", sa.String(100), nullable=False),
        sa.Column("status_detail", sa.Text, nullable=False),
        sa.Column("validation", sa.Text, nullable=False),
        sa.Column("provider_data", sa.Text, nullable=False),
        sa.Column("renewal_of", sa.Integer),
        sa.Column("reissue_of", sa.Integer),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("last_checked_at", UTCDateTime),
        sa.Column("next_check_at", UTCDateTime),
        sa.Column("check_failures", sa.Integer, nullable=False),
        sa.Column("lease_until", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_ssl_orders"),
        sa.ForeignKeyConstraint(
            ["provider_account_id"],
            ["ssl_provider_accounts.id"],
            name="fk_ssl_orders_provider_account_id_ssl_provider_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["renewal_of"], ["ssl_orders.id"], name="fk_ssl_orders_renewal_of_ssl_orders"
        ),
        sa.ForeignKeyConstraint(
            ["reissue_of"], ["ssl_orders.id"], name="fk_ssl_orders_reissue_of_ssl_orders"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_ssl_orders_idempotency_key"),
    )
    op.create_index("ix_ssl_orders_account_created", "ssl_orders", ["account_id", "created_at"])
    op.create_index("ix_ssl_orders_status_next_check", "ssl_orders", ["status", "next_check_at"])
    op.create_index("ix_ssl_orders_not_after", "ssl_orders", ["not_after"])
    op.create_index(
        "ix_ssl_orders_provider_ref", "ssl_orders", ["provider_account_id", "provider_order_id"]
    )
    op.create_index("ix_ssl_orders_renewal_of", "ssl_orders", ["renewal_of"])
    op.create_index("ix_ssl_orders_reissue_of", "ssl_orders", ["reissue_of"])
    op.create_table(
        "ssl_order_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ssl_order_events"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["ssl_orders.id"], name="fk_ssl_order_events_order_id_ssl_orders"
        ),
    )
    op.create_index("ix_ssl_order_events_order_at", "ssl_order_events", ["order_id", "at"])


def downgrade() -> None:
    op.drop_table("ssl_order_events")
    op.drop_table("ssl_orders")
    op.drop_table("ssl_provider_accounts")
