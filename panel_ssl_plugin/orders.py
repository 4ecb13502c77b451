"""The order service: place, check, renew and cancel orders. No Flask in here.

Web views, the CLI and the host's event hooks all come through this module, so an order behaves
the same wherever it is touched. Every state change is one transaction with its audit event
(store.update_order); the host's notification hooks fire after that commit, once.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pluggy

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.accounts import ProviderAccounts
from panel_ssl_plugin.downloads import Download, DownloadRefused, Material, make_download
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
FIELD_LIMITS = {"organization": 200, "unit": 200, "state": 200}
CONTACT_LIMITS = {"first_name": 100, "last_name": 100, "email": 254, "phone": 30, "title": 100}
FIRST_CHECK = timedelta(minutes=1)
BATCH_SIZE = 50
KEY_FORMATS = frozenset({"key", "pfx", "bundle"})
# States "check status" asks the provider about: pending ones move on, and an issued one may
# have been revoked or refunded at the provider, which the list must not hide.
ASKABLE = frozenset({OrderState.PENDING, OrderState.ISSUED})
IN_FLIGHT = frozenset({"draft", "submitted", "pending"})
RENEWABLE = frozenset({"issued", "expired"})
RENEWAL_COPIED = (
    "account_id", "provider_account_id", "product_id", "product_name", "addons", "domain",
    "sans", "server_type", "dcv_method", "approver_email", "organization", "unit", "state",
    "country", "contact", "key_type", "csr", "private_key_encrypted",
)  # fmt: skip
MAX_BACKOFF = timedelta(hours=6)


class OrderInvalid(ValueError):
    """The draft has mistakes; ``errors`` maps each form field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class OrderRejected(Exception):
    """The provider refused the order; the draft is kept so the user can fix and resubmit."""

    def __init__(self, message: str, order: OrderRecord):
        super().__init__(message)
        self.order = order


class OrderNotFound(LookupError):
    pass


class RenewalRefused(Exception):
    """A renewal cannot be made now; ``str(error)`` says why to the person who asked."""

    def __init__(self, message: str, order: OrderRecord | None = None):
        super().__init__(message)
        self.order = order


@dataclass(frozen=True)
class AccountPage:
    """A page of the List SSL Certs popup: (order, its renewals) rows and where we are."""

    rows: list[tuple[OrderRecord, list[OrderRecord]]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


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


@dataclass(frozen=True)
class OrderDraft:
    """What the order form collected, as typed. ``place`` checks and normalizes all of it."""

    account_id: str
    provider_account_id: int
    product_id: str
    period_months: int
    server_type: str
    domain: str
    dcv_method: str
    idempotency_key: str
    approver_email: str = ""
    sans: tuple[str, ...] = ()
    organization: str = ""
    unit: str = ""
    state: str = ""
    country: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    key_type: str = keys.DEFAULT_KEY_TYPE
    csr: str = ""
    addons: tuple[str, ...] = ()


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
        values = self._checked(draft)
        key_pem, csr = self._key_and_csr(draft, values)
        values.update(
            csr=csr,
            private_key_encrypted=self.vault.encrypt(key_pem) if key_pem else None,
            status=OrderState.SUBMITTED,
        )
        try:
            order = self._store_submitted(existing, values, actor)
        except (DuplicateOrder, StaleOrder):
            return Placed(self.store.order_by_key(draft.idempotency_key), duplicate=True)
        return Placed(self._submit(order, actor))

    def _store_submitted(
        self, draft_order: OrderRecord | None, values: dict[str, Any], actor: str
    ) -> OrderRecord:
        if draft_order is None:
            return self.store.order(self.store.add_order(actor, **values))
        return self.store.update_order(draft_order, actor, "resubmitted", **values)

    def _submit(self, order: OrderRecord, actor: str, now: datetime | None = None) -> OrderRecord:
        now = now or utcnow()
        adapter = self.accounts.adapter(order.provider_account_id)
        request = self._request(order)
        try:
            if order.renewal_of is not None:
                previous = self.store.order(order.renewal_of)
                ref = adapter.renew(request, to_ref(previous))
            else:
                ref = adapter.place_order(request)
        except ProviderRejected as error:
            rejected = self.store.update_order(
                order, actor, "rejected", str(error), status=OrderState.DRAFT,
                status_detail=str(error),
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
        return self._submit(order, actor)

    def draft_errors(self, draft: OrderDraft) -> dict[str, str]:
        """Every mistake in a draft, without placing anything: a form's first step can show
        its own fields' mistakes before the user moves on to the next step."""
        try:
            self._checked(draft)
        except OrderInvalid as invalid:
            return invalid.errors
        return {}

    # --- checking the draft --------------------------------------------------------------------

    def _checked(self, draft: OrderDraft) -> dict[str, Any]:
        """Normalized column values of a draft, or OrderInvalid naming every bad field."""
        errors: dict[str, str] = {}
        product = self._checked_product(draft, errors)
        wildcard = bool(product and product.wildcard)
        domain = self._field(
            errors, "domain", names.normalize_domain, draft.domain, allow_wildcard=wildcard
        )
        sans = self._checked_sans(draft, product, errors)
        if product and domain and not errors.get("dcv_method"):
            self._check_approver(draft, domain, errors)
        country = (
            self._field(errors, "country", names.normalize_country, draft.country)
            if draft.country
            else ""
        )
        if product and product.org_required:
            for name in ("organization", "state", "country"):
                if not getattr(draft, name).strip():
                    errors.setdefault(name, "This product validates the organization: required.")
        for name, limit in FIELD_LIMITS.items():
            if len(getattr(draft, name)) > limit:
                errors[name] = f"At most {limit} characters."
        contact = self._checked_contact(draft.contact, errors)
        if draft.server_type not in SERVER_TYPES:
            errors["server_type"] = "Choose a server type from the list."
        if draft.key_type not in keys.KEY_TYPES and not draft.csr.strip():
            errors["key_type"] = "Choose a key type from the list."
        if errors:
            raise OrderInvalid(errors)
        return {
            "account_id": draft.account_id,
            "provider_account_id": draft.provider_account_id,
            "product_id": product.id,
            "product_name": product.name,
            "addons": list(draft.addons),
            "domain": domain,
            "sans": sans,
            "period_months": draft.period_months,
            "server_type": draft.server_type,
            "dcv_method": draft.dcv_method,
            "approver_email": draft.approver_email.strip().lower() or None,
            "organization": draft.organization.strip(),
            "unit": draft.unit.strip(),
            "state": draft.state.strip(),
            "country": country,
            "contact": contact,
            "key_type": "csr" if draft.csr.strip() else draft.key_type,
            "idempotency_key": draft.idempotency_key,
        }

    @staticmethod
    def _field(errors: dict[str, str], name: str, check, value, **kwargs):
        try:
            return check(value, **kwargs)
        except names.InvalidInput as error:
            errors[name] = str(error)
            return None

    def _checked_product(self, draft: OrderDraft, errors: dict[str, str]) -> Product | None:
        try:
            product = self.product(draft.provider_account_id, draft.product_id)
        except ProviderError as error:
            errors["product_id"] = f"The provider's products could not be loaded: {error}"
            return None
        if product is None:
            errors["product_id"] = "Choose a product from the list."
            return None
        if draft.period_months not in product.periods:
            errors["period_months"] = "Choose a validity period this product offers."
        if draft.dcv_method not in {str(m) for m in product.dcv_methods}:
            errors["dcv_method"] = "Choose a validation method this product offers."
        unknown = set(draft.addons) - {a.id for a in product.addons}
        if unknown:
            errors["addons"] = "Choose add-ons this product offers."
        return product

    def _checked_sans(
        self, draft: OrderDraft, product: Product | None, errors: dict[str, str]
    ) -> list[str]:
        sans: list[str] = []
        for value in draft.sans:
            if not value.strip():
                continue
            checked = self._field(
                errors, "sans", names.normalize_domain, value,
                allow_wildcard=bool(product and product.wildcard),
            )  # fmt: skip
            if checked and checked not in sans:
                sans.append(checked)
        if product and len(sans) > product.max_sans:
            errors["sans"] = (
                f"This product covers {product.max_sans} additional names at most."
                if product.max_sans
                else "This product covers one domain name; choose a multi-domain product."
            )
        return sans

    def _check_approver(self, draft: OrderDraft, domain: str, errors: dict[str, str]) -> None:
        """The approver must be one the provider offered for this domain, asked again now."""
        if draft.dcv_method != DcvMethod.EMAIL:
            return
        if not draft.approver_email.strip():
            errors["approver_email"] = "Choose the approval email address."
            return
        try:
            offered = self.dcv_emails(draft.provider_account_id, domain)
        except ProviderError as error:
            errors["approver_email"] = f"The provider's approval addresses are unavailable: {error}"
            return
        if draft.approver_email.strip().lower() not in {e.lower() for e in offered}:
            errors["approver_email"] = "Choose one of the approval addresses the provider offers."

    def _checked_contact(self, contact: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
        checked = {k: (contact.get(k) or "").strip() for k in CONTACT_LIMITS}
        for name, limit in CONTACT_LIMITS.items():
            if len(checked[name]) > limit:
                errors[f"contact_{name}"] = f"At most {limit} characters."
        for name in ("first_name", "last_name", "email"):
            if not checked[name]:
                errors[f"contact_{name}"] = "Required."
        if checked["email"]:
            checked["email"] = (
                self._field(errors, "contact_email", names.normalize_email, checked["email"]) or ""
            )
        checked["phone"] = (
            self._field(errors, "contact_phone", names.normalize_phone, checked["phone"]) or ""
        )
        return checked

    def _key_and_csr(self, draft: OrderDraft, values: dict[str, Any]) -> tuple[str | None, str]:
        order_names = [values["domain"], *values["sans"]]
        if draft.csr.strip():
            try:
                keys.check_csr(draft.csr, order_names)
            except keys.InvalidMaterial as error:
                raise OrderInvalid({"csr": str(error)}) from error
            return None, draft.csr.strip() + "\n"
        key = keys.generate_key(draft.key_type)
        subject = keys.Subject(
            common_name=values["domain"],
            organization=values["organization"],
            unit=values["unit"],
            state=values["state"],
            country=values["country"],
        )
        return keys.key_to_pem(key), keys.make_csr(key, subject, values["sans"])

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
        """One page of an account's certificates, each with every renewal made of it since."""
        page = max(1, page)
        originals, total = self.store.account_orders(
            account_id,
            sort=sort,
            descending=descending,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        chains = self.store.renewal_chains([order.id for order in originals])
        rows = [(order, chains[order.id]) for order in originals]
        return AccountPage(rows=rows, total=total, page=page, per_page=per_page)

    def renewals(self, order_id: int) -> list[OrderRecord]:
        """The renewals made of an order, oldest first."""
        return self.store.renewals_of(order_id)

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

        A submitted order is placed again; a pending or issued one is asked about.
        """
        order = self.get(order_id)
        if order.status == OrderState.SUBMITTED:
            return self._submit(order, actor)
        if order.status not in ASKABLE or not order.provider_order_id:
            return order
        adapter = self.accounts.adapter(order.provider_account_id)
        try:
            answer: ProviderStatus | ProviderError = adapter.status(to_ref(order))
        except ProviderError as error:
            answer = error
        return self._record_answer(order, answer, actor, adapter)

    def _record_answer(
        self,
        order: OrderRecord,
        answer: ProviderStatus | ProviderError,
        actor: str,
        adapter: Provider,
        now: datetime | None = None,
    ) -> OrderRecord:
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

    # --- renewing -------------------------------------------------------------------------------

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
        order = self.get(order_id)
        if order.status not in RENEWABLE:
            raise RenewalRefused(
                f"Only issued certificates can be renewed; this one is {order.status}."
            )
        key = idempotency_key or f"renew:{order.id}:{order.not_after:%Y%m%d%H%M%S}"
        in_flight = self._renewal_in_flight(order)
        if in_flight is not None:
            if in_flight.idempotency_key == key:
                return Placed(in_flight, duplicate=True)
            raise RenewalRefused(
                f"A renewal of this certificate is already in progress (order {in_flight.id}, "
                f"{in_flight.status})."
            )
        period = period_months or order.period_months
        product = self.product(order.provider_account_id, order.product_id)
        if product is not None and period not in product.periods:
            raise RenewalRefused("Choose a validity period this product offers.")
        values = {name: getattr(order, name) for name in RENEWAL_COPIED}
        values.update(
            period_months=period, renewal_of=order.id, idempotency_key=key,
            status=OrderState.SUBMITTED,
        )  # fmt: skip
        try:
            renewal = self.store.order(self.store.add_order(actor, **values))
        except DuplicateOrder as duplicate:
            return Placed(self.get(duplicate.order_id), duplicate=True)
        self.store.add_event(order.id, actor, "renewal_ordered", f"renewal order {renewal.id}")
        try:
            return Placed(self._submit(renewal, actor))
        except OrderRejected as rejected:
            failed = self.store.update_order(
                rejected.order, actor, "failed", str(rejected), status=OrderState.FAILED,
            )  # fmt: skip
            raise RenewalRefused(f"The provider refused the renewal: {rejected}", failed) from None

    def _renewal_in_flight(self, order: OrderRecord) -> OrderRecord | None:
        return next((r for r in self.store.renewals_of(order.id) if r.status in IN_FLIGHT), None)

    def renewal_due(
        self, account_id: str, certificate_id: int, period_months: int, actor: str = "billing"
    ) -> OrderRecord:
        """The host's billing asked for a renewal: one renewal however often it asks."""
        order = self.get(certificate_id)
        if order.account_id != str(account_id):
            raise OrderNotFound(certificate_id)
        in_flight = self._renewal_in_flight(order)
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

    # --- polling -------------------------------------------------------------------------------

    def poll_due(self, now: datetime, *, limit: int = 500, workers: int = 4) -> PollReport:
        """One polling round: claim the due orders, check them, expire ended certificates."""
        report = self.check_claimed(self.claim_due(now, limit=limit), now=now, workers=workers)
        report.expired = self.expire_ended(now)
        return report

    def claim_due(
        self, now: datetime, *, limit: int = 500, lease: timedelta = timedelta(minutes=5)
    ) -> list[OrderRecord]:
        """Lease the orders whose check is due (store.claim_due): no other poller takes them."""
        return self.store.claim_due(now, limit, lease)

    def check_claimed(
        self,
        claimed: list[OrderRecord],
        *,
        now: datetime | None = None,
        workers: int = 4,
        on_done=None,
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
            for results in pool.map(lambda chunk: self._poll_chunk(chunk, now), chunks):
                for order in results:
                    report.count(order)
                    if on_done:
                        on_done(order)
        return report

    def _poll_chunk(self, chunk: list[OrderRecord], now: datetime | None) -> list[OrderRecord]:
        adapter = self.accounts.adapter(chunk[0].provider_account_id)
        pending = [o for o in chunk if o.status == OrderState.PENDING and o.provider_order_id]
        answers = adapter.statuses([to_ref(o) for o in pending]) if pending else {}
        missing = ProviderError("The provider did not answer for this order.")

        def step(order: OrderRecord) -> OrderRecord:
            if order.status == OrderState.SUBMITTED:
                return self._submit(order, "poller", now)
            answer = answers.get(order.provider_order_id, missing)
            return self._record_answer(order, answer, "poller", adapter, now)

        return [self._settled(step, order) for order in chunk]

    @staticmethod
    def _settled(step, order: OrderRecord) -> OrderRecord:
        """Run one order's step; a refusal or a lost race is that order's business alone."""
        try:
            return step(order)
        except OrderRejected as rejected:
            return rejected.order
        except StaleOrder:
            return order

    def expire_ended(self, now: datetime) -> int:
        """Issued certificates past their end become expired; returns how many."""
        count = 0
        for order in self.store.issued_ending_before(now):
            try:
                expired = self.store.update_order(
                    order, "system", "expired", "The certificate's validity ended.",
                    status=OrderState.EXPIRED,
                )  # fmt: skip
            except StaleOrder:
                continue
            self._notify_status(expired, order.status)
            count += 1
        return count

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
