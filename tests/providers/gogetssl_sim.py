"""A GoGetSSL API v1 simulator on real HTTP, so adapter tests exercise sockets, timeouts and JSON.

It speaks the wire format of PROVIDERS.md and follows the readings marked *unverified* in the
adapter's module docstring (panel_ssl_plugin/providers/gogetssl.py): SAN fields and prices, the
currency from the balance call, the shape of ``approver_method`` (in the order, reissue and
status replies alike, for the order's current CSR), ``status_description``, the batch reply and
the order listing (newest first, ``limit`` 100 unless asked, ``count`` the account's total).
Readings of its own, *unverified*: a domain with invalid characters is refused with a nested
``description`` (``{"domain": [...]}``), the shape form validators commonly produce, and an
offset past the end lists no orders. An OV product (``org_required``) refuses an order without
every ``org_*`` field of GoGetSSL's sample order, or without ``admin_organization`` and
``admin_addressline1`` (documented as required for OV/EV). ``balance_refused`` makes the
balance call an unknown method, as an API key without account rights may see it.

Orders stay pending until a test moves them (:meth:`GoGetSSLSim.approve`, ``reject``,
``set_status``); approval signs the order's CSR with a test CA, root → intermediate → leaf.
Faults are queued per path with :meth:`GoGetSSLSim.fail_next`. ``path_calls`` and ``order_calls``
count every request that arrives (faulty or not), for tests that assert how often something was
asked; ``created`` counts what the account was charged for or given, by kind (``order``,
``renewal``, ``reissue``), so a test can say "1 order, 1 reissue, 0 renewals at the provider".
Load this module as a pytest plugin to get the ``gogetssl_sim`` fixture.

Subscriptions, as the adapter reads them (its docstring): time is :attr:`GoGetSSLSim.clock`, a
callable tests replace with a clock they move (tests/providers/clock.py), so a year passes
without sleeping. An order's first approval starts its subscription, at midnight UTC of that day,
for the period bought (calendar months, ``lifetimes.subscription_ends``); status replies carry it
as ``begin_date``/``end_date`` (``YYYY-MM-DD``) beside the certificate's ``valid_from``/
``valid_till``. Each approval (the first, and each after a reissue) issues a certificate from
now for the longest ``lifetimes.max_certificate_days`` allows today, cut at the subscription's
end. A reissue is free while the subscription lasts and refused after it; the order shows
``reissue`` from the reissue call until the new certificate is approved (``active``). Once the
subscription has ended an active order reports ``expired``. GoGetSSL's API has no revoke call,
so neither has the simulator.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from panel_ssl_plugin import keys, lifetimes

USER = "reseller@example.com"
PASSWORD = "api-secret-password"
CURRENCY = "USD"

PRODUCTS: list[dict[str, Any]] = [
    {
        "id": 71,
        "brand": "comodo",
        "product": "PositiveSSL",
        "org_required": 0,
        "san_enabled": 0,
        "wildcard_enabled": 0,
        "max_period": 24,
        "prices": {"vendor": {"12": "8.50", "24": "15.90", "36": "22.00"}},
    },
    {
        "id": 72,
        "brand": "comodo",
        "product": "PositiveSSL Wildcard",
        "org_required": 0,
        "san_enabled": 0,
        "wildcard_enabled": 1,
        "max_period": 12,
        "prices": {"vendor": {"12": "65.00"}},
    },
    {
        "id": 88,
        "brand": "geotrust",
        "product": "GeoTrust TrueBusinessID",
        "org_required": 1,
        "san_enabled": 0,
        "wildcard_enabled": 0,
        "max_period": 24,
        "prices": {"vendor": {"12": "99.00", "24": "189.00"}},
    },
    {
        "id": 99,
        "brand": "comodo",
        "product": "PositiveSSL Multi-Domain",
        "org_required": 0,
        "san_enabled": 1,
        "wildcard_enabled": 0,
        "max_period": 24,
        "max_san": 10,
        "san_included": 2,
        "prices": {"vendor": {"12": "25.00", "24": "48.00"}, "san": {"12": "9.00", "24": "17.50"}},
    },
]

WEBSERVERS: dict[str, list[dict[str, str]]] = {
    "1": [
        {"id": "1", "software": "AOL"},
        {"id": "2", "software": "Apache-SSL (Ben-SSL, not Stronghold)"},
        {"id": "3", "software": "Apache-ModSSL"},
        {"id": "17", "software": "Microsoft IIS 5.x to 6.x"},
        {"id": "18", "software": "Microsoft IIS 7.x and later"},
        {"id": "24", "software": "Tomcat"},
        {"id": "35", "software": "cPanel / WHM"},
        {"id": "36", "software": "Plesk"},
        {"id": "37", "software": "nginx"},
        {"id": "-1", "software": "Other"},
    ],
    "2": [
        {"id": "1", "software": "Apache +ModSSL"},
        {"id": "2", "software": "Apache-SSL (Ben-SSL, not Stronghold)"},
        {"id": "11", "software": "Microsoft IIS 5.x and later"},
        {"id": "19", "software": "Tomcat"},
        {"id": "99", "software": "Other"},
    ],
}

MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
DCV_METHODS = ("email", "http", "https", "dns")
CONTACT_REQUIRED = tuple(
    f"{role}_{part}" for role in ("admin", "tech") for part in ("firstname", "lastname", "email")
)
ORG_REQUIRED = (
    "org_name",
    "org_addressline1",
    "org_city",
    "org_country",
    "org_postalcode",
    "org_region",
    "org_phone",
    "admin_organization",
    "admin_addressline1",
)
DOMAIN = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}")
FAULTS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "500": (500, {}, b'{"error": true, "description": "Internal Server Error"}'),
    "garbage": (200, {"Content-Type": "text/html"}, b"<html><body>Bad Gateway</body></html>"),
    "429": (429, {"Retry-After": "7"}, b'{"error": true, "description": "Too many requests"}'),
    "slow": (0, {}, b""),  # the request waits ``slow_seconds`` and is then served normally
}

Reply = tuple[int, dict[str, str], bytes]


class ApiError(Exception):
    """An error reply in GoGetSSL's shape; ``description`` may be nested, as the real one can."""

    def __init__(
        self,
        description: Any,
        *,
        field: str | None = None,
        status: int = 400,
        message: str = "Validation error",
    ):
        super().__init__(str(description))
        self.status = status
        self.body: dict[str, Any] = {"error": True, "message": message, "description": description}
        if field:
            self.body["field"] = field


@dataclass(frozen=True)
class Call:
    """One parsed request: query and form merged (form wins), and the path's named groups."""

    params: dict[str, str]
    groups: dict[str, str]

    def get(self, name: str) -> str:
        return self.params.get(name, "").strip()


@dataclass
class SimOrder:
    """What the simulator remembers of one order; tests read it to check what was sent."""

    id: str
    product: dict[str, Any]
    period: int
    csr: str
    names: list[str]
    params: dict[str, str]
    renewal: bool = False
    status: str = "processing"
    status_description: str = "Awaiting domain control validation."
    crt_code: str = ""
    ca_code: str = ""
    valid_from: str = ""
    valid_till: str = ""
    resends: int = 0
    reissues: int = 0
    dcv_record: dict[str, Any] = field(default_factory=dict)  # approver_method, for HTTP/DNS
    subscription_starts: datetime | None = None
    subscription_ends: datetime | None = None

    @property
    def dcv_method(self) -> str:
        return self.params.get("dcv_method", "")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[GoGetSSLSim, Call], dict[str, Any]]
    needs_key: bool = True


class GoGetSSLSim:
    """The simulated account: products, orders, auth keys, faults and request counters."""

    def __init__(
        self,
        slow_seconds: float = 3.0,
        latency: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ):
        self.slow_seconds = slow_seconds
        self.latency = latency  # seconds added to every reply, like a provider far away
        self.clock = clock or (lambda: datetime.now(UTC))
        self.orders: dict[str, SimOrder] = {}
        self.path_calls: Counter[str] = Counter()
        self.order_calls: Counter[str] = Counter()
        self.created: Counter[str] = Counter()  # order, renewal, reissue: what was placed
        self.dcv_overrides: dict[str, dict[str, list[str]]] = {}
        self.balance_refused = False
        self.root_key, self.root_cert = keys.create_ca("GoGetSSL Simulator Root")
        self.ca_key, self.ca_cert = keys.create_ca(
            "GoGetSSL Simulator DV CA", issuer_key=self.root_key, issuer_cert=self.root_cert
        )
        self._keys: set[str] = set()
        self._faults: list[tuple[str, str]] = []
        self._next_id = 1000
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL to put in the adapter's settings."""
        assert self._server is not None, "start() the simulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sim = self
        # A short poll interval keeps shutdown, and so every test's teardown, quick.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Also wakes requests held by a "slow" fault, so teardown never waits for them."""
        self._stopping.set()
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    # --- control from tests ------------------------------------------------------------------

    def fail_next(self, fault: str, path: str) -> None:
        """The next request whose path (below /api) starts with ``path`` gets ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append((path, fault))

    def expire_keys(self) -> None:
        """Every auth key handed out so far is refused with 403 from now on."""
        with self._lock:
            self._keys.clear()

    def set_dcv_emails(self, domain: str, comodo: list[str], geotrust: list[str]) -> None:
        self.dcv_overrides[domain] = {
            "ComodoApprovalEmails": comodo,
            "GeotrustApprovalEmails": geotrust,
        }

    def clone(self, order_id: str, count: int) -> list[str]:
        """``count`` copies of an order under new ids: many orders without a create call each
        (tests and benchmarks of polling seed thousands)."""
        with self._lock:
            template = self._order(order_id)
            ids = [str(n) for n in range(self._next_id, self._next_id + count)]
            self._next_id += count
            self.orders.update((new_id, replace(template, id=new_id)) for new_id in ids)
        return ids

    def approve(self, order_id: str) -> x509.Certificate:
        """Validation passed: sign the order's current CSR with the intermediate CA, from now
        for as long as today's limit allows, within the subscription (which the first approval
        starts)."""
        with self._lock:
            order = self._order(order_id)
            now = self.clock()
            if order.subscription_ends is None:
                starts = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                order.subscription_starts = starts
                order.subscription_ends = lifetimes.subscription_ends(starts, order.period)
            if now >= order.subscription_ends:
                raise ValueError(f"order {order_id}'s subscription has ended: nothing to issue")
            cert = keys.sign_csr(
                keys.load_csr(order.csr),
                self.ca_key,
                self.ca_cert,
                not_before=now,
                not_after=lifetimes.certificate_ends(now, order.subscription_ends),
            )
            order.crt_code = keys.cert_to_pem(cert)
            order.ca_code = keys.cert_to_pem(self.ca_cert)
            order.valid_from = cert.not_valid_before_utc.date().isoformat()
            order.valid_till = cert.not_valid_after_utc.date().isoformat()
            self.set_status(order_id, "active", "Certificate issued.")
            return cert

    def reject(self, order_id: str, reason: str = "Domain validation failed.") -> None:
        self.set_status(order_id, "rejected", reason)

    def set_status(self, order_id: str, status: str, description: str = "") -> None:
        """Put an order in any raw GoGetSSL status, e.g. to walk the status table."""
        with self._lock:
            order = self._order(order_id)
            order.status, order.status_description = status, description

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, body: bytes) -> Reply:
        """Count, apply a queued fault, check the key, run the route: in that order."""
        url = urlsplit(target)
        path = url.path.removeprefix("/api")
        route, groups = _find_route(method, path)
        call = Call({**dict(parse_qsl(url.query)), **dict(parse_qsl(body.decode()))}, groups)
        fault = self._arrive(path, call)
        self._stopping.wait(self.latency)
        if fault == "slow":
            self._stopping.wait(self.slow_seconds)
        elif fault:
            return FAULTS[fault]
        if route is None:
            return _json(404, {"error": True, "description": f"Unknown API method {path}"})
        if route.needs_key and call.get("auth_key") not in self._keys:
            return _json(403, {"error": True, "description": "Auth key is invalid or expired."})
        with self._lock:
            try:
                return _json(200, route.handler(self, call))
            except ApiError as error:
                return _json(error.status, error.body)

    def _arrive(self, path: str, call: Call) -> str | None:
        with self._lock:
            self.path_calls[path] += 1
            ids = [call.groups.get("order_id"), call.params.get("order_id")]
            self.order_calls.update(i for i in [*ids, *_split(call.get("cids"))] if i)
            for index, (prefix, fault) in enumerate(self._faults):
                if path.startswith(prefix):
                    del self._faults[index]
                    return fault
        return None

    # --- lookups and checks ------------------------------------------------------------------

    def _order(self, order_id: str) -> SimOrder:
        if order_id not in self.orders:
            raise ApiError(f"Order {order_id} not found.", field="order_id")
        return self.orders[order_id]

    def _product(self, product_id: str) -> dict[str, Any]:
        for product in PRODUCTS:
            if str(product["id"]) == product_id:
                return product
        raise ApiError(f"Product {product_id or '(none)'} does not exist.", field="product_id")

    def _approvers(self, domain: str) -> dict[str, list[str]]:
        bare = domain.removeprefix("*.").lower()
        if not DOMAIN.fullmatch(bare):
            raise ApiError(
                {"domain": ["The domain name contains invalid characters."]}, field="domain"
            )
        if bare in self.dcv_overrides:
            return self.dcv_overrides[bare]
        base = ".".join(bare.split(".")[-2:])
        own = [f"{box}@{bare}" for box in MAILBOXES] if bare != base else []
        at_base = [f"{box}@{base}" for box in MAILBOXES]
        return {"ComodoApprovalEmails": own + at_base, "GeotrustApprovalEmails": at_base}

    def _check_approver(self, email: str, domain: str, field: str) -> None:
        allowed = {e.lower() for emails in self._approvers(domain).values() for e in emails}
        if email.lower() not in allowed:
            raise ApiError(
                f"{email or '(none)'} is not a valid approver for {domain}.", field=field
            )

    def _check_dcv(self, call: Call, names: list[str]) -> None:
        method = call.get("dcv_method")
        if method not in DCV_METHODS:
            raise ApiError(f"Unknown dcv_method {method!r}.", field="dcv_method")
        if method != "email":
            return
        self._check_approver(call.get("approver_email"), names[0], "approver_email")
        approvers = _split(call.get("approver_emails"))
        if len(approvers) != len(names) - 1:
            raise ApiError("approver_emails needs one entry per SAN.", field="approver_emails")
        for email, san in zip(approvers, names[1:], strict=True):
            self._check_approver(email, san, "approver_emails")

    def _status_of(self, order: SimOrder) -> str:
        """The order's status now: an active order whose subscription is over has expired."""
        ended = order.subscription_ends is not None and self.clock() >= order.subscription_ends
        return "expired" if order.status == "active" and ended else order.status

    def _brief(self, order: SimOrder) -> dict[str, Any]:
        """The batch reply's row: status and dates, never the certificate."""
        return {
            "order_id": order.id,
            "status": self._status_of(order),
            "valid_from": order.valid_from,
            "valid_till": order.valid_till,
            "begin_date": _day(order.subscription_starts),
            "end_date": _day(order.subscription_ends),
        }

    def _place(self, call: Call, renewal: bool) -> dict[str, Any]:
        product = self._product(call.get("product_id"))
        period = _period(product, call.get("period"))
        csr = _csr(call.get("csr"))
        names = _names(product, keys.csr_names(csr), _split(call.get("dns_names")))
        _check_webserver(product, call.get("webserver_type"))
        self._check_dcv(call, names)
        _require(call, CONTACT_REQUIRED)
        if product["org_required"]:
            _require(call, ORG_REQUIRED)
        order_id = str(self._next_id)
        self._next_id += 1
        dcv_record = _approver_method(csr, call, names[0])
        self.orders[order_id] = SimOrder(
            order_id,
            product,
            period,
            call.params["csr"],
            names,
            call.params,
            renewal=renewal,
            dcv_record=dcv_record,
        )
        self.created["renewal" if renewal else "order"] += 1
        return {"success": True, "order_id": order_id, **dcv_record}

    # --- the API, one method per route (see ROUTES) -------------------------------------------

    def auth(self, call: Call) -> dict[str, Any]:
        if call.get("user") != USER or call.get("pass") != PASSWORD:
            raise ApiError("Wrong user name or API password.", status=401, message="Auth error")
        key = secrets.token_hex(16)
        self._keys.add(key)
        return {"key": key}

    def balance(self, call: Call) -> dict[str, Any]:
        if self.balance_refused:
            raise ApiError("Unknown method", status=404, message="Unknown method")
        return {"success": True, "balance": "250.00", "currency": CURRENCY}

    def products(self, call: Call) -> dict[str, Any]:
        return {"success": True, "products": PRODUCTS}

    def product(self, call: Call) -> dict[str, Any]:
        return {"success": True, "product": self._product(call.groups["product_id"])}

    def webservers(self, call: Call) -> dict[str, Any]:
        if call.groups["type"] not in WEBSERVERS:
            raise ApiError("Unknown web server list; use 1 or 2.", field="type")
        return {"success": True, "webservers": WEBSERVERS[call.groups["type"]]}

    def domain_emails(self, call: Call) -> dict[str, Any]:
        return {"success": True, **self._approvers(call.get("domain"))}

    def add_order(self, call: Call) -> dict[str, Any]:
        return self._place(call, renewal=False)

    def renew_order(self, call: Call) -> dict[str, Any]:
        return self._place(call, renewal=True)

    def list_orders(self, call: Call) -> dict[str, Any]:
        """Every order, newest first, one page of ``limit`` from ``offset``."""
        limit, offset = _count(call, "limit", 100), _count(call, "offset", 0)
        newest_first = [
            {"order_id": o.id, "status": self._status_of(o)} for o in reversed(self.orders.values())
        ]
        return {
            "success": True,
            "limit": limit,
            "offset": offset,
            "count": len(newest_first),
            "orders": newest_first[offset : offset + limit],
        }

    def status(self, call: Call) -> dict[str, Any]:
        order = self._order(call.groups["order_id"])
        return {
            **self._brief(order),
            **order.dcv_record,
            "domain": order.names[0],
            "status_description": order.status_description,
            "crt_code": order.crt_code if order.status == "active" else "",
            "ca_code": order.ca_code if order.status == "active" else "",
            "csr_code": order.csr,
            "dcv_method": order.dcv_method,
            "approver_email": order.params.get("approver_email", ""),
            "san": [{"san_name": name} for name in order.names[1:]],
        }

    def statuses(self, call: Call) -> dict[str, Any]:
        """Unknown ids are left out of the answer, as a batch reply would."""
        cids = [cid for cid in _split(call.get("cids")) if cid in self.orders]
        return {"success": True, "certificates": [self._brief(self.orders[cid]) for cid in cids]}

    def reissue(self, call: Call) -> dict[str, Any]:
        order = self._order(call.groups["order_id"])
        if self._status_of(order) != "active":
            raise ApiError(
                f"Only active orders can be reissued; this one is {self._status_of(order)}."
            )
        csr = _csr(call.get("csr"))
        names = [*keys.csr_names(csr)[:1], *_split(call.get("dns_names"))]
        self._check_dcv(call, names)
        order.csr, order.reissues = call.params["csr"], order.reissues + 1
        order.status, order.status_description = "reissue", "Reissue awaiting validation."
        order.dcv_record = _approver_method(csr, call, names[0])
        self.created["reissue"] += 1
        return {"success": True, "order_id": order.id, **order.dcv_record}

    def cancel(self, call: Call) -> dict[str, Any]:
        order = self._order(call.get("order_id"))
        if order.status in ("cancelled", "rejected", "expired"):
            raise ApiError(f"Order {order.id} is {order.status} and cannot be cancelled.")
        order.status, order.status_description = "cancelled", call.get("reason")
        return {"success": True, "order_id": order.id}

    def resend(self, call: Call) -> dict[str, Any]:
        order = self._order(call.groups["order_id"])
        if order.dcv_method != "email" or order.status not in ("processing", "reissue"):
            raise ApiError("This order is not waiting for an approval e-mail.")
        order.resends += 1
        return {"success": True, "message": "Validation e-mail sent."}


def _route(method: str, pattern: str, handler: Callable, needs_key: bool = True) -> Route:
    return Route(method, re.compile(pattern), handler, needs_key)


ROUTES: tuple[Route, ...] = (
    _route("POST", r"/auth/", GoGetSSLSim.auth, needs_key=False),
    _route("GET", r"/account/balance/", GoGetSSLSim.balance),
    _route("GET", r"/products/ssl/", GoGetSSLSim.products),
    _route("GET", r"/products/ssl/(?P<product_id>\d+)/?", GoGetSSLSim.product),
    _route("GET", r"/tools/webservers/(?P<type>\d+)/?", GoGetSSLSim.webservers),
    _route("POST", r"/tools/domain/emails/", GoGetSSLSim.domain_emails),
    _route("POST", r"/orders/add_ssl_order/", GoGetSSLSim.add_order),
    _route("POST", r"/orders/add_ssl_renew_order/", GoGetSSLSim.renew_order),
    _route("GET", r"/orders/ssl/all/?", GoGetSSLSim.list_orders),
    _route("GET", r"/orders/status/(?P<order_id>\d+)/?", GoGetSSLSim.status),
    _route("POST", r"/orders/statuses/", GoGetSSLSim.statuses),
    _route("POST", r"/orders/ssl/reissue/(?P<order_id>\d+)/?", GoGetSSLSim.reissue),
    _route("POST", r"/orders/cancel_ssl_order/", GoGetSSLSim.cancel),
    _route("POST", r"/orders/ssl/resend_validation_email/(?P<order_id>\d+)/?", GoGetSSLSim.resend),
)


# --- helpers without state -----------------------------------------------------------------------


def _find_route(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match.groupdict()
    return None, {}


def _json(status: int, body: dict[str, Any]) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _day(when: datetime | None) -> str:
    return when.date().isoformat() if when else ""


def _count(call: Call, name: str, default: int) -> int:
    value = call.get(name)
    if value and not value.isdigit():
        raise ApiError(f"{name} must be a whole number.", field=name)
    return int(value) if value else default


def _require(call: Call, fields: tuple[str, ...]) -> None:
    for name in fields:
        if not call.get(name):
            raise ApiError(f"{name} is required.", field=name)


def _period(product: dict[str, Any], value: str) -> int:
    periods = [int(p) for p in product["prices"]["vendor"] if int(p) <= product["max_period"]]
    if not value.isdigit() or int(value) not in periods:
        raise ApiError(
            f"Period {value or '(none)'} is not offered for this product.", field="period"
        )
    return int(value)


def _csr(pem: str) -> x509.CertificateSigningRequest:
    try:
        return keys.load_csr(pem)
    except keys.InvalidMaterial as error:
        raise ApiError("Invalid CSR: it cannot be decoded.", field="csr") from error


def _names(product: dict[str, Any], csr_names: list[str], sans: list[str]) -> list[str]:
    """The CSR's first name is the domain; dns_names must be names the CSR asks for."""
    domain = csr_names[0]
    if domain.startswith("*.") != bool(product["wildcard_enabled"]):
        kind = "a wildcard" if product["wildcard_enabled"] else "a single"
        raise ApiError(f"{product['product']} needs {kind} domain in the CSR.", field="csr")
    if sans and not product["san_enabled"]:
        raise ApiError(f"{product['product']} does not take SANs.", field="dns_names")
    if len(sans) > product.get("max_san", 0) or not set(sans) <= set(csr_names):
        raise ApiError("dns_names must be at most max_san names of the CSR.", field="dns_names")
    return [domain, *sans]


def _check_webserver(product: dict[str, Any], value: str) -> None:
    kind = "1" if product["brand"] == "comodo" else "2"
    if value not in {server["id"] for server in WEBSERVERS[kind]}:
        raise ApiError(
            f"webserver_type {value or '(none)'} is not in list {kind}.", field="webserver_type"
        )


def _approver_method(
    csr: x509.CertificateSigningRequest, call: Call, domain: str
) -> dict[str, Any]:
    """The record to publish for HTTP/DNS validation, derived from the CSR's hashes as Sectigo
    does; e-mail validation has none."""
    der = csr.public_bytes(serialization.Encoding.DER)
    md5, sha256 = hashlib.md5(der).hexdigest().upper(), hashlib.sha256(der).hexdigest().upper()
    bare = domain.removeprefix("*.")
    method = call.get("dcv_method")
    if method in ("http", "https"):
        filename = f"{md5}.txt"
        link = f"{method}://{bare}/.well-known/pki-validation/{filename}"
        content = f"{sha256}\nsectigo.com\n{secrets.token_hex(4)}"
        return {
            "approver_method": {method: {"link": link, "filename": filename, "content": content}}
        }
    if method == "dns":
        target = f"{sha256[:32]}.{sha256[32:]}.sectigo.com".lower()
        return {"approver_method": {"dns": {"record": f"_{md5.lower()}.{bare} CNAME {target}"}}}
    return {}


# --- the HTTP side --------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: GoGetSSLSim

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is part of the tests, not a failure."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status, headers, body = self.server.sim.handle(
            self.command, self.path, self.rfile.read(length)
        )
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: access logs would drown the test output."""


@pytest.fixture
def gogetssl_sim() -> Iterator[GoGetSSLSim]:
    """A fresh simulator on a free loopback port, stopped after the test."""
    sim = GoGetSSLSim()
    sim.start()
    yield sim
    sim.stop()
