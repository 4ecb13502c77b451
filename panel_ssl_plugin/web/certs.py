"""The List SSL Certs popup and what hangs off it: details, check status, downloads, renewal,
reissue.

Users of other panels distrust a certificate list that drifts from the provider, so every row
shows the provider's own status beside ours and when it was last asked, and "check status" asks
now. Each view looks the order up first and then asks the host's permission for that order's
account, so a reseller never reaches another reseller's certificate. Every POST checks its own
CSRF token, as the order popup does. Pages work without JavaScript: the details tabs are links.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import flask
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response
from wtforms import HiddenField, PasswordField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.accounts import UnknownProviderAccount
from panel_ssl_plugin.downloads import (
    FORMATS,
    MIN_PASSWORD,
    Download,
    DownloadRefused,
    Material,
    bundle_needs_password,
    install_note,
)
from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.orders import (
    IN_FLIGHT,
    KEY_FORMATS,
    REISSUABLE,
    REISSUE,
    RENEWABLE,
    RENEWAL,
    FollowUp,
    OrderNotFound,
    OrderRejected,
    Placed,
    ReissueRefused,
    RenewalRefused,
    in_flight,
)
from panel_ssl_plugin.providers.base import SERVER_TYPES, DcvMethod, OrderState, ProviderError
from panel_ssl_plugin.store import EventRecord, OrderRecord, utcnow
from panel_ssl_plugin.web import allowed, current_runtime, require
from panel_ssl_plugin.web.forms import (
    DCV_LABELS,
    IDEMPOTENCY_KEY,
    ButtonForm,
    choices,
    new_idempotency_key,
    period_label,
    posted,
    priced,
)
from panel_ssl_plugin.web.views import ORDER, STALE_FORM, UNPROCESSABLE

VIEW = "ssl.view"
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
PUBLIC_FORMATS = tuple(fmt for fmt in FORMATS if fmt not in KEY_FORMATS)
DOWNLOAD_LABELS = {
    "pem": "Certificate (.crt)",
    "chain": "CA chain (.ca-bundle)",
    "fullchain": "Full chain (.pem)",
    "key": "Private key (.key)",
    "pfx": "PKCS#12 (.pfx)",
    "bundle": "Bundle for {server} (.zip)",
}
CHOOSE_PERIOD = "Choose a validity period from the list."
CHOOSE_KEY_TYPE = "Choose a key type from the list."
# what the customer does next, by state; pending depends on how the domain is validated
NEXT_STEPS = {
    OrderState.DRAFT: "The provider refused this order (see above); order again with corrected "
    "values.",
    OrderState.SUBMITTED: "The order is saved but the provider has not taken it yet; we retry "
    "automatically. Press Check status to try now.",
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
    add("/accounts/<account_id>/certs", "certs", certs)
    add("/certs/<int:order_id>", "cert", cert)
    add("/certs/<int:order_id>/check-status", "cert_check", check_status, methods=["POST"])
    add("/certs/<int:order_id>/resend-approval", "cert_resend", resend, methods=["POST"])
    add("/certs/<int:order_id>/cancel", "cert_cancel", cancel, methods=["POST"])
    add("/certs/<int:order_id>/reveal-key", "cert_reveal_key", reveal_key, methods=["POST"])
    add("/certs/<int:order_id>/renew", "cert_renew", renew, methods=["GET", "POST"])
    add("/certs/<int:order_id>/reissue", "cert_reissue", reissue, methods=["POST"])
    add(
        f"/certs/<int:order_id>/download/<any({', '.join(PUBLIC_FORMATS)}):fmt>",
        "cert_download",
        download,
    )
    add(
        f"/certs/<int:order_id>/download/<any({', '.join(sorted(KEY_FORMATS))}):fmt>",
        "cert_download_secret",
        download_secret,
        methods=["POST"],
    )
    add(
        "/providers/<int:provider_account_id>/callback/<token>",
        "provider_callback",
        provider_callback,
    )


# --- forms ------------------------------------------------------------------------------------


class CancelForm(FlaskForm):
    reason = TextAreaField("Reason", [DataRequired(), Length(max=MAX_REASON)])


class PasswordForm(FlaskForm):
    """The PKCS#12 password; the order service judges it, so the rule lives in one place."""

    password = PasswordField("Password")


class RenewForm(FlaskForm):
    """The renewal's period; the key makes a double click or a resent form one renewal."""

    period_months = SelectField("Validity period", coerce=int)
    idempotency_key = HiddenField(validators=[Regexp(IDEMPOTENCY_KEY)])


class ReissueForm(FlaskForm):
    """The new key's type; the key makes a double click or a resent form one reissue."""

    key_type = SelectField(
        "New key type", choices=choices(keys.KEY_TYPES.items()), default=keys.DEFAULT_KEY_TYPE
    )
    idempotency_key = HiddenField(validators=[Regexp(IDEMPOTENCY_KEY)])


# --- looking up, going back -------------------------------------------------------------------


def _order(order_id: int, action: str) -> tuple[OrderRecord, Actor]:
    """The order and the actor, once the host allows ``action`` on the order's account."""
    try:
        order = current_runtime().orders.get(order_id)
    except OrderNotFound:
        flask.abort(404)
    return order, require(action, order.account_id)


def _here() -> str:
    """This page's path and query, for the ``next`` of the forms it shows."""
    return flask.request.full_path.rstrip("?")


def _back(default: str) -> str:
    """``next`` when it is a path on this site, else ``default``: no open redirect."""
    target = flask.request.args.get("next", "")
    parts = urlsplit(target)
    local = target.startswith("/") and not parts.scheme and not parts.netloc
    return target if local and "\\" not in target else default


def _details_url(order: OrderRecord, tab: str = "status") -> str:
    return flask.url_for(".cert", order_id=order.id, tab=tab)


def _flash_back(message: str, category: str, default: str) -> Response:
    flask.flash(message, category)
    return flask.redirect(_back(default))


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
    renew_blocked: str  # why there is no renew link ("renewal #7 pending"), "" when there is one
    can_renew: bool
    reissue_blocked: str  # why there is no reissue form ("reissue #8 pending"), or ""
    can_reissue: bool

    @property
    def badge(self) -> str:
        return f"badge badge-{self.status}"


def _cert_row(
    order: OrderRecord,
    providers: dict[int, str],
    now: datetime,
    follow_ups: Sequence[OrderRecord] = (),
) -> CertRow:
    """``follow_ups``: the renewals and reissues made of the order, for what they block."""
    left, tone = days_left(order.not_after, now)
    renewing, reissuing = in_flight(follow_ups, RENEWAL), in_flight(follow_ups, REISSUE)
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
        renew_blocked=f"renewal #{renewing.id} {renewing.status}" if renewing else "",
        can_renew=order.status in RENEWABLE and renewing is None,
        reissue_blocked=f"reissue #{reissuing.id} {reissuing.status}" if reissuing else "",
        can_reissue=order.status in REISSUABLE and reissuing is None,
    )


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
        page=args.get("page", 1, type=int),
        per_page=PER_PAGE,
    )
    providers, now = _providers(), utcnow()
    groups = [
        (
            _cert_row(order, providers, now, follow_ups),
            [_cert_row(f, providers, now) for f in follow_ups],
        )
        for order, follow_ups in page.rows
    ]

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
        here=_here(),
        csrf_token=generate_csrf(),
    )


# --- details ----------------------------------------------------------------------------------


def cert(order_id: int) -> str:
    """The details popup; ``?tab=`` picks the tab, so the tabs need no JavaScript."""
    order, actor = _order(order_id, VIEW)
    tab = flask.request.args.get("tab", "status")
    return _details(order, actor, tab if tab in TABS else "status")


def _details(order: OrderRecord, actor: Actor, tab: str, key_pem: str = "") -> str:
    runtime = current_runtime()
    row = _cert_row(order, _providers(), utcnow(), runtime.orders.follow_ups(order.id))
    return flask.render_template(
        "panel_ssl/cert_details.html",
        order=order,
        cert=row,
        tab=tab,
        tabs=[(key, label, _details_url(order, key)) for key, label in TABS.items()],
        summary=_summary(order, row),
        next_step=_next_step(order),
        tasks=[_task(values) for values in order.validation],
        resend_label=RESEND_LABELS.get(order.dcv_method, "")
        if order.status == OrderState.PENDING
        else "",
        can_cancel=order.status in IN_FLIGHT,
        reorder_href=flask.url_for(".order", account_id=order.account_id, **{"from": order.id})
        if order.status in REORDERABLE
        else "",
        may_order=allowed(actor, ORDER, order.account_id),
        events=_events(runtime.orders.events(order.id)),
        downloads=_downloads(order),
        key_pem=key_pem,
        here=_details_url(order, tab),
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
    order, actor = _order(order_id, ORDER)
    posted(ButtonForm)
    domain = names.display_domain(order.domain)
    try:
        checked = current_runtime().orders.check(order.id, actor.audit_name)
    except OrderRejected as error:
        return _flash_back(
            f"{domain}: the provider refused the order: {error}", "error", _list_url(order)
        )
    if checked.check_failures > order.check_failures:
        return _flash_back(_unreachable(checked), "error", _list_url(order))
    raw = f" (provider: {checked.provider_status})" if checked.provider_status else ""
    message = f"{domain}: {checked.status}{raw}. {checked.status_detail}".strip()
    return _flash_back(message, "success", _list_url(order))


def _unreachable(order: OrderRecord) -> str:
    """The provider's own words from the failed check, and when we try again."""
    events = current_runtime().orders.events(order.id)
    reason = events[-1].detail if events else ""
    when = f" at {order.next_check_at:%H:%M} UTC" if order.next_check_at else ""
    domain = names.display_domain(order.domain)
    return f"{domain}: the provider could not be asked: {reason} We will retry automatically{when}."


def _list_url(order: OrderRecord) -> str:
    return flask.url_for(".certs", account_id=order.account_id)


def resend(order_id: int) -> Response:
    """Resend the approval email, or (HTTP/DNS) tell the provider the records are up."""
    order, actor = _order(order_id, ORDER)
    posted(ButtonForm)
    try:
        updated = current_runtime().orders.resend_approval(order.id, actor.audit_name)
    except OrderRejected as error:
        return _flash_back(str(error), "error", _details_url(order))
    done = (
        f"The approval email was sent again to {names.display_email(order.approver_email)}."
        if order.dcv_method == DcvMethod.EMAIL and order.approver_email
        else "The provider was asked to validate now."
    )
    return _flash_back(f"{done} {updated.status_detail}", "success", _details_url(order))


def cancel(order_id: int) -> Response:
    order, actor = _order(order_id, ORDER)
    form = posted(CancelForm)
    if not form.validate():
        return _flash_back("Say why the order is cancelled.", "error", _details_url(order))
    try:
        current_runtime().orders.cancel(order.id, actor.audit_name, form.reason.data.strip())
    except OrderRejected as error:
        return _flash_back(str(error), "error", _details_url(order))
    message = f"The order for {names.display_domain(order.domain)} is cancelled."
    return _flash_back(message, "success", _details_url(order))


def reveal_key(order_id: int) -> ResponseReturnValue:
    """Shown once, in this response only, never stored in the session; the audit log says who."""
    order, actor = _order(order_id, ORDER)
    posted(ButtonForm)
    try:
        key_pem = current_runtime().orders.reveal_key(order.id, actor.audit_name)
    except DownloadRefused as error:
        return _flash_back(str(error), "error", _details_url(order, "certificate"))
    response = flask.make_response(_details(order, actor, "certificate", key_pem))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- downloads --------------------------------------------------------------------------------


def download(order_id: int, fmt: str) -> Response:
    """Certificate and chain: public material, a plain link."""
    order, actor = _order(order_id, VIEW)
    return _download(order, actor, fmt, "")


def download_secret(order_id: int, fmt: str) -> Response:
    """Files holding the private key: POST only, so no link, prefetch or log can fetch one."""
    order, actor = _order(order_id, ORDER)
    form = posted(PasswordForm)
    return _download(order, actor, fmt, form.password.data or "")


def _download(order: OrderRecord, actor: Actor, fmt: str, password: str) -> Response:
    try:
        made: Download = current_runtime().orders.download(
            order.id, fmt, actor.audit_name, password
        )
    except DownloadRefused as error:
        return _flash_back(str(error), "error", _details_url(order, "certificate"))
    response = flask.send_file(
        io.BytesIO(made.content),
        mimetype=made.mimetype,
        as_attachment=True,
        download_name=made.filename,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- renewal ----------------------------------------------------------------------------------


def renew(order_id: int) -> ResponseReturnValue:
    """GET: the period to renew for. POST: order the renewal, then back where the user was."""
    order, actor = _order(order_id, ORDER)
    if flask.request.method == "GET":
        form = RenewForm(
            formdata=None, period_months=order.period_months, idempotency_key=new_idempotency_key()
        )
        return _renew_page(order, form, _offer_periods(order, form))
    form = posted(RenewForm)
    unavailable = _offer_periods(order, form)
    if not form.validate():
        return _renew_page(order, form, _form_problem(form) or unavailable, UNPROCESSABLE)
    try:
        placed = current_runtime().orders.renew(
            order.id,
            actor.audit_name,
            period_months=form.period_months.data,
            idempotency_key=form.idempotency_key.data,
        )
    except RenewalRefused as error:
        return _renew_page(order, form, str(error), UNPROCESSABLE)
    period = period_label(placed.order.period_months)
    return _flash_back(
        _ordered(order, placed, RENEWAL, f"for {period}"), "success", _list_url(order)
    )


def _form_problem(form: RenewForm) -> str:
    """A form without a sound key gets a new one rather than a guess: one renewal per form."""
    if form.idempotency_key.errors:
        form.idempotency_key.data = new_idempotency_key()
        return STALE_FORM
    return CHOOSE_PERIOD if form.period_months.errors else ""


def _offer_periods(order: OrderRecord, form: RenewForm) -> str:
    """The product's periods with prices, or only the order's own period when the catalogue
    cannot be read; then the provider's message is returned for the page to show."""
    try:
        product = current_runtime().orders.product(order.provider_account_id, order.product_id)
    except (ProviderError, UnknownProviderAccount) as error:
        product, alert = None, f"The provider's periods could not be loaded: {error}"
    else:
        alert = ""
    periods = product.periods if product else (order.period_months,)
    prices = product.prices if product else {}
    form.period_months.choices = choices(
        (months, priced(period_label(months), prices.get(months))) for months in periods
    )
    return alert


def _ordered(order: OrderRecord, placed: Placed, kind: FollowUp, how: str) -> str:
    """What a renewal or reissue request did: ordered (``how``), or found already ordered."""
    follow_up, domain = placed.order, names.display_domain(order.domain)
    if placed.duplicate:
        return (
            f"The {kind.noun} of {domain} was already ordered: order #{follow_up.id}, "
            f"{follow_up.status}."
        )
    return (
        f"{kind.noun.capitalize()} of {domain} {how} ordered: order #{follow_up.id} is "
        f"{follow_up.status}. {follow_up.status_detail}"
    ).strip()


def _renew_page(
    order: OrderRecord, form: RenewForm, alert: str = "", status: int = 200
) -> ResponseReturnValue:
    back = _back(_list_url(order))
    page = flask.render_template(
        "panel_ssl/cert_renew.html",
        order=order,
        domain=names.display_domain(order.domain),
        period=period_label(order.period_months),
        form=form,
        alert=alert,
        action=flask.url_for(".cert_renew", order_id=order.id, next=back),
        back_href=back,
    )
    return page, status


# --- reissue ----------------------------------------------------------------------------------


def reissue(order_id: int) -> Response:
    """Order a new key and certificate for the same names, then show the new order: its
    approval, and later its certificate and key, are there. The old order keeps its own."""
    order, actor = _order(order_id, ORDER)
    form = posted(ReissueForm)
    if not form.validate():
        problem = STALE_FORM if form.idempotency_key.errors else CHOOSE_KEY_TYPE
        return _flash_back(problem, "error", _details_url(order))
    try:
        placed = current_runtime().orders.reissue(
            order.id,
            actor.audit_name,
            key_type=form.key_type.data,
            idempotency_key=form.idempotency_key.data,
        )
    except ReissueRefused as error:
        return _flash_back(str(error), "error", _details_url(order))
    flask.flash(_ordered(order, placed, REISSUE, "with a new key"), "success")
    return flask.redirect(_details_url(placed.order))


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
