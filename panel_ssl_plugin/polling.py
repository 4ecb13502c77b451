"""Polling: the periodic round that moves orders on without anyone clicking.

The host's tick (hookimpls.panel_tick) and ``panel-ssl poll`` run it: claim the orders whose check
is due, check them in a bounded thread pool, then expire certificates whose validity ended. It is
built on the order service's public methods, so a polled order changes exactly as a checked one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
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
from panel_ssl_plugin.store import OrderRecord, StaleOrder, utcnow

CHUNK_SIZE = 50  # orders of one provider account asked in one batch call
CLAIM_SIZE = 500  # orders leased at once; a round claims again until nothing is due
WORKERS = 8  # provider calls at once
# What a host's tick (panel_tick) polls with, from its environment: PollSettings.from_env
ENV_WORKERS, ENV_BATCH = "PANEL_SSL_POLL_WORKERS", "PANEL_SSL_POLL_BATCH"


@dataclass(frozen=True)
class PollSettings:
    """How a host's tick polls: ``workers`` provider calls at once, ``batch`` orders claimed
    at a time (every order due is checked either way)."""

    workers: int = WORKERS
    batch: int = CLAIM_SIZE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PollSettings:
        """PANEL_SSL_POLL_WORKERS and PANEL_SSL_POLL_BATCH, else the defaults; ValueError
        naming the variable when one is not a positive whole number."""
        values = {}
        for name, variable in (("workers", ENV_WORKERS), ("batch", ENV_BATCH)):
            text = environ.get(variable, "").strip()
            if text:
                if not text.isdigit() or int(text) < 1:
                    raise ValueError(f"{variable} must be a whole number of 1 or more: {text!r}")
                values[name] = int(text)
        return cls(**values)


@dataclass
class PollReport:
    """What one polling round did, for the CLI and the host's logs."""

    claimed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    expired: int = 0

    def count(self, order: OrderRecord) -> None:
        self.by_status[order.status] = self.by_status.get(order.status, 0) + 1

    def add(self, other: PollReport) -> None:
        self.claimed += other.claimed
        for state, n in other.by_status.items():
            self.by_status[state] = self.by_status.get(state, 0) + n

    def summary(self) -> str:
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.by_status.items()))
        return f"Checked {self.claimed} orders ({states or 'none due'}); {self.expired} expired."


def poll_due(
    orders: OrderService,
    now: datetime,
    *,
    limit: int | None = None,
    workers: int = WORKERS,
    batch: int = CLAIM_SIZE,
) -> PollReport:
    """One polling round: check every order due at ``now`` (at most ``limit``), claiming
    ``batch`` at a time, then expire ended certificates.

    Each checked order's next check lies after ``now``, so the round ends when a claim comes
    back empty. On SQLite a second poller raises PollerBusy (Store.poller_lock).
    """
    report = PollReport()
    with orders.store.poller_lock():
        while limit is None or report.claimed < limit:
            size = batch if limit is None else min(batch, limit - report.claimed)
            claimed = claim_due(orders, now, limit=size)
            if not claimed:
                break
            report.add(check_claimed(orders, claimed, now=now, workers=workers))
        report.expired = expire_ended(orders, now)
    return report


def claim_due(
    orders: OrderService,
    now: datetime,
    *,
    limit: int = CLAIM_SIZE,
    lease: timedelta = timedelta(minutes=5),
) -> list[OrderRecord]:
    """Lease the orders whose check is due (store.claim_due): no other poller takes them."""
    return orders.store.claim_due(now, limit, lease)


def check_claimed(
    orders: OrderService,
    claimed: list[OrderRecord],
    *,
    now: datetime | None = None,
    workers: int = WORKERS,
    on_done: Callable[[OrderRecord], object] | None = None,
) -> PollReport:
    """Check claimed orders; ``on_done(order)`` after each one.

    Orders are grouped per provider account so adapters with a batch call ask once per chunk;
    chunks run side by side, and so do the single status calls of adapters without a batch
    call: ``workers`` provider calls at once either way.
    """
    now = now or utcnow()
    report = PollReport(claimed=len(claimed))
    groups: dict[int, list[OrderRecord]] = {}
    for order in claimed:
        groups.setdefault(order.provider_account_id, []).append(order)
    chunks = [
        (orders.accounts.adapter(account_id), group[i : i + CHUNK_SIZE])
        for account_id, group in groups.items()
        for i in range(0, len(group), CHUNK_SIZE)
    ]
    size = max(1, workers)
    with ThreadPoolExecutor(size) as pool, ThreadPoolExecutor(size) as calls:
        for results in pool.map(lambda job: _poll_chunk(orders, *job, now, calls), chunks):
            for order in results:
                report.count(order)
                if on_done:
                    on_done(order)
    return report


def _poll_chunk(
    orders: OrderService,
    adapter: Provider,
    chunk: list[OrderRecord],
    now: datetime,
    calls: Executor,
) -> list[OrderRecord]:
    """Ask about a chunk's pending orders, record the answers that change nothing in one go
    (the bulk path), and move every other order on one by one."""
    pending = [o for o in chunk if o.status == OrderState.PENDING and o.provider_order_id]
    answers = _statuses(adapter, [to_ref(o) for o in pending], calls) if pending else {}
    missing = ProviderError("The provider did not answer for this order.")
    quiet = [
        o for o in pending if orders.unchanged_by(o, answers.get(o.provider_order_id, missing))
    ]
    quiet_ids = {order.id for order in quiet}

    def step(order: OrderRecord) -> OrderRecord:
        if order.status == OrderState.SUBMITTED:
            return orders.sending.submit(order, "poller", now)
        if order.status == OrderState.UNKNOWN:
            return orders.sending.reconcile(order, "poller", now)
        answer = answers.get(order.provider_order_id, missing)
        return orders.record_answer(order, answer, "poller", adapter, now)

    moved = [_settled(step, order) for order in chunk if order.id not in quiet_ids]
    return [*orders.record_checked(quiet, now), *moved]


def _statuses(
    adapter: Provider, refs: list[ProviderRef], calls: Executor
) -> dict[str, ProviderStatus | ProviderError]:
    """The adapter's batch answer; without a batch call, or when it raises, each order is asked
    on its own, side by side on ``calls``; unless the provider is unavailable: then every order
    waits for a retry, and a provider that is down is not asked once per order."""
    if type(adapter).statuses is Provider.statuses:
        return _one_by_one(adapter, refs, calls)
    try:
        return adapter.statuses(refs)
    except ProviderUnavailable as error:
        return dict.fromkeys((ref.order_id for ref in refs), error)
    except ProviderError:
        return _one_by_one(adapter, refs, calls)


def _one_by_one(
    adapter: Provider, refs: list[ProviderRef], calls: Executor
) -> dict[str, ProviderStatus | ProviderError]:
    def ask(ref: ProviderRef) -> ProviderStatus | ProviderError:
        try:
            return adapter.status(ref)
        except ProviderError as error:
            return error

    return dict(zip((ref.order_id for ref in refs), calls.map(ask, refs), strict=True))


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
