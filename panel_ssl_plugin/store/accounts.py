"""Provider accounts: their rows, their key rotation, and the per-request memory of them.

One family because the memory must be forgotten by every write to an account, which only holds
while the writes and the reads sit side by side. ``reencrypt`` is here too: it rewrites the
accounts' settings and the orders' keys in one transaction, and the accounts are its reason.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from panel_ssl_plugin.store.tables import Queries, _is_id, orders, provider_accounts, utcnow


@dataclass(frozen=True)
class ProviderAccountRecord:
    """A provider account as stored; ``settings_encrypted`` is opened by
    panel_ssl_plugin/accounts.py only."""

    id: int
    provider_key: str
    label: str
    settings_encrypted: str
    enabled: bool
    is_default: bool
    auto_renew: bool
    created_at: datetime
    updated_at: datetime


# The provider accounts read in this unit of work (see Store.remembering_accounts); None: outside
# one, every read asks the database.
_remembered: contextvars.ContextVar[dict[tuple[sa.Engine, int], Any] | None] = (
    contextvars.ContextVar("panel_ssl_remembered_accounts", default=None)
)


class AccountQueries(Queries):
    """The provider accounts' queries of Store."""

    def add_provider_account(self, **values: Any) -> int:
        self._forget_accounts()
        now = utcnow()
        with self.engine.begin() as conn:
            if values.get("is_default"):
                conn.execute(provider_accounts.update().values(is_default=False))
            return conn.execute(
                provider_accounts.insert().values(created_at=now, updated_at=now, **values)
            ).inserted_primary_key[0]

    @contextmanager
    def remembering_accounts(self) -> Iterator[None]:
        """Inside, each provider account is read once: placing one order asks for its account
        in the form, the draft check, the adapter and the sending, and each asked the database.
        A write to any account forgets what was read, so nothing inside sees an old row."""
        token = _remembered.set({})
        try:
            yield
        finally:
            _remembered.reset(token)

    def _forget_accounts(self) -> None:
        remembered = _remembered.get()
        if remembered is not None:
            remembered.clear()

    def update_provider_account(self, account_id: int, **values: Any) -> None:
        self._forget_accounts()
        with self.engine.begin() as conn:
            if values.get("is_default"):
                conn.execute(provider_accounts.update().values(is_default=False))
            conn.execute(
                provider_accounts.update()
                .where(provider_accounts.c.id == account_id)
                .values(updated_at=utcnow(), **values)
            )

    def provider_account(self, account_id: int) -> ProviderAccountRecord | None:
        if not _is_id(account_id):
            return None
        remembered, key = _remembered.get(), (self.engine, account_id)
        if remembered is not None and key in remembered:
            return remembered[key]
        with self.engine.connect() as conn:
            row = conn.execute(
                provider_accounts.select().where(provider_accounts.c.id == account_id)
            ).first()
        record = ProviderAccountRecord(**row._mapping) if row else None
        if remembered is not None:
            remembered[key] = record
        return record

    def provider_accounts(self, *, enabled_only: bool = False) -> list[ProviderAccountRecord]:
        query = provider_accounts.select().order_by(
            provider_accounts.c.is_default.desc(), provider_accounts.c.label
        )
        if enabled_only:
            query = query.where(provider_accounts.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [ProviderAccountRecord(**row._mapping) for row in conn.execute(query)]

    def reencrypt(self, rotate: Callable[[str], str]) -> int:
        """Pass every encrypted value through ``rotate`` in one transaction; how many changed.

        One transaction, so a key rotation either rewrites everything or nothing: a half-rotated
        database would leave values only the old key can read after that key is removed.
        """
        columns = (
            (provider_accounts, provider_accounts.c.settings_encrypted),
            (orders, orders.c.private_key_encrypted),
        )
        count = 0
        with self.engine.begin() as conn:
            for table, column in columns:
                rows = conn.execute(sa.select(table.c.id, column).where(column.is_not(None)))
                for row_id, value in rows.all():
                    conn.execute(
                        table.update()
                        .where(table.c.id == row_id)
                        .values({column.name: rotate(value)})
                    )
                    count += 1
        return count
