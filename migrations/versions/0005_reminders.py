"""Expiry reminders sent, once per certificate and threshold (issue 14).

Revision ID: 0005_panel_ssl_reminders
Revises: 0004_panel_ssl_scale
Create Date: 2026-11-29
"""

revision = "0005_panel_ssl_reminders"
down_revision = "0004_panel_ssl_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
