"""Sending: a create call (order, renewal, reissue) reaches the provider once, or is looked up.

A reseller pays for every order the plugin places, so this is where money is kept safe (DESIGN
section 4):

1. The write comes first. Before the provider is called, the order moves from *submitted* to
   *unknown* ("sending") under a lease, by compare-and-set: of two callers only one wins, and a
   crash or a lost reply leaves an order that is looked up, never sent again blindly.
2. The answer decides. Placed: *pending*. Refused: back to *draft* (a new order keeps its form)
   or *failed*. Never reached the provider (ProviderUnavailable): *submitted* again, retried
   later. Anything else after sending: it stays *unknown*.
3. An *unknown* order is reconciled before anything else: the adapter's ``find_order`` says the
   provider has it (it is adopted), provably has not (it is sent again, no sooner than SETTLE
   after the lost call), or cannot tell (it is held, and an admin either links the provider's
   order id or says to place it again; both audited, see ``resolve``).

One worker per order at a time: the lease (``lease_until``) is taken by the poller's claim and by
every action that calls the provider (``take``), and an order under a live lease is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pluggy

from panel_ssl_plugin import names
from panel_ssl_plugin.accounts import ProviderAccounts, about_account
from panel_ssl_plugin.providers.base import (
    DcvMethod,
    OrderState,
    Placement,
    PlacementKind,
    Provider,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderUnavailable,
)
from panel_ssl_plugin.refs import kind_of, publish_tasks, request_of, tasks_json, to_ref
from panel_ssl_plugin.store import OrderRecord, StaleOrder, Store, utcnow

log = logging.getLogger(__name__)

FIRST_CHECK = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)
# How long one worker owns an order it is sending, looking up or cancelling. A worker that dies
# meanwhile leaves the order to be looked up once this has passed.
LEASE = timedelta(minutes=5)
# A provider whose answer timed out may still be finishing the order: it is looked up no sooner,
# and not believed absent sooner, than this after the call left.
SETTLE = timedelta(minutes=2)
SENDING = "Sending the order to the provider…"
LOOKING_UP = (
    "We are asking the provider whether the order arrived; it will not be placed again until "
    "we know."
)
# The events of a try that failed: a check or lookup without an answer, a create call that never
# reached the provider. The list shows the newest while the order's tries keep failing.
CHECK_FAILED = "check_failed"
NOT_SENT = "provider_unavailable"
BUSY = (
    "Someone is working on this order right now (sending, looking up or cancelling it); look "
    "again in a moment."
)


class OrderRejected(Exception):
    """The provider refused the order (or the action). A new order's draft is kept so the user
    can fix and resubmit; a renewal or reissue has no form to go back to, so it fails."""

    def __init__(self, message: str, order: OrderRecord):
        super().__init__(message)
        self.order = order


def backoff(failures: int) -> timedelta:
    """How long to wait before the next check: 1, 2, 4 ... minutes, at most six hours."""
    return min(FIRST_CHECK * (2 ** min(failures, 12)), MAX_BACKOFF)


def leased(order: OrderRecord, now: datetime) -> bool:
    """Whether a worker owns the order now."""
    return order.lease_until is not None and order.lease_until > now


class Sending:
    """The one-worker protocol and the create calls of one host's orders."""

    def __init__(self, pm: pluggy.PluginManager, store: Store, accounts: ProviderAccounts):
        self.pm = pm
        self.store = store
        self.accounts = accounts

    # --- one worker at a time ------------------------------------------------------------------

    def take(
        self, order: OrderRecord, actor: str, event: str, now: datetime, detail: str = "",
        **values: Any,
    ) -> OrderRecord | None:  # fmt: skip
        """Become the one worker of ``order`` (the lease) before calling its provider; None when
        another caller changed it first. Until the lease ends the poller leaves the order alone,
        and if this worker dies the order is looked up after that."""
        values.setdefault("status_detail", SENDING if event == "sending" else LOOKING_UP)
        try:
            return self.store.update_order(
                order, actor, event, detail, lease_until=now + LEASE, next_check_at=now + LEASE,
                **values,
            )  # fmt: skip
        except StaleOrder:
            return None

    def settle(
        self, order: OrderRecord, actor: str, event: str, detail: str, old: str, **values: Any
    ) -> OrderRecord:
        """Record the end of a worker's turn (the lease goes) and tell the host when the state
        moved from ``old``, what it was before the turn began."""
        settled = self.store.update_order(
            order, actor, event, detail, announce_from=old, lease_until=None, **values
        )
        if settled.status != old:
            self.notify(settled, old)
        return settled

    def retry_later(
        self, order: OrderRecord, actor: str, error: ProviderError, now: datetime
    ) -> OrderRecord:
        """The provider could not be asked: ask again after a backoff (or its Retry-After).

        ``last_checked_at`` stays when the provider last answered; the failure is the
        ``check_failed`` event, which the list shows with the next try."""
        wait = backoff(order.check_failures + 1)
        if isinstance(error, ProviderUnavailable) and error.retry_after:
            wait = max(wait, timedelta(seconds=error.retry_after))
        return self.store.update_order(
            order, actor, CHECK_FAILED, str(error),
            next_check_at=now + wait, check_failures=order.check_failures + 1, lease_until=None,
        )  # fmt: skip

    def notify(self, order: OrderRecord, old: str) -> None:
        """Tell the host, after the commit; a failing listener must not undo the transition."""
        try:
            self.pm.hook.ssl_order_status_changed(
                order=order.public(), old=str(old), new=str(order.status)
            )
            if order.status == OrderState.ISSUED:
                self.pm.hook.ssl_certificate_issued(certificate=order.public())
        except Exception:
            log.exception("a listener of order %s's status change failed", order.id)

    # --- sending -------------------------------------------------------------------------------

    def submit(self, order: OrderRecord, actor: str, now: datetime | None = None) -> OrderRecord:
        """Send a stored, submitted order to its provider, once (module docstring, 1 and 2).

        Returns the order as it stands afterwards, also when another caller sent it first;
        raises OrderRejected when the provider refused.
        """
        now = now or utcnow()
        sending = self.take(order, actor, "sending", now, status=OrderState.UNKNOWN, sent_at=now)
        if sending is None:
            return self.store.order(order.id)
        return self._send(sending, actor, now, order.status)

    def submit_new(self, values: dict[str, Any], actor: str) -> OrderRecord:
        """Store a new order already taken for sending, then send it: what ``submit`` does
        for a stored order, with the write-first in the INSERT itself (one statement, not an
        INSERT and then the taking UPDATE). Its history still reads submitted, then sending.
        DuplicateOrder when its idempotency key or flight slot is taken."""
        now = utcnow()
        order = self.store.add_order(
            actor, events=(OrderState.SUBMITTED, "sending"), **values,
            status=OrderState.UNKNOWN, status_detail=SENDING, sent_at=now,
            lease_until=now + LEASE, next_check_at=now + LEASE,
        )  # fmt: skip
        return self._send(order, actor, now, OrderState.SUBMITTED)

    def _send(self, order: OrderRecord, actor: str, now: datetime, old: str) -> OrderRecord:
        """Make the create call of an order this worker holds and record what came of it."""
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            with about_account(order.account_id):
                ref = self._create(adapter, order)
        except ProviderRejected as error:
            state = OrderState.DRAFT if order.follows is None else OrderState.FAILED
            rejected = self.settle(
                order, actor, "rejected", str(error), old,
                status=state, status_detail=str(error), next_check_at=None,
            )  # fmt: skip
            raise OrderRejected(str(error), rejected) from error
        except ProviderUnavailable as error:
            return self._not_sent(order, actor, error, now, old)
        except ProviderError as error:
            return self._lost(order, actor, error, now, old)
        except Exception:
            log.exception("the %s adapter failed after sending order %s", adapter.key, order.id)
            error = ProviderOutcomeUnknown("The provider's answer could not be handled.")
            return self._lost(order, actor, error, now, old)
        return self._placed(order, ref, actor, now, "placed", f"provider order {ref.order_id}", old)

    def _create(self, adapter: Provider, order: OrderRecord) -> ProviderRef:
        """The create call that fits the order, so a renewal or reissue sent again (by the
        poller, after a lookup) is never placed as a new order."""
        if order.follows is None:
            return adapter.place_order(request_of(order))
        previous = to_ref(self.store.order(order.follows))
        if order.reissue_of is not None:
            return adapter.reissue(previous, order.csr)
        return adapter.renew(request_of(order), previous)

    def _placed(
        self,
        order: OrderRecord,
        ref: ProviderRef,
        actor: str,
        now: datetime,
        event: str,
        detail: str,
        old: str,
    ) -> OrderRecord:
        """The provider has the order (it said so, or it was found): track it, pending."""
        adapter = self.accounts.adapter(order.provider_account_id)
        ref = replace(ref, validation=publish_tasks(adapter.host, ref.validation))
        return self.settle(
            order, actor, event, detail, old,
            status=OrderState.PENDING, provider_order_id=ref.order_id, provider_data=ref.data,
            validation=tasks_json(ref.validation), status_detail=_placed_detail(order, ref),
            next_check_at=now + FIRST_CHECK, check_failures=0,
        )  # fmt: skip

    def _not_sent(
        self, order: OrderRecord, actor: str, error: ProviderUnavailable, now: datetime, old: str
    ) -> OrderRecord:
        """The call never reached the provider: submitted again, sent again after a backoff."""
        wait = backoff(order.check_failures)
        if error.retry_after:
            wait = max(wait, timedelta(seconds=error.retry_after))
        return self.settle(
            order, actor, NOT_SENT, str(error), old,
            status=OrderState.SUBMITTED, status_detail=f"{error} We will retry automatically.",
            next_check_at=now + wait, check_failures=order.check_failures + 1,
        )  # fmt: skip

    def _lost(
        self, order: OrderRecord, actor: str, error: ProviderError, now: datetime, old: str
    ) -> OrderRecord:
        """The call may have reached the provider: unknown, looked up after SETTLE."""
        return self.settle(
            order, actor, "outcome_unknown", str(error), old,
            status=OrderState.UNKNOWN, status_detail=str(error),
            next_check_at=now + SETTLE,
        )  # fmt: skip

    # --- an answer that was lost ----------------------------------------------------------------

    def reconcile(
        self, order: OrderRecord, actor: str = "system", now: datetime | None = None
    ) -> OrderRecord:
        """Ask the provider whether an *unknown* order exists (module docstring, 3).

        Found: tracked, pending. Provably absent: sent again once SETTLE has passed since the
        lost call. The provider cannot be asked now: asked again after a backoff. It cannot
        tell: held for an admin. Returns the order as it stands afterwards.
        """
        now = now or utcnow()
        taken = self.take(order, actor, "looking_up", now)
        if taken is None:
            return self.store.order(order.id)
        adapter = self.accounts.adapter(taken.provider_account_id)
        try:
            found = adapter.find_order(self.placement(taken))
        except ProviderUnavailable as error:
            return self.retry_later(taken, actor, error, now)
        except ProviderError as error:
            return self._hold(taken, actor, error, adapter)
        if found is not None:
            detail = f"found at the provider as order {found.order_id}"
            return self._placed(taken, found, actor, now, "found", detail, OrderState.UNKNOWN)
        sent_at = taken.sent_at or taken.created_at
        if now < sent_at + SETTLE:
            return self.settle(
                taken, actor, "not_found_yet", "not at the provider yet; looking again shortly",
                OrderState.UNKNOWN, next_check_at=sent_at + SETTLE,
            )  # fmt: skip
        return self._send_again(taken, actor, now, "the provider has no such order")

    def placement(self, order: OrderRecord) -> Placement:
        """The create call the order's last sending was, as the adapter's find_order needs it."""
        previous = self.store.order(order.follows) if order.follows is not None else None
        return Placement(
            kind=kind_of(order),
            request=request_of(order),
            sent_at=order.sent_at or order.created_at,
            previous=to_ref(previous) if previous is not None else None,
            tracked=self.store.provider_order_ids(order.provider_account_id),
        )

    def _send_again(self, order: OrderRecord, actor: str, now: datetime, why: str) -> OrderRecord:
        resend = self.store.update_order(
            order, actor, "sending", f"{why}; sending it again", sent_at=now, status_detail=SENDING
        )
        return self._send(resend, actor, now, OrderState.UNKNOWN)

    def _hold(
        self, order: OrderRecord, actor: str, error: ProviderError, adapter: Provider
    ) -> OrderRecord:
        """Nothing more is sent or asked on its own: a person decides (``resolve``)."""
        detail = (
            f"We sent this order to {adapter.name} and got no usable answer, and {adapter.name} "
            f"cannot tell whether it arrived: {error} Nothing more is sent until an admin checks "
            f"the {adapter.name} account and says whether the order is there."
        )
        return self.settle(
            order, actor, "held", str(error), OrderState.UNKNOWN,
            status_detail=detail, next_check_at=None,
        )  # fmt: skip

    def resolve(
        self, order: OrderRecord, actor: str, *, provider_order_id: str | None = None
    ) -> OrderRecord:
        """An admin's answer for an *unknown* order, audited under ``actor``.

        With ``provider_order_id``: "it exists at the provider as this order", which the
        provider must confirm (a status call) before it is tracked as pending (and checked like
        any other). Without: "it does not exist there: place it again". OrderRejected when the
        order is not unknown, is being worked on, the id is tracked already or the provider does
        not know it.
        """
        now = utcnow()
        if order.status != OrderState.UNKNOWN:
            message = f"Only an order of unknown outcome needs this; this one is {order.status}."
            raise OrderRejected(message, order)
        if leased(order, now):
            raise OrderRejected(BUSY, order)
        if provider_order_id is None:
            taken = self.take(order, actor, "declared_absent", now)
            if taken is None:
                raise OrderRejected(BUSY, self.store.order(order.id))
            why = f"{actor} said the provider has no such order"
            return self._send_again(taken, actor, now, why)
        return self._link(order, actor, provider_order_id.strip(), now)

    def _link(
        self, order: OrderRecord, actor: str, provider_order_id: str, now: datetime
    ) -> OrderRecord:
        if not provider_order_id or len(provider_order_id) > 100:
            raise OrderRejected("Enter the provider's order id (up to 100 characters).", order)
        placement = self.placement(order)
        reissued = placement.previous.order_id if placement.kind == PlacementKind.REISSUE else None
        if provider_order_id in placement.tracked and provider_order_id != reissued:
            raise OrderRejected(f"Provider order {provider_order_id} is already tracked.", order)
        taken = self.take(order, actor, "linking", now)
        if taken is None:
            raise OrderRejected(BUSY, self.store.order(order.id))
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            ref = adapter.adopt_order(placement, provider_order_id)
            adapter.status(ref)  # the provider confirms it knows the order
        except ProviderError as error:
            self.settle(taken, actor, "link_refused", str(error), OrderState.UNKNOWN)
            message = f"{adapter.name} does not confirm order {provider_order_id}: {error}"
            raise OrderRejected(message, self.store.order(order.id)) from error
        detail = f"{actor} linked provider order {ref.order_id}"
        return self._placed(taken, ref, actor, now, "linked", detail, OrderState.UNKNOWN)


def _placed_detail(order: OrderRecord, ref: ProviderRef) -> str:
    if order.dcv_method == DcvMethod.EMAIL and order.approver_email:
        approver = names.display_email(order.approver_email)
        return f"Order received; the approval email was sent to {approver}."
    if ref.validation and all(task.published for task in ref.validation):
        return (
            "Order received; the panel published the validation records for the provider to check."
        )
    if ref.validation:
        return "Order received; publish the validation records shown to prove control."
    return "Order received; validation is in progress."
