"""GoGetSSL reseller REST API (v1): products, approver e-mails, orders, renewals and reissues.

The wire format is the one in PROVIDERS.md: form-encoded requests, JSON replies, errors as
``{"error": true, "message": ..., "description": ...}`` with HTTP 200 or 4xx. A login key from
``POST /auth/`` rides on every call as ``?auth_key=``; a 403 means it expired, so the adapter logs
in again once and repeats the call once. That repeat is safe even for order placement: a refused
key means GoGetSSL did nothing. Nothing else that places an order is ever repeated.

An order, a renewal and a reissue are create calls: the reseller pays for each. Once one was
sent, a timeout, a reset, a 5xx, a reply that is not JSON or a success without ``order_id`` is
ProviderOutcomeUnknown (see providers/http.py), and :meth:`GoGetSSLProvider.find_order` looks the
order up before anything is sent again. The calls before it (login, product record, web server
list) place nothing, so their failures are ordinary errors.

Only what an order needs may stop it: the account's balance (the currency of the prices) is asked
for beside the product list, and when it cannot be had the products are listed without a
currency. An error from the product list names the call ("GoGetSSL's product list: ..."), so an
admin can tell it from a refused login or a down API.

Per-name approvers follow the documentation (github.com/gogetssl/api, addSSLOrder):
``approver_emails`` holds one approver for each name of ``dns_names``, in its order, the primary
domain's left out; for HTTP/DNS validation each entry is the method's name. An OV/EV product
(``org_required``) takes the organization as ``org_name``, ``org_division``,
``org_addressline1``, ``org_city``, ``org_postalcode``, ``org_region``, ``org_country`` and
``org_phone`` (the names of GoGetSSL's own sample order), and wants ``admin_organization`` and
``admin_addressline1``: the contacts are sent with the organization's address.

Finding an order whose reply was lost relies on what PROVIDERS.md documents: ``GET
/orders/ssl/all`` (``limit``, ``offset``) lists every SSL order of the account as ``{"order_id",
"status"}``, and ``GET /orders/status/{id}`` carries the order's ``csr_code``. GoGetSSL takes no
client-chosen order id, so the CSR is the order's fingerprint: a new or renewal order is the one
untracked order whose CSR is the one sent (compared as DER). A reissue keeps its order id, so it
happened when that order's CSR is the new one. Cost: the whole listing (100 orders a page, at most
one page more) plus one status call per order the plugin does not track (and, for a match, the
product record and web server list its ref needs), so an account with many orders placed
elsewhere pays for a lookup in calls; lost replies are rare enough for that. An older untracked
order with the same CSR matches too: several matches are left to a person.

Subscriptions. Since certificates were capped (CA/B Forum SC-081v3, ``panel_ssl_plugin.lifetimes``),
the period bought is a subscription spanning several certificates. A status reply carries it as
``begin_date``/``end_date`` beside the current certificate's ``valid_from``/``valid_till``:
GoGetSSL's own WHMCS module (github.com/gogetssl/whmcs-addon) shows those two as the
subscription's start and end, moves the service's due date to ``end_date``, and reads all four
as MySQL dates (``YYYY-MM-DD``, or ``YYYY-MM-DD HH:MM:SS``) through WHMCS's ``fromMySQLDate``.
They are read here the same way, in UTC, a date alone being midnight; an empty or absent one is
``None`` (the order service then estimates). The certificate's own dates are taken from the
certificate when the reply carries it (to the second), else from ``valid_from``/``valid_till``.
A free replacement is a reissue of the same order (``/orders/ssl/reissue/{id}``); the order
shows status ``reissue`` until the new certificate is ``active``, which maps to pending.

Revocation: neither GoGetSSL's API documentation (github.com/gogetssl/api: its client lists
every call) nor its WHMCS module has a revoke call; :meth:`Provider.revoke` therefore refuses and
says to revoke in GoGetSSL's dashboard (``cancel_ssl_order`` is for orders not issued yet).

Readings the public documentation leaves open (marked *unverified*; tests/providers/gogetssl_sim.py
follows the same readings):

- *unverified* SAN products carry ``max_san`` (names allowed besides the main domain),
  ``san_included`` (names in the base price) and ``prices.san`` (price of each further name, keyed
  by period like ``prices.vendor``). They become one add-on, ``extra_san``, whose price lists every
  period. The number of SANs is implied by the names ordered, so ``OrderRequest.addons`` is not
  sent.
- *unverified* Prices carry no currency; the account's currency comes from
  ``GET /account/balance/`` (``{"balance": ..., "currency": ...}``), asked once per adapter
  (again with the next product list when it could not be had).
- *unverified* Every product validates by e-mail, HTTP file and DNS CNAME, except wildcards, which
  cannot use HTTP (CA/Browser Forum rules).
- *unverified* Error replies may name a ``field`` and a ``code``; ``message`` is the headline and
  ``description`` the detail, shown together. Nested descriptions are flattened into words.
- *unverified* A SAN without an approver of its own (orders placed before the form asked per
  name, and their renewals) gets the primary's mailbox at its own name
  (:meth:`OrderRequest.approver_for`): admin@ for admin@, which CAs accept for every name.
- *unverified* ``approver_method`` in an order or reissue reply is
  ``{"http": {"link", "filename", "content"}}`` or ``{"dns": {"record": "<name> CNAME <value>"}}``
  for the main domain. The hash is the CSR's, the same for every name, so the task of each SAN is
  the main domain's with the name swapped. The status reply carries the same ``approver_method``
  for the order's current CSR, so an order found or adopted gets the tasks its create call would
  have returned.
- *unverified* The order status reply explains itself in ``status_description``; dates are ISO
  (``YYYY-MM-DD``, optionally with a time) in UTC. ``csr_code`` is the PEM of the order's current
  CSR (the new one after a reissue); empty or unreadable, it matches no CSR.
- *unverified* The listing's order is not known (newest first is likely), so it is read to the
  end. Public clients describe ``count`` both as the account's total and as the records of the
  page; it ends the listing only when it exceeds the page (so it cannot be the page's), otherwise
  pages are asked until one comes back empty. A page of orders all seen before means the listing
  does not advance: GoGetSSL cannot tell then.
- *unverified* The batch reply is ``{"certificates": [{"order_id", "status", ...}]}`` without
  certificates, so orders it reports active are then asked for one by one; its rows may carry
  ``begin_date``/``end_date`` too, read like the status reply's when they do. Not every account
  may use the batch call: one GoGetSSL refuses ("Unknown method") or answers in another shape
  is replaced by a status call per order.
- *unverified* The renew call takes exactly a new order's payload; the previous order is not named.
- *unverified* Web server names are matched loosely: Nginx maps to Apache/mod_ssl where GoGetSSL
  lists no Nginx (the same PEM files), and anything unmatched to "Other".
- *unverified* ``org_region`` is the order's state or province, which the form requires for
  OV/EV products; GoGetSSL's sample sends "None" where there is none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import wtforms
from cryptography.hazmat.primitives import serialization
from wtforms import validators

from panel_ssl_plugin import keys
from panel_ssl_plugin.providers import caa
from panel_ssl_plugin.providers.base import (
    SERVER_TYPES,
    Addon,
    Contact,
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
    ValidationTask,
)
from panel_ssl_plugin.providers.http import call, json_body, make_session

log = logging.getLogger(__name__)

NAME = "GoGetSSL"
URL_PRESETS: dict[str, str] = {
    "production": "https://my.gogetssl.com/api",
    "sandbox": "https://sandbox.gogetssl.com/api",
}
DEFAULT_TIMEOUT = 30.0

STATUS_MAP: dict[str, OrderState] = {
    "new_order": OrderState.PENDING,
    "processing": OrderState.PENDING,
    "pending": OrderState.PENDING,
    "incomplete": OrderState.PENDING,
    "unpaid": OrderState.PENDING,
    "reissue": OrderState.PENDING,
    "active": OrderState.ISSUED,
    "rejected": OrderState.FAILED,
    "cancelled": OrderState.CANCELLED,
    "expired": OrderState.EXPIRED,
}

# Web server list 1 belongs to the Comodo/Sectigo brands, list 2 to every other brand.
SECTIGO_BRANDS = frozenset({"comodo", "sectigo"})
# The CA behind each brand GoGetSSL sells, by its CAA issuer names.
CAA_BY_BRAND: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(SECTIGO_BRANDS, caa.SECTIGO),
    **dict.fromkeys(("digicert", "geotrust", "rapidssl", "thawte", "symantec"), caa.DIGICERT),
    "certum": caa.CERTUM,
}

# Our server type key → fragments of GoGetSSL's web server names (lowercase, letters and digits
# only), best first; "other" is always the last resort.
SERVER_NAME_HINTS: dict[str, tuple[str, ...]] = {
    "apache": ("apachemodssl", "apache"),
    "apache_modssl": ("apachemodssl", "apache"),
    "nginx": ("nginx", "apachemodssl", "apache"),
    "iis": ("iis7", "iis5", "iis"),
    "tomcat": ("tomcat",),
    "cpanel": ("cpanel",),
    "plesk": ("plesk",),
}

# GoGetSSL contact field suffix → Contact attribute; sent once as admin_* and once as tech_*.
CONTACT_FIELDS: dict[str, str] = {
    "firstname": "first_name",
    "lastname": "last_name",
    "organization": "organization",
    "title": "title",
    "phone": "phone",
    "email": "email",
    "addressline1": "address",
    "city": "city",
    "country": "country",
    "postalcode": "postal_code",
    "region": "state",
}


class GoGetSSLSettingsForm(wtforms.Form):
    """A GoGetSSL API account; the URL is free so a sandbox or a test simulator can stand in."""

    base_url = wtforms.URLField(
        "API base URL",
        [validators.InputRequired(), validators.URL(require_tld=False)],
        default=URL_PRESETS["production"],
        description="Production: {production} · Sandbox: {sandbox}".format(**URL_PRESETS),
    )
    username = wtforms.StringField("Username", [validators.InputRequired()])
    password = wtforms.PasswordField("API password", [validators.InputRequired()])
    timeout = wtforms.FloatField(
        "Request timeout (seconds)",
        [validators.Optional(), validators.NumberRange(min=0.1, max=300)],
        default=DEFAULT_TIMEOUT,
    )


class GoGetSSLProvider(Provider):
    """Orders certificates through a GoGetSSL reseller account."""

    key = "gogetssl"
    name = "GoGetSSL"
    SettingsForm = GoGetSSLSettingsForm
    secret_fields = ("password",)
    caa_identifiers = CAA_BY_BRAND
    url_presets: ClassVar[dict[str, str]] = URL_PRESETS
    listing_limit = 100  # orders per page of GET /orders/ssl/all

    def __init__(self, settings: dict[str, Any], host: ProviderHost):
        super().__init__(settings, host)
        self._session = make_session()
        self._auth_key: str | None = None
        self._currency: str | None = None
        self._product_records: dict[str, dict] = {}
        self._webservers: dict[int, list] = {}

    # --- the Provider interface -----------------------------------------------------------

    def test_connection(self) -> str:
        """Logs in, lists products and shows the balance, which is what an admin checks first;
        a balance GoGetSSL will not give is said, and does not fail the test."""
        summary = super().test_connection()
        try:
            balance = self._api("GET", "/account/balance/")
        except ProviderError as error:
            return f"{summary} Balance: unknown ({NAME}'s balance: {error})."
        self._currency = _text(balance.get("currency"))
        return f"{summary} Balance: {_money(balance.get('balance'), self._currency)}."

    def products(self) -> list[Product]:
        with _naming("product list"):
            records = _list(self._api("GET", "/products/ssl/"), "products")
        currency = self._account_currency()
        try:
            products = [_product(record, currency) for record in records]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ProviderError(f"{NAME} sent a product this plugin cannot read.") from error
        self._product_records.update({str(record["id"]): record for record in records})
        return products

    def dcv_emails(self, domain: str) -> list[str]:
        """Merges the per-brand lists: the user picks an address, not a brand."""
        body = self._api("POST", "/tools/domain/emails/", {"domain": domain.removeprefix("*.")})
        lists = [value for key, value in body.items() if key.endswith("ApprovalEmails")]
        if not lists:
            raise ProviderError(f"{NAME} sent no approver e-mail list for {domain}.")
        unique: dict[str, str] = {}
        for entries in lists:
            for email in entries if isinstance(entries, list) else ():
                if isinstance(email, str) and email.strip():
                    unique.setdefault(email.strip().lower(), email.strip())
        return list(unique.values())

    def place_order(self, request: OrderRequest) -> ProviderRef:
        """Sent once: a repeated POST after a fault could buy a second certificate."""
        return self._order("/orders/add_ssl_order/", request)

    def renew(self, request: OrderRequest, previous: ProviderRef) -> ProviderRef:
        """GoGetSSL renews through a new order on its renewal endpoint (see the readings)."""
        return self._order("/orders/add_ssl_renew_order/", request)

    def status(self, ref: ProviderRef) -> ProviderStatus:
        return _status(self._api("GET", f"/orders/status/{ref.order_id}"))

    def statuses(self, refs: list[ProviderRef]) -> dict[str, ProviderStatus | ProviderError]:
        """One batch call for all, then a full call only for orders that turned active.

        A batch call GoGetSSL refuses or answers in a shape not understood (see the module
        docstring) costs nothing but the call: each order is asked on its own instead. When
        GoGetSSL is unavailable, every order waits for its retry rather than asking it N times.
        """
        if not refs:
            return {}
        try:
            body = self._api("POST", "/orders/statuses/", {"cids": _join(r.order_id for r in refs)})
            rows = {_text(row.get("order_id")): row for row in _list(body, "certificates")}
        except ProviderUnavailable as error:
            return dict.fromkeys((ref.order_id for ref in refs), error)
        except ProviderError as error:
            log.info("%s batch status call failed (%s); asking order by order", NAME, error)
            return super().statuses(refs)
        return {ref.order_id: self._batch_entry(ref, rows.get(ref.order_id)) for ref in refs}

    def reissue(self, ref: ProviderRef, csr: str, *, replaces: str | None = None) -> ProviderRef:
        """Repeats the order's validation choices, which GoGetSSL asks for again on reissue.
        Free inside the subscription; ``replaces`` (ACME's) has no place in GoGetSSL's API."""
        payload = {"csr": csr, **ref.data.get("dcv", {})}
        reply = self._api("POST", f"/orders/ssl/reissue/{ref.order_id}", payload, creates=True)
        return _reissued(ref, reply)

    def cancel(self, ref: ProviderRef, reason: str = "") -> None:
        reason = reason or "Cancelled from the hosting panel."
        self._api("POST", "/orders/cancel_ssl_order/", {"order_id": ref.order_id, "reason": reason})

    def resend_approval(self, ref: ProviderRef) -> None:
        """E-mail validation: the approval mail again. HTTP/DNS validation: nothing to send;
        GoGetSSL looks for the published record by itself, so "validate now" asks nothing."""
        if ref.validation and all(t.method is not DcvMethod.EMAIL for t in ref.validation):
            return
        self._api("POST", f"/orders/ssl/resend_validation_email/{ref.order_id}")

    def find_order(self, placement: Placement) -> ProviderRef | None:
        """Looks the order up by its CSR (see the module docstring for what that relies on and
        costs). Whatever GoGetSSL answers that cannot be read, or refuses, means it cannot tell;
        only a transport failure is "ask again later"."""
        wanted = _csr_der(placement.request.csr)
        if wanted is None:
            raise ProviderOutcomeUnknown("The CSR that was sent cannot be read to look it up.")
        try:
            if placement.kind is PlacementKind.REISSUE:
                return self._find_reissue(placement, wanted)
            return self._find_placed(placement, wanted)
        except (ProviderUnavailable, ProviderOutcomeUnknown):
            raise
        except ProviderError as error:
            raise ProviderOutcomeUnknown(
                f"{NAME} cannot tell whether the order exists: {error}"
            ) from error

    def adopt_order(self, placement: Placement, order_id: str) -> ProviderRef:
        """Built from the order's status reply exactly as find_order builds a ref it found, so
        HTTP/DNS tasks are known; an id GoGetSSL does not know is refused here already."""
        return self._found(placement, order_id, self._api("GET", f"/orders/status/{order_id}"))

    # --- orders ------------------------------------------------------------------------------

    def _order(self, path: str, request: OrderRequest) -> ProviderRef:
        """Places a new or renewal order; after GoGetSSL has accepted it nothing may raise but
        a missing order number (an unknown outcome), or the caller would lose a paid order."""
        record = self._product_record(request.product_id)
        dcv = self._dcv(request)
        payload = {
            "product_id": request.product_id,
            "period": str(request.period_months),
            "csr": request.csr,
            "server_count": "-1",
            **dcv,
            **_contact_fields(request.contact),
            **(_org_fields(request) if _flag(record.get("org_required")) else {}),
        }
        reply = self._api("POST", path, payload, creates=True)
        order_id = _text(reply.get("order_id"))
        if not order_id:
            raise ProviderOutcomeUnknown(
                f"{NAME} accepted the order but sent no order number; it is looked up before "
                "anything is sent again."
            )
        return _placed(request, order_id, dcv, reply)

    def _dcv(self, request: OrderRequest) -> dict[str, str]:
        """The validation choices an order is placed with; its ref keeps them, since a reissue
        must send them again."""
        record = self._product_record(request.product_id)
        return {
            "webserver_type": self._webserver_type(_text(record.get("brand")), request.server_type),
            **_dcv_fields(request),
        }

    def _found(self, placement: Placement, order_id: str, status: dict) -> ProviderRef:
        """The ref the create call of ``placement`` would have returned for ``order_id``, from
        the order's status reply (it carries the same ``approver_method`` as the create reply)."""
        if placement.kind is PlacementKind.REISSUE:
            return _reissued(ProviderRef(order_id, _previous(placement).data), status)
        return _placed(placement.request, order_id, self._dcv(placement.request), status)

    def _find_reissue(self, placement: Placement, wanted: bytes) -> ProviderRef | None:
        """GoGetSSL reissues under the same order id: the reissue happened when that order's
        CSR is the new one."""
        order_id = _previous(placement).order_id
        status = self._api("GET", f"/orders/status/{order_id}")
        if _csr_der(status.get("csr_code")) != wanted:
            return None
        return self._found(placement, order_id, status)

    def _find_placed(self, placement: Placement, wanted: bytes) -> ProviderRef | None:
        """The one untracked order carrying the CSR sent; several are for a person to sort, and
        so is none when an untracked order's CSR could not be read (it may be this one)."""
        matches: dict[str, dict] = {}
        unreadable: list[str] = []
        for order_id in self._listed_order_ids():
            if order_id in placement.tracked:
                continue
            status = self._api("GET", f"/orders/status/{order_id}")
            csr = _csr_der(status.get("csr_code"))
            if csr == wanted:
                matches[order_id] = status
            elif csr is None:
                unreadable.append(order_id)
        if not matches and unreadable:
            raise ProviderOutcomeUnknown(
                f"{NAME} sent no readable CSR for orders {', '.join(unreadable)}, which the plugin "
                f"does not track; check them at {NAME}, then say whether one is this order."
            )
        if len(matches) > 1:
            raise ProviderOutcomeUnknown(
                f"{NAME} holds several orders with this CSR that the plugin does not track "
                f"({', '.join(matches)}); check them at {NAME}, then say which one is this order."
            )
        if not matches:
            return None
        ((order_id, status),) = matches.items()
        return self._found(placement, order_id, status)

    def _listed_order_ids(self) -> list[str]:
        """Every order id of the account, page by page to the end (see the module docstring)."""
        ids: dict[str, None] = {}
        offset = 0
        while True:
            query = {"limit": str(self.listing_limit), "offset": str(offset)}
            page, count = _listing_page(self._api("GET", "/orders/ssl/all", query=query))
            if page and ids.keys() >= set(page):
                raise ProviderError(f"{NAME} listed the same orders again at offset {offset}.")
            ids.update(dict.fromkeys(page))
            offset += len(page)
            if not page or offset >= count > len(page):
                return list(ids)

    def _product_record(self, product_id: str) -> dict:
        """Brand and org_required decide the web server list and the org fields of an order."""
        if product_id not in self._product_records:
            product = self._api("GET", f"/products/ssl/{product_id}").get("product")
            if not isinstance(product, dict):
                raise _unexpected()
            self._product_records[product_id] = product
        return self._product_records[product_id]

    def _webserver_type(self, brand: str, server_type: str) -> str:
        kind = 1 if brand.lower() in SECTIGO_BRANDS else 2
        if kind not in self._webservers:
            self._webservers[kind] = _list(
                self._api("GET", f"/tools/webservers/{kind}"), "webservers"
            )
        return _pick_webserver(self._webservers[kind], server_type)

    def _batch_entry(self, ref: ProviderRef, row: dict | None) -> ProviderStatus | ProviderError:
        if row is None:
            return ProviderError(f"{NAME} did not report on order {ref.order_id}.")
        try:
            status = _status(row)
            if status.raw_status == "active" and status.certificate is None:
                return self.status(ref)
            return status
        except ProviderError as error:
            return error

    # --- the API plumbing --------------------------------------------------------------------

    def _account_currency(self) -> str:
        """The currency of the prices; empty (prices without one) when GoGetSSL will not say,
        since no order depends on it."""
        if self._currency is None:
            try:
                self._currency = _text(self._api("GET", "/account/balance/").get("currency"))
            except ProviderError as error:
                log.info("%s balance unavailable, prices without currency: %s", NAME, error)
                return ""
        return self._currency

    def _api(
        self,
        method: str,
        path: str,
        data: dict[str, str] | None = None,
        *,
        query: dict[str, str] | None = None,
        creates: bool = False,
    ) -> dict:
        """One authenticated call; an expired key (403) earns one fresh login and one repeat.
        ``creates`` marks a call the reseller pays for (see providers/http.py)."""
        response = self._send_authenticated(method, path, data, query, creates)
        if response.status_code == 403:
            log.info("%s auth key refused; logging in again", NAME)
            self._auth_key = None
            response = self._send_authenticated(method, path, data, query, creates)
        return _reply(response, creates)

    def _send_authenticated(
        self,
        method: str,
        path: str,
        data: dict[str, str] | None,
        query: dict[str, str] | None,
        creates: bool,
    ) -> requests.Response:
        if self._auth_key is None:
            self._auth_key = self._login()
        params = {**(query or {}), "auth_key": self._auth_key}
        return self._send(method, path, data, params, creates=creates)

    def _login(self) -> str:
        credentials = {
            "user": self.settings.get("username", ""),
            "pass": self.settings.get("password", ""),
        }
        key = _reply(self._send("POST", "/auth/", credentials)).get("key")
        if not isinstance(key, str) or not key:
            raise ProviderError(f"{NAME} accepted the login but sent no key.")
        return key

    def _send(
        self,
        method: str,
        path: str,
        data: dict[str, str] | None,
        params: dict[str, str] | None = None,
        *,
        creates: bool = False,
    ) -> requests.Response:
        url = str(self.settings.get("base_url") or URL_PRESETS["production"]).rstrip("/") + path
        seconds = float(self.settings.get("timeout") or DEFAULT_TIMEOUT)
        return call(
            self._session,
            method,
            url,
            provider=NAME,
            creates=creates,
            timeout=(min(5.0, seconds), seconds),
            data=data,
            params=params,
        )


# --- replies -------------------------------------------------------------------------------------


def _reply(response: requests.Response, creates: bool = False) -> dict:
    """The JSON body, or ProviderRejected when GoGetSSL said no (by flag or by HTTP status)."""
    body = json_body(response, NAME, creates=creates)
    if body.get("error") or response.status_code >= 400:
        raise _rejection(body, response.status_code)
    return body


@contextmanager
def _naming(call: str) -> Iterator[None]:
    """Errors of the calls inside say which call failed, in an admin's words; each keeps its
    kind (refused, unavailable, ...)."""
    try:
        yield
    except ProviderError as error:
        error.args = (f"{NAME}'s {call}: {error}",)
        raise


def _rejection(body: dict, http_status: int) -> ProviderRejected:
    words = [_text(body.get("message")), _text(body.get("description"))]
    message = ": ".join(dict.fromkeys(w for w in words if w))
    return ProviderRejected(
        message or f"{NAME} refused the request (HTTP {http_status}).",
        code=_text(body.get("code")) or None,
        field=_text(body.get("field")) or None,
    )


def _unexpected() -> ProviderError:
    return ProviderError(f"{NAME} sent an unexpected reply.")


def _listing_page(body: dict) -> tuple[list[str], int]:
    """The order ids of one page of ``GET /orders/ssl/all`` and its ``count`` (0 when absent:
    the listing then runs to an empty page)."""
    ids = [_text(row.get("order_id")) for row in _list(body, "orders")]
    if not all(ids):
        raise _unexpected()
    count = _text(body.get("count"))
    return ids, int(count) if count.isdigit() else 0


def _previous(placement: Placement) -> ProviderRef:
    if placement.previous is None:
        raise ProviderError(f"The {placement.kind} does not name the order it follows.")
    return placement.previous


def _list(body: dict, key: str) -> list[dict]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _unexpected()
    return value


def _text(value: Any) -> str:
    """Words from whatever a reply holds, so a user never sees "[object Object]" or "None"."""
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "; ".join(_text(item) for item in value)
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()


def _flag(value: Any) -> bool:
    """GoGetSSL's flags arrive as 0/1, "0"/"1" or booleans."""
    if isinstance(value, bool):
        return value
    return _text(value).lower() in {"1", "true"}


def _date(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(_text(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _pem(value: Any) -> str | None:
    text = _text(value)
    return f"{text}\n" if text else None


def _join(values: Iterable[str]) -> str:
    return ",".join(values)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _bare(name: str) -> str:
    return name.removeprefix("*.")


def _money(amount: Any, currency: str) -> str:
    return f"{float(amount):.2f} {currency}".strip()


# --- products ------------------------------------------------------------------------------------


def _product(record: dict, currency: str) -> Product:
    max_period = int(record["max_period"])
    vendor = {int(period): price for period, price in record["prices"]["vendor"].items()}
    periods = tuple(sorted(p for p in vendor if p <= max_period))
    wildcard = _flag(record.get("wildcard_enabled"))
    org_required = _flag(record.get("org_required"))
    max_sans = int(record.get("max_san") or 0) if _flag(record.get("san_enabled")) else 0
    return Product(
        id=_text(record["id"]),
        name=_text(record["product"]),
        brand=_text(record.get("brand")),
        validation="ov" if org_required else "dv",
        periods=periods,
        prices={p: _money(vendor[p], currency) for p in periods},
        max_sans=max_sans,
        wildcard=wildcard,
        org_required=org_required,
        dcv_methods=(DcvMethod.EMAIL, DcvMethod.DNS)
        if wildcard
        else (DcvMethod.EMAIL, DcvMethod.HTTP, DcvMethod.DNS),
        addons=_san_addons(record, periods, max_sans, currency),
    )


def _san_addons(
    record: dict, periods: tuple[int, ...], max_sans: int, currency: str
) -> tuple[Addon, ...]:
    san_prices = {int(p): price for p, price in (record["prices"].get("san") or {}).items()}
    offered = [p for p in periods if p in san_prices]
    if not max_sans or not offered:
        return ()
    included = int(record.get("san_included") or 0)
    return (
        Addon(
            id="extra_san",
            name="Additional domain name (SAN)",
            price=", ".join(f"{p} months: {_money(san_prices[p], currency)}" for p in offered),
            description=(
                f"Up to {max_sans} names besides the main domain; the first {included} are "
                "included in the certificate's price, each further name costs this much."
            ),
        ),
    )


# --- order fields --------------------------------------------------------------------------------


def _pick_webserver(servers: list[dict], server_type: str) -> str:
    names = {re.sub(r"[^a-z0-9]", "", _text(s.get("software")).lower()): s for s in servers}
    for hint in (*SERVER_NAME_HINTS.get(server_type, ()), "other"):
        for name, server in names.items():
            if hint in name:
                return _text(server.get("id"))
    label = SERVER_TYPES.get(server_type, server_type)
    raise ProviderError(f"{NAME} lists no web server type matching {label}.")


def _dcv_fields(request: OrderRequest) -> dict[str, str]:
    method = request.dcv_method.value
    if request.dcv_method is DcvMethod.EMAIL:
        per_san = [request.approver_for(san) for san in request.sans]
    else:
        per_san = [method] * len(request.sans)
    fields = {
        "dcv_method": method,
        "approver_email": request.approver_for(request.domain),
        "dns_names": _join(request.sans),
        "approver_emails": _join(per_san) if all(per_san) else "",
    }
    return {key: value for key, value in fields.items() if value}


def _contact_fields(contact: Contact | None) -> dict[str, str]:
    if contact is None:
        return {}
    values = {suffix: getattr(contact, attr) for suffix, attr in CONTACT_FIELDS.items()}
    return {
        f"{role}_{suffix}": value
        for role in ("admin", "tech")
        for suffix, value in values.items()
        if value
    }


def _org_fields(request: OrderRequest) -> dict[str, str]:
    address = request.organization_address
    fields = {
        "org_name": request.organization,
        "org_division": request.unit,
        "org_addressline1": address.street,
        "org_city": address.city,
        "org_country": request.country,
        "org_phone": address.phone,
        "org_postalcode": address.postal_code,
        "org_region": request.state,
    }
    return {key: value for key, value in fields.items() if value}


# --- refs, status and validation ----------------------------------------------------------------


def _placed(request: OrderRequest, order_id: str, dcv: dict[str, str], reply: dict) -> ProviderRef:
    """The ref of a new or renewal order, from its create reply or its status reply; never
    raises, since the order exists by now."""
    tasks = _validation_tasks(reply, request.dcv_method, (request.domain, *request.sans))
    return ProviderRef(order_id, {"domain": request.domain, "dcv": dcv}, tasks)


def _reissued(ref: ProviderRef, reply: dict) -> ProviderRef:
    """The ref of a reissued order: the same order and data, the tasks of the new CSR."""
    dcv = ref.data.get("dcv", {})
    names = (ref.data.get("domain", ""), *_split(dcv.get("dns_names", "")))
    method = DcvMethod(dcv.get("dcv_method", DcvMethod.EMAIL))
    return ProviderRef(ref.order_id, dict(ref.data), _validation_tasks(reply, method, names))


def _csr_der(pem: Any) -> bytes | None:
    """A CSR as DER, so PEM wrapping and whitespace do not matter; None when it does not parse."""
    try:
        return keys.load_csr(_text(pem)).public_bytes(serialization.Encoding.DER)
    except keys.InvalidMaterial:
        return None


def _status(body: dict) -> ProviderStatus:
    raw = _text(body.get("status"))
    state = STATUS_MAP.get(raw)
    if state is None:
        raise ProviderError(f"{NAME} reported an order status this plugin does not know: {raw!r}.")
    detail = _text(body.get("status_description"))
    certificate = _pem(body.get("crt_code")) if state is OrderState.ISSUED else None
    if state is OrderState.ISSUED and certificate is None:
        state = OrderState.PENDING
        detail = detail or f"Issued; {NAME} has not released the certificate yet."
    not_before, not_after = _validity(certificate, body)
    return ProviderStatus(
        state=state,
        raw_status=raw,
        detail=detail,
        certificate=certificate,
        chain=_pem(body.get("ca_code")) if certificate else None,
        not_before=not_before,
        not_after=not_after,
        subscription_starts=_date(body.get("begin_date")),
        subscription_ends=_date(body.get("end_date")),
    )


def _validity(certificate: str | None, body: dict) -> tuple[datetime | None, datetime | None]:
    """The certificate's dates from the certificate itself (to the second) when it came, else
    the reply's ``valid_from``/``valid_till`` (days)."""
    try:
        leaf = keys.load_certificates(certificate)[0] if certificate else None
    except keys.InvalidMaterial:
        leaf = None
    if leaf is None:
        return _date(body.get("valid_from")), _date(body.get("valid_till"))
    return leaf.not_valid_before_utc, leaf.not_valid_after_utc


def _validation_tasks(
    reply: dict, method: DcvMethod, names: tuple[str, ...]
) -> tuple[ValidationTask, ...]:
    """Tasks for every name from the main domain's record; never raises, since the order exists
    by now and an odd record must not lose it (the status call shows what is pending)."""
    methods = reply.get("approver_method")
    record = methods.get(method.value) if isinstance(methods, dict) else None
    if method is DcvMethod.EMAIL or not isinstance(record, dict):
        return ()
    build = _http_task if method is DcvMethod.HTTP else _dns_task
    tasks = (build(record, _bare(name)) for name in names if name)
    return tuple(task for task in tasks if task is not None)


def _http_task(record: dict, domain: str) -> ValidationTask | None:
    link, content = _text(record.get("link")), _text(record.get("content"))
    if not link or not content:
        return None
    location = f"http://{domain}{urlsplit(link).path}"
    return ValidationTask(domain=domain, method=DcvMethod.HTTP, location=location, value=content)


def _dns_task(record: dict, domain: str) -> ValidationTask | None:
    parts = _text(record.get("record")).split()
    if len(parts) != 3:
        return None
    name, record_type, value = parts
    return ValidationTask(
        domain=domain,
        method=DcvMethod.DNS,
        location=f"{name.split('.', 1)[0]}.{domain}",
        value=value.rstrip("."),
        record_type=record_type.upper(),
    )
