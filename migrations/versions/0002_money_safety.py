"""Money safety: chains, one follow-up in flight per chain, when a create call was sent.

``root_id`` names the original order of a renewal or reissue chain (filled in for existing
follow-ups), ``flight`` holds "renewal:<root>" or "reissue:<root>" while such a follow-up is in
flight (unique, so the database refuses a second one), ``sent_at`` says when the last create call
left, for looking up an order whose answer was lost.

Revision ID: 0002_panel_ssl_money_safety
Revises: 0001_panel_ssl_initial
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from panel_ssl_plugin.store import UTCDateTime

revision = "0002_panel_ssl_money_safety"
down_revision = "0001_panel_ssl_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ssl_orders") as batch:
        batch.add_column(sa.Column("root_id", sa.Integer))
        batch.add_column(sa.Column("flight", sa.String(80)))
        batch.add_column(sa.Column("sent_at", UTCDateTime))
        batch.create_foreign_key(
            "fk_ssl_orders_root_id_ssl_orders", "ssl_orders", ["root_id"], ["id"]
        )
        batch.create_unique_constraint("uq_ssl_orders_flight", ["flight"])
        batch.create_index("ix_ssl_orders_root_id", ["root_id"])
    _fill_root_ids()


def _fill_root_ids() -> None:
    """Follow every renewal and reissue up to the order it descends from."""
    orders = sa.table(
        "ssl_orders",
        sa.column("id", sa.Integer),
        sa.column("renewal_of", sa.Integer),
        sa.column("reissue_of", sa.Integer),
        sa.column("root_id", sa.Integer),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(orders.c.id, orders.c.renewal_of, orders.c.reissue_of))
    parent = {row.id: row.renewal_of or row.reissue_of for row in rows}
    for order_id, follows in parent.items():
        if follows is None:
            continue
        root = follows
        while parent.get(root) is not None:
            root = parent[root]
        connection.execute(orders.update().where(orders.c.id == order_id).values(root_id=root))


def downgrade() -> None:
    with op.batch_alter_table("ssl_orders") as batch:
        # MariaDB keeps an index while a foreign key needs it: the key goes first
        batch.drop_constraint("fk_ssl_orders_root_id_ssl_orders", type_="foreignkey")
        batch.drop_index("ix_ssl_orders_root_id")
        batch.drop_constraint("uq_ssl_orders_flight", type_="unique")
        batch.drop_column("sent_at")
        batch.drop_column("flight")
        batch.drop_column("root_id")
