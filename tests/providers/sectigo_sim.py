"""A simulator of Sectigo's reseller API, served over real HTTP on loopback for the adapter's tests.

It speaks the wire format the adapter does (form POSTs to ``/products/!<Name>`` and
``/products/download/CollectSSL``, URL-encoded replies, negative ``errorCode`` on failure) and
keeps to the readings listed in ``panel_ssl_plugin/providers/sectigo.py``. Where the simulator had
to choose a behaviour of its own, it is:

* Arguments are checked like the real API: an argument it does not know is -2, a missing one -3,
  a bad value -4 (``errorItem`` names it), wrong credentials -16.
* An OV/EV product needs the organization's name, country, street, city and postal code (-3
  for the first one missing); the docs call the address "conditional", and this simulator reads
  the condition as "the product validates the organization" (*unverified*).
* An e-mail validated order of one name takes ``dcvEmailAddress``; of several names,
  ``dcvEmailAddresses``, one approver per name of ``domainNames`` in its order, each one the
  DCV list offers for that name (the adapter's reading, *unverified* for AutoApplySSL).
* Every order keeps the arguments it was placed with (:attr:`Order.received`), for tests that
  ask what reached Sectigo.
* Every ``AutoApplySSL`` places a new order. Sectigo's request-token page warns that the same
  CSR with an identical DCV token (CSR hash, ``sectigo.com``, ``uniqueValue``) makes the
  original order fail, so an earlier order with the same CSR and uniqueValue that is not issued
  yet becomes "Rejected": a blind replay shows up as two orders, the first one failed.
* Orders stay "Not Yet Issued" until the test calls :meth:`SectigoSim.approve`, which issues a
  certificate from a test root → intermediate; CollectSSL lists ``caCertificate`` root first
  (the reverse of what a server needs) so the adapter has to sort it.
* A reissue gives the order a new certificateID, keeps the replaced one as a certificate item
  of the order ("Replaced" in the report), and puts the order back to "Not Yet Issued" until
  approved again.
* ``!WebHostReport`` lists the matching orders in the order they were placed (``N_dateTime`` is
  when; a test may move :attr:`Order.placed_at`), ``noOfResults`` counting all of them, N
  counted from ``firstResultNo``, and per certificate item M ``N_M_certificateID``,
  ``N_M_domain`` (the primary name) and ``N_M_status``. ``fqdn`` matches any name of the order.
  A page holds at most :attr:`SectigoSim.report_page_limit` orders, as a server may cap it.

* Time is :attr:`SectigoSim.clock`, a callable a test replaces with a clock it moves
  (tests/providers/clock.py). An order's first approval starts its product term, lasting the
  ``days`` ordered; CollectSSL reports it as ``productTermStartDate``/``productTermEndDate``
  (UNIX times, the adapter's reading). Each approval issues a certificate from now for the
  longest ``lifetimes.max_certificate_days`` allows today, cut at the term's end. A reissue is
  refused once the term has ended (-4 on ``orderNumber``, a reading of the simulator's own), and
  an issued order whose term has ended is "Expired".
* ``!AutoRevokeSSL`` takes ``orderNumber``, ``certificateID`` or ``serialNumber`` (hex, any
  case) and a ``codeReason`` of 0, 1, 3, 4 or 5 (-4 otherwise). Revoking the order's current
  certificate makes the order "Revoked"; one it replaced is only marked revoked; an order not
  issued yet is "Rejected", as Sectigo's page says.
* ``created`` counts what was placed, by kind: ``order`` (every ``AutoApplySSL``, renewals
  included: Sectigo renews by a new order) and ``reissue`` (``AutoReplaceSSL``).

A test steers it through :meth:`SectigoSim.inject` (:class:`Fault`: an HTTP status, a garbage
body, a late reply; faults after the work is done come from ``tests/providers/faults.py``),
``insufficient_credits``, ``report_page_limit``, ``whois`` and the ``approve``/``reject``/
``expire`` methods, and asks :meth:`SectigoSim.count` how often an endpoint or an order was
called.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

import pycountry
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from panel_ssl_plugin import keys, lifetimes

LOGIN_NAME = "reseller"
LOGIN_PASSWORD = "correct horse battery staple"
PREFIX = "/products/"


@dataclass(frozen=True)
class SimProduct:
    wildcard: bool
    max_names: int
    cost: str
    org_required: bool = False


PRODUCTS: dict[str, SimProduct] = {
    "287": SimProduct(False, 1, "8.95"),
    "289": SimProduct(True, 1, "79.00"),
    "279": SimProduct(False, 250, "29.00"),
    "7": SimProduct(False, 1, "49.00", org_required=True),
    "556": SimProduct(False, 1, "99.00", org_required=True),
}
VALID_DAYS = frozenset({"365", "730"})
DCV_METHODS = frozenset({"EMAIL", "HTTP_CSR_HASH", "CNAME_CSR_HASH"})
MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
NOT_YET_ISSUED = "Not Yet Issued"


class SimError(Exception):
    """A refusal, sent as ``errorCode``/``errorMessage``/``errorItem``."""

    def __init__(self, code: int, message: str, item: str = ""):
        super().__init__(message)
        self.code, self.message, self.item = code, message, item


@dataclass(frozen=True)
class Fault:
    """What the next request gets instead of (or besides) a normal reply.

    ``status``/``body`` replace the reply; ``delay`` only makes the normal reply late, after the
    request has been processed, as when a reply is lost on the way back.
    """

    status: int = 200
    body: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Order:
    number: str
    certificate_ids: list[str]
    """Every certificate item of the order, the current one last."""
    csr: x509.CertificateSigningRequest
    product: str
    days: int
    names: list[str]
    dcv_method: str
    dcv_email: str
    unique_value: str
    status: str = NOT_YET_ISSUED
    certificate: x509.Certificate | None = None
    dcv_emails_sent: int = 1
    placed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    received: dict[str, str] = field(default_factory=dict)
    """The AutoApplySSL arguments the order was placed with, credentials left out."""
    term_starts: datetime | None = None
    term_ends: datetime | None = None
    issued: list[x509.Certificate] = field(default_factory=list)
    """Every certificate issued for the order, the current one last."""
    revoked_serials: set[int] = field(default_factory=set)


Pairs = list[tuple[str, str]]
Result = tuple[int, Pairs]
"""A successful reply: its (non-negative) errorCode and the fields after it."""


@dataclass(frozen=True)
class Endpoint:
    handler: Callable[[SectigoSim, dict[str, str]], Result]
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()


class SectigoSim:
    """The simulated reseller account: its orders, its CA, and the test's controls."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.created: Counter[str] = Counter()  # order, reissue: what was placed
        self.root_key, self.root = keys.create_ca("Sim Sectigo Root")
        self.ca_key, self.intermediate = keys.create_ca(
            "Sim Sectigo DV CA", issuer_key=self.root_key, issuer_cert=self.root
        )
        self.orders: dict[str, Order] = {}
        self.whois: dict[str, str] = {}
        self.insufficient_credits = False
        self.report_page_limit = 100
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.base_url = ""
        self._faults: deque[Fault] = deque()
        self._numbers = itertools.count(1_000_001)
        self._lock = threading.Lock()

    # --- the test's controls -------------------------------------------------------------------

    def provider_settings(self, **overrides: object) -> dict[str, object]:
        """Adapter settings that reach this simulator with valid credentials."""
        settings = {
            "base_url": self.base_url,
            "login_name": LOGIN_NAME,
            "login_password": LOGIN_PASSWORD,
            "test_mode": False,
            "timeout": 5.0,
        }
        return {**settings, **overrides}

    def inject(self, fault: Fault) -> None:
        self._faults.append(fault)

    def count(self, endpoint: str | None = None, order: str | None = None) -> int:
        """Requests received so far, optionally only those to ``endpoint`` or about ``order``."""
        return sum(
            1
            for name, form in self.requests
            if endpoint in (None, name) and order in (None, form.get("orderNumber"))
        )

    def last_form(self, endpoint: str) -> dict[str, str]:
        """The arguments of the latest request to ``endpoint``."""
        return next(form for name, form in reversed(self.requests) if name == endpoint)

    def approve(self, number: str) -> x509.Certificate:
        """Validation passed: issue the certificate from the intermediate, from now for as long
        as today's limit allows, within the product term (which the first approval starts)."""
        order = self.orders[number]
        now = self.clock()
        if order.term_ends is None:
            order.term_starts, order.term_ends = now, now + timedelta(days=order.days)
        if now >= order.term_ends:
            raise ValueError(f"order {number}'s term has ended: nothing to issue")
        order.certificate = keys.sign_csr(
            order.csr,
            self.ca_key,
            self.intermediate,
            not_before=now,
            not_after=lifetimes.certificate_ends(now, order.term_ends),
        )
        order.issued.append(order.certificate)
        order.status = "Issued"
        return order.certificate

    def reject(self, number: str) -> None:
        self.orders[number].status = "Rejected"

    def expire(self, number: str) -> None:
        self.orders[number].status = "Expired"

    # --- the wire ------------------------------------------------------------------------------

    def respond(self, path: str, form: dict[str, str]) -> Response:
        """One request in, one reply out: faults first, then the endpoint's checks and work."""
        name = path.removeprefix(PREFIX)
        self.requests.append((name, form))
        fault = self._faults.popleft() if self._faults else Fault()
        if fault.status != 200 or fault.body is not None:
            return Response(fault.status, fault.body or "", fault.headers)
        endpoint = ENDPOINTS.get(name)
        if endpoint is None:
            return Response(404, "Not Found")
        with self._lock:
            pairs = self._dispatch(endpoint, form)
        return Response(200, urlencode(pairs), delay=fault.delay)

    def _dispatch(self, endpoint: Endpoint, form: dict[str, str]) -> Pairs:
        try:
            _check_arguments(endpoint, form)
            code, pairs = endpoint.handler(self, form)
            return [("errorCode", str(code)), *pairs]
        except SimError as error:
            return [
                ("errorCode", str(error.code)),
                ("errorMessage", error.message),
                ("errorItem", error.item),
            ]

    # --- endpoints -----------------------------------------------------------------------------

    def dcv_email_list(self, form: dict[str, str]) -> Result:
        labels = form["domainName"].removeprefix("*.").split(".")
        if len(labels) < 2 or not all(labels):
            raise SimError(-4, "The value of 'domainName' is invalid!", "domainName")
        level2 = ".".join(labels[-2:])
        whois = [("whois_email", self.whois[level2])] if level2 in self.whois else []
        level3 = ".".join(labels) if len(labels) > 2 else ""
        return 0, [
            *whois,
            *(("level2_email", f"{box}@{level2}") for box in MAILBOXES),
            *(("level3_email", f"{box}@{level3}") for box in MAILBOXES if level3),
        ]

    def auto_apply(self, form: dict[str, str]) -> Result:
        product = _product(form)
        days = _days(form)
        csr = _csr(form["csr"])
        names = _names(form, csr, product)
        _check_organization(form, product)
        dcv_email = self._check_dcv(form, names, product)
        unique = _unique_value(form)
        if self.insufficient_credits:
            raise SimError(-15, "Insufficient credits!")
        self._fail_same_token(csr, unique)
        order = Order(
            number=str(next(self._numbers)),
            certificate_ids=[str(next(self._numbers))],
            csr=csr,
            product=form["product"],
            days=days,
            names=names,
            dcv_method=form["dcvMethod"],
            dcv_email=dcv_email,
            unique_value=unique,
            placed_at=self.clock(),
            received={k: v for k, v in form.items() if k != "loginPassword"},
        )
        self.orders[order.number] = order
        self.created["order"] += 1
        return 0, self._order_reply(order, form)

    def collect(self, form: dict[str, str]) -> Result:
        order = self._order(form)
        self._expire_if_ended(order)
        attached = order.status == "Issued" and form["queryType"] == "1"
        if attached and form.get("responseType", "3") != "3":
            raise SimError(-4, "Only individually encoded PEMs are simulated.", "responseType")
        pairs = [("certificateStatus", order.status)]
        if order.term_starts and order.term_ends:
            pairs += [
                ("productTermStartDate", str(_unix(order.term_starts))),
                ("productTermEndDate", str(_unix(order.term_ends))),
            ]
        if form.get("showExtStatus") == "Y":
            dcv = "Validated" if order.certificate else "Pending"
            validation = "Rejected" if order.status == "Rejected" else dcv
            pairs += [("validationStatus", validation), ("dcvStatus", dcv)]
        if attached:
            pairs += self._certificate_pairs(order)
        return 2 if attached else int(order.status == "Issued"), pairs

    def replace(self, form: dict[str, str]) -> Result:
        order = self._order(form)
        self._expire_if_ended(order)
        _check_not_closed(order)
        if order.status == "Expired":
            raise SimError(-4, "The term of this order has ended!", "orderNumber")
        order.csr = _csr(form["csr"])
        order.status, order.certificate = NOT_YET_ISSUED, None
        order.certificate_ids.append(str(next(self._numbers)))
        self.created["reissue"] += 1
        return 0, [("certificateID", order.certificate_ids[-1])]

    def web_host_report(self, form: dict[str, str]) -> Result:
        matching = [o for o in self.orders.values() if _reported(o, form)]
        first = _number(form, "firstResultNo", 1)
        last = min(_number(form, "lastResultNo", len(matching)), first + self.report_page_limit - 1)
        pairs = [("noOfResults", str(len(matching)))]
        for n, order in enumerate(matching[first - 1 : last], start=first):
            pairs += _report_pairs(n, order)
        return 0, pairs

    def resend_dcv_email(self, form: dict[str, str]) -> Result:
        order = self._order(form)
        if order.status != NOT_YET_ISSUED or order.dcv_method != "EMAIL":
            raise SimError(-4, "No DCV e-mail is awaited for this order.", "orderNumber")
        order.dcv_emails_sent += 1
        return 0, []

    def refund(self, form: dict[str, str]) -> Result:
        order = self._order(form)
        if order.status == "Refunded":
            raise SimError(-18, "This order has already been refunded!")
        _check_not_closed(order)
        order.status = "Refunded"
        return 0, []

    def revoke(self, form: dict[str, str]) -> Result:
        """By order, certificate id or serial (see the module docstring)."""
        code = form.get("codeReason", "0")
        if code not in {"0", "1", "3", "4", "5"}:
            raise SimError(-4, "The value of 'codeReason' is invalid!", "codeReason")
        order, serial = self._revoked(form)
        _check_not_closed(order)
        if order.certificate is None:
            order.status = "Rejected"
            return 0, []
        target = serial or order.certificate.serial_number
        order.revoked_serials.add(target)
        if target == order.certificate.serial_number:
            order.status = "Revoked"
        return 0, []

    def _revoked(self, form: dict[str, str]) -> tuple[Order, int | None]:
        """The order and (when named by it) the serial an AutoRevokeSSL is about."""
        if "serialNumber" in form:
            try:
                serial = int(form["serialNumber"], 16)
            except ValueError:
                raise SimError(
                    -4, "The value of 'serialNumber' is invalid!", "serialNumber"
                ) from None
            for order in self.orders.values():
                if any(cert.serial_number == serial for cert in order.issued):
                    return order, serial
            raise SimError(-4, "The value of 'serialNumber' is invalid!", "serialNumber")
        if "certificateID" in form:
            for order in self.orders.values():
                if form["certificateID"] == order.certificate_ids[-1]:
                    return order, None
            raise SimError(-4, "The value of 'certificateID' is invalid!", "certificateID")
        if "orderNumber" not in form:
            raise SimError(-3, "The 'orderNumber' argument is missing!", "orderNumber")
        return self._order(form), None

    def _expire_if_ended(self, order: Order) -> None:
        if order.status == "Issued" and order.term_ends and self.clock() >= order.term_ends:
            order.status = "Expired"

    # --- helpers -------------------------------------------------------------------------------

    def _order(self, form: dict[str, str]) -> Order:
        try:
            return self.orders[form["orderNumber"]]
        except KeyError:
            raise SimError(-4, "The value of 'orderNumber' is invalid!", "orderNumber") from None

    def _check_dcv(self, form: dict[str, str], names: list[str], product: SimProduct) -> str:
        """The approver of the domain, every name's approver checked (see the docstring)."""
        method = form["dcvMethod"]
        if method not in DCV_METHODS or (method == "HTTP_CSR_HASH" and product.wildcard):
            raise SimError(-4, "The value of 'dcvMethod' is invalid!", "dcvMethod")
        if method != "EMAIL":
            return ""
        item = "dcvEmailAddress" if len(names) == 1 else "dcvEmailAddresses"
        emails = [e for e in form.get(item, "").split(",") if e]
        if not emails:
            raise SimError(-3, f"The '{item}' argument is missing!", item)
        if len(emails) != len(names) or not all(
            email in self._approvers(name) for name, email in zip(names, emails, strict=True)
        ):
            raise SimError(-4, f"The value of '{item}' is invalid!", item)
        return emails[0]

    def _approvers(self, name: str) -> set[str]:
        _, pairs = self.dcv_email_list({"domainName": name})
        return {value for _, value in pairs}

    def _fail_same_token(self, csr: x509.CertificateSigningRequest, unique: str) -> None:
        """An identical DCV request token makes the original order fail (see the docstring)."""
        for order in self.orders.values():
            same = order.csr == csr and order.unique_value == unique
            if same and order.status == NOT_YET_ISSUED:
                order.status = "Rejected"

    def _order_reply(self, order: Order, form: dict[str, str]) -> Pairs:
        pairs = [
            ("orderNumber", order.number),
            ("totalCost", PRODUCTS[order.product].cost),
            ("expectedDeliveryTime", "1"),
        ]
        if form.get("showCertificateID") == "Y":
            pairs.append(("certificateID", order.certificate_ids[-1]))
        return pairs

    def _certificate_pairs(self, order: Order) -> Pairs:
        assert order.certificate is not None
        return [
            ("certificate", keys.cert_to_pem(order.certificate)),
            ("caCertificate", keys.cert_to_pem(self.root)),
            ("caCertificate", keys.cert_to_pem(self.intermediate)),
            ("notBefore", str(_unix(order.certificate.not_valid_before_utc))),
            ("notAfter", str(_unix(order.certificate.not_valid_after_utc))),
        ]


# --- argument checks, shared by the endpoints ---------------------------------------------------


def _check_arguments(endpoint: Endpoint, form: dict[str, str]) -> None:
    required = {"loginName", "loginPassword", *endpoint.required}
    missing = sorted(required - form.keys())
    if missing:
        raise SimError(-3, f"The '{missing[0]}' argument is missing!", missing[0])
    unknown = sorted(form.keys() - required - endpoint.optional - {"responseFormat"})
    if unknown:
        raise SimError(-2, f"'{unknown[0]}' is an unrecognised argument!", unknown[0])
    if (form["loginName"], form["loginPassword"]) != (LOGIN_NAME, LOGIN_PASSWORD):
        raise SimError(-16, "Permission denied!")


def _product(form: dict[str, str]) -> SimProduct:
    if form["product"] not in PRODUCTS:
        raise SimError(-4, "The value of 'product' is invalid!", "product")
    return PRODUCTS[form["product"]]


def _days(form: dict[str, str]) -> int:
    if "days" not in form:
        raise SimError(-3, "The 'days' argument is missing!", "days")
    if form["days"] not in VALID_DAYS:
        raise SimError(-4, "The value of 'days' is invalid!", "days")
    return int(form["days"])


def _csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a CSR, failing with the code Sectigo uses for each kind of problem."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise SimError(-9, "The CSR is not valid Base-64 data!", "csr") from None
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError:
        raise SimError(-10, "The CSR cannot be decoded!", "csr") from None
    key = csr.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise SimError(-11, "The CSR uses an unsupported algorithm!", "csr")
    if not csr.is_signature_valid:
        raise SimError(-12, "The CSR has an invalid signature!", "csr")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise SimError(-13, "The CSR uses an unsupported key size!", "csr")
    return csr


def _names(
    form: dict[str, str], csr: x509.CertificateSigningRequest, product: SimProduct
) -> list[str]:
    common_name = keys.csr_names(csr)[0]
    if common_name.startswith("*.") and not product.wildcard:
        raise SimError(-5, "The CSR's Common Name may NOT contain a wildcard!", "csr")
    if product.wildcard and not common_name.startswith("*."):
        raise SimError(-6, "The CSR's Common Name MUST contain ONE wildcard!", "csr")
    names = [n for n in form.get("domainNames", "").split(",") if n] or [common_name]
    if len(names) > product.max_names:
        raise SimError(-4, "The value of 'domainNames' is invalid!", "domainNames")
    return names


ORGANIZATION_REQUIRED = (
    "organizationName",
    "countryName",
    "streetAddress1",
    "localityName",
    "postalCode",
)


def _check_organization(form: dict[str, str], product: SimProduct) -> None:
    country = form.get("countryName", "")
    if country and pycountry.countries.get(alpha_2=country) is None:
        raise SimError(-7, "'countryName' is not a valid ISO-3166 country!", "countryName")
    for item in ORGANIZATION_REQUIRED:
        if product.org_required and not form.get(item):
            raise SimError(-3, f"The '{item}' argument is missing!", item)


def _unique_value(form: dict[str, str]) -> str:
    unique = form.get("uniqueValue", "")
    if unique and not (unique.isalnum() and len(unique) <= 20):
        raise SimError(-4, "The value of 'uniqueValue' is invalid!", "uniqueValue")
    return unique


def _number(form: dict[str, str], item: str, default: int) -> int:
    try:
        return int(form[item]) if item in form else default
    except ValueError:
        raise SimError(-4, f"The value of '{item}' is invalid!", item) from None


def _like(pattern: str, value: str) -> bool:
    """SQL LIKE, as the report's ``fqdn``: ``%`` any run of characters, ``_`` one character."""
    wildcards = {"%": ".*", "_": "."}
    regex = "".join(wildcards.get(c) or re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE) is not None


def _reported(order: Order, form: dict[str, str]) -> bool:
    """Whether the report's filters let ``order`` through."""
    placed = _unix(order.placed_at)
    numbers = form.get("orderNumber")
    return (
        _number(form, "notBefore", placed) <= placed <= _number(form, "notAfter", placed)
        and ("fqdn" not in form or any(_like(form["fqdn"], name) for name in order.names))
        and (numbers is None or order.number in numbers.split(","))
    )


def _report_pairs(n: int, order: Order) -> Pairs:
    pairs = [
        (f"{n}_orderNumber", order.number),
        (f"{n}_orderStatus", order.status),
        (f"{n}_dateTime", str(_unix(order.placed_at))),
    ]
    for m, certificate_id in enumerate(order.certificate_ids, start=1):
        current = m == len(order.certificate_ids)
        pairs += [
            (f"{n}_{m}_certificateID", certificate_id),
            (f"{n}_{m}_domain", order.names[0]),
            (f"{n}_{m}_status", order.status if current else "Replaced"),
        ]
    return pairs


def _check_not_closed(order: Order) -> None:
    if order.status in {"Rejected", "Refunded"}:
        raise SimError(-20, "The certificate has already been rejected!", "orderNumber")
    if order.status == "Revoked":
        raise SimError(-21, "The certificate has already been revoked!", "orderNumber")


def _unix(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp())


ORDER_FIELDS = frozenset(
    {
        "organizationName",
        "organizationalUnitName",
        "stateOrProvinceName",
        "countryName",
        "streetAddress1",
        "localityName",
        "postalCode",
        "appRepForename",
        "appRepSurname",
        "appRepEmailAddress",
        "appRepTelephone",
        "appRepTitle",
        "contactEmailAddress",
    }
)

ENDPOINTS: dict[str, Endpoint] = {
    "!GetDCVEmailAddressList": Endpoint(SectigoSim.dcv_email_list, frozenset({"domainName"})),
    "!AutoApplySSL": Endpoint(
        SectigoSim.auto_apply,
        frozenset({"product", "csr", "serverSoftware", "dcvMethod"}),
        ORDER_FIELDS
        | {
            "days",
            "years",
            "dcvEmailAddress",
            "dcvEmailAddresses",
            "domainNames",
            "primaryDomainName",
            "isCustomerValidated",
            "uniqueValue",
            "showCertificateID",
            "test",
        },
    ),
    "download/CollectSSL": Endpoint(
        SectigoSim.collect,
        frozenset({"orderNumber", "queryType"}),
        frozenset({"showExtStatus", "responseType", "responseEncoding"}),
    ),
    "!AutoReplaceSSL": Endpoint(
        SectigoSim.replace,
        frozenset({"orderNumber", "csr"}),
        frozenset(
            {"dcvMethod", "dcvEmailAddress", "dcvEmailAddresses", "uniqueValue", "serverSoftware"}
        ),
    ),
    "!ResendDCVEmail": Endpoint(
        SectigoSim.resend_dcv_email, frozenset({"orderNumber"}), frozenset({"dcvEmailAddress"})
    ),
    "!WebHostReport": Endpoint(
        SectigoSim.web_host_report,
        optional=frozenset(
            {"notBefore", "notAfter", "firstResultNo", "lastResultNo", "fqdn", "orderNumber"}
        ),
    ),
    "!AutoRefund": Endpoint(SectigoSim.refund, frozenset({"orderNumber"})),
    "!AutoRevokeSSL": Endpoint(
        SectigoSim.revoke,
        optional=frozenset(
            {"orderNumber", "certificateID", "serialNumber", "revocationReason", "codeReason"}
        ),
    ),
}


# --- serving it ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        response = self.server.sim.respond(self.path, form)
        time.sleep(response.delay)
        with contextlib.suppress(ConnectionError):  # the client gave up waiting: fine
            self.send_response(response.status)
            for name, value in {"Content-Type": "text/plain", **response.headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body.encode())

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: request lines would only clutter test output."""


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for late replies, so no thread outlives a test

    def __init__(self, sim: SectigoSim):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sim = sim


@contextlib.contextmanager
def running(sim: SectigoSim) -> Iterator[SectigoSim]:
    """Serve ``sim`` on a free loopback port until the block ends."""
    server = _Server(sim)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    sim.base_url = f"http://127.0.0.1:{server.server_port}/products"
    try:
        yield sim
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def sectigo_sim() -> Iterator[SectigoSim]:
    """A fresh simulator on its own port, stopped after the test."""
    with running(SectigoSim()) as sim:
        yield sim
