"""ACME (RFC 8555) adapter: Let's Encrypt, ZeroSSL, Buypass, Google Trust Services or any ACME CA.

ACME sells nothing and validates by http-01 or dns-01 only, so this adapter is mostly about
getting challenges published: through the host panel when it owns the docroot or DNS zone, or
by the user following the :class:`ValidationTask` instructions it returns.

Readings that had to be guessed, kept here so the next reader can check them:

- ``ProviderHost.save_settings`` gets the complete settings (the old ones plus the new account),
  which is right whether the host replaces or merges what it stored.
- The account is registered at one directory URL. When an admin switches the directory, a new
  account (and key) is registered instead of sending the old account to the wrong CA.
- ``ProviderRef.order_id`` is the last path segment of the order URL: the store keeps order ids
  in ``String(100)`` and some CAs' order URLs come close to that. The full URL is in ``data``.
- ``status()`` is polled on a schedule, and the CA checks a challenge once: an answer before
  the record exists fails the order. So ``status()`` answers only the challenges the host
  published itself, and ``resend_approval()`` is read as the user saying "I have published,
  validate now": it publishes through the host what it can and answers every outstanding
  challenge. Which challenges were published and answered is kept in ``data`` (both calls
  return it): the CA's challenge status cannot tell (Pebble shows an answered challenge as
  pending until checked).
- CAs choose the lifetime (Let's Encrypt 90 days, Buypass 180, Pebble five years); products
  say 3 months, the ~90 days most ACME CAs issue. ``max_sans`` is Let's Encrypt's 100 names.
- Pebble reports an order whose authorizations were deactivated as ``deactivated``, a status
  RFC 8555 does not define; that, and an invalid order with a deactivated authorization, is
  reported as cancelled rather than failed.

Replacements, renewal timing, profiles and revocation (issue 17; the RFC 9773 and profile
details are in ``acme_extensions``):

- ACME has no subscription at the CA: every status reports ``subscription_starts``/``ends``
  as ``None``; the subscription is what the host billed. A free replacement
  (:meth:`AcmeProvider.reissue`) is a new order for the new CSR carrying ``replaces``, the ARI
  certID of the certificate it replaces, when the CA offers renewal information.
- :meth:`AcmeProvider.renewal_window` is the CA's suggested window (ARI), asked once per
  Retry-After; :meth:`AcmeProvider.profiles` the directory's ``meta.profiles``, one of which the
  ``profile`` setting may name for every new order.
- :meth:`AcmeProvider.revoke` is ``revokeCert`` signed by the account that ordered the
  certificate, with the RFC 5280 reason code. ACME has no order state for revoked (the order
  stays ``valid``, and Pebble no longer serves the certificate), and an ACME order holds one
  certificate, so the revocation goes into the order's data and :meth:`status` reports revoked
  from it without asking the CA.

An order whose answer was lost (issue 8). ACME orders cost nothing, so a second order for the
same names buys nothing twice; still, the order is found again when the CA can say where it is,
so that its names are not validated twice:

- The newOrder POST is the only create call. A nonce fetched on the way (a HEAD) never orders
  anything, so only a failure of the POST itself is classified as a create call's: a transport
  failure after sending, a 5xx, or a reply without the order's URL (``Location``) leaves the
  outcome unknown; a 429 turned it away before any work. A reply with that URL and a body this
  plugin cannot read still names the order: it is tracked, and :meth:`AcmeProvider.status`
  reads it.
- ``find_order`` reads the account's ``orders`` list (RFC 8555 section 7.1.2.1, pages linked by
  ``Link: rel="next"``). Pebble serves it; Let's Encrypt's Boulder does not: then, as when the
  list shows no match or the CA refuses to show it, the answer is "not there" and the order
  service places a fresh order, which costs nothing at an ACME CA. *Unverified* for CAs other
  than Pebble and Boulder: that the account can be read by POST-as-GET (RFC 8555 section 6.3;
  Pebble refuses the empty update section 7.3 also allows).
- An untracked order in ``pending`` or ``ready`` for exactly the CSR's names is the lost one: an
  ACME order is bound to its names, not to a key (the CSR is sent only at finalization), so any
  such order serves. Of several, the last listed is taken: Pebble lists in creation order, so it
  is the newest, with the longest time left (*unverified* for other CAs; RFC 8555 sets no
  order). The others expire unused, which costs nothing.
- ``adopt_order`` takes the order's URL, since an ACME order can only be read by it, and it must
  be on the directory's host (*unverified* for CAs other than Pebble and Boulder, which serve
  both from one host).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urljoin, urlsplit

import josepy as jose
import requests
import wtforms
from acme import client, crypto_util, errors, messages
from wtforms import validators

from panel_ssl_plugin.keys import (
    InvalidMaterial,
    ari_cert_id,
    cert_to_pem,
    generate_key,
    key_from_pem,
    key_to_pem,
    load_certificates,
    load_csr,
)
from panel_ssl_plugin.providers import acme_challenges, acme_extensions, caa
from panel_ssl_plugin.providers.base import (
    DcvMethod,
    OrderRequest,
    OrderState,
    Placement,
    Product,
    Provider,
    ProviderError,
    ProviderHost,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    RenewalWindow,
    RevocationReason,
    ValidationTask,
)
from panel_ssl_plugin.providers.http import (
    DEFAULT_TIMEOUT,
    json_body,
    make_session,
    retry_after,
    server_error,
    transport_error,
)

log = logging.getLogger(__name__)

USER_AGENT = "panel-ssl-plugin (acme)"
CUSTOM = "custom"

PENDING_STATUSES = frozenset(
    {messages.STATUS_PENDING, messages.STATUS_READY, messages.STATUS_PROCESSING}
)
# An order that may be the lost one: nothing finalized it yet (find_order).
UNFINALIZED_STATUSES = frozenset({messages.STATUS_PENDING, messages.STATUS_READY})
REVOKED_AT = "revoked_at"  # ProviderRef.data: when revoke() revoked the order's certificate


class DirectoryPreset(NamedTuple):
    """A well-known ACME CA; ``eab_required`` tells the admin to fetch EAB credentials first,
    ``caa`` are the CA's CAA issuer names (the order popup's pre-flight checks them)."""

    label: str
    url: str
    eab_required: bool = False
    caa: tuple[str, ...] = ()


DIRECTORY_PRESETS: dict[str, DirectoryPreset] = {
    "letsencrypt": DirectoryPreset(
        "Let's Encrypt",
        "https://acme-v02.api.letsencrypt.org/directory",
        caa=caa.LETS_ENCRYPT,
    ),
    "letsencrypt_staging": DirectoryPreset(
        "Let's Encrypt (staging)",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
        caa=caa.LETS_ENCRYPT,
    ),
    "zerossl": DirectoryPreset("ZeroSSL", "https://acme.zerossl.com/v2/DV90", True, caa.SECTIGO),
    "buypass": DirectoryPreset(
        "Buypass Go SSL", "https://api.buypass.com/acme/directory", caa=caa.BUYPASS
    ),
    "google": DirectoryPreset(
        "Google Trust Services", "https://dv.acme-v02.api.pki.goog/directory", True, caa.GOOGLE
    ),
}


def _required_for_custom(form: wtforms.Form, field: wtforms.Field) -> None:
    """Listed before ``Optional``, which would otherwise end the checks of an empty URL."""
    if form.directory.data == CUSTOM and not field.data:
        raise validators.StopValidation("Enter the directory URL of the ACME CA.")


class AcmeSettingsForm(wtforms.Form):
    """What an admin enters for one ACME account; the account key itself is made on first use."""

    directory = wtforms.SelectField(
        "ACME directory",
        choices=[wtforms.SelectChoice(key, p.label) for key, p in DIRECTORY_PRESETS.items()]
        + [wtforms.SelectChoice(CUSTOM, "Custom URL")],
        default="letsencrypt",
    )
    directory_url = wtforms.URLField(
        "Custom directory URL",
        validators=[_required_for_custom, validators.Optional(), validators.URL(require_tld=False)],
    )
    contact_email = wtforms.EmailField(
        "Contact e-mail",
        validators=[validators.Optional(), validators.Regexp(r"^[^@\s]+@[^@\s]+$")],
        description="The CA writes here about expiring certificates and policy changes.",
    )
    agree_tos = wtforms.BooleanField("I agree to the CA's terms of service")
    eab_kid = wtforms.StringField("EAB key id", description="Only for CAs that require EAB.")
    eab_hmac_key = wtforms.PasswordField("EAB HMAC key")
    ca_bundle = wtforms.StringField(
        "CA bundle path",
        description="A PEM file to trust for the ACME server's own TLS; empty: system trust.",
    )
    profile = wtforms.StringField(
        "Certificate profile",
        validators=[validators.Optional(), validators.Length(max=64)],
        description="One of the profiles the CA's directory offers (Let's Encrypt: classic, "
        "tlsserver, shortlived); empty for the CA's default.",
    )


class AcmeProvider(Provider):
    """Certificates from an ACME CA, validated by http-01 or dns-01."""

    key = "acme"
    name = "ACME (Let's Encrypt, ZeroSSL, Buypass, Google)"
    SettingsForm = AcmeSettingsForm
    secret_fields = ("eab_hmac_key", "account_key")
    DIRECTORY_PRESETS: ClassVar[dict[str, DirectoryPreset]] = DIRECTORY_PRESETS

    def __init__(self, settings: dict[str, Any], host: ProviderHost):
        super().__init__(settings, host)
        self._acme: client.ClientV2 | None = None
        self._last_response: requests.Response | None = None
        self._windows = acme_extensions.WindowCache()

    # --- what the order service asks ------------------------------------------------------------

    def test_connection(self) -> str:
        """Fetch the directory only: it proves URL and trust without registering an account."""
        with self._errors():
            meta = self._client().directory.meta
        parts = [f"Connected to the ACME directory {self._directory_url()}."]
        if meta.website:
            parts.append(f"Website: {meta.website}.")
        if meta.terms_of_service:
            parts.append(f"Terms of service: {meta.terms_of_service}.")
        eab = "required" if meta.external_account_required else "not required"
        parts.append(f"External Account Binding {eab}.")
        account = "registered" if self._has_account() else "registered on the first order"
        parts.append(f"Account {account}.")
        return " ".join(parts)

    def products(self) -> list[Product]:
        """Two kinds of certificate: wildcards get their own product because CAs only accept
        dns-01 for them (RFC 8555 section 7.1.3), so the popup can offer the right methods."""
        common = {"brand": self._ca_label(), "periods": (3,), "max_sans": 99}
        return [
            Product(
                id="dv",
                name="Domain validated (ACME)",
                dcv_methods=(DcvMethod.HTTP, DcvMethod.DNS),
                **common,
            ),
            Product(
                id="dv-wildcard",
                name="Wildcard domain validated (ACME)",
                wildcard=True,
                dcv_methods=(DcvMethod.DNS,),
                **common,
            ),
        ]

    def caa_issuers(self, product: Product) -> tuple[str, ...]:
        """The preset CA's CAA names; a custom directory's CA is not known (not checked)."""
        preset = DIRECTORY_PRESETS.get(self.settings.get("directory", ""))
        return preset.caa if preset else ()

    def dcv_emails(self, domain: str) -> list[str]:
        """Always empty: ACME proves control by http-01 or dns-01, never by approver e-mail."""
        return []

    def place_order(self, request: OrderRequest) -> ProviderRef:
        """Challenges the host publishes are answered at once; the rest come back as tasks."""
        return self._new_order(request.csr, request.dcv_method)

    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """ACME has no renewal call: a renewal is a new order for the same CSR."""
        return self._new_order(request.csr, request.dcv_method)

    def reissue(self, ref: ProviderRef, csr: str, *, replaces: str | None = None) -> ProviderRef:
        """ACME cannot change an order's key: a reissue is a new order for the new CSR, naming
        the certificate it replaces (RFC 9773 section 5) when ``replaces`` is given."""
        return self._new_order(csr, DcvMethod(ref.data["dcv_method"]), replaces=replaces)

    def renewal_window(self, certificate_pem: str) -> RenewalWindow | None:
        """The CA's suggested window for replacing the certificate, or ``None`` when it gives
        none; asked again only after the CA's Retry-After (see ``acme_extensions``)."""
        try:
            cert_id = ari_cert_id(certificate_pem)
            leaf = load_certificates(certificate_pem)[0]
        except InvalidMaterial as error:
            raise ProviderRejected(str(error), field="certificate") from error
        now = self.host.now()
        known, window = self._windows.get(cert_id, now)
        if known or leaf.not_valid_after_utc <= now:
            return window
        with self._errors():
            acme = self._client()
        base = acme_extensions.renewal_info_url(acme.directory)
        if base is None:
            return None
        window, recheck = acme_extensions.fetch_window(
            acme.net.session,
            f"{base}/{cert_id}",
            now=now,
            ca=self._ca_label(),
            timeout=DEFAULT_TIMEOUT,
            verify=self._verify(),
        )
        self._windows.put(cert_id, window, recheck)
        return window

    def profiles(self) -> dict[str, str]:
        """The certificate profiles the CA's directory offers (``meta.profiles``)."""
        with self._errors():
            return acme_extensions.offered_profiles(self._client().directory)

    def revoke(
        self, ref: ProviderRef, certificate_pem: str, reason: RevocationReason
    ) -> dict[str, Any]:
        """``revokeCert`` signed by the account that placed the order; the revocation goes
        into the order's data, where :meth:`status` finds it (module docstring)."""
        try:
            leaf = load_certificates(certificate_pem)[0]
        except InvalidMaterial as error:
            raise ProviderRejected(str(error), field="certificate") from error
        with self._errors():
            self._order_client(ref).revoke(leaf, int(reason))
        return {
            REVOKED_AT: self.host.now().isoformat(),
            "revocation_reason": int(reason),
            "revoked_serial": f"{leaf.serial_number:x}",
        }

    def status(self, ref: ProviderRef) -> ProviderStatus:
        """Move the order on as far as it goes now: answer the challenges the host published,
        finalize once ready (never before: the CA answers 403), and download the certificate
        once valid. Challenges the user publishes wait for :meth:`resend_approval`: this is
        polled on a schedule, and answering before the record exists would fail the order.
        A certificate :meth:`revoke` revoked is reported so without asking (module docstring)."""
        if ref.data.get(REVOKED_AT):
            detail = f"Revoked {ref.data[REVOKED_AT]} (reason {ref.data['revocation_reason']})."
            return ProviderStatus(OrderState.REVOKED, "revoked", detail)
        with self._errors():
            acme = self._order_client(ref)
            order = self._fetch_order(acme, ref)
            if order.status == messages.STATUS_READY:
                order = self._finalize(acme, ref, order)
            if order.status == messages.STATUS_VALID:
                return self._issued(acme, order)
            if order.status == messages.STATUS_PENDING:
                return self._pending(acme, ref, order)
            if order.status in PENDING_STATUSES:
                return ProviderStatus(OrderState.PENDING, order.status.name)
            return self._ended(acme, order)

    def cancel(self, ref: ProviderRef, reason: str = "") -> dict[str, Any] | None:
        """ACME has no way to cancel an order: deactivating its pending authorizations (RFC 8555
        section 7.5.2) makes sure the CA never issues it. An order already validated is only
        issued when :meth:`status` finalizes it, so it is left to expire. ``reason`` has no
        place in ACME."""
        with self._errors():
            acme = self._order_client(ref)
            order = self._fetch_order(acme, ref)
            if order.status in (messages.STATUS_PROCESSING, messages.STATUS_VALID):
                raise ProviderRejected("The certificate is already issued; it can only be revoked.")
            for authz in self._authorizations(acme, order):
                if authz.body.status == messages.STATUS_PENDING:
                    acme.deactivate_authorization(authz)
        return None

    def resend_approval(self, ref: ProviderRef) -> dict[str, Any] | None:
        """The user says "I have published, validate now": ask the host to publish every
        outstanding challenge again, then tell the CA to check each one not answered yet, the
        user's own included. Returns which challenges were published and answered, to be kept
        in ``data``: :meth:`status` must not answer them again (the CA refuses that)."""
        with self._errors():
            acme = self._order_client(ref)
            order = self._fetch_order(acme, ref)
            progress = acme_challenges.Progress.of(ref.data)
            authorizations = self._authorizations(acme, order)
            method = DcvMethod(ref.data["dcv_method"])
            self._advance(acme, authorizations, method, progress, answer_all=True)
        return progress.as_data()

    def find_order(self, placement: Placement) -> ProviderRef | None:
        """The untracked order the lost newOrder made, found in the account's ``orders`` list,
        as the ref :meth:`place_order` would have returned before publishing anything
        (:meth:`status` publishes and answers). A renewal and a reissue are new orders in ACME,
        so every kind is found the same way: by the names of the CSR sent. ``None`` when there
        is no such order, no list, or the CA refuses to show it: a fresh order costs nothing
        (see the module docstring)."""
        if not self._has_account():
            return None  # the lost call would have registered (and saved) an account first
        request = placement.request
        try:
            with self._errors():
                acme = self._account_client()
                for url in reversed(self._listed_orders(acme)):
                    if _order_id(url) not in placement.tracked and self._unfinalized_for(
                        acme, url, request.csr
                    ):
                        return _order_ref(
                            url, acme.net.account.uri, request.csr, request.dcv_method
                        )
        except ProviderRejected as refused:
            log.info("The ACME CA would not list the account's orders: %s", refused)
        return None

    def adopt_order(self, placement: Placement, order_id: str) -> ProviderRef:
        """An ACME order can only be read by its URL, so that is what the admin pastes. It must
        be at this account's CA and for the names of the CSR sent: finalizing an order for
        other names with that CSR would fail for good."""
        url = order_id.strip()
        ca_host = urlsplit(self._directory_url()).netloc
        if not urlsplit(url).scheme:
            raise ProviderRejected(
                f"Paste the order's URL (https://{ca_host}/...), not its id: an ACME CA finds "
                "an order by its URL only."
            )
        if urlsplit(url).netloc != ca_host or not self._has_account():
            raise ProviderRejected(f"That is not an order of this account at {ca_host}.")
        request = placement.request
        ref = _order_ref(url, self.settings["account_url"], request.csr, request.dcv_method)
        with self._errors():
            order = self._fetch_order(self._order_client(ref), ref)
        if not _same_names(order, request.csr):
            raise ProviderRejected("That order is for other names than this certificate's.")
        return ref

    # --- orders ---------------------------------------------------------------------------------

    def _new_order(
        self, csr: str, method: DcvMethod, *, replaces: str | None = None
    ) -> ProviderRef:
        """Place an order and start its validation, in three stretches so the order service can
        tell whether anything was ordered: until the newOrder POST (CSR, directory, account,
        profile) nothing was, and failures are the usual ones; the POST is the create call
        (``creates``); once the CA named the order's URL, nothing may lose it
        (:meth:`_start_validation`)."""
        if method not in acme_challenges.CHALLENGE_TYPES:
            raise ProviderRejected("ACME validates by HTTP or DNS only.", field="dcv_method")
        identifiers = _identifiers(csr)
        with self._errors():
            acme = self._account_client()
            new_order_url = acme.directory["newOrder"]
        order = acme_extensions.NewOrder(
            identifiers=identifiers,
            profile=acme_extensions.checked_profile(
                acme.directory, self.settings.get("profile") or "", self._ca_label()
            ),
            replaces=replaces if acme_extensions.renewal_info_url(acme.directory) else None,
        )
        with self._errors(creates=True):
            reply = self._post(acme, new_order_url, order)
            url = reply.headers["Location"]  # missing: the order's fate is unknown
        return self._start_validation(
            acme, _order_ref(url, acme.net.account.uri, csr, method), reply
        )

    def _start_validation(
        self, acme: client.ClientV2, ref: ProviderRef, reply: requests.Response
    ) -> ProviderRef:
        """Publish through the host what it can and answer it, on an order the CA has placed.
        Nothing here may lose the order: whatever fails half-way (the CA, the host, a reply),
        the ref goes back with what was published and answered so far, and :meth:`status`
        carries on from there, as it does for every pending order. Only a CA offering no
        challenge of the chosen method refuses: that order can never be validated, and left
        alone it expires, costing nothing."""
        progress = acme_challenges.Progress()
        tasks: list[ValidationTask] = []
        try:
            authorizations = self._authorizations(acme, messages.Order.from_json(reply.json()))
            method = DcvMethod(ref.data["dcv_method"])
            tasks = self._advance(acme, authorizations, method, progress, answer_all=False)
        except acme_challenges.MethodNotOffered:
            raise
        except Exception:
            log.warning("ACME order %s placed; status checks carry on", ref.order_id, exc_info=True)
        return replace(ref, data={**ref.data, **progress.as_data()}, validation=tuple(tasks))

    def _listed_orders(self, acme: client.ClientV2) -> list[str]:
        """The URLs in the account's ``orders`` list, every page; none when the CA offers none."""
        url = json_body(self._post(acme, acme.net.account.uri), self._ca_label()).get("orders")
        urls: list[str] = []
        pages: set[str] = set()
        while url and url not in pages:
            pages.add(url)
            page = self._post(acme, url)
            urls += json_body(page, self._ca_label())["orders"]
            url = urljoin(url, page.links["next"]["url"]) if "next" in page.links else None
        return urls

    def _unfinalized_for(self, acme: client.ClientV2, url: str, csr: str) -> bool:
        """Whether the order at ``url`` could be the lost order for ``csr``."""
        order = messages.Order.from_json(self._post(acme, url).json())
        return order.status in UNFINALIZED_STATUSES and _same_names(order, csr)

    def _fetch_order(self, acme: client.ClientV2, ref: ProviderRef) -> messages.Order:
        return messages.Order.from_json(self._post(acme, ref.data["order_url"]).json())

    def _authorizations(
        self, acme: client.ClientV2, order: messages.Order
    ) -> list[messages.AuthorizationResource]:
        return [
            messages.AuthorizationResource(
                body=messages.Authorization.from_json(self._post(acme, url).json()),
                uri=url,
            )
            for url in order.authorizations
        ]

    def _finalize(
        self, acme: client.ClientV2, ref: ProviderRef, order: messages.Order
    ) -> messages.Order:
        resource = messages.OrderResource(
            body=order, uri=ref.data["order_url"], csr_pem=ref.data["csr"].encode()
        )
        return acme.begin_finalization(resource).body

    def _issued(self, acme: client.ClientV2, order: messages.Order) -> ProviderStatus:
        leaf, *chain = load_certificates(self._post(acme, order.certificate).text)
        return ProviderStatus(
            OrderState.ISSUED,
            order.status.name,
            certificate=cert_to_pem(leaf),
            chain="".join(cert_to_pem(cert) for cert in chain),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    def _pending(
        self, acme: client.ClientV2, ref: ProviderRef, order: messages.Order
    ) -> ProviderStatus:
        progress = acme_challenges.Progress.of(ref.data)
        authorizations = self._authorizations(acme, order)
        method = DcvMethod(ref.data["dcv_method"])
        tasks = self._advance(acme, authorizations, method, progress, answer_all=False)
        changed = progress != acme_challenges.Progress.of(ref.data)
        return ProviderStatus(
            OrderState.PENDING,
            order.status.name,
            detail=acme_challenges.waiting_for(tasks),
            validation=tuple(tasks),
            data={**ref.data, **progress.as_data()} if changed else None,
        )

    def _ended(self, acme: client.ClientV2, order: messages.Order) -> ProviderStatus:
        """Why the CA gave up: a deactivated authorization means we cancelled; otherwise the
        first failed challenge's error is the CA's own explanation."""
        authorizations = self._authorizations(acme, order)
        statuses = {order.status, *(authz.body.status for authz in authorizations)}
        if messages.STATUS_DEACTIVATED in statuses:
            return ProviderStatus(
                OrderState.CANCELLED, order.status.name, "Validation was cancelled."
            )
        reasons = [
            f"{acme_challenges.shown_name(authz)}: {challb.error.detail or challb.error.typ}"
            for authz in authorizations
            for challb in authz.body.challenges
            if challb.error is not None
        ]
        if not reasons and order.error is not None:
            reasons.append(order.error.detail or order.error.typ)
        detail = "; ".join(reasons) or "The CA marked the order invalid without a reason."
        return ProviderStatus(OrderState.FAILED, order.status.name, detail)

    # --- challenges -----------------------------------------------------------------------------

    def _advance(
        self,
        acme: client.ClientV2,
        authorizations: list[messages.AuthorizationResource],
        method: DcvMethod,
        progress: acme_challenges.Progress,
        *,
        answer_all: bool,
    ) -> list[ValidationTask]:
        """Publish through the host what it can and tell the CA to check it. Challenges the
        user publishes by hand are answered only when ``answer_all`` says the user is done
        (:meth:`resend_approval`), which also asks the host to publish everything again: the
        CA checks a challenge once, and an answer before the record exists fails the order."""
        tasks = []
        for challb, task in acme_challenges.outstanding(acme, authorizations, method):
            republish = answer_all or challb.uri not in progress.published
            if republish and self._publish(challb, task):
                progress.published.add(challb.uri)
            if challb.uri not in progress.answered and (
                answer_all or challb.uri in progress.published
            ):
                acme.answer_challenge(challb, challb.response(acme.net.key))
                progress.answered.add(challb.uri)
            answered = challb.uri in progress.answered
            tasks.append(
                replace(
                    task,
                    status="processing" if answered else "pending",
                    published=challb.uri in progress.published,
                )
            )
        return tasks

    def _publish(self, challb: messages.ChallengeBody, task: ValidationTask) -> bool:
        if task.method is DcvMethod.HTTP:
            return self.host.publish_http_challenge(
                task.domain, challb.chall.encode("token"), task.value
            )
        return self.host.publish_dns_record(
            task.domain, task.location, task.record_type, task.value
        )

    # --- account and connection -----------------------------------------------------------------

    def _directory_url(self) -> str:
        preset = DIRECTORY_PRESETS.get(self.settings.get("directory", ""))
        url = preset.url if preset else self.settings.get("directory_url", "")
        if not url:
            raise ProviderError("Choose an ACME directory in the provider settings.")
        return url

    def _ca_label(self) -> str:
        """The CA's name, for products and messages: a custom CA goes by its host name."""
        preset = DIRECTORY_PRESETS.get(self.settings.get("directory", ""))
        if preset:
            return preset.label
        return urlsplit(self.settings.get("directory_url") or "").hostname or "ACME"

    def _has_account(self) -> bool:
        return bool(
            self.settings.get("account_key")
            and self.settings.get("account_url")
            and self.settings.get("account_directory") == self._directory_url()
        )

    def _verify(self) -> bool | str:
        path = self.settings.get("ca_bundle") or ""
        if path and not os.path.isfile(path):
            raise ProviderError(f"The CA bundle {path} does not exist; fix the ACME settings.")
        return path or True

    def _client(self) -> client.ClientV2:
        """One client per provider instance: the directory is fetched once, nonces are reused,
        and its session is the plugin's shared kind (``make_session``)."""
        if self._acme is None:
            pem = self.settings["account_key"] if self._has_account() else None
            account_key = jose.JWKEC(key=key_from_pem(pem) if pem else generate_key("ec256"))
            net = client.ClientNetwork(
                account_key,
                alg=jose.ES256,
                verify_ssl=self._verify(),
                user_agent=USER_AGENT,
                timeout=DEFAULT_TIMEOUT,
            )
            net.session = make_session(USER_AGENT)
            net.session.hooks["response"].append(self._remember_response)
            directory = client.ClientV2.get_directory(self._directory_url(), net)
            self._acme = client.ClientV2(directory, net)
        return self._acme

    def _remember_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """acme's errors drop the HTTP reply; its status and Retry-After are kept from here."""
        self._last_response = response

    def _account_client(self) -> client.ClientV2:
        """The client signed by our account, registering the account on first use."""
        acme = self._client()
        if self._has_account():
            acme.net.account = _account(self.settings["account_url"])
        else:
            self._register(acme)
        return acme

    def _order_client(self, ref: ProviderRef) -> client.ClientV2:
        """Orders belong to the account that placed them; never register one to read an order."""
        acme = self._client()
        acme.net.account = _account(ref.data["account_url"])
        return acme

    def _register(self, acme: client.ClientV2) -> None:
        if not self.settings.get("agree_tos"):
            terms = acme.directory.meta.terms_of_service or "on the CA's website"
            raise ProviderRejected(
                'Tick "I agree to the CA\'s terms of service" in the ACME settings: the CA '
                f"opens no account without it. The terms are {terms}.",
                field="agree_tos",
            )
        registration = messages.NewRegistration.from_data(
            email=self.settings.get("contact_email") or None,
            terms_of_service_agreed=True,
            external_account_binding=self._eab(acme),
        )
        account = acme.new_account(registration)
        self.settings = {
            **self.settings,
            "account_key": key_to_pem(acme.net.key.key),
            "account_url": account.uri,
            "account_directory": self._directory_url(),
        }
        self.host.save_settings(self.settings)

    def _eab(self, acme: client.ClientV2) -> dict[str, Any] | None:
        kid = self.settings.get("eab_kid") or ""
        hmac_key = self.settings.get("eab_hmac_key") or ""
        if not (kid and hmac_key):
            if acme.external_account_required():
                raise ProviderRejected(
                    "This CA requires External Account Binding: enter the EAB key id and HMAC "
                    "key from your account on the CA's website.",
                    field="eab_kid",
                )
            return None
        try:
            return messages.ExternalAccountBinding.from_data(
                acme.net.key.public_key(), kid, hmac_key, acme.directory
            )
        except ValueError as error:
            raise ProviderRejected(
                "The EAB HMAC key is not valid base64url; copy it again from the CA.",
                field="eab_hmac_key",
            ) from error

    def _post(
        self, acme: client.ClientV2, url: str, body: jose.JSONDeSerializable | None = None
    ) -> requests.Response:
        """A signed POST; without a body it is a read (RFC 8555 section 6.3, POST-as-GET)."""
        return acme.net.post(url, body, new_nonce_url=acme.directory["newNonce"])

    # --- errors ---------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, *, creates: bool = False) -> Iterator[None]:
        """The one place where what requests, acme and josepy raise becomes the plugin's errors,
        so the order service can tell "try later" from "the CA said no" and, for the newOrder
        POST (``creates``), "never sent" from "sent, outcome unknown" (providers/http.py
        decides which). A nonce fetched on the way (a HEAD) orders nothing, so a create call's
        failure counts as one only when it concerns a POST, and only this block's replies count."""
        if creates:
            self._last_response = None
        try:
            yield
        except messages.Error as error:
            raise self._problem(error, creates and self._replied_to_post()) from error
        except (
            errors.Error,
            jose.DeserializationError,
            requests.JSONDecodeError,
            ValueError,
            KeyError,
        ) as error:
            raise self._unreadable(creates and self._replied_to_post()) from error
        except requests.exceptions.SSLError as error:
            raise ProviderError(
                f"The TLS certificate of {self._ca_label()} is not trusted; check the CA bundle "
                "setting."
            ) from error
        except requests.RequestException as error:
            sent = creates and _is_post(error.request)
            raise transport_error(error, self._ca_label(), creates=sent) from error

    def _problem(self, error: messages.Error, sent: bool) -> ProviderError:
        """An RFC 7807 problem document: the CA's detail is what the user reads. A rate limit
        turns a request away before any work, so it is never an unknown outcome."""
        detail = error.detail or error.description or error.typ
        if error.code == "rateLimited":
            return ProviderUnavailable(f"The CA is rate limiting: {detail}", self._asked_delay())
        field = error.identifier.value if error.identifier else None
        return self._status_fault(sent) or ProviderRejected(detail, error.code or error.typ, field)

    def _unreadable(self, sent: bool) -> ProviderError:
        """A reply this plugin cannot read: after the order was sent, it may have been placed."""
        if fault := self._status_fault(sent):
            return fault
        if sent:
            return ProviderOutcomeUnknown(
                f"{self._ca_label()} answered the order with a reply this plugin cannot read; "
                "it may have been placed, so it is looked up before anything is sent again."
            )
        return ProviderError(f"{self._ca_label()} sent a reply this plugin cannot read.")

    def _status_fault(self, sent: bool) -> ProviderError | None:
        """What the last reply's HTTP status says, when it says "try later" or "fault": a 429
        turned the request away before any work; a 5xx is the CA's or a gateway's."""
        status = self._last_response.status_code if self._last_response is not None else 0
        if status == 429:
            return ProviderUnavailable("The CA is rate limiting requests.", self._asked_delay())
        if status < 500:
            return None
        fault = server_error(status, self._ca_label(), creates=sent)
        if isinstance(fault, ProviderUnavailable):
            fault.retry_after = self._asked_delay()
        return fault

    def _replied_to_post(self) -> bool:
        """Whether the last reply answered a POST (the create call) rather than a HEAD."""
        return _is_post(getattr(self._last_response, "request", None))

    def _asked_delay(self) -> float | None:
        """Seconds the CA's Retry-After asked for, if it said."""
        return retry_after(self._last_response) if self._last_response is not None else None


def _is_post(request: requests.PreparedRequest | None) -> bool:
    return request is not None and request.method == "POST"


def _order_ref(order_url: str, account_url: str, csr: str, method: DcvMethod) -> ProviderRef:
    """How the plugin tracks an ACME order, nothing published or answered yet. The order id is
    the URL's last segment (see the module docstring); ``data`` carries the URL itself."""
    data = {
        "order_url": order_url,
        "account_url": account_url,
        "csr": csr,
        "dcv_method": method.value,
        **acme_challenges.Progress().as_data(),
    }
    return ProviderRef(_order_id(order_url), data)


def _order_id(order_url: str) -> str:
    return order_url.rstrip("/").rsplit("/", 1)[-1]


def _identifiers(csr: str) -> list[messages.Identifier]:
    """The names a CSR asks for, as ACME identifiers: its common name and SANs, DNS names and
    IP addresses, read the way the ``acme`` library reads them for its own new orders."""
    try:
        request = load_csr(csr)
    except InvalidMaterial as error:
        raise ProviderRejected(str(error), field="csr") from error
    names, addresses = crypto_util.get_identifiers_from_x509(request.subject, request.extensions)
    return [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name) for name in names] + [
        messages.Identifier(typ=messages.IDENTIFIER_IP, value=address) for address in addresses
    ]


def _same_names(order: messages.Order, csr: str) -> bool:
    """Whether an order is for exactly the names of ``csr``, in any order and case."""

    def names(identifiers: list[messages.Identifier]) -> set[tuple[str, str]]:
        return {(identifier.typ.name, identifier.value.lower()) for identifier in identifiers}

    return names(order.identifiers) == names(_identifiers(csr))


def _account(url: str) -> messages.RegistrationResource:
    """Signing with a key id needs only the account URL; its body is never sent."""
    return messages.RegistrationResource(uri=url, body=messages.Registration())
