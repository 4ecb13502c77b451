"""Scale: indexes the poller's claim, the expiry and renewal selections and the list can use.

- ``ix_ssl_orders_next_check`` (next_check_at, id) replaces (status, next_check_at): the claim
  asks for the orders due soonest, and only an index in that order lets MariaDB's
  ``FOR UPDATE SKIP LOCKED`` stop after the rows it takes. With the old one it read and sorted
  the whole table, locking every row it read, so a second poller found nothing to claim.
  Only orders in flight have a next check, so the index holds no settled order.
- ``ix_ssl_orders_status_not_after`` (status, not_after) replaces (not_after): expiry and
  renewal ask for issued certificates ending before a moment, and expired ones, which pile up
  year after year, no longer lie in the way.
- ``ix_ssl_orders_account_list`` (account_id, created_at, id) replaces (account_id, created_at):
  a client's list is its original orders newest first, paged by keyset on (created_at, id), and
  read in index order it stops after a page. (root_id is not in it: PostgreSQL cannot order by
  the columns after one matched by IS NULL, and would sort every order of the client.)

Revision ID: 0004_panel_ssl_scale
Revises: 0003_panel_ssl_order_details
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004_panel_ssl_scale"
down_revision = "0003_panel_ssl_order_details"
branch_labels = None
depends_on = None

# (old name, old columns) -> (new name, new columns)
REPLACED = (
    (
        ("ix_ssl_orders_status_next_check", ["status", "next_check_at"]),
        ("ix_ssl_orders_next_check", ["next_check_at", "id"]),
    ),
    (
        ("ix_ssl_orders_not_after", ["not_after"]),
        ("ix_ssl_orders_status_not_after", ["status", "not_after"]),
    ),
    (
        ("ix_ssl_orders_account_created", ["account_id", "created_at"]),
        ("ix_ssl_orders_account_list", ["account_id", "created_at", "id"]),
    ),
)


def upgrade() -> None:
    for (old, _), (new, columns) in REPLACED:
        op.create_index(new, "ssl_orders", columns)
        op.drop_index(old, table_name="ssl_orders")


def downgrade() -> None:
    for (old, columns), (new, _) in REPLACED:
        op.create_index(old, "ssl_orders", columns)
        op.drop_index(new, table_name="ssl_orders")
