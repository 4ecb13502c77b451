"""Polling: the periodic round that moves orders on without anyone clicking.

The host's tick (hookimpls.panel_tick) and ``panel-ssl poll`` run it: claim the orders whose check
is due, check them in a bounded thread pool, then expire certificates whose validity ended. It is
built on the order service's public methods, so a polled order changes exactly as a checked one.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from panel_ssl_plugin.orders import OrderRejected, OrderService
from panel_ssl_plugin.providers.base import (
    OrderState,
    Provider,
    ProviderError,
    ProviderRef,
    ProviderStatus,
    ProviderUnavailable,
)
from panel_ssl_plugin.refs import to_ref
from panel_ssl_plugin.store import OrderRecord, StaleOrder

BATCH_SIZE = 50


@dataclass
class PollReport:
    """What one polling round did, for the CLI and the host's logs."""

    claimed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    expired: int = 0

    def count(self, order: OrderRecord) -> None:
        self.by_status[order.status] = self.by_status.get(order.status, 0) + 1

    def summary(self) -> str:
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.by_status.items()))
        return f"Checked {self.claimed} orders ({states or 'none due'}); {self.expired} expired."


def poll_due(
    orders: OrderService, now: datetime, *, limit: int = 500, workers: int = 4
) -> PollReport:
    """One polling round: claim the due orders, check them, expire ended certificates."""
    report = check_claimed(orders, claim_due(orders, now, limit=limit), now=now, workers=workers)
    report.expired = expire_ended(orders, now)
    return report


def claim_due(
    orders: OrderService,
    now: datetime,
    *,
    limit: int = 500,
    lease: timedelta = timedelta(minutes=5),
) -> list[OrderRecord]:
    """Lease the orders whose check is due (store.claim_due): no other poller takes them."""
    return orders.store.claim_due(now, limit, lease)


def check_claimed(
    orders: OrderService,
    claimed: list[OrderRecord],
    *,
    now: datetime | None = None,
    workers: int = 4,
    on_done: Callable[[OrderRecord], object] | None = None,
) -> PollReport:
    """Check claimed orders; ``on_done(order)`` after each one (the CLI's progress bar).

    Orders are grouped per provider account so adapters with a batch call ask once per
    group; groups run side by side in a bounded thread pool.
    """
    report = PollReport(claimed=len(claimed))
    groups: dict[int, list[OrderRecord]] = {}
    for order in claimed:
        groups.setdefault(order.provider_account_id, []).append(order)
    chunks = [
        group[i : i + BATCH_SIZE]
        for group in groups.values()
        for i in range(0, len(group), BATCH_SIZE)
    ]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for results in pool.map(lambda chunk: _poll_chunk(orders, chunk, now), chunks):
            for order in results:
                report.count(order)
                if on_done:
                    on_done(order)
    return report


def _poll_chunk(
    orders: OrderService, chunk: list[OrderRecord], now: datetime | None
) -> list[OrderRecord]:
    adapter = orders.accounts.adapter(chunk[0].provider_account_id)
    pending = [o for o in chunk if o.status == OrderState.PENDING and o.provider_order_id]
    answers = _statuses(adapter, [to_ref(o) for o in pending]) if pending else {}
    missing = ProviderError("The provider did not answer for this order.")

    def step(order: OrderRecord) -> OrderRecord:
        if order.status == OrderState.SUBMITTED:
            return orders.sending.submit(order, "poller", now)
        if order.status == OrderState.UNKNOWN:
            return orders.sending.reconcile(order, "poller", now)
        answer = answers.get(order.provider_order_id, missing)
        return orders.record_answer(order, answer, "poller", adapter, now)

    return [_settled(step, order) for order in chunk]


def _statuses(
    adapter: Provider, refs: list[ProviderRef]
) -> dict[str, ProviderStatus | ProviderError]:
    """The adapter's batch answer; when its batch call raises, each order is asked on its own
    (Provider.statuses), unless the provider is unavailable: then every order waits for a retry,
    and a provider that is down is not asked once per order."""
    try:
        return adapter.statuses(refs)
    except ProviderUnavailable as error:
        return dict.fromkeys((ref.order_id for ref in refs), error)
    except ProviderError:
        return Provider.statuses(adapter, refs)


def _settled(step: Callable[[OrderRecord], OrderRecord], order: OrderRecord) -> OrderRecord:
    """Run one order's step; a refusal or a lost race is that order's business alone."""
    try:
        return step(order)
    except OrderRejected as rejected:
        return rejected.order
    except StaleOrder:
        return order


def reconcile_unknown(
    orders: OrderService, now: datetime, on_done: Callable[[OrderRecord], object] | None = None
) -> PollReport:
    """Look up every order of unknown outcome now, held ones too (``panel-ssl reconcile``): a
    provider that could not tell before may tell now. Each lookup is the poller's (sending.py)."""
    unknown = orders.store.unknown_orders(now)
    report = PollReport(claimed=len(unknown))
    for order in unknown:
        settled = _settled(lambda o: orders.sending.reconcile(o, "reconcile", now), order)
        report.count(settled)
        if on_done:
            on_done(settled)
    return report


def expire_ended(orders: OrderService, now: datetime) -> int:
    """Issued certificates past their end become expired; returns how many."""
    count = 0
    for order in orders.store.issued_ending_before(now):
        try:
            orders.expire(order)
        except StaleOrder:
            continue
        count += 1
    return count
