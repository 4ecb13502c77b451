"""The bridge: launch tokens used once, the webhook outbox (issue 13).

Revision ID: 0006_panel_ssl_bridge
Revises: 0005_panel_ssl_reminders
Create Date: 2026-11-29
"""

revision = "0006_panel_ssl_bridge"
down_revision = "0005_panel_ssl_reminders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
