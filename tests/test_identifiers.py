"""Issue 19, findings 6 and 10: identifiers name one thing, exactly, and only for their account.

MariaDB's default collation ignored case and trailing spaces, so account ``"7 "`` (or ``"ACME"``)
saw account ``"7"``'s (``"acme"``'s) certificates; migration 0008 gives identifier columns a
binary collation there. And an order's idempotency key showed its order to whoever posted it:
a key is now looked up within its own account, and another account's key places nothing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from panel_ssl_plugin.drafts import OrderInvalid
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import metadata
from tests.conftest import fresh_database, minipanel
from tests.ordering import draft


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def runtime(request, server_engines, tmp_path):
    databases = fresh_database(request.param, server_engines, tmp_path)
    app = minipanel(next(databases))
    yield runtime_for(app.extensions["hosting_panel"])
    next(databases, None)


def place(runtime, account_id: str, **changes):
    account = runtime.accounts.all()[0].id
    return runtime.orders.place(draft(account, account_id=account_id, **changes), "a").order


def listed(runtime, account_id: str) -> list[int]:
    return [order.id for order in runtime.orders.store.account_orders(account_id)[0]]


def test_an_account_sees_only_its_own_exact_id(runtime):
    seven, acme = place(runtime, "7"), place(runtime, "acme", domain="acme.example")
    assert listed(runtime, "7") == [seven.id] and listed(runtime, "acme") == [acme.id]
    for lookalike in ("7 ", " 7", "ACME", "Acme", "acme "):
        assert listed(runtime, lookalike) == [], lookalike


def test_an_idempotency_key_is_its_accounts_alone(runtime):
    """Bob posts alice's key: he is told to reload, and sees nothing of her order; alice's
    own repeat still finds hers."""
    alices = place(runtime, "7", idempotency_key="k" * 32)
    with pytest.raises(OrderInvalid, match="reload"):
        place(runtime, "8", idempotency_key="k" * 32)
    with pytest.raises(OrderInvalid, match="reload"):
        place(runtime, "7 ", idempotency_key="k" * 32)
    again = runtime.orders.place(
        draft(runtime.accounts.all()[0].id, account_id="7", idempotency_key="k" * 32), "a"
    )
    assert again.duplicate and again.order.id == alices.id
    assert runtime.orders.store.order_by_key("8", "k" * 32) is None
    assert runtime.orders.store.order_by_key("7", "K" * 32) is None


def test_every_identifier_column_compares_exactly(runtime):
    """On MariaDB each column marked exact has the binary, no-pad collation; elsewhere the
    comparison below holds by itself."""
    engine = runtime.engine
    exact = [(t.name, c.name) for t in metadata.sorted_tables for c in t.columns
             if c.info.get("exact")]  # fmt: skip
    assert len(exact) >= 12
    if engine.dialect.name != "mysql":
        return
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE()"
            )
        ).all()
    collations = {(t, c): collation for t, c, collation in rows}
    assert {pair: collations[pair] for pair in exact} == dict.fromkeys(exact, "utf8mb4_nopad_bin")
