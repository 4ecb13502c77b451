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
- A period of N months is one certificate of N * 365 / 12 days. Real CAs cap a certificate at
  398 days; the sandbox shows what was bought.
- Approval links are signed (HMAC-SHA256, link secret) over the order id and a nonce naming the
  approval round. A reissue starts a new round, so an old link cannot approve a new CSR; an old
  link followed before the new certificate is issued withdraws the approval until the current
  link is followed again, and after issuance it changes nothing.
- Issuance happens once: the certificate goes into ``ProviderStatus.data`` and later calls return
  it from there.
- Reissue keeps the order id, requires the same names, and issues once re-approved.
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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import wtforms
from cryptography import x509
from wtforms import validators

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.providers.base import (
    Addon,
    DcvMethod,
    OrderRequest,
    OrderState,
    Product,
    Provider,
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


def _sign(secret: str, payload: str) -> str:
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{_b64(payload.encode())}.{_b64(mac)}"


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


class SandboxProvider(Provider):
    """A local CA that behaves like a reseller: catalogue, validation, approval mail, issuance."""

    key = "sandbox"
    name = "Sandbox (local test CA)"
    SettingsForm = SandboxSettingsForm
    secret_fields = (*_CA_FIELDS, "link_secret")

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
        return self._open(request, {})

    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """A renewal is a new order that remembers which one it follows, as at Sectigo."""
        return self._open(request, {"renewal_of": previous.order_id})

    def reissue(self, ref: ProviderRef, csr: str) -> ProviderRef:
        """Same order, same names, new key: a new approval round, then a new certificate."""
        _refuse_if_cancelled(ref)
        _check_csr(csr, ref.data["names"])
        data = {k: v for k, v in ref.data.items() if k not in _ROUND_FIELDS}
        data["csr"] = csr
        return self._start_round(ref.order_id, data)

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

    def _open(self, request: OrderRequest, extra: dict[str, Any]) -> ProviderRef:
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
        return self._start_round(f"{ORDER_PREFIX}{secrets.token_hex(5).upper()}", data)

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

    def _start_round(self, order_id: str, data: dict[str, Any]) -> ProviderRef:
        """Every approval round gets its own link, so only the latest one can approve."""
        data = {**data, "link": secrets.token_urlsafe(8)}
        if self.settings.get("auto_approve"):
            return ProviderRef(order_id, self._approve(data))
        if data["dcv_method"] == DcvMethod.DNS:
            tasks = self._publish_dns(data)
            return ProviderRef(order_id, self._approve(data), validation=tasks)
        self._mail(order_id, data)
        return ProviderRef(order_id, data)

    @staticmethod
    def _approve(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "approved_at": _now().isoformat(), "approved_link": data["link"]}

    def _publish_dns(self, data: dict[str, Any]) -> tuple[ValidationTask, ...]:
        """The value is random: nobody resolves it, the host's word is the proof."""
        value = secrets.token_urlsafe(24)
        tasks = tuple(
            ValidationTask(base, DcvMethod.DNS, f"{DNS_RECORD_LABEL}.{base}", value, "TXT")
            for base in dict.fromkeys(name.removeprefix("*.") for name in data["names"])
        )
        for task in tasks:
            if not self.host.publish_dns_record(task.domain, task.location, "TXT", value):
                raise ProviderRejected(
                    f"The sandbox validates by DNS only when the panel publishes the record "
                    f"for {task.domain}; choose e-mail validation.",
                    field="dcv_method",
                )
        return tuple(replace(task, status="valid", published=True) for task in tasks)

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
