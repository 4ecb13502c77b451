"""Sectigo (formerly Comodo CA) reseller API: order, track, reissue and refund SSL certificates.

Every call is a form POST to ``<base URL>/!<Name>`` (``<base URL>/download/CollectSSL`` for
collection) carrying ``loginName`` and ``loginPassword``; we ask for URL-encoded replies
(``responseFormat=1``). A reply's ``errorCode`` below zero is a refusal with ``errorMessage`` and
``errorItem``; zero or above is success. Sectigo's reseller API has no product list, no dedicated
renew call and no idempotency key; this adapter fills those gaps as written below.

Readings of the documentation this adapter (and tests/providers/sectigo_sim.py) rely on. Those
marked *unverified* could not be confirmed against Sectigo's own pages:

* Success is ``errorCode >= 0`` for every call. Documented for the ``Collect*`` calls (0 being
  processed, 1 available, 2 attached) and for ``AutoApplySSL`` (1 "successful request, payment
  required", kept in :attr:`ProviderRef.data` as ``paymentRequired``). *Unverified* for the other
  calls, which are only known to fail with negative codes.
* ``responseFormat=1`` is sent to every call, including ``GetDCVEmailAddressList``,
  ``CollectSSL`` and ``WebHostReport`` (*unverified* for those three). Values that repeat
  (``level2_email``, ``caCertificate``) come as repeated keys.
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
  the order's idempotency key (different per order, renewal and reissue). It is no idempotency
  key: Sectigo's request-token page (docs.sectigo.com/sps/domain-control-validation/request-token)
  makes it the third part of the DCV request token (CSR hash, ``sectigo.com``, uniqueValue), says
  a token must not be reused across orders, and that when the same CSR comes again with an
  identical token the original order fails. So an ``AutoApplySSL`` is never sent twice with the
  same uniqueValue unless :meth:`SectigoProvider.find_order` proved the first one absent; the
  simulator places a second order for a replay and fails the first, as that page warns.
* ``AutoApplySSL`` and ``AutoReplaceSSL`` create something the reseller pays for, so they are
  sent as such (``http.call(..., creates=True)``): once the request may have reached Sectigo, a
  timeout, a reset, a 5xx, a reply that cannot be read, an ``AutoApplySSL`` success without
  ``orderNumber`` and error -14 ("unknown error": it may have been done) are
  ProviderOutcomeUnknown. Error -42 (call limit reached) is read as turned away before any work
  (*unverified*), so it stays ProviderUnavailable, as -14 is on every other call.
* HTTP and CNAME DCV use the CSR hashes (MD5 and SHA-256 of the CSR's DER, upper-case hex):
  ``http://<domain>/.well-known/pki-validation/<MD5>.txt`` holding the lines SHA-256,
  ``sectigo.com`` and uniqueValue; CNAME ``_<MD5>.<domain>`` pointing to
  ``<SHA-256 first 32>.<SHA-256 last 32>.<uniqueValue>.sectigo.com``. A wildcard name is
  validated on the name without ``*.``. The order service offers both to the host
  (``publish_http_file``, ``publish_dns_record``) and shows the user what the host could not
  publish.
* The order's contact becomes the applicant representative (``appRep*``) and
  ``contactEmailAddress``. An OV/EV order's organization is ``organizationName``,
  ``organizationalUnitName``, ``streetAddress1``, ``localityName``, ``stateOrProvinceName``,
  ``postalCode`` and ``countryName`` (public Sectigo clients send these names; *unverified*
  against the AutoApplySSL page, which was not readable here). AutoApplySSL has no organization
  telephone this adapter could confirm (*unverified*), so the organization's phone stands in for
  the representative's (``appRepTelephone``) when the contact gave none.
* Approvers: an order of one name sends ``dcvEmailAddress``; an e-mail validated order of
  several names sends ``dcvEmailAddresses``, one approver per name of ``domainNames`` in its
  order. AutoApplyOrder's page documents both so (one for single-domain certificates, the list
  for multi-domain ones) and calls AutoApplyOrder backward-compatible with AutoApplySSL's
  parameters; *unverified* for AutoApplySSL and AutoReplaceSSL themselves. Sectigo validates
  each name of a multi-domain order on its own, so the ref keeps one e-mail task per name.
* ``isCustomerValidated=N``, as Sectigo advises unless told otherwise.
* ``certificateStatus`` values (with ``showExtStatus=Y``) are read case-insensitively as in
  :data:`STATES`; an unknown one stays pending so nothing is shown issued that is not.
* ``caCertificate`` may come in any order; the chain is sorted leaf's issuer first, up to the
  root, and keeps the root when Sectigo sends one.
* Renewal is a new ``AutoApplySSL`` with the same CSR and details (and its own uniqueValue). A
  reissue (``AutoReplaceSSL``) keeps the order number and repeats the order's ``dcvMethod``,
  approvers and ``uniqueValue`` (*unverified* that it takes them; the new CSR makes the token
  new). Its reply's ``certificateID`` is the replacement's (CollectSSL's page counts
  AutoReplaceSSL among the calls that return one); the ids it replaced are kept in
  ``replacedCertificateIDs``. ``cancel`` asks for the status first: a certificate already
  issued is revoked (``AutoRevokeSSL``, reason ``superseded`` unless given), anything else
  refunded (``AutoRefund``).
* A create call whose answer was lost is looked up with ``!WebHostReport``
  (docs.sectigo.com/sps/web-host-report/request): ``notBefore``/``notAfter`` are UNIX times
  bounding when the orders were placed (the page also calls them the issue time; placement is
  the reading taken, *unverified*, since such an order is not issued yet), ``fqdn`` takes ``%``
  and ``_`` wildcards, ``orderNumber`` a comma list, ``firstResultNo``/``lastResultNo`` a page
  (1-based, *unverified*). The reply's fields are not on Sectigo's pages; they are read as a
  public PHP client reads them (*unverified*): ``noOfResults``, then per order N
  ``N_orderNumber``, ``N_orderStatus``, ``N_dateTime`` (UNIX) and per certificate M of the
  order ``N_M_certificateID``, ``N_M_domain``, ``N_M_status``, with an ``errorCode`` like every
  call. Whether ``noOfResults`` counts the whole result or the page, and where N starts, is
  *unverified* too: every ``N_orderNumber`` present is read, and pages are asked for until one
  comes back short with ``noOfResults`` orders read, which ends the listing on either reading.
* A lost order or renewal is the one order for the request's domain placed from
  :data:`CLOCK_SLACK` before it was sent until :data:`CLOCK_SLACK` after now that the plugin does
  not track; none means it was not placed, several cannot be told apart (a person decides). A
  lost reissue is a certificate of the order that is neither the one it replaced nor one
  replaced before: *unverified* that the report lists the replaced certificates beside the
  replacement; the simulator does. An account that may not use the report makes the outcome
  unknown rather than absent.
* Subscriptions: CollectSSL's changelog (v1.21, January 2021) added ``productTermStartDate``
  and ``productTermEndDate``, the term the order paid for, beside the certificate's
  ``notBefore``/``notAfter``. They are read as UNIX times like those (*unverified*: a public Go
  client parses WebHostReport's per-certificate ``N_M_productTermStartDate`` the same way as
  its ``notBefore``); absent, the subscription is ``None`` and the order service estimates it
  from the first certificate. A free replacement inside the term is ``AutoReplaceSSL`` (a
  reissue); ACME's ``replaces`` has no place in Sectigo's API.
* Revocation (:meth:`SectigoProvider.revoke`) is ``!AutoRevokeSSL`` with the certificate's
  ``serialNumber`` (hexadecimal; the request page accepts it in place of ``orderNumber``, and
  it names the one certificate of an order that holds replaced ones too), ``codeReason`` (the
  RFC 5280 code: 0, 1, 3, 4 or 5, exactly :class:`RevocationReason`) and ``revocationReason``,
  a comment for the reseller's reference. CollectSSL then says "Revoked".
* Error codes -9 to -13 are read as: -9 CSR not Base64, -10 CSR undecodable, -11 unsupported key
  algorithm, -12 bad CSR signature, -13 unsupported key size (*unverified* one by one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs

import wtforms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from wtforms import validators

from panel_ssl_plugin import keys
from panel_ssl_plugin.providers import caa, http
from panel_ssl_plugin.providers.base import (
    Addon,
    DcvMethod,
    OrderRequest,
    OrderState,
    Placement,
    PlacementKind,
    Product,
    Provider,
    ProviderError,
    ProviderHost,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    RevocationReason,
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
MAYBE_DONE_CODES = frozenset({-14})
"""Refusals that, on a create call, may come after the work was done: the outcome is unknown."""

LOOKED_UP = "it may have been carried out, so it is looked up before anything is sent again."

CLOCK_SLACK = timedelta(minutes=5)
"""How far Sectigo's clock may be from ours when a lost order is looked up by when it was placed."""

REPORT_PAGE = 50
"""Orders asked for per WebHostReport call."""

ORDER_FIELD = re.compile(r"(\d+)_orderNumber")
CERTIFICATE_FIELD = re.compile(r"(\d+)_(\d+)_certificateID")

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


def parse_reply(text: str, *, creates: bool = False) -> Reply:
    """Read a reply; anything that is not ``key=value&...`` with an integer errorCode is garbage,
    which after a create call leaves its outcome unknown."""
    try:
        fields = parse_qs(text.strip(), keep_blank_values=True, strict_parsing=True)
        return Reply(int(fields["errorCode"][-1]), fields)
    except (KeyError, ValueError) as error:
        unreadable = f"{PROVIDER} sent a reply that could not be read"
        if creates:
            raise ProviderOutcomeUnknown(f"{unreadable}; {LOOKED_UP}") from error
        raise ProviderError(f"{unreadable}.") from error


def refusal(reply: Reply, *, creates: bool = False) -> ProviderError:
    """The error for a negative errorCode, phrased so a reseller knows what to change."""
    code, item, message = reply.code, reply.get("errorItem"), reply.get("errorMessage")
    said = f"(Sectigo error {code}: {message or 'no message'})"
    if creates and code in MAYBE_DONE_CODES:
        return ProviderOutcomeUnknown(f"Sectigo reported an unknown error; {LOOKED_UP} {said}")
    advice = ERROR_ADVICE.get(code, "Sectigo refused the request.").format(item=item or "a field")
    text = f"{advice} {said}"
    if code in RETRY_LATER_CODES:
        return ProviderUnavailable(text)
    return ProviderRejected(text, code=str(code), field=item or None)


@dataclasses.dataclass(frozen=True)
class ReportedOrder:
    """One order of a WebHostReport: its number and its certificates' ids."""

    number: str
    certificate_ids: tuple[str, ...]


def reported_orders(reply: Reply) -> list[ReportedOrder]:
    """The orders of one report page, whatever N they are numbered from (see the docstring)."""
    certificates: dict[str, list[tuple[int, str]]] = {}
    for name in reply.fields:
        if match := CERTIFICATE_FIELD.fullmatch(name):
            certificates.setdefault(match[1], []).append((int(match[2]), reply.get(name)))
    return [
        ReportedOrder(
            reply.get(name),
            tuple(cid for _, cid in sorted(certificates.get(match[1], [])) if cid),
        )
        for name in reply.fields
        if (match := ORDER_FIELD.fullmatch(name)) and reply.get(name)
    ]


def result_count(reply: Reply) -> int:
    """A report's ``noOfResults``. Without it the report is unreadable, not empty: an order
    the plugin cannot see must never be taken for an order that does not exist."""
    try:
        return int(reply.get("noOfResults"))
    except ValueError as error:
        raise ProviderError(f"{PROVIDER} sent an order report that could not be read.") from error


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
            "subscription_starts": _timestamp(reply.get("productTermStartDate")),
            "subscription_ends": _timestamp(reply.get("productTermEndDate")),
        }
    except ValueError as error:
        raise ProviderError(f"{PROVIDER} sent a certificate that could not be read.") from error


def _timestamp(value: str) -> datetime | None:
    """A UNIX time of a reply; one that is not a number is not a date (``None``)."""
    return datetime.fromtimestamp(int(value), UTC) if value.strip().isdigit() else None


def _unix(when: datetime) -> str:
    return str(int(when.timestamp()))


def _names(request: OrderRequest) -> list[str]:
    return list(dict.fromkeys((request.domain, *request.sans)))


def _approvals(request: OrderRequest) -> dict[str, Any]:
    """Who approves the order's names, as its ref keeps them: ``dcvEmailAddress`` the domain's
    approver and, for an e-mail validated order of several names, ``dcvEmailAddresses`` one
    per name of ``domainNames``, in its order (see the module docstring)."""
    approvers = [request.approver_for(name) for name in _names(request)]
    data: dict[str, Any] = {"dcvEmailAddress": approvers[0]}
    if len(approvers) > 1 and all(approvers):
        data["dcvEmailAddresses"] = approvers
    return data


def _approver_params(data: dict[str, Any]) -> dict[str, str]:
    """Sectigo's arguments for the approvers in ``data``: the list for several names, the one
    address for one."""
    if data.get("dcvEmailAddresses"):
        return {"dcvEmailAddresses": ",".join(data["dcvEmailAddresses"])}
    return {"dcvEmailAddress": data.get("dcvEmailAddress", "")}


def approval_tasks(data: dict[str, Any]) -> tuple[ValidationTask, ...]:
    """One e-mail task per name to validate, naming its approver; a ref kept before approvers
    were chosen per name has the domain's alone."""
    approvers = data.get("dcvEmailAddresses") or [data["dcvEmailAddress"]]
    tasks: dict[str, str] = {}
    for name, approver in zip(data["domainNames"], approvers, strict=False):
        tasks.setdefault(name.removeprefix("*."), approver)
    return tuple(ValidationTask(d, DcvMethod.EMAIL, approver) for d, approver in tasks.items())


def _known_certificates(ref: ProviderRef) -> list[str]:
    """Every certificateID the plugin has seen on the order: the current one and those it
    replaced."""
    ids = [*ref.data.get("replacedCertificateIDs", ()), ref.data.get("certificateID", "")]
    return [cid for cid in dict.fromkeys(ids) if cid]


def _followed(placement: Placement) -> ProviderRef:
    """The order a renewal or reissue placement follows."""
    if placement.previous is None:
        raise ValueError(f"A {placement.kind} placement names the order it follows.")
    return placement.previous


def _organization_params(request: OrderRequest) -> dict[str, str]:
    """The organization, its address for the products that validate it (module docstring)."""
    address = request.organization_address
    return {
        "organizationName": request.organization,
        "organizationalUnitName": request.unit,
        "streetAddress1": address.street,
        "localityName": address.city,
        "postalCode": address.postal_code,
        "stateOrProvinceName": request.state,
        "countryName": request.country,
    }


def _contact_params(request: OrderRequest) -> dict[str, str]:
    contact = request.contact
    if contact is None:
        return {}
    return {
        "appRepForename": contact.first_name,
        "appRepSurname": contact.last_name,
        "appRepEmailAddress": contact.email,
        "appRepTelephone": contact.phone or request.organization_address.phone,
        "appRepTitle": contact.title,
        "contactEmailAddress": contact.email,
    }


class SectigoProvider(Provider):
    """Adapter for a Sectigo (Comodo) reseller account."""

    key = "sectigo"
    name = "Sectigo (Comodo) reseller"
    SettingsForm = SectigoSettingsForm
    secret_fields = ("login_password",)
    caa_identifiers: ClassVar[dict[str, tuple[str, ...]]] = {"*": caa.SECTIGO}
    BASE_URL_PRESETS: ClassVar[dict[str, str]] = BASE_URL_PRESETS

    def __init__(self, settings: dict[str, Any], host: ProviderHost):
        super().__init__(settings, host)
        self.session = http.make_session()

    # --- the wire ------------------------------------------------------------------------------

    def _post(self, endpoint: str, params: dict[str, str], *, creates: bool = False) -> Reply:
        """One form POST; empty values are left out so optional fields stay optional.

        ``creates`` marks the calls that create something the reseller pays for: what goes
        wrong after they may have reached Sectigo leaves their outcome unknown.
        """
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
            creates=creates,
            timeout=float(self.settings.get("timeout") or 30.0),
            data=form,
        )
        reply = parse_reply(response.text, creates=creates)
        if reply.code < 0:
            log.info("%s %s refused: errorCode %s", PROVIDER, endpoint, reply.code)
            raise refusal(reply, creates=creates)
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
        return self._apply(request, renewal_of=None)

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
        """A new AutoApplySSL with the same CSR and details: Sectigo has no renew call."""
        return self._apply(request, renewal_of=previous)

    def reissue(self, ref: ProviderRef, csr: str, *, replaces: str | None = None) -> ProviderRef:
        """AutoReplaceSSL with the order's DCV choice; the new CSR means new hash records.
        Free inside the product term; ``replaces`` is ACME's (module docstring)."""
        reply = self._post(
            "!AutoReplaceSSL",
            {
                "orderNumber": ref.order_id,
                "csr": csr,
                "dcvMethod": DCV_METHODS[DcvMethod(ref.data["dcvMethod"])],
                **_approver_params(ref.data),
                "uniqueValue": ref.data.get("uniqueValue", ""),
            },
            creates=True,
        )
        return self._replacement_ref(ref, ref.order_id, csr, reply.get("certificateID"))

    def find_order(self, placement: Placement) -> ProviderRef | None:
        """Look a create call whose answer was lost up in Sectigo's order report: replaying it
        is no lookup, since a repeated uniqueValue makes a second order (module docstring)."""
        if placement.kind is PlacementKind.REISSUE:
            return self._find_replacement(placement)
        return self._find_new_order(placement)

    def adopt_order(self, placement: Placement, order_id: str) -> ProviderRef:
        """The ref the create call would have returned for ``order_id``, built by the same code;
        its certificateID stays unknown, since nothing the plugin asks later needs it."""
        order_id = order_id.strip()
        if placement.kind is not PlacementKind.REISSUE:
            return self._order_ref(placement.request, order_id, placement.previous)
        replaced = _followed(placement)
        if order_id != replaced.order_id:
            raise ProviderRejected(
                f"A Sectigo reissue keeps the order number: this one is {replaced.order_id}, "
                f"not {order_id}."
            )
        return self._replacement_ref(replaced, order_id, placement.request.csr, "")

    def cancel(self, ref: ProviderRef, reason: str = "") -> None:
        """Refund what is not issued yet; revoke what is (a refund cannot recall a certificate)."""
        if self.status(ref).state is OrderState.ISSUED:
            self._post(
                "!AutoRevokeSSL",
                {"orderNumber": ref.order_id, "revocationReason": reason or "superseded"},
            )
        else:
            self._post("!AutoRefund", {"orderNumber": ref.order_id})

    def revoke(
        self, ref: ProviderRef, certificate_pem: str, reason: RevocationReason
    ) -> dict[str, Any] | None:
        """AutoRevokeSSL for exactly this certificate, by its serial (module docstring)."""
        try:
            serial = keys.load_certificates(certificate_pem)[0].serial_number
        except keys.InvalidMaterial as error:
            raise ProviderRejected(str(error), field="certificate") from error
        comment = f"{reason.name.replace('_', ' ').lower()} (order {ref.order_id})"
        self._post(
            "!AutoRevokeSSL",
            {
                "serialNumber": f"{serial:X}",
                "codeReason": str(int(reason)),
                "revocationReason": comment,
            },
        )
        return None

    def resend_approval(self, ref: ProviderRef) -> None:
        if ref.data.get("dcvMethod") != DcvMethod.EMAIL.value:
            raise ProviderRejected(
                "This order is validated by HTTP file or CNAME record, not e-mail: publish the "
                "record shown with the order instead."
            )
        self._post("!ResendDCVEmail", {"orderNumber": ref.order_id})

    # --- placing and finding orders -----------------------------------------------------------

    def _apply(self, request: OrderRequest, renewal_of: ProviderRef | None) -> ProviderRef:
        """One AutoApplySSL: a new order, or the renewal of ``renewal_of``."""
        params = {
            "product": request.product_id,
            "days": str(round(request.period_months * 365 / 12)),
            "csr": request.csr,
            "serverSoftware": str(SERVER_SOFTWARE.get(request.server_type, -1)),
            "dcvMethod": DCV_METHODS[request.dcv_method],
            **_approver_params(_approvals(request)),
            "domainNames": ",".join(_names(request)),
            "primaryDomainName": request.domain,
            "isCustomerValidated": "N",
            "uniqueValue": unique_value(request.idempotency_key),
            "showCertificateID": "Y",
            **_organization_params(request),
            **_contact_params(request),
            "test": "Y" if self.settings.get("test_mode") else "",
        }
        reply = self._post("!AutoApplySSL", params, creates=True)
        if not reply.get("orderNumber"):
            raise ProviderOutcomeUnknown(
                f"{PROVIDER} accepted the order without giving its number; {LOOKED_UP}"
            )
        return self._order_ref(
            request,
            reply.get("orderNumber"),
            renewal_of,
            certificateID=reply.get("certificateID"),
            totalCost=reply.get("totalCost"),
            expectedDeliveryTime=reply.get("expectedDeliveryTime"),
            paymentRequired=reply.code == 1,
        )

    def _order_ref(
        self,
        request: OrderRequest,
        order_id: str,
        renewal_of: ProviderRef | None,
        **reply: Any,
    ) -> ProviderRef:
        """The ref of an AutoApplySSL order, whether its reply came back, was found in the
        report or was typed in by an admin: ``reply`` holds what is known of the reply."""
        data = {
            **reply,
            "uniqueValue": unique_value(request.idempotency_key),
            "dcvMethod": request.dcv_method.value,
            **_approvals(request),
            "domainNames": _names(request),
        }
        if renewal_of is not None:
            data["renewalOf"] = renewal_of.order_id
        return ProviderRef(order_id, data, self._tasks(request.csr, data))

    def _replacement_ref(
        self, replaced: ProviderRef, order_id: str, csr: str, certificate_id: str
    ) -> ProviderRef:
        """The ref of a reissue: the order's data with the replacement's certificateID (empty
        when unknown) and every certificateID seen before it, so that a lost reissue can be
        told from earlier ones."""
        data = {
            **replaced.data,
            "certificateID": certificate_id,
            "replacedCertificateIDs": _known_certificates(replaced),
        }
        return ProviderRef(order_id, data, self._tasks(csr, data))

    def _find_new_order(self, placement: Placement) -> ProviderRef | None:
        """The one untracked order for the request's domain placed around and after the lost
        call (see the module docstring)."""
        request = placement.request
        reported = self._report(
            {
                "fqdn": request.domain,
                "notBefore": _unix(placement.sent_at - CLOCK_SLACK),
                "notAfter": _unix(self.host.now() + CLOCK_SLACK),
            }
        )
        candidates = [o for o in reported if o.number not in placement.tracked]
        if not candidates:
            return None
        if len(candidates) > 1:
            numbers = ", ".join(o.number for o in candidates)
            raise ProviderOutcomeUnknown(
                f"{PROVIDER} lists {len(candidates)} orders for {request.domain} placed since "
                f"this one was sent that the panel does not track ({numbers}); any of them may "
                "be this order. Check them at Sectigo, then link the right one or say none is."
            )
        (found,) = candidates
        certificate_id = next(iter(found.certificate_ids), "")
        return self._order_ref(
            request, found.number, placement.previous, certificateID=certificate_id
        )

    def _find_replacement(self, placement: Placement) -> ProviderRef | None:
        """The certificate AutoReplaceSSL added to the order, if it did (module docstring)."""
        replaced = _followed(placement)
        if not replaced.data.get("certificateID"):
            raise ProviderOutcomeUnknown(
                f"The certificate that order {replaced.order_id} had before this reissue is not "
                "known to the panel, so a replacement cannot be told from it; check the order "
                "at Sectigo, then say whether it was reissued."
            )
        query = {"orderNumber": replaced.order_id}
        reported = [o for o in self._report(query) if o.number == replaced.order_id]
        if not reported:
            raise ProviderOutcomeUnknown(
                f"{PROVIDER}'s order report does not list order {replaced.order_id}; check it "
                "at Sectigo, then say whether it was reissued."
            )
        known = _known_certificates(replaced)
        new = list(dict.fromkeys(c for o in reported for c in o.certificate_ids if c not in known))
        if not new:
            return None
        if len(new) > 1:
            raise ProviderOutcomeUnknown(
                f"Order {replaced.order_id} has {len(new)} certificates the panel has not seen "
                f"({', '.join(new)}); check which one is this reissue at Sectigo."
            )
        return self._replacement_ref(replaced, replaced.order_id, placement.request.csr, new[0])

    def _report(self, query: dict[str, str]) -> list[ReportedOrder]:
        """Every order of the report for ``query``, page after page, until a page comes back
        short with ``noOfResults`` read (true on either reading of it). A page with nothing
        new before then means the report cannot be followed: the outcome stays unknown."""
        orders: dict[str, ReportedOrder] = {}
        read = 0
        while True:
            page, count = self._report_page(
                {**query, "firstResultNo": str(read + 1), "lastResultNo": str(read + REPORT_PAGE)}
            )
            read += len(page)
            fresh = [o for o in page if o.number not in orders]
            orders.update((o.number, o) for o in page)
            if len(page) < REPORT_PAGE and read >= count:
                return list(orders.values())
            if not fresh:
                raise ProviderOutcomeUnknown(
                    f"{PROVIDER}'s order report counted {count} orders but gave {len(orders)}, "
                    "so whether the order exists is not known; check the account at Sectigo."
                )

    def _report_page(self, query: dict[str, str]) -> tuple[list[ReportedOrder], int]:
        """One page of the report and its ``noOfResults``. A refusal or a report that cannot
        be read leaves the question open (for a person), never answers it with 'absent'."""
        try:
            reply = self._post("!WebHostReport", query)
            return reported_orders(reply), result_count(reply)
        except ProviderUnavailable:
            raise
        except ProviderError as error:
            raise ProviderOutcomeUnknown(
                f"{PROVIDER} could not report on its orders, so whether the order exists is "
                f"not known: {error}"
            ) from error

    # --- helpers -------------------------------------------------------------------------------

    def _tasks(self, csr: str, data: dict[str, Any]) -> tuple[ValidationTask, ...]:
        """What the user (or the host) must do to prove control."""
        method = DcvMethod(data["dcvMethod"])
        if method is DcvMethod.EMAIL:
            return approval_tasks(data)
        domains = validation_domains(data["domainNames"][0], data["domainNames"][1:])
        return tuple(csr_hash_tasks(method, csr, domains, data["uniqueValue"]))

    @staticmethod
    def _detail(reply: Reply) -> str:
        parts = {
            "Validation": reply.get("validationStatus"),
            "DCV": reply.get("dcvStatus"),
            "Message": reply.get("errorMessage"),
        }
        return "; ".join(f"{label}: {value}" for label, value in parts.items() if value)
