"""The Provider interface every SSL provider adapter implements, its records and its errors.

Adapters speak to a certificate authority or reseller API and nothing else: no Flask, no SQL.
What they need from the world around them (mail, publishing challenges, saving their own settings,
a callback URL) comes through :class:`ProviderHost`, which the order service hands them. What they
must remember about an order they return in :attr:`ProviderRef.data`; the order service stores it
with the order and gives it back on every later call.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Protocol

import wtforms


class ProviderError(Exception):
    """Something went wrong talking to the provider; ``str(error)`` is fit to show a user."""


class ProviderUnavailable(ProviderError):
    """Timeout, refused connection, 5xx or rate limit: try again later, nothing was lost.

    From a call that creates something at the provider (an order, a renewal, a reissue) it means
    more: the request never reached the provider (refused connection, DNS or TLS failure, a
    connect timeout, a 429 turned away before any work), so sending it again cannot buy twice.
    Everything else that goes wrong after a request was written is
    :class:`ProviderOutcomeUnknown`.

    ``retry_after`` is in seconds when the provider said when to come back (HTTP 429,
    ACME ``rateLimited``).
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderOutcomeUnknown(ProviderError):
    """A call that creates something may have reached the provider, and no usable answer came
    back: a timeout after the request was sent, a connection reset, a 5xx from a gateway, a
    reply that cannot be read or that lacks the new order's number.

    Such a call is never repeated blindly: the order service first asks the provider whether
    the order exists (:meth:`Provider.find_order`), and :meth:`Provider.find_order` raises this
    too when the provider cannot tell, so that a person decides.
    """


class ProviderRejected(ProviderError):
    """The provider refused the request (4xx or an API error code) and said why.

    ``code`` is the provider's own error code and ``field`` the argument it blamed, when given.
    """

    def __init__(self, message: str, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field


class OrderState(StrEnum):
    """The plugin's own states (DESIGN section 4); providers map their raw status onto these."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNKNOWN = "unknown"  # sent, no usable answer: checking with the provider before anything else
    PENDING = "pending"
    ISSUED = "issued"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REVOKED = "revoked"
    EXPIRED = "expired"


class DcvMethod(StrEnum):
    """How domain control is proven."""

    EMAIL = "email"
    HTTP = "http"
    DNS = "dns"


SERVER_TYPES: dict[str, str] = {
    "apache": "Apache",
    "apache_modssl": "Apache/mod_ssl",
    "nginx": "Nginx",
    "iis": "Microsoft IIS",
    "tomcat": "Tomcat",
    "cpanel": "cPanel",
    "plesk": "Plesk",
    "other": "Other",
}


@dataclass(frozen=True)
class Addon:
    """An extra a product can be ordered with (extra SANs, warranty upgrade, ...)."""

    id: str
    name: str
    price: str = ""
    description: str = ""


@dataclass(frozen=True)
class Product:
    """One certificate product of a provider.

    ``periods`` are in months, ``prices`` map a period to the provider's price as text (currency
    included). ``max_sans`` counts names besides the primary domain.
    """

    id: str
    name: str
    brand: str = ""
    validation: str = "dv"  # dv, ov or ev
    periods: tuple[int, ...] = (12,)
    prices: dict[int, str] = field(default_factory=dict)
    max_sans: int = 0
    wildcard: bool = False
    org_required: bool = False
    dcv_methods: tuple[DcvMethod, ...] = (DcvMethod.EMAIL,)
    addons: tuple[Addon, ...] = ()


@dataclass(frozen=True)
class Contact:
    """The admin/tech contact sent with an order."""

    first_name: str
    last_name: str
    email: str
    phone: str = ""
    title: str = ""
    organization: str = ""
    address: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""


@dataclass(frozen=True)
class OrganizationAddress:
    """Where the organization of an OV or EV certificate is: the CA checks it against public
    records before it issues, so the order form requires every field for those products. The
    empty address is an order's that needs none."""

    street: str = ""
    city: str = ""
    postal_code: str = ""
    phone: str = ""


@dataclass(frozen=True)
class OrderRequest:
    """Everything a provider needs to place (or renew) an order.

    ``domain`` and ``sans`` are A-labels (punycode). ``idempotency_key`` is unique per order
    and the same on every sending of it; an adapter may derive its own per-order values from it
    (Sectigo's ``uniqueValue``, the sandbox's order id). ``organization_address`` is filled in
    for products that validate the organization (``Product.org_required``), empty otherwise.
    ``san_approvers`` maps names of ``sans`` to the approver chosen for each (e-mail
    validation); :meth:`approver_for` answers for every name.
    """

    product_id: str
    period_months: int
    csr: str
    domain: str
    dcv_method: DcvMethod
    server_type: str = "other"
    sans: tuple[str, ...] = ()
    approver_email: str | None = None
    organization: str = ""
    unit: str = ""
    state: str = ""
    country: str = ""
    contact: Contact | None = None
    addons: tuple[str, ...] = ()
    idempotency_key: str = ""
    organization_address: OrganizationAddress = OrganizationAddress()
    san_approvers: dict[str, str] = field(default_factory=dict)

    def approver_for(self, name: str) -> str:
        """The approver of ``name`` (the domain or one of the SANs); empty without e-mail
        validation. A SAN without its own (an order placed before approvers were chosen per
        name) gets the domain's mailbox at its own base name: admin@ for admin@, a mailbox
        CAs accept for every name."""
        approver = self.approver_email or ""
        if self.dcv_method != DcvMethod.EMAIL or not approver:
            return ""
        if name == self.domain:
            return approver
        mailbox = approver.partition("@")[0]
        return self.san_approvers.get(name) or f"{mailbox}@{name.removeprefix('*.')}"


@dataclass(frozen=True)
class ValidationTask:
    """One proof of control still to be made, shown to the user when the host cannot publish it.

    For ``http``: serve ``value`` at ``location`` (a URL). For ``dns``: create ``record_type``
    record ``location`` (a name) with ``value``. For ``email``: ``location`` is the approver.
    """

    domain: str
    method: DcvMethod
    location: str
    value: str = ""
    record_type: str = ""
    status: str = "pending"
    published: bool = False


@dataclass(frozen=True)
class ProviderRef:
    """How a provider finds an order again: its id, plus whatever it asked to remember."""

    order_id: str
    data: dict[str, Any] = field(default_factory=dict)
    validation: tuple[ValidationTask, ...] = ()


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider says about an order now.

    ``raw_status`` and ``detail`` are the provider's own words, shown beside ``state``. When
    ``state`` is issued, ``certificate`` is the leaf PEM and ``chain`` the intermediates (PEM,
    leaf first order). ``data`` replaces :attr:`ProviderRef.data` when not ``None``.

    ``not_before``/``not_after`` are the current certificate's own dates;
    ``subscription_starts``/``subscription_ends`` the term paid for at the CA (aware UTC), which
    since 2026 spans several certificates, when the provider says it (GoGetSSL, Sectigo, the
    sandbox); ``None`` when it does not (ACME has no subscription at the CA).
    """

    state: OrderState
    raw_status: str
    detail: str = ""
    certificate: str | None = None
    chain: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    validation: tuple[ValidationTask, ...] = ()
    data: dict[str, Any] | None = None
    subscription_starts: datetime | None = None
    subscription_ends: datetime | None = None


class RevocationReason(IntEnum):
    """Why a certificate is revoked: the RFC 5280 reason codes CAs accept from a subscriber
    (ACME's ``revokeCert`` and Sectigo's ``codeReason`` take exactly these)."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5


@dataclass(frozen=True)
class RenewalWindow:
    """When the CA suggests a certificate be replaced (ACME ARI, RFC 9773), aware UTC.

    Replace at a random moment between ``start`` and ``end``; a window already past means at
    once (the CA may be about to revoke). ``retry_after`` is when the CA wants to be asked
    again (its Retry-After), ``explanation_url`` a page the CA gives for the reason.
    """

    start: datetime
    end: datetime
    retry_after: datetime | None = None
    explanation_url: str = ""


class PlacementKind(StrEnum):
    """Which create call a :class:`Placement` was."""

    ORDER = "order"
    RENEWAL = "renewal"
    REISSUE = "reissue"


@dataclass(frozen=True)
class Placement:
    """A create call whose answer was lost, as the order service remembers it.

    ``request`` is what was sent (for a reissue: the order's details with the new CSR),
    ``previous`` the order renewed or reissued, ``sent_at`` when the call was sent (aware UTC),
    and ``tracked`` the provider order ids the plugin already tracks on this provider account,
    so that an adapter which finds orders by listing them can pass over every order it knows.
    """

    kind: PlacementKind
    request: OrderRequest
    sent_at: datetime
    previous: ProviderRef | None = None
    tracked: frozenset[str] = frozenset()


class ProviderHost(Protocol):
    """What an adapter may ask of the world around it; the order service implements this."""

    def now(self) -> datetime:
        """The time (aware UTC) for every business date an adapter makes or compares (a
        certificate's notBefore, when a subscription starts, whether a window has come): the
        order service's clock, which tests move instead of waiting."""

    def send_mail(self, to: str, subject: str, body: str) -> bool:
        """Send mail through the host panel (sandbox approval links)."""

    def publish_http_challenge(self, domain: str, token: str, content: str) -> bool:
        """Ask the host to serve an http-01 token; False when it cannot."""

    def publish_dns_record(self, domain: str, name: str, record_type: str, value: str) -> bool:
        """Ask the host to publish a DNS record; False when it cannot."""

    def publish_http_file(self, domain: str, path: str, content: str) -> bool:
        """Ask the host to serve a validation file at http://domain/path; False when it cannot."""

    def unpublish_http_file(self, domain: str, path: str) -> bool:
        """Ask the host to stop serving a file publish_http_file published."""

    def save_settings(self, settings: dict[str, Any]) -> None:
        """Persist the adapter's settings (encrypted), e.g. a newly registered ACME account."""

    def callback_url(self, token: str) -> str:
        """An absolute URL that hands ``token`` back to :meth:`Provider.handle_callback`."""


class Provider(abc.ABC):
    """Base class of every adapter.

    Subclasses set ``key`` (stored with each provider account), ``name`` (shown to admins),
    ``SettingsForm`` (a plain WTForms form: the admin pages render it) and ``secret_fields``
    (settings that are never shown again once saved). ``settings`` is the form's data.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    SettingsForm: ClassVar[type[wtforms.Form]]
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # The CAA issuer domain names (RFC 8659) of the CA behind each product, by the product's
    # brand in lower case; "*" answers for every brand not named. The order popup's pre-flight
    # checks a domain's CAA records against them; a CA named by none is not checked.
    caa_identifiers: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, settings: dict[str, Any], host: ProviderHost):
        self.settings = settings
        self.host = host

    def caa_issuers(self, product: Product) -> tuple[str, ...]:
        """The names a CAA ``issue`` record must carry to let ``product``'s CA issue; empty
        when this adapter does not know them. An adapter whose CA depends on its settings (ACME)
        overrides this."""
        table = self.caa_identifiers
        return table.get(product.brand.lower(), table.get("*", ()))

    def test_connection(self) -> str:
        """Call the provider with the saved settings and say what came back, for the admin."""
        products = self.products()
        names = ", ".join(p.name for p in products[:5])
        more = f" and {len(products) - 5} more" if len(products) > 5 else ""
        return f"Connected: {len(products)} products ({names}{more})."

    @abc.abstractmethod
    def products(self) -> list[Product]:
        """The products this account may order."""

    @abc.abstractmethod
    def dcv_emails(self, domain: str) -> list[str]:
        """Approver addresses the provider accepts for ``domain`` (an A-label)."""

    @abc.abstractmethod
    def place_order(self, request: OrderRequest) -> ProviderRef:
        """Place a new order; raises ProviderRejected with the provider's reason.

        This and :meth:`renew` and :meth:`reissue` create something the reseller pays for, so
        they tell apart ProviderUnavailable (never reached the provider: safe to send again)
        from ProviderOutcomeUnknown (sent, no usable answer); anything else they raise after
        sending is treated as unknown too.
        """

    @abc.abstractmethod
    def status(self, ref: ProviderRef) -> ProviderStatus:
        """Ask the provider where the order stands now."""

    def statuses(self, refs: list[ProviderRef]) -> dict[str, ProviderStatus | ProviderError]:
        """Status of many orders at once, keyed by ``order_id``.

        Adapters with a batch call override this; the default asks one by one and keeps each
        order's error beside the others' answers.
        """
        results: dict[str, ProviderStatus | ProviderError] = {}
        for ref in refs:
            try:
                results[ref.order_id] = self.status(ref)
            except ProviderError as error:
                results[ref.order_id] = error
        return results

    @abc.abstractmethod
    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """Order the renewal of ``previous`` with the same CSR and details."""

    @abc.abstractmethod
    def reissue(self, ref: ProviderRef, csr: str, *, replaces: str | None = None) -> ProviderRef:
        """Reissue the certificate of an order with a new CSR, at no charge: the free
        replacement inside a subscription.

        ``replaces`` is the ARI certID (RFC 9773, :func:`panel_ssl_plugin.keys.ari_cert_id`) of
        the certificate being replaced. ACME sends it on the new order, so the CA can tell a
        replacement from a new certificate; the other adapters reissue the same order and
        ignore it.
        """

    @abc.abstractmethod
    def cancel(self, ref: ProviderRef, reason: str = "") -> dict[str, Any] | None:
        """Cancel a pending order (or ask for a refund where that is the provider's word).

        May return what to merge into the order's :attr:`ProviderRef.data`.
        """

    @abc.abstractmethod
    def resend_approval(self, ref: ProviderRef) -> dict[str, Any] | None:
        """Send the approval e-mail again, or — for HTTP/DNS validation — tell the provider the
        user has published the records and validation may start now.

        May return what to merge into the order's :attr:`ProviderRef.data`.
        """

    def revoke(
        self, ref: ProviderRef, certificate_pem: str, reason: RevocationReason
    ) -> dict[str, Any] | None:
        """Revoke ``certificate_pem``, an issued certificate of the order ``ref``, telling the
        CA ``reason``. After it, :meth:`status` reports the order revoked.

        May return what to merge into the order's :attr:`ProviderRef.data`. The default
        refuses: the provider's API offers no revocation.
        """
        raise ProviderRejected(
            f"{self.name} offers no revocation through its API; revoke the certificate in the "
            "provider's dashboard."
        )

    def renewal_window(self, certificate_pem: str) -> RenewalWindow | None:
        """When the CA suggests replacing ``certificate_pem`` (ACME ARI); ``None`` when it
        does not say, and the order service then replaces with a third of the life left.
        Raises ProviderUnavailable (with ``retry_after`` when given) to be asked again later."""
        return None

    def profiles(self) -> dict[str, str]:
        """The certificate profiles the CA offers (name -> description), for the settings
        form; empty when it offers none (only ACME CAs do)."""
        return {}

    def find_order(self, placement: Placement) -> ProviderRef | None:
        """Whether the order of a create call whose answer was lost exists at the provider,
        asked by the provider's own means (a listing, an idempotency key, the order's URL).

        Returns the ref to track when it exists, and ``None`` only when it provably does not,
        since the order service then places it again. Raises ProviderUnavailable to be asked
        again later, and ProviderOutcomeUnknown when the provider cannot tell: the order is then
        held for a person. This default cannot tell; every built-in adapter overrides it.
        """
        raise ProviderOutcomeUnknown(
            f"{self.name} offers no way to look up an order whose answer was lost; check the "
            "account at the provider, then say whether the order exists."
        )

    def adopt_order(self, placement: Placement, order_id: str) -> ProviderRef:
        """The ref to track an order by, when a person found it at the provider under
        ``order_id`` (the admin's "it exists: link order id ..."). The order service asks
        :meth:`status` with it before tracking it, so an id the provider does not know is
        refused. The default remembers the id alone.
        """
        return ProviderRef(order_id)

    def trusted_roots(self) -> list[str]:
        """PEM roots this provider's chains must lead to; empty when the adapter knows none.

        Issued certificates are checked against these before they are accepted. With none, the
        chain's signatures are still checked link by link.
        """
        return []

    def handle_callback(self, token: str) -> tuple[str, dict[str, Any]]:
        """A link the adapter sent out (see ProviderHost.callback_url) was followed.

        Returns the provider order id it concerns and what to merge into that order's
        :attr:`ProviderRef.data`. Adapters that send no links keep this default.
        """
        raise ProviderRejected("This provider does not use callback links.")
