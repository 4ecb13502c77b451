"""OV/EV and multi-domain orders: the organization's address, an approver per name.

``organization_address`` (JSON: street, city, postal code, phone) is what a product that
validates the organization needs besides its name; ``san_approvers`` (JSON: name -> address)
the approver chosen for each additional name of an e-mail validated order. Both stay NULL in
orders made before: those were placed without them, and renewals of them send what they sent.

Revision ID: 0003_panel_ssl_order_details
Revises: 0002_panel_ssl_money_safety
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_panel_ssl_order_details"
down_revision = "0002_panel_ssl_money_safety"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ssl_orders") as batch:
        batch.add_column(sa.Column("organization_address", sa.Text))
        batch.add_column(sa.Column("san_approvers", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ssl_orders") as batch:
        batch.drop_column("san_approvers")
        batch.drop_column("organization_address")
