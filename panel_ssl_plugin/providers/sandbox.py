"""The sandbox provider: a certificate authority inside the plugin, for demos and tests.

It issues real certificates (root -> intermediate -> leaf) so every later step (download, chain
check, PKCS#12) behaves as with a public CA, and it keeps the seed's approval-email flow: the
approver receives a link, following it approves the order, the next status check issues.
What it sells and checks is in ``sandbox_catalogue``, its links and approvals in
``sandbox_approval``; the readings below hold for all three modules.

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
  domain's. Every name has its approver (``OrderRequest.approver_for``), checked against that
  name's addresses; each approver gets one mail naming the names it approves, and the order is
  approved once every approver followed its link.
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
- Approval links are signed (HMAC-SHA256, link secret) over the order id, a round id, itself
  derived (HMAC, link secret) from the order id and the CSR, and the approver: the same call
  sent twice, and the approval mail sent twice, carry the same link. A link signed before links
  named their approver (order id and round only) approves the whole round, as it did then. A
  reissue with a new CSR starts a new round, so an old link cannot approve a new CSR; an old
  link followed before the new certificate is issued withdraws its approver's approval until the
  current link is followed again, and after issuance it changes nothing. A reissue with the CSR
  already approved gets that round's link again, which approves nothing new. The DNS record's
  value is derived from the round the same way.
- ``find_order`` rebuilds the ref the create call returned, by the same checks, without mail or
  DNS records: an order exists exactly when the create call accepts its request, so a request
  refused now is answered "no such order". If a setting changed in between (a reject message, a
  period withdrawn) the order service then places it again and is refused with the reason;
  nothing is ever made twice, since the key names the one order. Orders approved at placement
  (auto-approve, DNS) are rebuilt as approved when the call was sent. A regenerated link secret
  renames every order, so orders placed before it can no longer be found or adopted.
- Issuance happens once: the certificate goes into ``ProviderStatus.data`` and later calls return
  it from there.
- Reissue keeps the order id, requires the same names, and issues once re-approved, at no
  charge, while the subscription lasts; after its end it is refused (renew instead).
- Dates come from ``ProviderHost.now()``, the order service's clock: approval and cancel times,
  the issue delay, each certificate's notBefore. The subscription starts when its first
  certificate is issued (a renewal's at the end of the subscription it renews, when that is
  later) and lasts the months bought; it is reported with every status from then on. Once it has
  ended the order reports expired.
- Revoke: the sandbox keeps no revocation list, so ``revoke`` returns the serials revoked for
  the order's data, and a status whose current certificate is among them reports revoked. Any
  certificate of the order's names this CA issued may be revoked, older ones of a reissued
  order too.
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

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from panel_ssl_plugin import keys, lifetimes
from panel_ssl_plugin.providers import caa
from panel_ssl_plugin.providers import sandbox_approval as approval
from panel_ssl_plugin.providers import sandbox_catalogue as catalogue
from panel_ssl_plugin.providers.base import (
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
    RevocationReason,
    ValidationTask,
)
from panel_ssl_plugin.providers.sandbox_catalogue import LOST_REPLY, RATE_LIMITED, UNAVAILABLE

DNS_RECORD_LABEL = "_sandbox-validation"
ORDER_PREFIX = "SBX-"
CANCELLED_AT = "cancelled_at"
REVOKED_SERIALS = "revoked_serials"

# A rehearsal that turns the call away before any work: what the provider says, and Retry-After.
_TURNED_AWAY = {
    UNAVAILABLE: ("the provider is down", None),
    RATE_LIMITED: ("the provider is rate limiting requests", 1.0),
}

_CA_FIELDS = ("ca_root_key", "ca_root_cert", "ca_intermediate_key", "ca_intermediate_cert")


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
        made |= _new_ca(settings.get("organization") or catalogue.DEFAULT_ORGANIZATION)
    if not settings.get("link_secret"):
        made["link_secret"] = secrets.token_urlsafe(32)
    return made


def _when(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    return datetime.fromisoformat(value) if value else None


def _ended(ends: datetime) -> ProviderStatus:
    """A round approved only after its subscription ended: there is nothing left to issue."""
    return ProviderStatus(
        OrderState.EXPIRED,
        "expired",
        f"The subscription ended on {ends:%Y-%m-%d} before this certificate was approved.",
        subscription_ends=ends,
    )


def _refuse_if_cancelled(ref: ProviderRef) -> None:
    if ref.data.get(CANCELLED_AT):
        raise ProviderRejected(f"Order {ref.order_id} is cancelled.", code="cancelled")


def _renewal_of(previous: ProviderRef) -> dict[str, Any]:
    """A renewal remembers what it renews, and when that subscription ends: the renewal's own
    starts there if its first certificate comes earlier."""
    return {
        "renewal_of": previous.order_id,
        "renews_until": previous.data.get("subscription_ends"),
    }


class SandboxProvider(Provider):
    """A local CA that behaves like a reseller: catalogue, validation, approval mail, issuance."""

    key = "sandbox"
    name = "Sandbox (local test CA)"
    SettingsForm = catalogue.SandboxSettingsForm
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
        return [offer.product(self._periods()) for offer in catalogue.OFFERS.values()]

    def dcv_emails(self, domain: str) -> list[str]:
        """Conventional mailboxes, as most CAs accept them when WHOIS is hidden."""
        return [
            f"{box}@{d}"
            for d in catalogue.approver_domains(domain)
            for box in catalogue.APPROVER_MAILBOXES
        ]

    def place_order(self, request: OrderRequest) -> ProviderRef:
        """Checks as a real CA would, so the popup's error path is exercised in demos too."""
        return self._create(lambda at: self._order(request, {}, at))

    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """A renewal is a new order that remembers which one it follows, as at Sectigo."""
        return self._create(lambda at: self._order(request, _renewal_of(previous), at))

    def reissue(self, ref: ProviderRef, csr: str, *, replaces: str | None = None) -> ProviderRef:
        """Same order, same names, new key: a new approval round, then a new certificate, free
        while the subscription lasts. ``replaces`` is ACME's business; the sandbox has no use
        for it."""
        return self._create(lambda at: self._reissued(ref, csr, at))

    def revoke(
        self, ref: ProviderRef, certificate_pem: str, reason: RevocationReason
    ) -> dict[str, Any]:
        """Any certificate of the order's names this CA signed; the serials revoked go back
        into the order's data, where :meth:`status` finds them (module docstring)."""
        try:
            cert = keys.load_certificates(certificate_pem)[0]
            cert.verify_directly_issued_by(self._ca.cert)
        except (keys.InvalidMaterial, ValueError, TypeError, InvalidSignature) as error:
            raise ProviderRejected(
                "That is not a certificate of this sandbox CA.", field="certificate"
            ) from error
        if sorted(keys.certificate_names(cert)) != sorted(ref.data["names"]):
            raise ProviderRejected(f"That certificate is not one of order {ref.order_id}.")
        serials = [*ref.data.get(REVOKED_SERIALS, ()), f"{cert.serial_number:x}"]
        return {
            REVOKED_SERIALS: list(dict.fromkeys(serials)),
            "revoked_at": self._now().isoformat(),
            "revocation_reason": int(reason),
        }

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
        return {CANCELLED_AT: self._now().isoformat()}

    def resend_approval(self, ref: ProviderRef) -> None:
        """The same link again to each approver who has not followed it: the round is
        unchanged, so either mail approves."""
        _refuse_if_cancelled(ref)
        waiting = approval.waiting_for(ref.data)
        if not waiting:
            raise ProviderRejected(f"Order {ref.order_id} is already approved.", code="approved")
        self._mail(ref.order_id, ref.data, waiting)

    def handle_callback(self, token: str) -> tuple[str, dict[str, Any]]:
        """Approval names the link's round and approver: status() counts it only for the
        current round. ``approved_at`` is the latest approval's."""
        order_id, link, *approver = approval.verified_payload(self._ca.link_secret, token).split(
            ":", 2
        )
        approved = {"approved_at": self._now().isoformat()}
        if not approver:
            return order_id, {**approved, "approved_link": link}  # a link of before approvers
        return order_id, {**approved, approval.APPROVED_BY + approver[0]: link}

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

    def _now(self) -> datetime:
        """The order service's clock, to the second as certificates carry it."""
        return self.host.now().astimezone(UTC).replace(microsecond=0)

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
        ref = self._announce(build(self._now()))
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
        names, approvers = self._validate(request)
        data = {
            "csr": request.csr,
            "product_id": request.product_id,
            "period_months": request.period_months,
            "names": names,
            "dcv_method": str(request.dcv_method),
            "approver_email": request.approver_email,
            **({"approvers": approvers} if approvers else {}),
            **extra,
        }
        return self._round(self._order_id(request.idempotency_key), data, at)

    def _reissued(self, ref: ProviderRef, csr: str, at: datetime) -> ProviderRef:
        _refuse_if_cancelled(ref)
        ends = _when(ref.data, "subscription_ends")
        if ends is not None and at >= ends:
            raise ProviderRejected(
                f"The subscription of order {ref.order_id} ended on {ends:%Y-%m-%d}; renew it "
                "for a new certificate.",
                code="ended",
            )
        catalogue.check_csr(csr, ref.data["names"])
        return self._round(ref.order_id, {**approval.without_round(ref.data), "csr": csr}, at)

    def _order_id(self, idempotency_key: str) -> str:
        """Named after the plugin's key, so the same call sent twice names the same order."""
        if not idempotency_key:
            raise ProviderRejected(
                "The sandbox names every order after the plugin's idempotency key; this request "
                "has none.",
                field="idempotency_key",
            )
        digest = approval.derive(self._ca.link_secret, "order", idempotency_key)
        return f"{ORDER_PREFIX}{digest.hex()[:10].upper()}"

    def _validate(self, request: OrderRequest) -> tuple[list[str], dict[str, list[str]]]:
        """The checks a real CA makes, in the order it would report them; returns the names
        and, for e-mail validation, each approver with the names it approves."""
        if self.settings.get("reject_message"):
            raise ProviderRejected(self.settings["reject_message"], code="rejected")
        offer = self._offer(request)
        names = catalogue.check_names(request, offer)
        catalogue.check_csr(request.csr, names)
        catalogue.check_org(request, offer)
        if request.dcv_method != DcvMethod.EMAIL:
            return names, {}
        return names, self._check_approvers(request)

    def _check_approvers(self, request: OrderRequest) -> dict[str, list[str]]:
        """Every name's approver, re-checked here because the popup's dropdowns are only a
        convenience; grouped by approver, in the order of the names."""
        approvers: dict[str, list[str]] = {}
        for asked in (request.domain, *request.sans):
            name, approver = (
                catalogue.normalized_domain(asked, allow_wildcard=True),
                request.approver_for(asked),
            )
            if approver not in self.dcv_emails(name):
                raise ProviderRejected(
                    f"{approver or 'No address'} is not an approver address for {name}.",
                    field="approver_email" if asked == request.domain else "san_approvers",
                )
            names = approvers.setdefault(approver, [])
            if name not in names:
                names.append(name)
        return approvers

    def _periods(self) -> tuple[int, ...]:
        return tuple(
            sorted(int(p) for p in self.settings.get("periods") or catalogue.DEFAULT_PERIODS)
        )

    def _offer(self, request: OrderRequest) -> catalogue.Offer:
        offer = catalogue.OFFERS.get(request.product_id)
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
            "link": approval.b64(
                approval.derive(self._ca.link_secret, "round", order_id, data["csr"])[:8]
            ),
        }
        if self.settings.get("auto_approve"):
            return ProviderRef(order_id, approval.approve_all(data, at))
        if data["dcv_method"] == DcvMethod.DNS:
            return ProviderRef(
                order_id, approval.approve_all(data, at), validation=self._dns_tasks(data)
            )
        return ProviderRef(order_id, data)

    def _announce(self, ref: ProviderRef) -> ProviderRef:
        """Tell the world of a new round: the host publishes its records, or the approver gets
        the link."""
        if ref.validation:
            self._publish_dns(ref.validation)
        elif waiting := approval.waiting_for(ref.data):
            self._mail(ref.order_id, ref.data, waiting)
        return ref

    def _dns_tasks(self, data: dict[str, Any]) -> tuple[ValidationTask, ...]:
        """Nobody resolves the value, the host's word is the proof; it names the round."""
        value = approval.b64(approval.derive(self._ca.link_secret, "dns", data["link"])[:24])
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

    def _mail(self, order_id: str, data: dict[str, Any], approvers: list[str]) -> None:
        """One mail to each of ``approvers``, naming the names it approves and its own link."""
        for approver in approvers:
            names = approval.approvers_of(data)[approver]
            payload = f"{order_id}:{data['link']}:{approver}"
            url = self.host.callback_url(approval.sign(self._ca.link_secret, payload))
            body = (
                f"A certificate for {', '.join(data['names'])} was ordered from "
                f"{self._ca.root.subject.rfc4514_string()} (order {order_id}).\n"
                f"You receive this because {approver} may approve certificates for "
                f"{', '.join(names)}.\n\n"
                f"To approve issuance for {', '.join(names)}, open:\n{url}\n\n"
                "If you did not expect this, ignore it: nothing is issued without approval.\n"
                "This is a sandbox test CA; its certificates are not publicly trusted.\n"
            )
            subject = f"Approve the SSL certificate for {names[0]}"
            if not self.host.send_mail(approver, subject, body):
                # False or no answer at all (a panel too busy to answer in time may have sent it)
                raise ProviderUnavailable(
                    "The panel did not confirm the approval e-mail, so nothing was ordered yet; "
                    "it is tried again later (the approver may get the mail twice)."
                )

    def _waiting(self, data: dict[str, Any]) -> ProviderStatus | None:
        """Pending status while approval or the configured delay is outstanding, else None."""
        if waiting := approval.waiting_for(data):
            detail = f"Awaiting approval by {', '.join(waiting)}."
            return ProviderStatus(OrderState.PENDING, "awaiting_approval", detail)
        delay = timedelta(seconds=int(self.settings.get("issue_delay") or 0))
        remaining = datetime.fromisoformat(data["approved_at"]) + delay - self._now()
        if remaining.total_seconds() > 0:
            detail = f"Approved; issuing in {math.ceil(remaining.total_seconds())} s."
            return ProviderStatus(OrderState.PENDING, "approved", detail)
        return None

    def _issue(self, data: dict[str, Any]) -> ProviderStatus:
        """The round's certificate, from now until the longest the table allows today, cut at
        the subscription's end; the first one starts the subscription (module docstring)."""
        at = self._now()
        starts, ends = _when(data, "subscription_starts"), _when(data, "subscription_ends")
        if starts is None or ends is None:
            starts = max(at, _when(data, "renews_until") or at)
            ends = lifetimes.subscription_ends(starts, int(data["period_months"]))
        if at >= ends:
            return _ended(ends)
        cert = keys.sign_csr(
            keys.load_csr(data["csr"]),
            self._ca.key,
            self._ca.cert,
            not_before=at,
            not_after=lifetimes.certificate_ends(at, ends),
        )
        issued = {
            **data,
            "certificate": keys.cert_to_pem(cert),
            "chain": keys.cert_to_pem(self._ca.cert),
            "subscription_starts": starts.isoformat(),
            "subscription_ends": ends.isoformat(),
        }
        return self._issued(issued, changed=issued)

    def _issued(self, data: dict[str, Any], changed: dict[str, Any] | None) -> ProviderStatus:
        """Built from the stored PEMs, so every call reports the one certificate issued (or
        says it is revoked, or the subscription over)."""
        cert = x509.load_pem_x509_certificate(data["certificate"].encode())
        ends = _when(data, "subscription_ends")
        state, raw = OrderState.ISSUED, "issued"
        detail = (
            f"Issued by {cert.issuer.rfc4514_string()}, serial {cert.serial_number:x}; "
            f"trust anchor {self._ca.root.subject.rfc4514_string()}."
        )
        if f"{cert.serial_number:x}" in data.get(REVOKED_SERIALS, ()):
            state, raw = OrderState.REVOKED, "revoked"
            detail = f"Revoked {data['revoked_at']} (reason {data['revocation_reason']}). {detail}"
        elif ends is not None and self._now() >= max(ends, cert.not_valid_after_utc):
            state, raw = OrderState.EXPIRED, "expired"
        return ProviderStatus(
            state,
            raw,
            detail,
            certificate=data["certificate"],
            chain=data["chain"],
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            data=changed,
            subscription_starts=_when(data, "subscription_starts"),
            subscription_ends=ends,
        )
