"""The sandbox provider: a certificate authority inside the plugin, for demos and tests.

It issues real certificates (root -> intermediate -> leaf) so every later step (download, chain
check, PKCS#12) behaves as with a public CA, and it keeps the seed's approval-email flow: the
approver receives a link, following it approves the order, the next status check issues.

Readings chosen where the brief left room:

- One root and intermediate per provider account, created on first use and persisted through
  ``ProviderHost.save_settings``. Every piece of CA material is in ``secret_fields``, the public
  certificates too: they are not secret, but the admin form must keep them when it is saved again,
  since losing them would orphan every certificate already issued. The organization setting names
  the CA when it is created; changing it later renames nothing.
- Domain names and countries are judged by ``panel_ssl_plugin.names``, as everywhere else in
  the plugin; its messages become ``ProviderRejected`` messages.
- Approver addresses are the five conventional mailboxes at the domain and, for a subdomain, at
  the domain with its first label stripped. Without a public-suffix list ``example.co.uk`` also
  offers ``co.uk`` addresses; acceptable for a test CA. A wildcard's addresses are its base
  domain's. The one approver chosen for the primary domain approves every name of the order.
- DNS validation (wildcard product): the sandbox cannot resolve demo domains, so it takes the
  host's word. The order is approved once the host publishes every TXT record, and rejected when
  the host cannot publish, so no order waits for a proof nobody can make.
- A period of N months is a subscription of N calendar months (``lifetimes.subscription_ends``),
  as at a real CA since certificates were capped (CA/B Forum SC-081v3): each certificate lasts
  the longest the table in ``panel_ssl_plugin.lifetimes`` allows on its issue day, and never
  past the subscription's end.
- The sandbox keeps no books: all it knows of an order is the ref's data the plugin stores. So
  that a create call sent twice (or answered and lost) names one order, as at a provider that
  takes an idempotency key, the order id is ``SBX-`` and the first 10 hex digits, upper case, of
  HMAC-SHA256 under the link secret of the plugin's idempotency key; a request without a key is
  refused. The same key always names the same sandbox order. The sandbox cannot tell a key
  reused for other details (the plugin never reuses one): the same id comes back with the new
  details. 40 bits make two keys of one account share an id only by rare accident.
- Approval links are signed (HMAC-SHA256, link secret) over the order id and a round id, itself
  derived (HMAC, link secret) from the order id and the CSR: the same call sent twice, and the
  approval mail sent twice, carry the same link. A reissue with a new CSR starts a new round, so
  an old link cannot approve a new CSR; an old link followed before the new certificate is issued
  withdraws the approval until the current link is followed again, and after issuance it changes
  nothing. A reissue with the CSR already approved gets that round's link again, which approves
  nothing new. The DNS record's value is derived from the round the same way.
- ``find_order`` rebuilds the ref the create call returned, by the same checks, without mail or
  DNS records: an order exists exactly when the create call accepts its request, so a request
  refused now is answered "no such order". If a setting changed in between (a reject message, a
  period withdrawn) the order service then places it again and is refused with the reason;
  nothing is ever made twice, since the key names the one order. Orders approved at placement
  (auto-approve, DNS) are rebuilt as approved when the call was sent. A regenerated link secret
  renames every order, so orders placed before it can no longer be found or adopted.
- Issuance happens once: the certificate goes into ``ProviderStatus.data`` and later calls return
  it from there.
- Reissue keeps the order id, requires the same names, and issues once re-approved.
- Rehearsals (the admin's settings ``rehearse`` and ``rehearse_count``) are the sandbox's column
  of the fault matrix the HTTP adapters are tested against: a timeout before sending is
  "unavailable", a 429 "rate_limited" (retry after 1 s), and every fault after sending (read
  timeout, reset, 5xx, unreadable reply, reply without an order number) "lost_reply", where the
  order is made (mail sent) and ProviderOutcomeUnknown raised. Each rehearsed failure spends one
  of the count, saved through ``ProviderHost.save_settings``; a refusal is a reply that came
  through, so it spends nothing. Two calls at once may both spend the last one: a demo setting.
- Cancel: the interface lets ``cancel`` return nothing, so the sandbox records nothing. An issued
  order refuses (certificates are revoked, not cancelled); a pending one is the order service's to
  mark cancelled, and a ref whose data carries ``cancelled_at`` reports cancelled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar

import wtforms
from cryptography import x509
from wtforms import validators

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.providers import caa
from panel_ssl_plugin.providers.base import (
    Addon,
    DcvMethod,
    OrderRequest,
    OrderState,
    Placement,
    PlacementKind,
    Product,
    Provider,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    ValidationTask,
)

APPROVER_MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
PERIOD_CHOICES = [
    wtforms.SelectChoice(str(months), label)
    for months, label in ((12, "1 year"), (24, "2 years"), (36, "3 years"))
]
DEFAULT_PERIODS = (12, 24)
DEFAULT_ORGANIZATION = "Panel SSL Sandbox"
DNS_RECORD_LABEL = "_sandbox-validation"
ORDER_PREFIX = "SBX-"
CANCELLED_AT = "cancelled_at"

UNAVAILABLE = "unavailable"
RATE_LIMITED = "rate_limited"
LOST_REPLY = "lost_reply"
REHEARSAL_CHOICES = [
    wtforms.SelectChoice("", "Nothing: orders go through"),
    wtforms.SelectChoice(UNAVAILABLE, "The provider is down: nothing is ordered"),
    wtforms.SelectChoice(RATE_LIMITED, "The provider is busy (rate limit): nothing is ordered"),
    wtforms.SelectChoice(
        LOST_REPLY, "The reply is lost: the order is made, the answer never comes"
    ),
]
# A rehearsal that turns the call away before any work: what the provider says, and Retry-After.
_TURNED_AWAY = {
    UNAVAILABLE: ("the provider is down", None),
    RATE_LIMITED: ("the provider is rate limiting requests", 1.0),
}

_CA_FIELDS = ("ca_root_key", "ca_root_cert", "ca_intermediate_key", "ca_intermediate_cert")
_ROUND_FIELDS = ("link", "approved_link", "approved_at", "certificate", "chain")

WARRANTY = Addon(
    "warranty",
    "Extended warranty",
    "$10.00 per year",
    "Raises the relying-party warranty (sandbox: no money changes hands).",
)
EXTRA_SAN = Addon(
    "extra-san", "Extra SAN", "$5.00 per name per year", "Each name beyond the included ones."
)


class SandboxSettingsForm(wtforms.Form):
    """What an admin tunes to rehearse the paths a real CA takes: delays, rejections, load."""

    organization = wtforms.StringField(
        "Organization name of the test CA",
        default=DEFAULT_ORGANIZATION,
        validators=[validators.DataRequired(), validators.Length(max=64)],
        description="Names the CA when it is first created.",
    )
    reject_message = wtforms.StringField(
        "Reject every order with this message",
        validators=[validators.Optional(), validators.Length(max=500)],
        description="Leave empty to accept orders; set it to rehearse the error path.",
    )
    issue_delay = wtforms.IntegerField(
        "Issue N seconds after approval",
        default=0,
        validators=[validators.NumberRange(min=0, max=86400)],
    )
    auto_approve = wtforms.BooleanField(
        "Approve automatically",
        description="Skip the approval e-mail (load tests, benchmarks).",
    )
    periods = wtforms.SelectMultipleField(
        "Periods offered",
        choices=PERIOD_CHOICES,
        coerce=int,
        default=list(DEFAULT_PERIODS),
        validators=[validators.DataRequired()],
    )
    rehearse = wtforms.SelectField(
        "Rehearse a failure of the provider",
        choices=REHEARSAL_CHOICES,
        default="",
        description="What happens to the next N orders, renewals and reissues (below).",
    )
    rehearse_count = wtforms.IntegerField(
        "Rehearse it on the next N orders",
        default=0,
        validators=[validators.NumberRange(min=0, max=1000)],
        description="Counts down with each order it fails; at 0 orders go through again.",
    )


@dataclass(frozen=True)
class _Offer:
    """A catalogue entry; periods and prices follow the admin's settings, so not a Product yet."""

    id: str
    name: str
    cents_per_year: int
    validation: str = "dv"
    max_sans: int = 0
    included_sans: int = 0
    wildcard: bool = False
    dcv_methods: tuple[DcvMethod, ...] = (DcvMethod.EMAIL,)
    addons: tuple[Addon, ...] = (WARRANTY,)

    def product(self, periods: tuple[int, ...]) -> Product:
        prices = {months: f"${self.cents_per_year * months / 1200:.2f}" for months in periods}
        return Product(
            id=self.id,
            name=self.name,
            brand="Sandbox",
            validation=self.validation,
            periods=periods,
            prices=prices,
            max_sans=self.max_sans,
            wildcard=self.wildcard,
            org_required=self.validation != "dv",
            dcv_methods=self.dcv_methods,
            addons=self.addons,
        )


_OFFERS = {
    offer.id: offer
    for offer in (
        _Offer("dv-single", "Sandbox DV Single Domain", 900),
        _Offer(
            "dv-wildcard",
            "Sandbox DV Wildcard",
            4900,
            max_sans=1,
            included_sans=1,
            wildcard=True,
            dcv_methods=(DcvMethod.EMAIL, DcvMethod.DNS),
        ),
        _Offer(
            "dv-multi",
            "Sandbox DV Multi-Domain (2 extra names included)",
            2900,
            max_sans=100,
            included_sans=2,
            addons=(EXTRA_SAN, WARRANTY),
        ),
        _Offer("ov-single", "Sandbox OV Business", 5900, validation="ov"),
    )
}


@dataclass(frozen=True)
class _Authority:
    """The loaded CA: the intermediate signs, the root is only the trust anchor."""

    root: x509.Certificate
    key: keys.PrivateKey
    cert: x509.Certificate
    link_secret: str

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> _Authority:
        return cls(
            root=x509.load_pem_x509_certificate(settings["ca_root_cert"].encode()),
            key=keys.key_from_pem(settings["ca_intermediate_key"]),
            cert=x509.load_pem_x509_certificate(settings["ca_intermediate_cert"].encode()),
            link_secret=settings["link_secret"],
        )


def _new_ca(organization: str) -> dict[str, str]:
    root_key, root = keys.create_ca(f"{organization} Root CA")
    key, cert = keys.create_ca(
        f"{organization} Intermediate CA", issuer_key=root_key, issuer_cert=root, days=1825
    )
    return {
        "ca_root_key": keys.key_to_pem(root_key),
        "ca_root_cert": keys.cert_to_pem(root),
        "ca_intermediate_key": keys.key_to_pem(key),
        "ca_intermediate_cert": keys.cert_to_pem(cert),
    }


def _missing_material(settings: dict[str, Any]) -> dict[str, str]:
    """Only what is absent is made, so a lost link secret never costs the root."""
    made: dict[str, str] = {}
    if not all(settings.get(name) for name in _CA_FIELDS):
        made |= _new_ca(settings.get("organization") or DEFAULT_ORGANIZATION)
    if not settings.get("link_secret"):
        made["link_secret"] = secrets.token_urlsafe(32)
    return made


def _domain(name: str, allow_wildcard: bool) -> str:
    """The plugin's one reading of a domain name, in the words a CA would reject it with."""
    try:
        return names.normalize_domain(name, allow_wildcard=allow_wildcard)
    except names.InvalidInput as error:
        raise ProviderRejected(str(error), field="domain") from error


def _approver_domains(domain: str) -> list[str]:
    base = _domain(domain, allow_wildcard=True).removeprefix("*.")
    parent = base.partition(".")[2]
    return [base, parent] if "." in parent else [base]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def _derive(secret: str, purpose: str, *parts: str) -> bytes:
    """A value the CA computes again from the same inputs, and nobody without its secret.

    The NUL separators keep these messages apart from one another and from the link payloads.
    """
    return _mac(secret, "\0".join((purpose, *parts)))


def _sign(secret: str, payload: str) -> str:
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, payload))}"


def _verified_payload(secret: str, token: str) -> str:
    """The signed payload of ``token``; one message for every failure, to tell a forger nothing."""
    invalid = ProviderRejected("This approval link is not valid.", code="bad_token")
    try:
        payload = _unb64(token.partition(".")[0]).decode()
    except (binascii.Error, ValueError) as error:
        raise invalid from error
    if not hmac.compare_digest(_sign(secret, payload).encode(), token.encode()):
        raise invalid
    return payload


def _days(months: int) -> int:
    return round(months * 365 / 12)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _check_names(request: OrderRequest, offer: _Offer) -> list[str]:
    asked = (request.domain, *request.sans)
    ordered = list(dict.fromkeys(_domain(name, offer.wildcard) for name in asked))
    extra = len(ordered) - 1
    if extra > offer.max_sans:
        raise ProviderRejected(
            f"{offer.name} allows {offer.max_sans} names besides the domain; {extra} asked.",
            field="sans",
        )
    if extra > offer.included_sans and EXTRA_SAN.id not in request.addons:
        raise ProviderRejected(
            f"{offer.name} includes {offer.included_sans} extra names; add the "
            f"{EXTRA_SAN.name!r} add-on for the other {extra - offer.included_sans}.",
            field="addons",
        )
    return ordered


def _check_csr(csr_pem: str, ordered: list[str]) -> None:
    try:
        csr = keys.load_csr(csr_pem)
    except keys.InvalidMaterial as error:
        raise ProviderRejected(str(error), field="csr") from error
    if not csr.is_signature_valid:
        raise ProviderRejected("The CSR's signature does not verify.", field="csr")
    asked = sorted({n.lower() for n in keys.csr_names(csr)})
    if asked != sorted(ordered):
        raise ProviderRejected(
            f"The CSR names ({', '.join(asked)}) differ from the order's "
            f"({', '.join(sorted(ordered))}).",
            field="csr",
        )


def _check_org(request: OrderRequest, offer: _Offer) -> None:
    if offer.validation == "dv":
        return
    if not request.organization.strip():
        raise ProviderRejected(f"{offer.name} needs the organization name.", field="organization")
    try:
        names.normalize_country(request.country)
    except names.InvalidInput as error:
        raise ProviderRejected(f"{offer.name}: {error}", field="country") from error


def _refuse_if_cancelled(ref: ProviderRef) -> None:
    if ref.data.get(CANCELLED_AT):
        raise ProviderRejected(f"Order {ref.order_id} is cancelled.", code="cancelled")


def _approved(data: dict[str, Any]) -> bool:
    return bool(data.get("approved_at")) and data.get("approved_link") == data.get("link")


def _renewal_of(previous: ProviderRef) -> dict[str, Any]:
    return {"renewal_of": previous.order_id}


def _approve(data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        **data,
        "approved_at": at.replace(microsecond=0).isoformat(),
        "approved_link": data["link"],
    }


class SandboxProvider(Provider):
    """A local CA that behaves like a reseller: catalogue, validation, approval mail, issuance."""

    key = "sandbox"
    name = "Sandbox (local test CA)"
    SettingsForm = SandboxSettingsForm
    secret_fields = (*_CA_FIELDS, "link_secret")
    caa_identifiers: ClassVar[dict[str, tuple[str, ...]]] = {"*": caa.SANDBOX}

    @cached_property
    def _ca(self) -> _Authority:
        made = _missing_material(self.settings)
        if made:
            self.settings = {**self.settings, **made}
            self.host.save_settings(self.settings)
        return _Authority.from_settings(self.settings)

    def trusted_roots(self) -> list[str]:
        """The trust anchor, which the chain leaves out as a public CA's would."""
        return [keys.cert_to_pem(self._ca.root)]

    def test_connection(self) -> str:
        """Creating the CA here lets an admin see it exist before any order is placed."""
        subject = self._ca.root.subject.rfc4514_string()
        return f"Sandbox CA {subject}. {super().test_connection()}"

    def products(self) -> list[Product]:
        """One of each kind a reseller sells, so every branch of the order popup has a case."""
        return [offer.product(self._periods()) for offer in _OFFERS.values()]

    def dcv_emails(self, domain: str) -> list[str]:
        """Conventional mailboxes, as most CAs accept them when WHOIS is hidden."""
        return [f"{box}@{d}" for d in _approver_domains(domain) for box in APPROVER_MAILBOXES]

    def place_order(self, request: OrderRequest) -> ProviderRef:
        """Checks as a real CA would, so the popup's error path is exercised in demos too."""
        return self._create(lambda at: self._order(request, {}, at))

    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """A renewal is a new order that remembers which one it follows, as at Sectigo."""
        return self._create(lambda at: self._order(request, _renewal_of(previous), at))

    def reissue(self, ref: ProviderRef, csr: str) -> ProviderRef:
        """Same order, same names, new key: a new approval round, then a new certificate."""
        return self._create(lambda at: self._reissued(ref, csr, at))

    def find_order(self, placement: Placement) -> ProviderRef | None:
        """The sandbox can always tell: its orders are a function of the request, the key and
        its secret, so a lost reply loses nothing it cannot rebuild, and a request it refuses
        never made an order (None). Nothing is mailed or published: the create call did that,
        and resend_approval is there if its mail went astray.
        """
        try:
            return self._rebuilt(placement)
        except ProviderRejected:
            return None

    def adopt_order(self, placement: Placement, order_id: str) -> ProviderRef:
        """Only the order the request's key names can be the one the admin found."""
        ref = self._rebuilt(placement)
        if order_id.strip().upper() != ref.order_id:
            raise ProviderRejected(
                f"Order {order_id!r} is not the sandbox order of this request; that is "
                f"{ref.order_id}.",
                code="not_found",
            )
        return ref

    def cancel(self, ref: ProviderRef, reason: str = "") -> dict[str, Any]:
        """Refuse issued orders (certificates are revoked, not cancelled); mark pending ones.

        The mark comes back to :meth:`status` through the order's data, and makes approval links
        of the order worthless.
        """
        if ref.data.get("certificate"):
            raise ProviderRejected(
                f"Order {ref.order_id} is already issued: revoke the certificate instead.",
                code="issued",
            )
        return {CANCELLED_AT: _now().isoformat()}

    def resend_approval(self, ref: ProviderRef) -> None:
        """The same link again: the round is unchanged, so either mail approves it."""
        _refuse_if_cancelled(ref)
        if _approved(ref.data):
            raise ProviderRejected(f"Order {ref.order_id} is already approved.", code="approved")
        self._mail(ref.order_id, ref.data)

    def handle_callback(self, token: str) -> tuple[str, dict[str, Any]]:
        """Approval names the link's round: status() counts it only if it is the current one."""
        order_id, _, link = _verified_payload(self._ca.link_secret, token).partition(":")
        return order_id, {"approved_at": _now().isoformat(), "approved_link": link}

    def status(self, ref: ProviderRef) -> ProviderStatus:
        """Issuance happens here, lazily, because the sandbox has no process of its own."""
        data = ref.data
        if data.get(CANCELLED_AT):
            return ProviderStatus(
                OrderState.CANCELLED, "cancelled", f"Cancelled {data[CANCELLED_AT]}."
            )
        if data.get("certificate"):
            return self._issued(data, changed=None)
        return self._waiting(data) or self._issue(data)

    def _create(self, build: Callable[[datetime], ProviderRef]) -> ProviderRef:
        """A create call, failing the way the admin's rehearsal says: turned away before any
        work, or carried out and its reply lost."""
        rehearsal = self._rehearsal()
        if rehearsal in _TURNED_AWAY:
            reason, retry_after = _TURNED_AWAY[rehearsal]
            self._spend_rehearsal()
            raise ProviderUnavailable(
                f"Sandbox rehearsal: {reason}; nothing was ordered, try again later.",
                retry_after=retry_after,
            )
        ref = self._announce(build(_now()))
        if rehearsal == LOST_REPLY:
            self._spend_rehearsal()
            raise ProviderOutcomeUnknown(
                "Sandbox rehearsal: the order was made but its reply was lost; it is looked up "
                "before anything is sent again."
            )
        return ref

    def _rehearsal(self) -> str:
        """The failure to rehearse on this create call: none once the count has run down."""
        if int(self.settings.get("rehearse_count") or 0) > 0:
            return self.settings.get("rehearse") or ""
        return ""

    def _spend_rehearsal(self) -> None:
        left = int(self.settings["rehearse_count"]) - 1
        self.settings = {**self.settings, "rehearse_count": left}
        self.host.save_settings(self.settings)

    def _rebuilt(self, placement: Placement) -> ProviderRef:
        """The ref the placement's create call returned, built again as it was built then."""
        request, previous, at = placement.request, placement.previous, placement.sent_at
        if placement.kind is PlacementKind.ORDER:
            return self._order(request, {}, at)
        if previous is None:
            raise ValueError(f"A {placement.kind} placement names the order it follows.")
        if placement.kind is PlacementKind.RENEWAL:
            return self._order(request, _renewal_of(previous), at)
        return self._reissued(previous, request.csr, at)

    def _order(self, request: OrderRequest, extra: dict[str, Any], at: datetime) -> ProviderRef:
        """A new order (or renewal) as the CA accepts it, before anyone is told of it."""
        names = self._validate(request)
        data = {
            "csr": request.csr,
            "product_id": request.product_id,
            "period_months": request.period_months,
            "names": names,
            "dcv_method": str(request.dcv_method),
            "approver_email": request.approver_email,
            **extra,
        }
        return self._round(self._order_id(request.idempotency_key), data, at)

    def _reissued(self, ref: ProviderRef, csr: str, at: datetime) -> ProviderRef:
        _refuse_if_cancelled(ref)
        _check_csr(csr, ref.data["names"])
        data = {k: v for k, v in ref.data.items() if k not in _ROUND_FIELDS}
        data["csr"] = csr
        return self._round(ref.order_id, data, at)

    def _order_id(self, idempotency_key: str) -> str:
        """Named after the plugin's key, so the same call sent twice names the same order."""
        if not idempotency_key:
            raise ProviderRejected(
                "The sandbox names every order after the plugin's idempotency key; this request "
                "has none.",
                field="idempotency_key",
            )
        digest = _derive(self._ca.link_secret, "order", idempotency_key)
        return f"{ORDER_PREFIX}{digest.hex()[:10].upper()}"

    def _validate(self, request: OrderRequest) -> list[str]:
        """The checks a real CA makes, in the order it would report them; returns the names."""
        if self.settings.get("reject_message"):
            raise ProviderRejected(self.settings["reject_message"], code="rejected")
        offer = self._offer(request)
        names = _check_names(request, offer)
        _check_csr(request.csr, names)
        _check_org(request, offer)
        if request.dcv_method == DcvMethod.EMAIL:
            self._check_approver(request)
        return names

    def _check_approver(self, request: OrderRequest) -> None:
        """Re-checked here because the popup's dropdown is only a convenience."""
        if request.approver_email not in self.dcv_emails(request.domain):
            raise ProviderRejected(
                f"{request.approver_email or 'No address'} is not an approver address for "
                f"{request.domain}.",
                field="approver_email",
            )

    def _periods(self) -> tuple[int, ...]:
        return tuple(sorted(int(p) for p in self.settings.get("periods") or DEFAULT_PERIODS))

    def _offer(self, request: OrderRequest) -> _Offer:
        offer = _OFFERS.get(request.product_id)
        if offer is None:
            raise ProviderRejected(f"Unknown product {request.product_id!r}.", field="product_id")
        periods = self._periods()
        if request.period_months not in periods:
            offered = ", ".join(str(p) for p in periods)
            raise ProviderRejected(
                f"{offer.name} is sold for {offered} months, not {request.period_months}.",
                field="period_months",
            )
        unknown = set(request.addons) - {addon.id for addon in offer.addons}
        if unknown:
            raise ProviderRejected(
                f"{offer.name} has no add-on {', '.join(sorted(unknown))}.", field="addons"
            )
        if request.dcv_method not in offer.dcv_methods:
            raise ProviderRejected(
                f"{offer.name} cannot be validated by {request.dcv_method}.", field="dcv_method"
            )
        return offer

    def _round(self, order_id: str, data: dict[str, Any], at: datetime) -> ProviderRef:
        """The ref of an approval round: one per order and CSR, so only the latest one can
        approve. A DNS round is approved as of ``at``, since :meth:`_announce` refuses the order
        unless the host publishes every record."""
        data = {
            **data,
            "link": _b64(_derive(self._ca.link_secret, "round", order_id, data["csr"])[:8]),
        }
        if self.settings.get("auto_approve"):
            return ProviderRef(order_id, _approve(data, at))
        if data["dcv_method"] == DcvMethod.DNS:
            return ProviderRef(order_id, _approve(data, at), validation=self._dns_tasks(data))
        return ProviderRef(order_id, data)

    def _announce(self, ref: ProviderRef) -> ProviderRef:
        """Tell the world of a new round: the host publishes its records, or the approver gets
        the link."""
        if ref.validation:
            self._publish_dns(ref.validation)
        elif not _approved(ref.data):
            self._mail(ref.order_id, ref.data)
        return ref

    def _dns_tasks(self, data: dict[str, Any]) -> tuple[ValidationTask, ...]:
        """Nobody resolves the value, the host's word is the proof; it names the round."""
        value = _b64(_derive(self._ca.link_secret, "dns", data["link"])[:24])
        return tuple(
            ValidationTask(
                base,
                DcvMethod.DNS,
                f"{DNS_RECORD_LABEL}.{base}",
                value,
                "TXT",
                status="valid",
                published=True,
            )
            for base in dict.fromkeys(name.removeprefix("*.") for name in data["names"])
        )

    def _publish_dns(self, tasks: tuple[ValidationTask, ...]) -> None:
        for task in tasks:
            if not self.host.publish_dns_record(task.domain, task.location, "TXT", task.value):
                raise ProviderRejected(
                    f"The sandbox validates by DNS only when the panel publishes the record "
                    f"for {task.domain}; choose e-mail validation.",
                    field="dcv_method",
                )

    def _mail(self, order_id: str, data: dict[str, Any]) -> None:
        approver = data["approver_email"]
        url = self.host.callback_url(_sign(self._ca.link_secret, f"{order_id}:{data['link']}"))
        body = (
            f"A certificate for {', '.join(data['names'])} was ordered from "
            f"{self._ca.root.subject.rfc4514_string()} (order {order_id}).\n"
            f"You receive this because {approver} may approve certificates for these names.\n\n"
            f"To approve issuance, open:\n{url}\n\n"
            "If you did not expect this, ignore it: nothing is issued without approval.\n"
            "This is a sandbox test CA; its certificates are not publicly trusted.\n"
        )
        subject = f"Approve the SSL certificate for {data['names'][0]}"
        if not self.host.send_mail(approver, subject, body):
            raise ProviderUnavailable("The approval e-mail could not be sent; try again later.")

    def _waiting(self, data: dict[str, Any]) -> ProviderStatus | None:
        """Pending status while approval or the configured delay is outstanding, else None."""
        if not _approved(data):
            detail = f"Awaiting approval by {data['approver_email']}."
            return ProviderStatus(OrderState.PENDING, "awaiting_approval", detail)
        delay = timedelta(seconds=int(self.settings.get("issue_delay") or 0))
        remaining = datetime.fromisoformat(data["approved_at"]) + delay - datetime.now(UTC)
        if remaining.total_seconds() > 0:
            detail = f"Approved; issuing in {math.ceil(remaining.total_seconds())} s."
            return ProviderStatus(OrderState.PENDING, "approved", detail)
        return None

    def _issue(self, data: dict[str, Any]) -> ProviderStatus:
        cert = keys.sign_csr(
            keys.load_csr(data["csr"]),
            self._ca.key,
            self._ca.cert,
            days=_days(data["period_months"]),
            not_before=_now(),
        )
        issued = {
            **data,
            "certificate": keys.cert_to_pem(cert),
            "chain": keys.cert_to_pem(self._ca.cert),
        }
        return self._issued(issued, changed=issued)

    def _issued(self, data: dict[str, Any], changed: dict[str, Any] | None) -> ProviderStatus:
        """Built from the stored PEMs, so every call reports the one certificate issued."""
        cert = x509.load_pem_x509_certificate(data["certificate"].encode())
        detail = (
            f"Issued by {cert.issuer.rfc4514_string()}, serial {cert.serial_number:x}; "
            f"trust anchor {self._ca.root.subject.rfc4514_string()}."
        )
        return ProviderStatus(
            OrderState.ISSUED,
            "issued",
            detail,
            certificate=data["certificate"],
            chain=data["chain"],
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            data=changed,
        )
