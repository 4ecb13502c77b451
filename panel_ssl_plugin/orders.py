"""The order service: place, check, renew, reissue and cancel orders. No Flask in here.

Web views, the CLI and the host's event hooks all come through this module, so an order behaves
the same wherever it is touched. Every state change is one transaction with its audit event
(store.update_order); the host's notification hooks fire after that commit, once.

What a draft must be before it is placed is drafts.py's business; the periodic polling round
(polling.py) moves orders on through this service's public methods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pluggy

from panel_ssl_plugin import drafts, keys, names
from panel_ssl_plugin.accounts import ProviderAccounts
from panel_ssl_plugin.downloads import Download, DownloadRefused, Material, make_download
from panel_ssl_plugin.drafts import OrderDraft, OrderInvalid
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.providers.base import (
    SERVER_TYPES,
    Contact,
    DcvMethod,
    OrderRequest,
    OrderState,
    Product,
    Provider,
    ProviderError,
    ProviderHost,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    ValidationTask,
)
from panel_ssl_plugin.store import (
    DuplicateOrder,
    EventRecord,
    OrderRecord,
    StaleOrder,
    Store,
    utcnow,
)

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
FIRST_CHECK = timedelta(minutes=1)
KEY_FORMATS = frozenset({"key", "pfx", "bundle"})
# States "check status" asks the provider about: pending ones move on, and an issued one may
# have been revoked or refunded at the provider, which the list must not hide.
ASKABLE = frozenset({OrderState.PENDING, OrderState.ISSUED})
IN_FLIGHT = frozenset({"draft", "submitted", "pending"})
RENEWABLE = frozenset({"issued", "expired"})
REISSUABLE = frozenset({"issued"})
# what a renewal or a reissue takes over from the order it follows; each changes what it must
FOLLOW_UP_COPIED = (
    "account_id", "provider_account_id", "product_id", "product_name", "addons", "domain",
    "sans", "period_months", "server_type", "dcv_method", "approver_email", "organization",
    "unit", "state", "country", "contact", "key_type", "csr", "private_key_encrypted",
)  # fmt: skip
MAX_BACKOFF = timedelta(hours=6)


class OrderRejected(Exception):
    """The provider refused the order. A new order's draft is kept so the user can fix and
    resubmit; a renewal or reissue has no form to go back to, so it fails."""

    def __init__(self, message: str, order: OrderRecord):
        super().__init__(message)
        self.order = order


class OrderNotFound(LookupError):
    pass


class FollowUpRefused(Exception):
    """A renewal or reissue cannot be made now; ``str(error)`` says why to the person who asked.

    ``order`` is the follow-up the provider refused, when it got that far.
    """

    def __init__(self, message: str, order: OrderRecord | None = None):
        super().__init__(message)
        self.order = order


class RenewalRefused(FollowUpRefused):
    """A renewal cannot be made now."""


class ReissueRefused(FollowUpRefused):
    """A reissue cannot be made now."""


@dataclass(frozen=True)
class FollowUp:
    """What tells the two kinds of follow-up order apart; everything else they share."""

    link: str  # the column naming the order followed
    noun: str
    done: str
    of_states: frozenset[str]  # the states of an order that may be followed up this way
    refused: type[FollowUpRefused]


RENEWAL = FollowUp("renewal_of", "renewal", "renewed", RENEWABLE, RenewalRefused)
REISSUE = FollowUp("reissue_of", "reissue", "reissued", REISSUABLE, ReissueRefused)


@dataclass(frozen=True)
class AccountPage:
    """A page of the List SSL Certs popup: (order, its renewals and reissues) rows and where
    we are."""

    rows: list[tuple[OrderRecord, list[OrderRecord]]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Placed:
    """The outcome of ``place``: the order, and whether the provider has it yet."""

    order: OrderRecord
    duplicate: bool = False

    @property
    def waiting_for_provider(self) -> bool:
        return self.order.status == OrderState.SUBMITTED


class _TTLCache:
    """Provider answers that change slowly (products, DCV lists), kept a few minutes."""

    def __init__(self, seconds: float = CACHE_SECONDS):
        self.seconds = seconds
        self._values: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, make):
        hit = self._values.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < self.seconds:
            return hit[1]
        value = make()
        self._values[key] = (now, value)
        return value


def backoff(failures: int) -> timedelta:
    """How long to wait before the next check: 1, 2, 4 ... minutes, at most six hours."""
    return min(FIRST_CHECK * (2 ** min(failures, 12)), MAX_BACKOFF)


def to_ref(order: OrderRecord) -> ProviderRef:
    return ProviderRef(
        order_id=order.provider_order_id or "",
        data=order.provider_data,
        validation=tuple(_task(t) for t in order.validation),
    )


def _task(values: dict[str, Any]) -> ValidationTask:
    return ValidationTask(**{**values, "method": DcvMethod(values["method"])})


def publish_tasks(
    host: ProviderHost, tasks: tuple[ValidationTask, ...]
) -> tuple[ValidationTask, ...]:
    """Hand every HTTP file and DNS record still to publish to the host, whatever the provider.

    A host that owns the site's docroot or DNS zone then validates without the user lifting a
    finger; one that cannot leaves the task unpublished, and the details page shows it.
    """
    return tuple(replace(task, published=task.published or _publish(host, task)) for task in tasks)


def _publish(host: ProviderHost, task: ValidationTask) -> bool:
    if task.method == DcvMethod.HTTP:
        path = urlsplit(task.location).path.lstrip("/")
        return host.publish_http_file(task.domain, path, task.value)
    if task.method == DcvMethod.DNS:
        return host.publish_dns_record(task.domain, task.location, task.record_type, task.value)
    return False


def _tasks_json(tasks: tuple[ValidationTask, ...]) -> list[dict[str, Any]]:
    return [{**asdict(t), "method": str(t.method)} for t in tasks]


def in_flight(follow_ups: Iterable[OrderRecord], kind: FollowUp) -> OrderRecord | None:
    """The first of ``follow_ups`` of this kind that is not settled yet: it blocks another."""
    return next(
        (f for f in follow_ups if getattr(f, kind.link) is not None and f.status in IN_FLIGHT),
        None,
    )


def _copied(order: OrderRecord) -> dict[str, Any]:
    return {name: getattr(order, name) for name in FOLLOW_UP_COPIED}


class OrderService:
    """Orders of one host."""

    def __init__(
        self, pm: pluggy.PluginManager, store: Store, vault: Vault, accounts: ProviderAccounts
    ):
        self.pm = pm
        self.store = store
        self.vault = vault
        self.accounts = accounts
        self._products = _TTLCache()
        self._dcv = _TTLCache()

    # --- what the order form offers ------------------------------------------------------------

    def products(self, provider_account_id: int) -> list[Product]:
        adapter = self.accounts.adapter(provider_account_id)
        return self._products.get(id(adapter), adapter.products)

    def product(self, provider_account_id: int, product_id: str) -> Product | None:
        return next((p for p in self.products(provider_account_id) if p.id == product_id), None)

    def dcv_emails(self, provider_account_id: int, domain: str) -> list[str]:
        """Approver addresses for a domain as typed; InvalidInput for a bad domain."""
        alabel = names.normalize_domain(domain, allow_wildcard=True)
        base = alabel.removeprefix("*.")
        adapter = self.accounts.adapter(provider_account_id)
        return self._dcv.get((id(adapter), base), lambda: adapter.dcv_emails(base))

    # --- placing -------------------------------------------------------------------------------

    def place(self, draft: OrderDraft, actor: str) -> Placed:
        """Check the draft, make key and CSR, store the order, then hand it to the provider.

        The idempotency key makes a double click, a refresh or a retried request place one
        order: the second caller gets the first one's order. A provider that refuses leaves the
        order as a draft (OrderRejected); a provider that is down leaves it submitted, and
        ``retry_submitted`` places it later with the same key.
        """
        existing = self.store.order_by_key(draft.idempotency_key)
        if existing is not None and existing.status != OrderState.DRAFT:
            return Placed(existing, duplicate=True)
        values = drafts.checked(draft, self)
        key_pem, csr = drafts.key_and_csr(draft, values)
        values.update(
            csr=csr,
            private_key_encrypted=self.vault.encrypt(key_pem) if key_pem else None,
            status=OrderState.SUBMITTED,
        )
        try:
            order = self._store_submitted(existing, values, actor)
        except (DuplicateOrder, StaleOrder):
            return Placed(self.store.order_by_key(draft.idempotency_key), duplicate=True)
        return Placed(self.submit(order, actor))

    def _store_submitted(
        self, draft_order: OrderRecord | None, values: dict[str, Any], actor: str
    ) -> OrderRecord:
        if draft_order is None:
            return self.store.order(self.store.add_order(actor, **values))
        return self.store.update_order(draft_order, actor, "resubmitted", **values)

    def submit(self, order: OrderRecord, actor: str, now: datetime | None = None) -> OrderRecord:
        """Hand a stored, submitted order to the provider and record what it said.

        Pending once placed; still submitted, with a later retry, when the provider is down;
        OrderRejected when it refused. The poller submits the orders it claimed through here.
        """
        now = now or utcnow()
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            ref = self._send(adapter, order)
        except ProviderRejected as error:
            state = OrderState.DRAFT if order.follows is None else OrderState.FAILED
            rejected = self.store.update_order(
                order, actor, "rejected", str(error), status=state, status_detail=str(error),
            )  # fmt: skip
            raise OrderRejected(str(error), rejected) from error
        except ProviderError as error:
            return self._retry_later(order, actor, error, now)
        ref = replace(ref, validation=publish_tasks(adapter.host, ref.validation))
        placed = self.store.update_order(
            order, actor, "placed", f"provider order {ref.order_id}",
            status=OrderState.PENDING, provider_order_id=ref.order_id, provider_data=ref.data,
            validation=_tasks_json(ref.validation), status_detail=self._placed_detail(order, ref),
            next_check_at=now + FIRST_CHECK, check_failures=0, lease_until=None,
        )  # fmt: skip
        self._notify_status(placed, OrderState.SUBMITTED)
        return placed

    def _send(self, adapter: Provider, order: OrderRecord) -> ProviderRef:
        """Hand the order to the provider by the call that fits it. The poller retries through
        here too, so a reissue or renewal waiting for its provider is never placed as new."""
        if order.reissue_of is not None:
            return adapter.reissue(to_ref(self.get(order.reissue_of)), order.csr)
        if order.renewal_of is not None:
            return adapter.renew(self._request(order), to_ref(self.get(order.renewal_of)))
        return adapter.place_order(self._request(order))

    def _retry_later(
        self, order: OrderRecord, actor: str, error: ProviderError, now: datetime
    ) -> OrderRecord:
        wait = backoff(order.check_failures)
        if isinstance(error, ProviderUnavailable) and error.retry_after:
            wait = max(wait, timedelta(seconds=error.retry_after))
        return self.store.update_order(
            order, actor, "provider_unavailable", str(error),
            status_detail=f"{error} We will retry automatically.",
            next_check_at=now + wait, check_failures=order.check_failures + 1,
            lease_until=None,
        )  # fmt: skip

    @staticmethod
    def _placed_detail(order: OrderRecord, ref: ProviderRef) -> str:
        if order.dcv_method == DcvMethod.EMAIL and order.approver_email:
            approver = names.display_email(order.approver_email)
            return f"Order received; the approval email was sent to {approver}."
        if ref.validation:
            return "Order received; publish the validation records shown to prove control."
        return "Order received; validation is in progress."

    def retry_submitted(self, order_id: int, actor: str = "system") -> OrderRecord:
        """Place an order again that the provider could not take when it was submitted."""
        order = self.get(order_id)
        if order.status != OrderState.SUBMITTED:
            return order
        return self.submit(order, actor)

    def draft_errors(self, draft: OrderDraft) -> dict[str, str]:
        """Every mistake in a draft, without placing anything: a form's first step can show
        its own fields' mistakes before the user moves on to the next step."""
        try:
            drafts.checked(draft, self)
        except OrderInvalid as invalid:
            return invalid.errors
        return {}

    def _request(self, order: OrderRecord) -> OrderRequest:
        contact = order.contact
        return OrderRequest(
            product_id=order.product_id,
            period_months=order.period_months,
            csr=order.csr,
            domain=order.domain,
            dcv_method=DcvMethod(order.dcv_method),
            server_type=order.server_type,
            sans=tuple(order.sans),
            approver_email=order.approver_email,
            organization=order.organization,
            unit=order.unit,
            state=order.state,
            country=order.country,
            contact=Contact(
                first_name=contact.get("first_name", ""),
                last_name=contact.get("last_name", ""),
                email=contact.get("email", ""),
                phone=contact.get("phone", ""),
                title=contact.get("title", ""),
                organization=order.organization,
                state=order.state,
                country=order.country,
            ),
            addons=tuple(order.addons),
            idempotency_key=order.idempotency_key,
        )

    # --- reading -------------------------------------------------------------------------------

    def get(self, order_id: int) -> OrderRecord:
        order = self.store.order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def account_page(
        self,
        account_id: str,
        *,
        sort: str = "created",
        descending: bool = True,
        page: int = 1,
        per_page: int = 25,
    ) -> AccountPage:
        """One page of an account's certificates, each with every renewal and reissue made of
        it since."""
        page = max(1, page)
        originals, total = self.store.account_orders(
            account_id,
            sort=sort,
            descending=descending,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        chains = self.store.follow_up_chains([order.id for order in originals])
        rows = [(order, chains[order.id]) for order in originals]
        return AccountPage(rows=rows, total=total, page=page, per_page=per_page)

    def follow_ups(self, order_id: int) -> list[OrderRecord]:
        """The renewals and reissues made of an order, oldest first."""
        return self.store.follow_ups_of(order_id)

    def renewals(self, order_id: int) -> list[OrderRecord]:
        """The renewals made of an order, oldest first."""
        return self._follow_ups(order_id, RENEWAL)

    def reissues(self, order_id: int) -> list[OrderRecord]:
        """The reissues made of an order, oldest first."""
        return self._follow_ups(order_id, REISSUE)

    def _follow_ups(self, order_id: int, kind: FollowUp) -> list[OrderRecord]:
        return [f for f in self.follow_ups(order_id) if getattr(f, kind.link) == order_id]

    def events(self, order_id: int) -> list[EventRecord]:
        """The order's audit trail, oldest first."""
        return self.store.events(order_id)

    def rotate_encryption(self) -> int:
        """Re-encrypt every stored secret (order keys, provider settings) with the newest key."""
        return self.store.reencrypt(self.vault.rotate)

    def private_key(self, order: OrderRecord) -> str | None:
        """The order's private key in clear, for an audited reveal or download."""
        return (
            self.vault.decrypt(order.private_key_encrypted) if order.private_key_encrypted else None
        )

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
            private_key=self.private_key(order),
        )
        server = SERVER_TYPES.get(order.server_type, "Other")
        download = make_download(material, fmt, password=password, server_name=server)
        if fmt in KEY_FORMATS:
            self.store.add_event(order.id, actor, "key_downloaded", download.filename)
        return download

    # --- checking status -----------------------------------------------------------------------

    def check(self, order_id: int, actor: str = "system") -> OrderRecord:
        """Ask the provider where the order stands now and record the answer.

        A submitted order is placed again; a pending or issued one is asked about, unless a
        reissue has taken over its provider order.
        """
        order = self.get(order_id)
        if order.status == OrderState.SUBMITTED:
            return self.submit(order, actor)
        if order.status not in ASKABLE or not order.provider_order_id or self._superseded(order):
            return order
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            answer: ProviderStatus | ProviderError = adapter.status(to_ref(order))
        except ProviderError as error:
            answer = error
        return self.record_answer(order, answer, actor, adapter)

    def _superseded(self, order: OrderRecord) -> bool:
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
            return self._check_failed(order, actor, answer, now)
        return self.apply_status(order, answer, actor, adapter, now)

    def _check_failed(
        self, order: OrderRecord, actor: str, error: ProviderError, now: datetime
    ) -> OrderRecord:
        wait = backoff(order.check_failures + 1)
        if isinstance(error, ProviderUnavailable) and error.retry_after:
            wait = max(wait, timedelta(seconds=error.retry_after))
        return self.store.update_order(
            order, actor, "check_failed", str(error),
            last_checked_at=now, next_check_at=now + wait,
            check_failures=order.check_failures + 1, lease_until=None,
        )  # fmt: skip

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
        values: dict[str, Any] = {
            "provider_status": status.raw_status[:100],
            "status_detail": status.detail,
            "last_checked_at": now,
            "check_failures": 0,
            "lease_until": None,
        }
        if status.data is not None:
            values["provider_data"] = status.data
        if status.validation:
            values["validation"] = _tasks_json(status.validation)
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
        updated = self.store.update_order(order, actor, event, values["status_detail"], **values)
        if new_state != order.status:
            self._notify_status(updated, order.status)
        return updated

    def _verify_issued(self, order: OrderRecord, status: ProviderStatus, adapter: Provider) -> str:
        """Why an issued certificate cannot be accepted, or "" when it checks out."""
        if not status.certificate:
            return "The provider reported the certificate issued but sent none."
        key_pem = self.private_key(order)
        try:
            keys.verify_issued(
                certificate=status.certificate,
                chain=status.chain or "",
                expected_names=[order.domain, *order.sans],
                public_key_of=keys.key_from_pem(key_pem) if key_pem else keys.load_csr(order.csr),
                trusted_roots=adapter.trusted_roots(),
            )
        except keys.InvalidMaterial as error:
            return f"The issued certificate was refused: {error}"
        return ""

    def expire(self, order: OrderRecord) -> OrderRecord:
        """Mark an issued certificate whose validity ended as expired and tell the host.

        StaleOrder when another process changed the order first; the poller expires through here.
        """
        expired = self.store.update_order(
            order, "system", "expired", "The certificate's validity ended.",
            status=OrderState.EXPIRED,
        )  # fmt: skip
        self._notify_status(expired, order.status)
        return expired

    # --- renewing and reissuing ----------------------------------------------------------------

    def renew(
        self,
        order_id: int,
        actor: str,
        *,
        period_months: int | None = None,
        idempotency_key: str | None = None,
    ) -> Placed:
        """Order the renewal of an issued certificate: same CSR, key and details, new period.

        The renewal is a new order linked by ``renewal_of``; the old certificate stays usable
        until the new one is issued. Without an explicit key, the key is derived from the
        certificate being renewed and its end date, so every request to renew this certificate
        (a double click, the billing event delivered twice, at once) makes one renewal.
        """
        order = self._followable(order_id, RENEWAL)
        key = idempotency_key or f"renew:{order.id}:{order.not_after:%Y%m%d%H%M%S}"
        duplicate = self._duplicate(order, RENEWAL, key)
        if duplicate is not None:
            return duplicate
        period = period_months or order.period_months
        product = self.product(order.provider_account_id, order.product_id)
        if product is not None and period not in product.periods:
            raise RenewalRefused("Choose a validity period this product offers.")
        values = {**_copied(order), "period_months": period}
        return self._follow_up(order, RENEWAL, actor, values, key)

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
        order = self._followable(order_id, REISSUE)
        settled = sum(r.status not in IN_FLIGHT for r in self.reissues(order.id))
        key = idempotency_key or f"reissue:{order.id}:{settled}"
        duplicate = self._duplicate(order, REISSUE, key)
        if duplicate is not None:
            return duplicate
        key_type = key_type or (
            order.key_type if order.key_type in keys.KEY_TYPES else keys.DEFAULT_KEY_TYPE
        )
        if key_type not in keys.KEY_TYPES:
            raise ReissueRefused("Choose a key type from the list.")
        values = _copied(order)
        key_pem, csr = drafts.new_key_and_csr(key_type, values)
        values.update(key_type=key_type, csr=csr, private_key_encrypted=self.vault.encrypt(key_pem))
        return self._follow_up(order, REISSUE, actor, values, key)

    def _followable(self, order_id: int, kind: FollowUp) -> OrderRecord:
        order = self.get(order_id)
        if order.status not in kind.of_states:
            raise kind.refused(
                f"Only issued certificates can be {kind.done}; this one is {order.status}."
            )
        return order

    def _duplicate(self, order: OrderRecord, kind: FollowUp, key: str) -> Placed | None:
        """The same request again gets the follow-up it made; another one is refused while
        that one is in flight, so a certificate is never renewed (or reissued) twice at once."""
        busy = self._follow_up_in_flight(order, kind)
        if busy is None:
            return None
        if busy.idempotency_key == key:
            return Placed(busy, duplicate=True)
        raise kind.refused(
            f"A {kind.noun} of this certificate is already in progress (order {busy.id}, "
            f"{busy.status})."
        )

    def _follow_up_in_flight(self, order: OrderRecord, kind: FollowUp) -> OrderRecord | None:
        return in_flight(self.follow_ups(order.id), kind)

    def _follow_up(
        self, order: OrderRecord, kind: FollowUp, actor: str, values: dict[str, Any], key: str
    ) -> Placed:
        """Store the follow-up as submitted, note it on the order it follows, then place it.

        A provider's refusal fails the follow-up and is raised as the kind's refusal; a
        provider that is down leaves it submitted for the poller, which places it by the same
        call (``_send``).
        """
        values = {**values, kind.link: order.id, "idempotency_key": key}
        try:
            follow_up = self.store.order(
                self.store.add_order(actor, **values, status=OrderState.SUBMITTED)
            )
        except DuplicateOrder as duplicate:
            return Placed(self.get(duplicate.order_id), duplicate=True)
        detail = f"{kind.noun} order {follow_up.id}"
        self.store.add_event(order.id, actor, f"{kind.noun}_ordered", detail)
        try:
            return Placed(self.submit(follow_up, actor))
        except OrderRejected as rejected:
            message = f"The provider refused the {kind.noun}: {rejected}"
            raise kind.refused(message, rejected.order) from None

    def renewal_due(
        self, account_id: str, certificate_id: int, period_months: int, actor: str = "billing"
    ) -> OrderRecord:
        """The host's billing asked for a renewal: one renewal however often it asks."""
        order = self.get(certificate_id)
        if order.account_id != str(account_id):
            raise OrderNotFound(certificate_id)
        in_flight = self._follow_up_in_flight(order, RENEWAL)
        if in_flight is not None:
            return in_flight
        return self.renew(order.id, actor, period_months=period_months).order

    def renew_expiring(self, now: datetime, within: timedelta, actor: str = "auto-renew"):
        """Renew issued certificates ending within ``within`` on auto-renew accounts.

        Yields (order, outcome) per certificate, outcome being the renewal or the refusal, so a
        caller can show progress.
        """
        for order in self.store.issued_ending_before(now + within, auto_renew_only=True):
            try:
                yield order, self.renew(order.id, actor).order
            except (RenewalRefused, OrderRejected) as error:
                yield order, error

    # --- links the provider sent out, cancelling ------------------------------------------------

    def handle_callback(self, provider_account_id: int, token: str) -> OrderRecord:
        """A provider's link was followed (the sandbox's approval link): record it, then check.

        ProviderRejected for a forged token; OrderNotFound when the order is gone. A link of
        an order that is no longer pending changes nothing.
        """
        adapter = self.accounts.adapter(provider_account_id)
        provider_order_id, data = adapter.handle_callback(token)
        order = self.store.order_by_provider_ref(provider_account_id, provider_order_id)
        if order is None:
            raise OrderNotFound(provider_order_id)
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
            data = adapter.resend_approval(to_ref(order))
        except ProviderError as error:
            raise OrderRejected(str(error), order) from error
        event = "approval_resent" if order.dcv_method == DcvMethod.EMAIL else "validation_started"
        order = self.store.update_order(
            order, actor, event, "", provider_data={**order.provider_data, **(data or {})}
        )
        return self.check(order.id, actor)

    def cancel(self, order_id: int, actor: str, reason: str = "") -> OrderRecord:
        """Cancel an order not yet issued: at the provider first, then here."""
        order = self.get(order_id)
        if order.status == OrderState.DRAFT or order.status == OrderState.SUBMITTED:
            return self._set_cancelled(order, actor, reason, order.provider_data)
        if order.status != OrderState.PENDING:
            raise OrderRejected(f"A {order.status} order cannot be cancelled.", order)
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            data = adapter.cancel(to_ref(order), reason) or {}
        except ProviderError as error:
            raise OrderRejected(str(error), order) from error
        return self._set_cancelled(order, actor, reason, {**order.provider_data, **data})

    def _set_cancelled(
        self, order: OrderRecord, actor: str, reason: str, data: dict[str, Any]
    ) -> OrderRecord:
        cancelled = self.store.update_order(
            order, actor, "cancelled", reason, status=OrderState.CANCELLED,
            provider_data=data, next_check_at=None, status_detail=reason or "Cancelled.",
        )  # fmt: skip
        self._notify_status(cancelled, order.status)
        return cancelled

    # --- notifications -------------------------------------------------------------------------

    def _notify_status(self, order: OrderRecord, old: str) -> None:
        """Tell the host, after the commit; a failing listener must not undo the transition."""
        try:
            self.pm.hook.ssl_order_status_changed(
                order=order.public(), old=str(old), new=str(order.status)
            )
            if order.status == OrderState.ISSUED:
                self.pm.hook.ssl_certificate_issued(certificate=order.public())
        except Exception:
            log.exception("a listener of order %s's status change failed", order.id)
