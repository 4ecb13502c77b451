"""Sectigo (formerly Comodo CA) reseller API: order, track, reissue and refund SSL certificates.

Every call is a form POST to ``<base URL>/!<Name>`` (``<base URL>/download/CollectSSL`` for
collection) carrying ``loginName`` and ``loginPassword``; we ask for URL-encoded replies
(``responseFormat=1``). A reply's ``errorCode`` below zero is a refusal with ``errorMessage`` and
``errorItem``; zero or above is success. Sectigo's reseller API has no product list, no dedicated
renew call and no idempotency key other than ``uniqueValue``; this adapter fills those gaps as
written below.

Readings of the documentation this adapter (and tests/providers/sectigo_sim.py) rely on. Those
marked *unverified* could not be confirmed against Sectigo's own pages:

* Success is ``errorCode >= 0`` for every call. Documented for the ``Collect*`` calls (0 being
  processed, 1 available, 2 attached) and for ``AutoApplySSL`` (1 "successful request, payment
  required", kept in :attr:`ProviderRef.data` as ``paymentRequired``). *Unverified* for the other
  calls, which are only known to fail with negative codes.
* ``responseFormat=1`` is sent to every call, including ``GetDCVEmailAddressList`` and
  ``CollectSSL`` (*unverified* for those two). Values that repeat (``level2_email``,
  ``caCertificate``) come as repeated keys.
* The DCV e-mail list is ``whois_email``, then ``level2_email``, then ``level3_email`` values,
  duplicates dropped, first one kept.
* Catalogue: there is no product list call, so :data:`CATALOGUE` is a built-in list of Sectigo
  product codes (from Sectigo's AutoApplyOrder product table) with *illustrative* default USD
  prices, not Sectigo's. Add-ons are price lines only: Sectigo bills extra names by counting
  ``domainNames``, so no add-on parameter is sent.
* Periods are sent as ``days`` (365 per 12 months), which Sectigo prefers over ``years``.
* ``serverSoftware``: only Apache/ModSSL (2) and Microsoft IIS 5.x and later (14) are confirmed
  ids; everything else is sent as -1 (Other), which Sectigo says is acceptable for any order
  since the value only guides its support staff. See :data:`SERVER_SOFTWARE`.
* ``uniqueValue`` is up to 20 alphanumerics, so it is the first 20 hex digits of the SHA-256 of
  the order's idempotency key (stable across retries, different per order). *Unverified*:
  Sectigo answers a repeated ``uniqueValue`` with the order it already placed; the simulator does.
* HTTP and CNAME DCV use the CSR hashes (MD5 and SHA-256 of the CSR's DER, upper-case hex):
  ``http://<domain>/.well-known/pki-validation/<MD5>.txt`` holding the lines SHA-256,
  ``sectigo.com`` and uniqueValue; CNAME ``_<MD5>.<domain>`` pointing to
  ``<SHA-256 first 32>.<SHA-256 last 32>.<uniqueValue>.sectigo.com``. A wildcard name is
  validated on the name without ``*.``. The order service offers both to the host
  (``publish_http_file``, ``publish_dns_record``) and shows the user what the host could not
  publish.
* The order's contact becomes the applicant representative (``appRep*``) and
  ``contactEmailAddress``; its address, city and postal code are also the organization's address
  (*unverified* field names ``streetAddress1``, ``localityName``, ``postalCode``).
* ``isCustomerValidated=N``, as Sectigo advises unless told otherwise.
* ``certificateStatus`` values (with ``showExtStatus=Y``) are read case-insensitively as in
  :data:`STATES`; an unknown one stays pending so nothing is shown issued that is not.
* ``caCertificate`` may come in any order; the chain is sorted leaf's issuer first, up to the
  root, and keeps the root when Sectigo sends one.
* Renewal is a new ``AutoApplySSL`` with the same CSR and details. A reissue
  (``AutoReplaceSSL``) repeats the order's ``dcvMethod``, ``dcvEmailAddress`` and
  ``uniqueValue`` (*unverified* that it takes them). ``cancel`` asks for the status
  first: a certificate already issued is revoked (``AutoRevokeSSL``, reason ``superseded``
  unless given), anything else refunded (``AutoRefund``).
* Error codes -9 to -13 are read as: -9 CSR not Base64, -10 CSR undecodable, -11 unsupported key
  algorithm, -12 bad CSR signature, -13 unsupported key size (*unverified* one by one). -14 (unknown
  error) and -42 (call limit reached) are treated as "try again later" (ProviderUnavailable).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import wtforms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from wtforms import validators

from panel_ssl_plugin import keys
from panel_ssl_plugin.providers import http
from panel_ssl_plugin.providers.base import (
    Addon,
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

log = logging.getLogger(__name__)

PROVIDER = "Sectigo"

BASE_URL_PRESETS: dict[str, str] = {
    "Sectigo (secure.trust-provider.com)": "https://secure.trust-provider.com/products",
    "Comodo, older host (secure.comodo.net)": "https://secure.comodo.net/products",
}

SERVER_SOFTWARE: dict[str, int] = {"apache": 2, "apache_modssl": 2, "iis": 14}
"""base.SERVER_TYPES keys with a confirmed Sectigo id; the rest are sent as -1 (Other)."""

DCV_METHODS: dict[DcvMethod, str] = {
    DcvMethod.EMAIL: "EMAIL",
    DcvMethod.HTTP: "HTTP_CSR_HASH",
    DcvMethod.DNS: "CNAME_CSR_HASH",
}

STATES: dict[str, OrderState] = {
    "not yet issued": OrderState.PENDING,
    "issued": OrderState.ISSUED,
    "rejected": OrderState.FAILED,
    "revoked": OrderState.REVOKED,
    "expired": OrderState.EXPIRED,
    "refunded": OrderState.CANCELLED,
}

RETRY_LATER_CODES = frozenset({-14, -42})

ERROR_ADVICE: dict[int, str] = {
    -1: "The request was not sent over HTTPS: use an https:// base URL in the provider settings.",
    -2: "Sectigo does not know the argument {item}: report this to the plugin's maintainers.",
    -3: "Sectigo needs a value for {item}: fill it in and submit again.",
    -4: "Sectigo does not accept the value of {item}: correct it and submit again.",
    -5: "The CSR's common name is a wildcard but the product is not: choose a wildcard product "
    "or a CSR without '*.'.",
    -6: "The product is a wildcard certificate but the CSR's common name is not: use '*.' and "
    "the domain as the common name.",
    -7: "The country is not a two-letter ISO 3166 code (for example GB, US, DE): correct it.",
    -9: "The CSR is not valid Base64: paste the whole CSR including its BEGIN and END lines, or "
    "let the panel generate one.",
    -10: "The CSR cannot be decoded: paste it again or let the panel generate one.",
    -11: "The CSR's key algorithm is not supported: generate an RSA or ECDSA key and a new CSR.",
    -12: "The CSR's signature does not verify: generate a new CSR.",
    -13: "The CSR's key size is not accepted: use RSA 2048 bits or more, or ECDSA P-256/P-384.",
    -14: "Sectigo reported an unknown error: try again later.",
    -15: "The Sectigo reseller account has insufficient credit: top it up, then submit again.",
    -16: "Sectigo denied permission: check the login name and password in the provider "
    "settings, and that the account may use the API and this product.",
    -17: "Sectigo received a GET instead of a POST: report this to the plugin's maintainers.",
    -18: "This order has already been refunded at Sectigo.",
    -20: "This order has already been rejected or cancelled at Sectigo.",
    -21: "This certificate has already been revoked at Sectigo.",
    -26: "Sectigo is issuing this certificate right now: check the status again in a minute.",
    -40: "The CSR's key is known to be compromised: generate a new private key and CSR.",
    -42: "Sectigo's call limit is reached: try again later.",
}


def _product(
    code: str, name: str, validation: str, prices: tuple[str, str], **extra: Any
) -> Product:
    """A catalogue entry: every Sectigo product here is sold for 12 or 24 months."""
    return Product(
        id=code,
        name=name,
        brand="Sectigo",
        validation=validation,
        periods=(12, 24),
        prices={12: prices[0], 24: prices[1]},
        org_required=validation != "dv",
        **extra,
    )


ALL_DCV = (DcvMethod.EMAIL, DcvMethod.HTTP, DcvMethod.DNS)

CATALOGUE: tuple[Product, ...] = (
    _product("287", "PositiveSSL DV", "dv", ("USD 8.95", "USD 17.90"), dcv_methods=ALL_DCV),
    _product(
        "289",
        "PositiveSSL Wildcard DV",
        "dv",
        ("USD 79.00", "USD 158.00"),
        wildcard=True,
        # Sectigo no longer validates wildcard names by HTTP file.
        dcv_methods=(DcvMethod.EMAIL, DcvMethod.DNS),
    ),
    _product(
        "279",
        "PositiveSSL Multi-Domain DV (3 names included)",
        "dv",
        ("USD 29.00", "USD 58.00"),
        max_sans=249,
        dcv_methods=ALL_DCV,
        addons=(
            Addon(
                "extra_san",
                "Additional domain name",
                "USD 9.00 per name per year",
                "Names beyond the three included; Sectigo bills each name ordered.",
            ),
        ),
    ),
    _product("7", "InstantSSL OV", "ov", ("USD 49.00", "USD 98.00"), dcv_methods=ALL_DCV),
    _product("556", "PositiveSSL EV", "ev", ("USD 99.00", "USD 198.00"), dcv_methods=ALL_DCV),
)


class SectigoSettingsForm(wtforms.Form):
    """What an admin enters for a Sectigo reseller account."""

    base_url = wtforms.URLField(
        "API base URL",
        [validators.InputRequired(), validators.URL(require_tld=False)],
        default=BASE_URL_PRESETS["Sectigo (secure.trust-provider.com)"],
        description="One of the presets, or another address (a test server).",
    )
    login_name = wtforms.StringField("Login name", [validators.InputRequired()])
    login_password = wtforms.PasswordField("Login password", [validators.InputRequired()])
    test_mode = wtforms.BooleanField(
        "Test mode", description="Orders are sent with test=Y: not billed, untrusted chain."
    )
    timeout = wtforms.FloatField(
        "Request timeout (seconds)",
        [validators.InputRequired(), validators.NumberRange(min=0.1, max=300)],
        default=30.0,
    )


@dataclasses.dataclass(frozen=True)
class Reply:
    """A URL-encoded Sectigo reply; keys may repeat."""

    code: int
    fields: dict[str, list[str]]

    def get(self, name: str) -> str:
        values = self.fields.get(name)
        return values[-1] if values else ""

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def parse_reply(text: str) -> Reply:
    """Read a reply; anything that is not ``key=value&...`` with an integer errorCode is garbage."""
    try:
        fields = parse_qs(text.strip(), keep_blank_values=True, strict_parsing=True)
        return Reply(int(fields["errorCode"][-1]), fields)
    except (KeyError, ValueError) as error:
        raise ProviderError(f"{PROVIDER} sent a reply that could not be read.") from error


def refusal(reply: Reply) -> ProviderError:
    """The error for a negative errorCode, phrased so a reseller knows what to change."""
    code, item, message = reply.code, reply.get("errorItem"), reply.get("errorMessage")
    advice = ERROR_ADVICE.get(code, "Sectigo refused the request.").format(item=item or "a field")
    text = f"{advice} (Sectigo error {code}: {message or 'no message'})"
    if code in RETRY_LATER_CODES:
        return ProviderUnavailable(text)
    return ProviderRejected(text, code=str(code), field=item or None)


def unique_value(idempotency_key: str) -> str:
    """Sectigo's ``uniqueValue`` for an order: 20 alphanumerics, the same on every retry."""
    if not idempotency_key:
        return ""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def csr_hashes(csr_pem: str) -> tuple[str, str]:
    """MD5 and SHA-256 (upper-case hex) of the CSR's DER: the DER, since PEM wrapping varies."""
    der = keys.load_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    md5 = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return md5.upper(), hashlib.sha256(der).hexdigest().upper()


def validation_domains(domain: str, sans: tuple[str, ...] | list[str]) -> list[str]:
    """Names to prove control of, once each; a wildcard is proven on its base name."""
    return list(dict.fromkeys(name.removeprefix("*.") for name in (domain, *sans)))


def csr_hash_tasks(
    method: DcvMethod, csr_pem: str, domains: list[str], unique: str
) -> list[ValidationTask]:
    """The HTTP files or CNAME records Sectigo looks for (see the module docstring)."""
    md5, sha256 = csr_hashes(csr_pem)
    if method is DcvMethod.HTTP:
        content = "\n".join(filter(None, (sha256, "sectigo.com", unique)))
        return [
            ValidationTask(d, method, f"http://{d}/.well-known/pki-validation/{md5}.txt", content)
            for d in domains
        ]
    target = ".".join(filter(None, (sha256[:32], sha256[32:], unique, "sectigo.com")))
    return [ValidationTask(d, method, f"_{md5}.{d}", target, "CNAME") for d in domains]


def sort_chain(leaf: x509.Certificate, pems: list[str]) -> list[x509.Certificate]:
    """Order CA certificates from the leaf's issuer up to the root, whatever order they came in.

    Certificates that are not on the path are kept, after it, rather than silently dropped.
    """
    remaining = keys.load_certificates("\n".join(pems))
    path: list[x509.Certificate] = []
    current = leaf
    while (parent := _issuer_of(current, remaining)) is not None:
        path.append(parent)
        remaining.remove(parent)
        current = parent
    return path + remaining


def _issuer_of(
    cert: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    if cert.issuer == cert.subject:
        return None
    return next((c for c in candidates if c.subject == cert.issuer), None)


def _issued_parts(certificate: str | None, reply: Reply) -> dict[str, Any]:
    """Chain (sorted) and validity of a collected certificate; unreadable ones are the
    provider's fault, so they become ProviderError rather than a crash."""
    try:
        leaf = keys.load_certificates(certificate)[0] if certificate else None
        ca_pems = reply.all("caCertificate")
        chain = sort_chain(leaf, ca_pems) if leaf and ca_pems else []
        return {
            "chain": "".join(keys.cert_to_pem(c) for c in chain) or None,
            "not_before": _timestamp(reply.get("notBefore")),
            "not_after": _timestamp(reply.get("notAfter")),
        }
    except ValueError as error:
        raise ProviderError(f"{PROVIDER} sent a certificate that could not be read.") from error


def _timestamp(value: str) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _contact_params(contact: Contact | None) -> dict[str, str]:
    if contact is None:
        return {}
    return {
        "appRepForename": contact.first_name,
        "appRepSurname": contact.last_name,
        "appRepEmailAddress": contact.email,
        "appRepTelephone": contact.phone,
        "appRepTitle": contact.title,
        "contactEmailAddress": contact.email,
        "streetAddress1": contact.address,
        "localityName": contact.city,
        "postalCode": contact.postal_code,
    }


class SectigoProvider(Provider):
    """Adapter for a Sectigo (Comodo) reseller account."""

    key = "sectigo"
    name = "Sectigo (Comodo) reseller"
    SettingsForm = SectigoSettingsForm
    secret_fields = ("login_password",)
    BASE_URL_PRESETS: ClassVar[dict[str, str]] = BASE_URL_PRESETS

    def __init__(self, settings: dict[str, Any], host: ProviderHost):
        super().__init__(settings, host)
        self.session = http.make_session()

    # --- the wire ------------------------------------------------------------------------------

    def _post(self, endpoint: str, params: dict[str, str]) -> Reply:
        """One form POST; empty values are left out so optional fields stay optional."""
        form = {
            "loginName": self.settings["login_name"],
            "loginPassword": self.settings["login_password"],
            "responseFormat": "1",
            **{k: v for k, v in params.items() if v},
        }
        response = http.call(
            self.session,
            "POST",
            f"{self.settings['base_url'].rstrip('/')}/{endpoint}",
            provider=PROVIDER,
            timeout=float(self.settings.get("timeout") or 30.0),
            data=form,
        )
        reply = parse_reply(response.text)
        if reply.code < 0:
            log.info("%s %s refused: errorCode %s", PROVIDER, endpoint, reply.code)
            raise refusal(reply)
        return reply

    # --- the interface -------------------------------------------------------------------------

    def test_connection(self) -> str:
        """Ask for a DCV list: unlike products(), that reaches Sectigo and checks the login."""
        self.dcv_emails("sectigo.com")
        return f"Connected to {PROVIDER} as {self.settings['login_name']}."

    def products(self) -> list[Product]:
        """The built-in catalogue: Sectigo's API cannot list an account's products."""
        return list(CATALOGUE)

    def dcv_emails(self, domain: str) -> list[str]:
        reply = self._post("!GetDCVEmailAddressList", {"domainName": domain})
        found = [
            *reply.all("whois_email"),
            *reply.all("level2_email"),
            *reply.all("level3_email"),
        ]
        return list(dict.fromkeys(email for email in found if email))

    def place_order(self, request: OrderRequest) -> ProviderRef:
        unique = unique_value(request.idempotency_key)
        names = list(dict.fromkeys((request.domain, *request.sans)))
        params = {
            "product": request.product_id,
            "days": str(round(request.period_months * 365 / 12)),
            "csr": request.csr,
            "serverSoftware": str(SERVER_SOFTWARE.get(request.server_type, -1)),
            "dcvMethod": DCV_METHODS[request.dcv_method],
            "dcvEmailAddress": (
                (request.approver_email or "") if request.dcv_method is DcvMethod.EMAIL else ""
            ),
            "domainNames": ",".join(names),
            "primaryDomainName": request.domain,
            "isCustomerValidated": "N",
            "uniqueValue": unique,
            "showCertificateID": "Y",
            "organizationName": request.organization,
            "organizationalUnitName": request.unit,
            "stateOrProvinceName": request.state,
            "countryName": request.country,
            **_contact_params(request.contact),
            "test": "Y" if self.settings.get("test_mode") else "",
        }
        reply = self._post("!AutoApplySSL", params)
        data = {
            "certificateID": reply.get("certificateID"),
            "totalCost": reply.get("totalCost"),
            "expectedDeliveryTime": reply.get("expectedDeliveryTime"),
            "paymentRequired": reply.code == 1,
            "uniqueValue": unique,
            "dcvMethod": request.dcv_method.value,
            "dcvEmailAddress": params["dcvEmailAddress"],
            "domainNames": names,
        }
        return ProviderRef(reply.get("orderNumber"), data, self._tasks(request.csr, data))

    def status(self, ref: ProviderRef) -> ProviderStatus:
        reply = self._post(
            "download/CollectSSL",
            {
                "orderNumber": ref.order_id,
                "queryType": "1",
                "showExtStatus": "Y",
                "responseType": "3",
                "responseEncoding": "0",
            },
        )
        raw = reply.get("certificateStatus")
        state = STATES.get(raw.lower(), OrderState.PENDING)
        certificate = reply.get("certificate") or None
        if state is OrderState.ISSUED and certificate is None:
            state = OrderState.PENDING  # issued, but not collectable yet
        return ProviderStatus(
            state=state,
            raw_status=raw,
            detail=self._detail(reply),
            certificate=certificate,
            **_issued_parts(certificate, reply),
        )

    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """A new AutoApplySSL: Sectigo has no renew call.

        The same CSR under the previous order's key would be a replay that Sectigo answers with
        the previous order, so that is refused rather than reported as a renewal.
        """
        ref = self.place_order(request)
        if ref.order_id == previous.order_id:
            raise ProviderError(
                "The renewal was sent with the previous order's idempotency key, so Sectigo "
                "returned the previous order: renewals need a key of their own."
            )
        return dataclasses.replace(ref, data={**ref.data, "renewalOf": previous.order_id})

    def reissue(self, ref: ProviderRef, csr: str) -> ProviderRef:
        """AutoReplaceSSL with the order's DCV choice; the new CSR means new hash records."""
        reply = self._post(
            "!AutoReplaceSSL",
            {
                "orderNumber": ref.order_id,
                "csr": csr,
                "dcvMethod": DCV_METHODS[DcvMethod(ref.data["dcvMethod"])],
                "dcvEmailAddress": ref.data.get("dcvEmailAddress", ""),
                "uniqueValue": ref.data.get("uniqueValue", ""),
            },
        )
        data = {
            **ref.data,
            "certificateID": reply.get("certificateID") or ref.data.get("certificateID"),
        }
        return ProviderRef(ref.order_id, data, self._tasks(csr, data))

    def cancel(self, ref: ProviderRef, reason: str = "") -> None:
        """Refund what is not issued yet; revoke what is (a refund cannot recall a certificate)."""
        if self.status(ref).state is OrderState.ISSUED:
            self._post(
                "!AutoRevokeSSL",
                {"orderNumber": ref.order_id, "revocationReason": reason or "superseded"},
            )
        else:
            self._post("!AutoRefund", {"orderNumber": ref.order_id})

    def resend_approval(self, ref: ProviderRef) -> None:
        if ref.data.get("dcvMethod") != DcvMethod.EMAIL.value:
            raise ProviderRejected(
                "This order is validated by HTTP file or CNAME record, not e-mail: publish the "
                "record shown with the order instead."
            )
        self._post("!ResendDCVEmail", {"orderNumber": ref.order_id})

    # --- helpers -------------------------------------------------------------------------------

    def _tasks(self, csr: str, data: dict[str, Any]) -> tuple[ValidationTask, ...]:
        """What the user (or the host) must do to prove control."""
        method = DcvMethod(data["dcvMethod"])
        domains = validation_domains(data["domainNames"][0], data["domainNames"][1:])
        if method is DcvMethod.EMAIL:
            return (ValidationTask(domains[0], method, data["dcvEmailAddress"]),)
        return tuple(csr_hash_tasks(method, csr, domains, data["uniqueValue"]))

    @staticmethod
    def _detail(reply: Reply) -> str:
        parts = {
            "Validation": reply.get("validationStatus"),
            "DCV": reply.get("dcvStatus"),
            "Message": reply.get("errorMessage"),
        }
        return "; ".join(f"{label}: {value}" for label, value in parts.items() if value)
