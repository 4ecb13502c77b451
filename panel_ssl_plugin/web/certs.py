"""The List SSL Certs popup and its details page: status, check status, approval, cancel, and
an admin's answer for an order whose outcome is unknown.

Users of other panels distrust a certificate list that drifts from the provider, so every row
shows the provider's own status beside ours and when it was last asked, and "check status" asks
now. Every view finds its order under the host's permission (pages.py); every POST checks its
own CSRF token, as the order popup does. Pages work without JavaScript: the details tabs are
links. Renewal and reissue are followups.py's pages, downloads files.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import flask
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from panel_ssl_plugin import names
from panel_ssl_plugin.accounts import UnknownProviderAccount
from panel_ssl_plugin.downloads import (
    MIN_PASSWORD,
    DownloadRefused,
    Material,
    bundle_needs_password,
    install_note,
)
from panel_ssl_plugin.followups import REISSUABLE, REISSUE, RENEWABLE, RENEWAL, Chain
from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.orders import CANCELLABLE, OrderNotFound, OrderRejected
from panel_ssl_plugin.providers.base import SERVER_TYPES, DcvMethod, OrderState, ProviderError
from panel_ssl_plugin.store import EventRecord, OrderRecord, utcnow
from panel_ssl_plugin.web import allowed, current_runtime, query_number, require
from panel_ssl_plugin.web.admin import ADMIN
from panel_ssl_plugin.web.files import LABELS as DOWNLOAD_LABELS
from panel_ssl_plugin.web.files import PUBLIC_FORMATS
from panel_ssl_plugin.web.followups import ReissueForm
from panel_ssl_plugin.web.forms import (
    DCV_LABELS,
    ButtonForm,
    PlainText,
    new_idempotency_key,
    period_label,
    posted,
)
from panel_ssl_plugin.web.pages import (
    VIEW,
    details_url,
    flash_back,
    here,
    list_url,
    order_for,
)
from panel_ssl_plugin.web.views import ORDER

PER_PAGE = 20
SOON_DAYS = 30
MAX_REASON = 500
TABS = {"status": "Status", "certificate": "Certificate"}
# the list's columns: (sort key of orders.account_page, or None, heading)
COLUMNS = (
    ("domain", "Domain"),
    (None, "Product"),
    ("status", "Status"),
    ("expires", "Expires"),
    ("created", "Ordered"),
    (None, "Actions"),
)
SORTS = {key for key, _label in COLUMNS if key}
# what the customer does next, by state; pending depends on how the domain is validated
NEXT_STEPS = {
    OrderState.DRAFT: "The provider refused this order (see above); order again with corrected "
    "values.",
    OrderState.SUBMITTED: "The order is saved but the provider has not taken it yet; we retry "
    "automatically. Press Check status to try now.",
    OrderState.UNKNOWN: "We sent this order to the provider but got no usable answer. We are "
    "asking the provider whether it arrived; it will not be placed twice. Press Check status to "
    "ask now.",
    OrderState.ISSUED: "The certificate is issued: download it on the Certificate tab.",
    OrderState.FAILED: "The provider did not issue this certificate (see above); order again.",
    OrderState.CANCELLED: "This order is cancelled; nothing more will happen to it.",
    OrderState.REVOKED: "This certificate is revoked; order a new one.",
    OrderState.EXPIRED: "This certificate has expired; renew it to get a new one.",
}
PENDING_STEPS = {
    DcvMethod.EMAIL: "The approver must open the link in the approval email. No mail arrived? "
    "Send it again.",
    DcvMethod.HTTP: "Publish the file below on the website, then tell the provider to validate.",
    DcvMethod.DNS: "Create the DNS records below, then tell the provider to validate.",
}
# Orders that ended without a certificate: "order again" starts a new one from their values.
REORDERABLE = frozenset({OrderState.CANCELLED, OrderState.FAILED, OrderState.DRAFT})
RESEND_LABELS = {
    DcvMethod.EMAIL: "Resend approval email",
    DcvMethod.HTTP: "I have published the records — validate now",
    DcvMethod.DNS: "I have published the records — validate now",
}


def register(blueprint: flask.Blueprint) -> None:
    """Add the certificate routes to the plugin's blueprint."""
    add = blueprint.add_url_rule
    add("/accounts/<ssl_account:account_id>/certs", "certs", certs)
    add("/certs/<ssl_id:order_id>", "cert", cert)
    add("/certs/<ssl_id:order_id>/check-status", "cert_check", check_status, methods=["POST"])
    add("/certs/<ssl_id:order_id>/resend-approval", "cert_resend", resend, methods=["POST"])
    add("/certs/<ssl_id:order_id>/cancel", "cert_cancel", cancel, methods=["POST"])
    add("/certs/<ssl_id:order_id>/resolve", "cert_resolve", resolve, methods=["POST"])
    add("/certs/<ssl_id:order_id>/reveal-key", "cert_reveal_key", reveal_key, methods=["POST"])
    add(
        "/providers/<ssl_id:provider_account_id>/callback/<token>",
        "provider_callback",
        provider_callback,
    )


# --- forms ------------------------------------------------------------------------------------


class CancelForm(FlaskForm):
    reason = TextAreaField("Reason", [DataRequired(), Length(max=MAX_REASON)])


class ResolveForm(FlaskForm):
    """An admin's answer for an order of unknown outcome: the provider's order id when it
    exists there; empty with ``absent`` when it does not."""

    provider_order_id = StringField("Provider order id", [Length(max=100), PlainText()])


# --- words for times --------------------------------------------------------------------------


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" + ("" if number == 1 else "s")


def ago(moment: datetime | None, now: datetime) -> str:
    """ "never", "just now", "5 minutes ago": how fresh a status is, at a glance."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{_count(seconds // size, unit)} ago"
    return "just now"


def days_left(not_after: datetime | None, now: datetime) -> tuple[str, str]:
    """The expiry in days as words, and a tone (``soon``, ``past``) for the row's colour."""
    if not_after is None:
        return "", ""
    days = (not_after - now).days
    if days < 0:
        return f"expired {_count(-days, 'day')} ago", "past"
    if days == 0:
        return "expires today", "soon"
    return f"{_count(days, 'day')} left", "soon" if days <= SOON_DAYS else ""


# --- view models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertRow:
    """One certificate as the list and the details page show it."""

    id: int
    domain: str
    product: str
    provider: str
    status: str
    provider_status: str
    detail: str
    ordered: str
    expires: str
    days_left: str
    expiry_tone: str
    last_checked: str
    last_checked_at: str
    follows: str  # "renewal of #3", "reissue of #3"; "" for an original order
    superseded_by: int | None  # the chain's current certificate, when this one is older
    renew_blocked: str  # why there is no renew link ("renewal #7 pending"), "" when there is one
    can_renew: bool
    reissue_blocked: str  # why there is no reissue form ("reissue #8 pending"), or ""
    can_reissue: bool

    @property
    def badge(self) -> str:
        return f"badge badge-{self.status}"


def _cert_row(
    order: OrderRecord, providers: dict[int, str], now: datetime, chain: Chain
) -> CertRow:
    """``chain``: the order's renewal and reissue chain, for what supersedes or blocks it."""
    left, tone = days_left(order.not_after, now)
    current = chain.superseded_by(order)
    renewing, reissuing = chain.in_flight(RENEWAL), chain.in_flight(REISSUE)
    followable = current is None and order.id not in (_id(renewing), _id(reissuing))
    return CertRow(
        id=order.id,
        domain=names.display_domain(order.domain),
        product=order.product_name or order.product_id,
        provider=providers.get(order.provider_account_id, ""),
        status=order.status,
        provider_status=order.provider_status,
        detail=order.status_detail,
        ordered=f"{order.created_at:%Y-%m-%d}",
        expires=f"{order.not_after:%Y-%m-%d}" if order.not_after else "",
        days_left=left,
        expiry_tone=tone,
        last_checked=ago(order.last_checked_at, now),
        last_checked_at=f"{order.last_checked_at:%Y-%m-%d %H:%M} UTC"
        if order.last_checked_at
        else "",
        follows=_follows(order),
        superseded_by=current.id if current else None,
        renew_blocked=_blocked(renewing, RENEWAL) if followable else "",
        can_renew=followable and order.status in RENEWABLE and renewing is None,
        reissue_blocked=_blocked(reissuing, REISSUE) if followable else "",
        can_reissue=followable and order.status in REISSUABLE and reissuing is None,
    )


def _id(order: OrderRecord | None) -> int | None:
    return order.id if order else None


def _blocked(follow_up: OrderRecord | None, kind) -> str:
    return f"{kind.noun} #{follow_up.id} {follow_up.status}" if follow_up else ""


def _follows(order: OrderRecord) -> str:
    if order.follows is None:
        return ""
    kind = REISSUE if order.reissue_of is not None else RENEWAL
    return f"{kind.noun} of #{order.follows}"


def _providers() -> dict[int, str]:
    return {account.id: account.label for account in current_runtime().accounts.all()}


@dataclass(frozen=True)
class Heading:
    """A column heading; a sortable one links to itself, flipping the direction when current."""

    label: str
    href: str = ""
    aria_sort: str = ""


def _headings(account_id: str, sort: str, descending: bool) -> list[Heading]:
    headings = []
    for key, label in COLUMNS:
        if key is None:
            headings.append(Heading(label))
            continue
        current = key == sort
        flip = "desc" if current and not descending else "asc"
        href = flask.url_for(".certs", account_id=account_id, sort=key, dir=flip)
        state = ("descending" if descending else "ascending") if current else "none"
        headings.append(Heading(label, href, state))
    return headings


@dataclass(frozen=True)
class Task:
    """One validation step, with exactly what to publish (or who approves)."""

    domain: str
    method: str
    fields: list[tuple[str, str]]
    status: str
    published: bool


def _task(values: dict[str, Any]) -> Task:
    method = DcvMethod(values["method"])
    location, value = values.get("location", ""), values.get("value", "")
    fields = {
        DcvMethod.HTTP: [("URL", location), ("File content", value)],
        DcvMethod.DNS: [
            ("Record name", location),
            ("Type", values.get("record_type", "")),
            ("Value", value),
        ],
        DcvMethod.EMAIL: [("Approver", names.display_email(location))],
    }[method]
    return Task(
        domain=names.display_domain(values.get("domain", "")),
        method=DCV_LABELS[method],
        fields=fields,
        status=values.get("status", ""),
        published=bool(values.get("published")),
    )


def _next_step(order: OrderRecord) -> str:
    if order.status == OrderState.PENDING:
        return PENDING_STEPS.get(order.dcv_method, "")
    return NEXT_STEPS.get(order.status, "")


def _summary(order: OrderRecord, row: CertRow) -> list[tuple[str, str]]:
    validation = DCV_LABELS.get(order.dcv_method, order.dcv_method)
    if order.approver_email:
        validation = f"{validation} to {names.display_email(order.approver_email)}"
    pairs = [
        ("Domain name", row.domain),
        ("Additional names", ", ".join(names.display_domain(n) for n in order.sans)),
        ("Product", row.product),
        ("Provider", row.provider),
        ("Provider order", order.provider_order_id or ""),
        ("Ordered as", row.follows),
        ("Validity period", period_label(order.period_months)),
        ("Server type", SERVER_TYPES.get(order.server_type, order.server_type)),
        ("Validation", validation),
        ("Valid from", f"{order.not_before:%Y-%m-%d}" if order.not_before else ""),
        ("Expires", f"{row.expires} ({row.days_left})" if row.expires else ""),
    ]
    return [(label, value) for label, value in pairs if value]


@dataclass(frozen=True)
class Downloads:
    """The Certificate tab's download section."""

    public: list[tuple[str, str]]  # (label, href)
    has_key: bool
    bundle_label: str
    bundle_needs_password: bool
    install_note: str


def _downloads(order: OrderRecord) -> Downloads:
    server = SERVER_TYPES.get(order.server_type, SERVER_TYPES["other"])
    material = Material(order.domain, order.server_type, "", "", None)
    public = [
        (DOWNLOAD_LABELS[fmt], flask.url_for(".cert_download", order_id=order.id, fmt=fmt))
        for fmt in PUBLIC_FORMATS
    ]
    return Downloads(
        public=public,
        has_key=order.private_key_encrypted is not None,
        bundle_label=DOWNLOAD_LABELS["bundle"].format(server=server),
        bundle_needs_password=bundle_needs_password(order.server_type),
        install_note=install_note(material, server),
    )


# --- the list ---------------------------------------------------------------------------------


def certs(account_id: str) -> str:
    """The client's certificates, renewals and reissues under what they follow, newest first by
    default."""
    require(VIEW, account_id)
    args = flask.request.args
    sort = args.get("sort") if args.get("sort") in SORTS else "created"
    descending = args.get("dir") != "asc"
    page = current_runtime().orders.account_page(
        account_id,
        sort=sort,
        descending=descending,
        page=query_number("page") or 1,
        per_page=PER_PAGE,
    )
    providers, now = _providers(), utcnow()
    groups = []
    for order, follow_ups in page.rows:
        chain = Chain((order, *follow_ups))
        rows = [_cert_row(member, providers, now, chain) for member in chain.orders]
        groups.append((rows[0], rows[1:]))

    def page_href(number: int) -> str:
        return flask.url_for(
            ".certs", account_id=account_id, sort=sort, dir=args.get("dir"), page=number
        )

    return flask.render_template(
        "panel_ssl/certs.html",
        account_id=account_id,
        groups=groups,
        headings=_headings(account_id, sort, descending),
        page=page,
        previous_href=page_href(page.page - 1) if page.page > 1 else "",
        next_href=page_href(page.page + 1) if page.page < page.pages else "",
        total=_count(page.total, "certificate"),
        here=here(),
        csrf_token=generate_csrf(),
    )


# --- details ----------------------------------------------------------------------------------


def cert(order_id: int) -> str:
    """The details popup; ``?tab=`` picks the tab, so the tabs need no JavaScript."""
    order, actor = order_for(order_id, VIEW)
    tab = flask.request.args.get("tab", "status")
    return _details(order, actor, tab if tab in TABS else "status")


def _details(order: OrderRecord, actor: Actor, tab: str, key_pem: str = "") -> str:
    runtime = current_runtime()
    row = _cert_row(order, _providers(), utcnow(), runtime.follow_ups.chain(order))
    return flask.render_template(
        "panel_ssl/cert_details.html",
        order=order,
        cert=row,
        tab=tab,
        tabs=[(key, label, details_url(order, key)) for key, label in TABS.items()],
        summary=_summary(order, row),
        next_step=_next_step(order),
        tasks=[_task(values) for values in order.validation],
        resend_label=RESEND_LABELS.get(order.dcv_method, "")
        if order.status == OrderState.PENDING
        else "",
        can_cancel=order.status in CANCELLABLE,
        may_resolve=order.status == OrderState.UNKNOWN and allowed(actor, ADMIN, None),
        sent_at=f"{order.sent_at:%Y-%m-%d %H:%M} UTC" if order.sent_at else "",
        reorder_href=flask.url_for(".order", account_id=order.account_id, **{"from": order.id})
        if order.status in REORDERABLE
        else "",
        may_order=allowed(actor, ORDER, order.account_id),
        events=_events(runtime.orders.events(order.id)),
        downloads=_downloads(order),
        key_pem=key_pem,
        here=details_url(order, tab),
        list_href=flask.url_for(".certs", account_id=order.account_id),
        csrf_token=generate_csrf(),
        min_password=MIN_PASSWORD,
        max_reason=MAX_REASON,
        reissue_form=ReissueForm(formdata=None, idempotency_key=new_idempotency_key()),
    )


def _events(events: list[EventRecord]) -> list[tuple[str, str, str, str]]:
    """Newest first: what happened last is what the user is looking for."""
    return [
        (f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.event.replace("_", " "), e.detail)
        for e in reversed(events)
    ]


# --- actions ----------------------------------------------------------------------------------


def check_status(order_id: int) -> Response:
    """Ask the provider now, then say what it answered; a provider that is down says why."""
    order, actor = order_for(order_id, ORDER)
    posted(ButtonForm)
    domain = names.display_domain(order.domain)
    try:
        checked = current_runtime().orders.check(order.id, actor.audit_name)
    except OrderRejected as error:
        return flash_back(
            f"{domain}: the provider refused the order: {error}", "error", list_url(order)
        )
    if checked.check_failures > order.check_failures:
        return flash_back(_unreachable(checked), "error", list_url(order))
    raw = f" (provider: {checked.provider_status})" if checked.provider_status else ""
    message = f"{domain}: {checked.status}{raw}. {checked.status_detail}".strip()
    return flash_back(message, "success", list_url(order))


def _unreachable(order: OrderRecord) -> str:
    """The provider's own words from the failed check, and when we try again."""
    events = current_runtime().orders.events(order.id)
    reason = events[-1].detail if events else ""
    when = f" at {order.next_check_at:%H:%M} UTC" if order.next_check_at else ""
    domain = names.display_domain(order.domain)
    return f"{domain}: the provider could not be asked: {reason} We will retry automatically{when}."


def resend(order_id: int) -> Response:
    """Resend the approval email, or (HTTP/DNS) tell the provider the records are up."""
    order, actor = order_for(order_id, ORDER)
    posted(ButtonForm)
    try:
        updated = current_runtime().orders.resend_approval(order.id, actor.audit_name)
    except OrderRejected as error:
        return flash_back(str(error), "error", details_url(order))
    done = (
        f"The approval email was sent again to {names.display_email(order.approver_email)}."
        if order.dcv_method == DcvMethod.EMAIL and order.approver_email
        else "The provider was asked to validate now."
    )
    return flash_back(f"{done} {updated.status_detail}", "success", details_url(order))


def cancel(order_id: int) -> Response:
    order, actor = order_for(order_id, ORDER)
    form = posted(CancelForm)
    if not form.validate():
        return flash_back("Say why the order is cancelled.", "error", details_url(order))
    try:
        current_runtime().orders.cancel(order.id, actor.audit_name, form.reason.data.strip())
    except OrderRejected as error:
        return flash_back(str(error), "error", details_url(order))
    message = f"The order for {names.display_domain(order.domain)} is cancelled."
    return flash_back(message, "success", details_url(order))


def resolve(order_id: int) -> Response:
    """An admin's answer for an order of unknown outcome (audited by the order service):
    "it exists at the provider as order …", or "it does not exist: place it again"."""
    order, actor = order_for(order_id, ORDER)
    require(ADMIN)
    form = posted(ResolveForm)
    absent = flask.request.form.get("action") == "absent"
    if not absent and not form.validate():
        return flash_back(" ".join(form.provider_order_id.errors), "error", details_url(order))
    provider_order_id = None if absent else (form.provider_order_id.data or "")
    try:
        resolved = current_runtime().orders.sending.resolve(
            order, actor.audit_name, provider_order_id=provider_order_id
        )
    except OrderRejected as error:
        return flash_back(str(error), "error", details_url(order))
    return flash_back(
        f"Order #{order.id} is {resolved.status}. {resolved.status_detail}".strip(),
        "success",
        details_url(order),
    )


def reveal_key(order_id: int) -> ResponseReturnValue:
    """Shown once, in this response only, never stored in the session; the audit log says who."""
    order, actor = order_for(order_id, ORDER)
    posted(ButtonForm)
    try:
        key_pem = current_runtime().orders.reveal_key(order.id, actor.audit_name)
    except DownloadRefused as error:
        return flash_back(str(error), "error", details_url(order, "certificate"))
    response = flask.make_response(_details(order, actor, "certificate", key_pem))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the provider's links ---------------------------------------------------------------------


def provider_callback(provider_account_id: int, token: str) -> ResponseReturnValue:
    """The approval link of the sandbox's email. The approver is no panel user: the signed
    token is the permission, and it can only move its own order forward."""
    try:
        order = current_runtime().orders.handle_callback(provider_account_id, token)
    except (ProviderError, OrderNotFound, UnknownProviderAccount):
        return flask.render_template("panel_ssl/cert_approved.html", order=None), 404
    return flask.render_template(
        "panel_ssl/cert_approved.html", order=order, domain=names.display_domain(order.domain)
    )
