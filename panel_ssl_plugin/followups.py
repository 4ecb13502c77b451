"""Renewals and reissues: the follow-up orders of a certificate, and the chains they make.

A chain is an original order and every renewal and reissue made of it since (``root_id``). Its
*current* certificate is the newest issued or expired one (latest end, then latest order); any
other issued certificate of the chain is *superseded*: it offers no renewal or reissue, and asking
for one is refused with the current certificate named.

At most one renewal and one reissue of a chain are in flight at a time. The follow-up holds the
chain's flight slot ("renewal:<root>", a unique column) from its insert until it settles, so the
database turns a second one away however the requests race, and the loser gets the winner's
order back, as a double click does.

A renewal's idempotency key is the current certificate and its end date (and how many renewals
of it did not succeed), for the reseller's popup and the host's billing alike: a click and a
billing event for the same period make one order, whoever comes first. Billing also finds a
period already renewed: a renewal issued while the current certificate is still far from its end
(RENEWAL_WINDOW) answers the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from panel_ssl_plugin import drafts, keys
from panel_ssl_plugin.orders import OrderNotFound, OrderService, Placed
from panel_ssl_plugin.providers.base import OrderState, ProviderError
from panel_ssl_plugin.sending import OrderRejected
from panel_ssl_plugin.store import IN_FLIGHT, DuplicateOrder, OrderRecord, utcnow

RENEWABLE = frozenset({OrderState.ISSUED, OrderState.EXPIRED})
REISSUABLE = frozenset({OrderState.ISSUED})
# Providers accept a renewal this long before the certificate ends and add the time left; a
# billing event for a chain whose current certificate ends later than this, after a renewal was
# issued, is a period already renewed.
RENEWAL_WINDOW = timedelta(days=90)
# what a renewal or a reissue takes over from the certificate it follows; each changes what it must
COPIED = (
    "account_id", "provider_account_id", "product_id", "product_name", "addons", "domain",
    "sans", "period_months", "server_type", "dcv_method", "approver_email", "organization",
    "unit", "state", "country", "contact", "key_type", "csr", "private_key_encrypted",
    "organization_address", "san_approvers",
)  # fmt: skip


class FollowUpRefused(Exception):
    """A renewal or reissue cannot be made now; ``str(error)`` says why to the person who asked.

    ``order`` is the follow-up the provider refused, when it got that far; ``current`` the
    certificate to follow up instead, when the one asked for is superseded.
    """

    def __init__(
        self,
        message: str,
        order: OrderRecord | None = None,
        current: OrderRecord | None = None,
    ):
        super().__init__(message)
        self.order = order
        self.current = current


class RenewalRefused(FollowUpRefused):
    """A renewal cannot be made now."""


class ReissueRefused(FollowUpRefused):
    """A reissue cannot be made now."""


@dataclass(frozen=True)
class FollowUp:
    """What tells the two kinds of follow-up order apart; everything else they share."""

    link: str  # the column naming the order followed
    noun: str
    verb: str
    done: str
    of_states: frozenset[str]  # the states of an order that may be followed up this way
    refused: type[FollowUpRefused]


RENEWAL = FollowUp("renewal_of", "renewal", "renew", "renewed", RENEWABLE, RenewalRefused)
REISSUE = FollowUp("reissue_of", "reissue", "reissue", "reissued", REISSUABLE, ReissueRefused)


@dataclass(frozen=True)
class Chain:
    """An original order and its follow-ups, oldest first, and what they tell."""

    orders: tuple[OrderRecord, ...]

    @property
    def root(self) -> int:
        return self.orders[0].chain_root

    @property
    def current(self) -> OrderRecord | None:
        """The certificate to renew or reissue now: the newest issued or expired one."""
        ended = [o for o in self.orders if o.status in RENEWABLE and o.not_after is not None]
        return max(ended, key=lambda o: (o.not_after, o.id), default=None)

    def superseded_by(self, order: OrderRecord) -> OrderRecord | None:
        """The chain's current certificate, when ``order`` is an older one."""
        current = self.current
        if order.status not in RENEWABLE or current is None or current.id == order.id:
            return None
        return current

    def in_flight(self, kind: FollowUp) -> OrderRecord | None:
        """The follow-up of this kind not settled yet (the holder of its flight slot)."""
        return next(
            (o for o in self.orders if getattr(o, kind.link) is not None and o.status in IN_FLIGHT),
            None,
        )

    def made_of(self, order_id: int, kind: FollowUp | None = None) -> list[OrderRecord]:
        """The follow-ups made of one order (of one kind), oldest first."""
        kinds = (kind,) if kind else (RENEWAL, REISSUE)
        return [o for o in self.orders if any(getattr(o, k.link) == order_id for k in kinds)]

    def last(self, kind: FollowUp) -> OrderRecord | None:
        return next((o for o in reversed(self.orders) if getattr(o, kind.link) is not None), None)


class FollowUps:
    """Renewals and reissues of one host's certificates."""

    def __init__(self, orders: OrderService):
        self.orders = orders
        self.store = orders.store

    def chain(self, order: OrderRecord) -> Chain:
        return Chain(tuple(self.store.chain(order.chain_root)))

    def renewals(self, order_id: int) -> list[OrderRecord]:
        """The renewals made of an order, oldest first."""
        return self.chain(self.orders.get(order_id)).made_of(order_id, RENEWAL)

    def reissues(self, order_id: int) -> list[OrderRecord]:
        """The reissues made of an order, oldest first."""
        return self.chain(self.orders.get(order_id)).made_of(order_id, REISSUE)

    # --- renewing -------------------------------------------------------------------------------

    def renew(self, order_id: int, actor: str, *, period_months: int | None = None) -> Placed:
        """Renew a certificate (the reseller's popup): same CSR, key and details, new period.

        The renewal is a new order linked by ``renewal_of``; the old certificate stays usable
        until the new one is issued. A superseded certificate is refused with the current one
        named; a renewal already in flight is returned as a duplicate.
        """
        order = self.orders.get(order_id)
        chain = self.chain(order)
        self._check_followable(order, chain, RENEWAL)
        return self._renew(order, chain, actor, period_months)

    def renewal_due(
        self, account_id: str, certificate_id: int, period_months: int, actor: str = "billing"
    ) -> OrderRecord:
        """The host's billing says "renew this certificate": one renewal per period, however
        often and however late it says so, and the same one a click in the popup made."""
        order = self.orders.get(certificate_id)
        if order.account_id != str(account_id):
            raise OrderNotFound(
                f"Certificate {certificate_id} is not one of account {account_id}'s."
            )
        chain = self.chain(order)
        answered = _renewed_already(chain, utcnow())
        if answered is not None:
            return answered
        current = chain.current
        if current is None:
            raise RenewalRefused(
                f"Only issued certificates can be renewed; this one is {order.status}."
            )
        return self._renew(current, chain, actor, period_months).order

    def renew_expiring(
        self, now: datetime, within: timedelta, actor: str = "auto-renew"
    ) -> Iterator[tuple[OrderRecord, OrderRecord | Exception]]:
        """Renew the current certificates ending within ``within`` on auto-renew accounts.

        Yields (certificate, renewal or refusal) per certificate, so a caller can show
        progress; superseded certificates are passed over (their chain is renewed already).
        """
        for order in self.store.issued_ending_before(now + within, auto_renew_only=True):
            chain = self.chain(order)
            if chain.superseded_by(order) is not None:
                continue
            try:
                yield order, self._renew(order, chain, actor, None).order
            except (RenewalRefused, OrderRejected) as error:
                yield order, error

    def _renew(
        self, current: OrderRecord, chain: Chain, actor: str, period_months: int | None
    ) -> Placed:
        busy = chain.in_flight(RENEWAL)
        if busy is not None:
            return Placed(busy, duplicate=True)
        period = period_months or current.period_months
        if period not in self._periods(current):
            raise RenewalRefused("Choose a validity period this product offers.")
        unsuccessful = sum(o.status not in IN_FLIGHT for o in chain.made_of(current.id, RENEWAL))
        key = f"renew:{current.id}:{current.not_after:%Y%m%d%H%M%S}:{unsuccessful}"
        values = {**_copied(current), "period_months": period}
        return self._follow_up(current, chain, RENEWAL, actor, values, key)

    def _periods(self, current: OrderRecord) -> tuple[int, ...]:
        """The periods a renewal may ask for: the product's, or, when the catalogue cannot be
        read now, the certificate's own (the provider judges the rest)."""
        try:
            product = self.orders.product(current.provider_account_id, current.product_id)
        except ProviderError:
            product = None
        return product.periods if product is not None else (current.period_months,)

    # --- reissuing ------------------------------------------------------------------------------

    def reissue(
        self,
        order_id: int,
        actor: str,
        *,
        key_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> Placed:
        """Order a new certificate for a new key: same names, subject and details, placed with
        the provider's reissue call.

        Users of other panels lose the key on reissue; here the reissue is a new order linked by
        ``reissue_of`` that holds its own key, and the order it reissues keeps its certificate
        and key untouched. Without an explicit key, the key counts the reissues of this order
        already settled, so a double click makes one reissue, and the next one can be asked for
        once that one is issued or failed.
        """
        order = self.orders.get(order_id)
        chain = self.chain(order)
        self._check_followable(order, chain, REISSUE)
        busy = chain.in_flight(REISSUE)
        if busy is not None:
            return Placed(busy, duplicate=True)
        settled = sum(r.status not in IN_FLIGHT for r in chain.made_of(order.id, REISSUE))
        key = idempotency_key or f"reissue:{order.id}:{settled}"
        key_type = key_type or (
            order.key_type if order.key_type in keys.KEY_TYPES else keys.DEFAULT_KEY_TYPE
        )
        if key_type not in keys.KEY_TYPES:
            raise ReissueRefused("Choose a key type from the list.")
        values = _copied(order)
        key_pem, csr = drafts.new_key_and_csr(key_type, values)
        vault = self.orders.vault
        values.update(key_type=key_type, csr=csr, private_key_encrypted=vault.encrypt(key_pem))
        return self._follow_up(order, chain, REISSUE, actor, values, key)

    # --- both -----------------------------------------------------------------------------------

    @staticmethod
    def _check_followable(order: OrderRecord, chain: Chain, kind: FollowUp) -> None:
        if order.status not in kind.of_states:
            raise kind.refused(
                f"Only issued certificates can be {kind.done}; this one is {order.status}."
            )
        current = chain.superseded_by(order)
        if current is not None:
            raise kind.refused(superseded(current, kind), current=current)

    def _follow_up(
        self,
        order: OrderRecord,
        chain: Chain,
        kind: FollowUp,
        actor: str,
        values: dict[str, Any],
        key: str,
    ) -> Placed:
        """Store the follow-up, holding the chain's flight slot, note it on the order it
        follows, then send it. The loser of a race gets the winner's order back."""
        values = {
            **values,
            kind.link: order.id,
            "root_id": chain.root,
            "flight": f"{kind.noun}:{chain.root}",
            "idempotency_key": key,
            "status": OrderState.SUBMITTED,
        }
        try:
            follow_up = self.store.add_order(actor, **values)
        except DuplicateOrder as duplicate:
            return Placed(self.orders.get(duplicate.order_id), duplicate=True)
        self.store.add_event(
            order.id, actor, f"{kind.noun}_ordered", f"{kind.noun} order {follow_up.id}"
        )
        try:
            return Placed(self.orders.sending.submit(follow_up, actor))
        except OrderRejected as rejected:
            message = f"The provider refused the {kind.noun}: {rejected}"
            raise kind.refused(message, rejected.order) from None


def superseded(current: OrderRecord, kind: FollowUp) -> str:
    """Why an older certificate of a chain is not followed up: the current one is named."""
    how = "renewed" if current.renewal_of is not None else "reissued"
    until = f", valid until {current.not_after:%Y-%m-%d}," if current.not_after else ""
    return f"This certificate was {how} by #{current.id}{until} which is the one to {kind.verb}."


def _copied(order: OrderRecord) -> dict[str, Any]:
    return {name: getattr(order, name) for name in COPIED}


def _renewed_already(chain: Chain, now: datetime) -> OrderRecord | None:
    """The renewal that answers a billing event now, if any: one in flight, or the chain's last
    renewal when it is issued and the current certificate is far from its end."""
    busy = chain.in_flight(RENEWAL)
    if busy is not None:
        return busy
    last, current = chain.last(RENEWAL), chain.current
    if last is None or last.status != OrderState.ISSUED or current is None:
        return None
    return last if current.not_after - now > RENEWAL_WINDOW else None
