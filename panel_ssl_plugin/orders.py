"""The order service: what callers ask of an order. Place it, check it, cancel it, read it.

Web views, the CLI, the poller and the host's event hooks all come through here (renewals and
reissues through followups.py, which builds on this), so an order behaves the same wherever it
is touched. Every state change is one compare-and-set transaction with its audit event
(store.update_order); the host's notification hooks fire after that commit, once.

How a create call reaches the provider exactly once, and what happens when its answer is lost,
is sending.py's business (``OrderService.sending``); what a draft must be is drafts.py's; the
periodic round is polling.py's.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pluggy
from cachetools import TTLCache

from panel_ssl_plugin import drafts, keys, names
from panel_ssl_plugin.accounts import ProviderAccounts, UnknownProviderAccount, about_account
from panel_ssl_plugin.downloads import Download, DownloadRefused, Material, make_download
from panel_ssl_plugin.drafts import OrderDraft, OrderInvalid
from panel_ssl_plugin.encryption import DecryptionError, Vault
from panel_ssl_plugin.preflight import Finding, Plan, Preflight
from panel_ssl_plugin.providers.base import (
    SERVER_TYPES,
    DcvMethod,
    OrderState,
    Product,
    Provider,
    ProviderError,
    ProviderStatus,
)
from panel_ssl_plugin.refs import tasks_json, to_ref
from panel_ssl_plugin.sending import (
    BUSY,
    CHECK_FAILED,
    NOT_SENT,
    OrderRejected,
    Sending,
    backoff,
    leased,
)
from panel_ssl_plugin.store import (
    DISCARDED,
    DuplicateOrder,
    EventRecord,
    OrderRecord,
    StaleOrder,
    Store,
    utcnow,
)

CACHE_SECONDS = 300.0
DCV_DOMAINS = 1000  # approver lists kept per provider account at most
_MISSING = object()
KEY_FORMATS = frozenset({"key", "pfx", "bundle"})
# States "check status" asks the provider about: pending ones move on, and an issued one may
# have been revoked or refunded at the provider, which the list must not hide.
ASKABLE = frozenset({OrderState.PENDING, OrderState.ISSUED})
CANCELLABLE = frozenset({OrderState.DRAFT, OrderState.SUBMITTED, OrderState.PENDING})
# A failed try is news while the order is still in the state it left: a create call that never
# reached the provider leaves it submitted, a failed check or lookup leaves it as it was.
FAILURE_STATES = {
    NOT_SENT: frozenset({OrderState.SUBMITTED}),
    CHECK_FAILED: frozenset({OrderState.PENDING, OrderState.UNKNOWN, OrderState.ISSUED}),
}
UNREADABLE_KEY = (
    "This order's private key cannot be read with the panel's encryption keys (a key was "
    "removed before the stored keys were re-encrypted); ask the panel's administrator."
)


KEY_TAKEN = (
    "This form was used for another order already, so nothing was ordered: reload the page "
    "and submit again."
)


class OrderNotFound(LookupError):
    pass


def _names(typed: str, wildcard: bool) -> list[str]:
    """The A-label of a name as typed, or none while it is not a domain name."""
    try:
        return [names.normalize_domain(typed, allow_wildcard=wildcard)]
    except names.InvalidInput:
        return []


def _emails(typed: str) -> list[str]:
    """An e-mail address as typed, normalized, or none while it is not one."""
    try:
        return [names.normalize_email(typed)]
    except names.InvalidInput:
        return []


@dataclass(frozen=True)
class AccountPage:
    """A page of the List SSL Certs popup: (order, its renewals and reissues) rows, and the
    orders the pages next to it start from (None where there is no such page)."""

    rows: list[tuple[OrderRecord, list[OrderRecord]]]
    next_after: int | None = None
    previous_before: int | None = None


@dataclass(frozen=True)
class Placed:
    """The outcome of placing an order, a renewal or a reissue: the order, and whether it was
    one already made (a double click, a billing event delivered twice, a lost race)."""

    order: OrderRecord
    duplicate: bool = False


class _Answers:
    """Provider answers that change slowly (products, DCV lists), kept a few minutes, at most
    ``size`` per adapter. They belong to the adapter object, not to its ``id()``, which Python
    hands to a new object once the old one is gone; an adapter goes when its account's settings
    change, and its answers go with it.

    One fetch per answer: callers asking at once for one not kept yet (popups opened together
    in a fresh process) wait for the first caller's fetch instead of each asking the provider.
    """

    def __init__(self, size: int, seconds: float = CACHE_SECONDS):
        self.size, self.seconds = size, seconds
        self._caches: weakref.WeakKeyDictionary[Provider, TTLCache] = weakref.WeakKeyDictionary()
        self._fetching: weakref.WeakKeyDictionary[Provider, dict[Any, threading.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, adapter: Provider, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            cache = self._caches.setdefault(adapter, TTLCache(self.size, self.seconds))
            hit = cache.get(key, _MISSING)
            if hit is not _MISSING:
                return hit
            fetching = self._fetching.setdefault(adapter, {})
            flight = fetching.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                hit = cache.get(key, _MISSING)
            if hit is not _MISSING:  # fetched by the caller this one waited for
                return hit
            try:
                value = make()
                with self._lock:
                    cache[key] = value
            finally:
                with self._lock:
                    fetching.pop(key, None)
        return value

    def __len__(self) -> int:
        return sum(len(cache) for cache in self._caches.values())


class OrderService:
    """Orders of one host."""

    def __init__(
        self, pm: pluggy.PluginManager, store: Store, vault: Vault, accounts: ProviderAccounts
    ):
        self.pm = pm
        self.store = store
        self.vault = vault
        self.accounts = accounts
        self.sending = Sending(pm, store, accounts)
        self._products = _Answers(size=1)
        self._dcv = _Answers(size=DCV_DOMAINS)
        self.preflight = Preflight.from_environment()

    # --- what the order form offers ------------------------------------------------------------

    def products(self, provider_account_id: int) -> list[Product]:
        adapter = self.accounts.adapter(provider_account_id)
        return self._products.get(adapter, "products", adapter.products)

    def product(self, provider_account_id: int, product_id: str) -> Product | None:
        return next((p for p in self.products(provider_account_id) if p.id == product_id), None)

    def dcv_emails(self, provider_account_id: int, domain: str) -> list[str]:
        """Approver addresses for a domain as typed; InvalidInput for a bad domain."""
        alabel = names.normalize_domain(domain, allow_wildcard=True)
        base = alabel.removeprefix("*.")
        adapter = self.accounts.adapter(provider_account_id)
        return self._dcv.get(adapter, base, lambda: adapter.dcv_emails(base))

    def draft_errors(self, draft: OrderDraft) -> dict[str, str]:
        """Every mistake in a draft, without placing anything: a form's first step can show
        its own fields' mistakes before the user moves on to the next step."""
        try:
            drafts.checked(draft, self)
        except OrderInvalid as invalid:
            return invalid.errors
        return {}

    # --- pre-flight: what DNS says before anything is paid for ---------------------------------

    def preflight_findings(self, draft: OrderDraft, actor: str) -> list[Finding]:
        """Every pre-flight check of a draft as typed (step 1, live), as ``actor``'s work:
        names that are not yet domain names and approvers not yet chosen are left out, and so
        are names beyond what the product covers (the form says what is wrong)."""
        try:
            product = self.product(draft.provider_account_id, draft.product_id)
        except (UnknownProviderAccount, ProviderError):
            return []
        wildcard = bool(product and product.wildcard)
        order_names = _names(draft.domain, wildcard)
        if not order_names:
            return []
        covered = product.max_sans if product else 0
        typed = [("approver_email", draft.approver_email)]
        typed += [("san_approvers", address) for address in draft.san_approvers.values()]
        plan = self._plan(
            draft.provider_account_id,
            product,
            order_names + [n for name in draft.sans[:covered] for n in _names(name, wildcard)],
            draft.dcv_method,
            actor,
            tuple((field, email) for field, address in typed[: covered + 1]
                  for email in _emails(address)),
        )  # fmt: skip
        return self.preflight.check(plan)

    def _plan(
        self,
        provider_account_id: int,
        product: Product | None,
        order_names: list[str],
        dcv_method: str,
        actor: str,
        approvers: tuple[tuple[str, str], ...] = (),
    ) -> Plan:
        adapter = self.accounts.adapter(provider_account_id)
        brand = product.brand if product and product.brand else adapter.name
        return Plan(
            names=tuple(dict.fromkeys(order_names)),
            ca=brand[:1].upper() + brand[1:],
            issuers=adapter.caa_issuers(product) if product else (),
            dcv_method=dcv_method,
            approvers=approvers,
            publish=adapter.host.publish_http_file,
            unpublish=adapter.host.unpublish_http_file,
            actor=actor,
        )

    def _refuse_by_caa(self, values: dict[str, Any], actor: str) -> None:
        """OrderInvalid, naming the records, when CAA forbids the product's CA for one of the
        order's names (the CA would refuse it after it was paid for), or when CAA could not be
        read in time for a CA whose names are known (preflight.Preflight.refusals)."""
        product = self.product(values["provider_account_id"], values["product_id"])
        plan = self._plan(
            values["provider_account_id"],
            product,
            [values["domain"], *values["sans"]],
            values["dcv_method"],
            actor,
        )
        errors: dict[str, list[str]] = {}
        for refusal in self.preflight.refusals(plan):
            errors.setdefault(refusal.field, []).append(refusal.message)
        if errors:
            raise OrderInvalid({field: " ".join(texts) for field, texts in errors.items()})

    # --- placing -------------------------------------------------------------------------------

    def place(self, draft: OrderDraft, actor: str) -> Placed:
        """Check the draft, make key and CSR, store the order, then send it to the provider.

        The idempotency key makes a double click, a refresh or a retried request place one
        order: the second caller gets the first one's order. A provider that refuses leaves the
        order as a draft (OrderRejected); see the module docstring for everything else.
        """
        existing = self.store.order_by_key(draft.account_id, draft.idempotency_key)
        if existing is not None and existing.status != OrderState.DRAFT:
            return Placed(existing, duplicate=True)
        values = drafts.checked(draft, self)
        self._refuse_by_caa(values, actor)
        key_pem, csr = drafts.key_and_csr(draft, values)
        values.update(
            csr=csr, private_key_encrypted=self.vault.encrypt(key_pem) if key_pem else None
        )
        try:
            if existing is None:
                return Placed(self.sending.submit_new(values, actor))
            order = self.store.update_order(
                existing, actor, "resubmitted", status=OrderState.SUBMITTED, **values
            )
        except (DuplicateOrder, StaleOrder):
            found = self.store.order_by_key(draft.account_id, draft.idempotency_key)
            if found is None:  # another account's key: it shows nothing of that order
                raise OrderInvalid({"idempotency_key": KEY_TAKEN}) from None
            return Placed(found, duplicate=True)
        return Placed(self.sending.submit(order, actor))

    # --- reading -------------------------------------------------------------------------------

    def get(self, order_id: int) -> OrderRecord:
        order = self.store.order(order_id)
        if order is None:
            raise OrderNotFound(f"There is no certificate order {order_id}.")
        return order

    def account_page(
        self,
        account_id: str,
        *,
        sort: str = "created",
        descending: bool = True,
        per_page: int = 25,
        after: int | None = None,
        before: int | None = None,
    ) -> AccountPage:
        """One page of an account's certificates, each with every renewal and reissue made of
        it since: the first page, the one after order ``after`` or the one before ``before``
        (store.account_orders)."""
        originals, more = self.store.account_orders(
            account_id, sort=sort, descending=descending, limit=per_page, after=after,
            before=before,
        )  # fmt: skip
        chains = self.store.follow_up_chains([order.id for order in originals])
        rows = [(order, chains[order.id]) for order in originals]
        has_next = more if before is None else True
        has_previous = more if before is not None else after is not None
        return AccountPage(
            rows=rows,
            next_after=originals[-1].id if originals and has_next else None,
            previous_before=originals[0].id if originals and has_previous else None,
        )

    def events(self, order_id: int) -> list[EventRecord]:
        """The order's audit trail, oldest first."""
        return self.store.events(order_id)

    def failed_tries(self, orders: list[OrderRecord]) -> dict[int, EventRecord]:
        """Why the last try failed, for each order whose tries fail now (``check_failures``):
        its newest failure event, while the order is still in the state that failure left.
        The list says so instead of a reassuring "last checked"; one query for a page."""
        failing = [order for order in orders if order.check_failures]
        found = self.store.latest_events([o.id for o in failing], tuple(FAILURE_STATES))
        return {
            order.id: found[order.id]
            for order in failing
            if order.id in found and order.status in FAILURE_STATES[found[order.id].event]
        }

    def rotate_encryption(self) -> int:
        """Re-encrypt every stored secret (order keys, provider settings) with the newest key."""
        return self.store.reencrypt(self.vault.rotate)

    def private_key(self, order: OrderRecord) -> str | None:
        """The order's private key in clear, for an audited reveal or download; DownloadRefused
        when the host's keys no longer open it (one was dropped before ``rotate-keys`` ran)."""
        if order.private_key_encrypted is None:
            return None
        try:
            return self.vault.decrypt(order.private_key_encrypted)
        except DecryptionError:
            raise DownloadRefused(UNREADABLE_KEY) from None

    def reveal_key(self, order_id: int, actor: str) -> str:
        """The private key in clear for someone allowed to see it; the audit log says who."""
        order = self.get(order_id)
        key = self.private_key(order)
        if key is None:
            raise DownloadRefused("This order was placed with your own CSR: only you hold its key.")
        self.store.add_event(order.id, actor, "key_revealed", "private key shown")
        return key

    def download(self, order_id: int, fmt: str, actor: str, password: str = "") -> Download:
        """One download of an issued certificate; files holding the key are audited."""
        order = self.get(order_id)
        if not order.certificate:
            raise DownloadRefused("The certificate is not issued yet; check its status first.")
        material = Material(
            domain=order.domain,
            server_type=order.server_type,
            certificate=order.certificate,
            chain=order.chain or "",
            private_key=self.private_key(order) if fmt in KEY_FORMATS else None,
        )
        server = SERVER_TYPES.get(order.server_type, "Other")
        download = make_download(material, fmt, password=password, server_name=server)
        if fmt in KEY_FORMATS:
            self.store.add_event(order.id, actor, "key_downloaded", download.filename)
        return download

    # --- checking status -----------------------------------------------------------------------

    def check(self, order_id: int, actor: str = "system") -> OrderRecord:
        """Ask the provider where the order stands now and record the answer.

        A submitted order is sent, an unknown one looked up, a pending or issued one asked
        about (unless a reissue has taken over its provider order); an order another worker
        holds is returned as it is.
        """
        order, now = self.get(order_id), utcnow()
        if leased(order, now):
            return order
        if order.status == OrderState.SUBMITTED:
            return self.sending.submit(order, actor, now)
        if order.status == OrderState.UNKNOWN:
            return self.sending.reconcile(order, actor, now)
        if order.status not in ASKABLE or not order.provider_order_id or self._taken_over(order):
            return order
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            answer: ProviderStatus | ProviderError = adapter.status(to_ref(order))
        except ProviderError as error:
            answer = error
        return self.record_answer(order, answer, actor, adapter, now)

    def _taken_over(self, order: OrderRecord) -> bool:
        """Whether a reissue that kept this order's provider order id answers for it now.

        GoGetSSL and Sectigo reissue under the same id: asking about the reissued order would
        pour the reissue's pending state onto a certificate that is still valid, and then fail
        it when the new certificate does not match the old key.
        """
        if order.status != OrderState.ISSUED:
            return False
        newest = self.store.order_by_provider_ref(
            order.provider_account_id, order.provider_order_id
        )
        return newest is not None and newest.id != order.id

    def record_answer(
        self,
        order: OrderRecord,
        answer: ProviderStatus | ProviderError,
        actor: str,
        adapter: Provider,
        now: datetime | None = None,
    ) -> OrderRecord:
        """Record what asking the provider about an order gave: its status, or the error that
        asking raised (then the order is asked again after a backoff). The poller asks in
        batches and records each order's answer through here."""
        now = now or utcnow()
        if isinstance(answer, ProviderError):
            return self.sending.retry_later(order, actor, answer, now)
        return self.apply_status(order, answer, actor, adapter, now)

    def apply_status(
        self,
        order: OrderRecord,
        status: ProviderStatus,
        actor: str,
        adapter: Provider,
        now: datetime | None = None,
    ) -> OrderRecord:
        """Record a provider's answer; an issued certificate is verified before it is accepted."""
        now = now or utcnow()
        values = {**_answered(status), "last_checked_at": now, "check_failures": 0}
        new_state = status.state
        if new_state == OrderState.ISSUED and order.status != OrderState.ISSUED:
            problem = self._verify_issued(order, status, adapter)
            if problem:
                new_state, values["status_detail"] = OrderState.FAILED, problem
            else:
                values.update(
                    certificate=status.certificate, chain=status.chain or "",
                    not_before=status.not_before, not_after=status.not_after,
                )  # fmt: skip
        values["status"] = new_state
        values["next_check_at"] = now + backoff(0) if new_state == OrderState.PENDING else None
        event = "checked" if new_state == order.status else str(new_state)
        return self.sending.settle(
            order, actor, event, values["status_detail"], order.status, **values
        )

    def unchanged_by(self, order: OrderRecord, answer: ProviderStatus | ProviderError) -> bool:
        """Whether recording ``answer`` would change nothing about a pending order but when it
        was checked: no transition, no new detail, data or validation tasks. Most answers of a
        polling round are such; the poller records them all at once (record_checked)."""
        if not isinstance(answer, ProviderStatus) or order.status != OrderState.PENDING:
            return False
        if answer.state != OrderState.PENDING:
            return False
        return all(getattr(order, name) == value for name, value in _answered(answer).items())

    def record_checked(self, orders: list[OrderRecord], now: datetime) -> list[OrderRecord]:
        """Record for pending orders whose answer changed nothing (unchanged_by) that they were
        checked, and ask again after the first backoff, as apply_status would: one statement
        for them all. No transition, so no notification."""
        return self.store.mark_checked(orders, now, next_check_at=now + backoff(0))

    def _verify_issued(self, order: OrderRecord, status: ProviderStatus, adapter: Provider) -> str:
        """Why an issued certificate cannot be accepted, or "" when it checks out."""
        if not status.certificate:
            return "The provider reported the certificate issued but sent none."
        try:
            keys.verify_issued(
                certificate=status.certificate,
                chain=status.chain or "",
                expected_names=[order.domain, *order.sans],
                # the CSR carries the key's public half: no secret is opened to check a certificate
                public_key_of=keys.load_csr(order.csr),
                trusted_roots=adapter.trusted_roots(),
            )
        except keys.InvalidMaterial as error:
            return f"The issued certificate was refused: {error}"
        return ""

    def expire(self, order: OrderRecord) -> OrderRecord:
        """Mark an issued certificate whose validity ended as expired and tell the host.

        StaleOrder when another process changed the order first; the poller expires through here.
        """
        return self.sending.settle(
            order, "system", "expired", "The certificate's validity ended.", order.status,
            status=OrderState.EXPIRED,
        )  # fmt: skip

    # --- links the provider sent out, cancelling ------------------------------------------------

    def callback_order(self, provider_account_id: int, token: str) -> OrderRecord:
        """The order a provider's link names, changing nothing (the page that asks the approver
        to confirm). ProviderRejected for a forged token; OrderNotFound when it is gone."""
        return self._callback(provider_account_id, token)[0]

    def _callback(self, provider_account_id: int, token: str) -> tuple[OrderRecord, dict]:
        adapter = self.accounts.adapter(provider_account_id)
        provider_order_id, data = adapter.handle_callback(token)
        order = self.store.order_by_provider_ref(provider_account_id, provider_order_id)
        if order is None:
            raise OrderNotFound(provider_order_id)
        return order, data

    def handle_callback(self, provider_account_id: int, token: str) -> OrderRecord:
        """A provider's link was followed and confirmed (the sandbox's approval link, by POST):
        record it, then check.

        ProviderRejected for a forged token; OrderNotFound when the order is gone. A link of
        an order that is no longer pending changes nothing.
        """
        order, data = self._callback(provider_account_id, token)
        if order.status != OrderState.PENDING:
            return order
        order = self.store.update_order(
            order, "approver", "approved", "approval link followed",
            provider_data={**order.provider_data, **data},
        )  # fmt: skip
        return self.check(order.id, actor="approver")

    def resend_approval(self, order_id: int, actor: str) -> OrderRecord:
        """Send the approval e-mail again, or, for HTTP/DNS validation, tell the provider the
        records are published and validation may start; then check where the order stands."""
        order = self.get(order_id)
        if order.status != OrderState.PENDING:
            raise OrderRejected(f"A {order.status} order has nothing to approve.", order)
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            with about_account(order.account_id):
                data = adapter.resend_approval(to_ref(order))
        except ProviderError as error:
            raise OrderRejected(str(error), order) from error
        event = "approval_resent" if order.dcv_method == DcvMethod.EMAIL else "validation_started"
        order = self.store.update_order(
            order, actor, event, "", provider_data={**order.provider_data, **(data or {})}
        )
        return self.check(order.id, actor)

    def cancel(self, order_id: int, actor: str, reason: str = "") -> OrderRecord:
        """Cancel an order not yet issued: at the provider first (one worker, so a double or
        concurrent cancel sends one cancel), then here. An order of unknown outcome cannot be
        cancelled until it is known whether the provider has it. The reason is checked first:
        it is written before the provider is asked, so one that cannot be stored stops here."""
        order, now = self.get(order_id), utcnow()
        try:
            names.plain_text(reason, multiline=True)
        except names.InvalidInput as error:
            raise OrderRejected(
                f"Nothing was cancelled; check the reason. {error}", order
            ) from None
        if order.status not in CANCELLABLE:
            raise OrderRejected(self._why_not_cancellable(order), order)
        if leased(order, now):
            raise OrderRejected(BUSY, order)
        if order.status != OrderState.PENDING:  # nothing at the provider: the state is enough
            values = self._cancelled(order, reason, {})
            try:
                return self.sending.settle(
                    order, actor, "cancelled", reason, order.status, **values
                )
            except StaleOrder:
                raise OrderRejected(BUSY, self.get(order_id)) from None
        taken = self.sending.take(
            order, actor, "cancelling", now, detail=reason, status_detail="Cancelling…"
        )
        if taken is None:
            raise OrderRejected(BUSY, self.get(order_id))
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            data = adapter.cancel(to_ref(taken), reason) or {}
        except ProviderError as error:
            detail = order.status_detail
            self.sending.settle(
                taken, actor, "cancel_failed", str(error), order.status, status_detail=detail
            )
            raise OrderRejected(str(error), self.get(order_id)) from error
        return self.sending.settle(
            taken, actor, "cancelled", reason, order.status, **self._cancelled(taken, reason, data)
        )

    def discard(self, order_id: int, actor: str) -> OrderRecord:
        """Take a refused order (a draft) off the client's list; nothing is asked, since it
        never reached the provider.

        It becomes *cancelled*, which hosts know already for a draft, and the ``discarded``
        event says who discarded it; the row stays for the audit trail and the list leaves it
        out (store.account_orders). OrderRejected for any other order, or one being resubmitted.
        """
        order = self.get(order_id)
        if order.status != OrderState.DRAFT:
            raise OrderRejected(
                f"Only a refused order can be discarded; this one is {order.status}.", order
            )
        detail = f"Discarded after the provider refused it: {order.status_detail}"
        try:
            return self.sending.settle(
                order, actor, DISCARDED, "", order.status, **self._cancelled(order, detail, {})
            )
        except StaleOrder:
            raise OrderRejected(BUSY, self.get(order_id)) from None

    @staticmethod
    def _cancelled(order: OrderRecord, reason: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": OrderState.CANCELLED,
            "provider_data": {**order.provider_data, **data},
            "next_check_at": None,
            "status_detail": reason or "Cancelled.",
        }

    @staticmethod
    def _why_not_cancellable(order: OrderRecord) -> str:
        if order.status == OrderState.UNKNOWN:
            return (
                "It is not known yet whether the provider has this order; it can be cancelled "
                "once that is known."
            )
        return f"A {order.status} order cannot be cancelled."


def _answered(status: ProviderStatus) -> dict[str, Any]:
    """The columns a provider's answer sets whatever the order's state: what it says about the
    order, its data and its validation tasks (when it sent them)."""
    values: dict[str, Any] = {
        "provider_status": status.raw_status[:100],
        "status_detail": status.detail,
    }
    if status.data is not None:
        values["provider_data"] = status.data
    if status.validation:
        values["validation"] = tasks_json(status.validation)
    return values
