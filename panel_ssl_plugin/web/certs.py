"""The List SSL Certs popup and its details page: status, check status, approval, cancel, a
refused order's fix or discard, and an admin's answer for an order whose outcome is unknown.

Users of other panels distrust a certificate list that drifts from the provider, so every row
shows the provider's own status beside ours and when it last answered, a check that failed says
so with the reason and the next try, and "check status" asks now. Words are kept apart by who
said them: "The provider says" carries the provider's, never ours. Every view finds its order
under the host's permission (pages.py); every POST checks its own CSRF token, as the order popup
does. Pages work without JavaScript: the details tabs are links, a published record folds with
<details>. Renewal and reissue are followups.py's pages, downloads files.py's.
"""

from __future__ import annotations

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
)
from panel_ssl_plugin.followups import Chain
from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.orders import CANCELLABLE, OrderNotFound, OrderRejected
from panel_ssl_plugin.providers.base import DcvMethod, OrderState, ProviderError
from panel_ssl_plugin.store import OrderRecord, utcnow
from panel_ssl_plugin.web import allowed, cert_views, current_runtime, query_number, require
from panel_ssl_plugin.web.admin import ADMIN
from panel_ssl_plugin.web.followups import ReissueForm
from panel_ssl_plugin.web.forms import (
    ButtonForm,
    PlainText,
    new_idempotency_key,
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
MAX_REASON = 500
TABS = {"status": "Status", "certificate": "Certificate"}
SORTS = {key for key, _label in cert_views.COLUMNS if key}


def register(blueprint: flask.Blueprint) -> None:
    """Add the certificate routes to the plugin's blueprint."""
    add = blueprint.add_url_rule
    add("/accounts/<ssl_account:account_id>/certs", "certs", certs)
    add("/certs/<ssl_id:order_id>", "cert", cert)
    add("/certs/<ssl_id:order_id>/check-status", "cert_check", check_status, methods=["POST"])
    add("/certs/<ssl_id:order_id>/resend-approval", "cert_resend", resend, methods=["POST"])
    add("/certs/<ssl_id:order_id>/cancel", "cert_cancel", cancel, methods=["POST"])
    add("/certs/<ssl_id:order_id>/discard", "cert_discard", discard, methods=["POST"])
    add("/certs/<ssl_id:order_id>/resolve", "cert_resolve", resolve, methods=["POST"])
    add("/certs/<ssl_id:order_id>/reveal-key", "cert_reveal_key", reveal_key, methods=["POST"])
    add(
        "/providers/<ssl_id:provider_account_id>/callback/<token>",
        "provider_callback",
        provider_callback,
        methods=["GET", "POST"],
    )


# --- forms ------------------------------------------------------------------------------------


class CancelForm(FlaskForm):
    reason = TextAreaField("Reason", [DataRequired(), Length(max=MAX_REASON)])


class ResolveForm(FlaskForm):
    """An admin's answer for an order of unknown outcome: the provider's order id when it
    exists there; empty with ``absent`` when it does not."""

    provider_order_id = StringField("Provider order id", [Length(max=100), PlainText()])


# --- the list ---------------------------------------------------------------------------------


def certs(account_id: str) -> str:
    """The client's certificates, renewals and reissues under what they follow, newest first by
    default."""
    require(VIEW, account_id)
    args = flask.request.args
    sort = args.get("sort") if args.get("sort") in SORTS else "created"
    descending = args.get("dir") != "asc"
    after, before = query_number("after"), query_number("before")
    page = current_runtime().orders.account_page(
        account_id, sort=sort, descending=descending, per_page=PER_PAGE, after=after,
        before=None if after else before,
    )  # fmt: skip
    providers, now = cert_views.provider_labels(), utcnow()
    chains = [Chain((order, *follow_ups)) for order, follow_ups in page.rows]
    failures = current_runtime().orders.failed_tries([o for c in chains for o in c.orders])
    groups = []
    for chain in chains:
        rows = [
            cert_views.cert_row(o, providers, now, chain, failures.get(o.id)) for o in chain.orders
        ]
        groups.append((rows[0], rows[1:]))

    def page_href(**edge: int) -> str:
        return flask.url_for(
            ".certs", account_id=account_id, sort=sort, dir=args.get("dir"), **edge
        )

    return flask.render_template(
        "panel_ssl/certs.html",
        account_id=account_id,
        groups=groups,
        headings=cert_views.headings(account_id, sort, descending),
        paged=bool(after or before),
        first_href=page_href(),
        previous_href=page_href(before=page.previous_before) if page.previous_before else "",
        next_href=page_href(after=page.next_after) if page.next_after else "",
        shown=cert_views.shown(chains),
        here=here(),
        panel_ssl_csrf=generate_csrf(),
    )


# --- details ----------------------------------------------------------------------------------


def cert(order_id: int) -> str:
    """The details popup; ``?tab=`` picks the tab, so the tabs need no JavaScript."""
    order, actor = order_for(order_id, VIEW)
    tab = flask.request.args.get("tab", "status")
    return _details(order, actor, tab if tab in TABS else "status")


def _details(order: OrderRecord, actor: Actor, tab: str, key_pem: str = "") -> str:
    runtime, now = current_runtime(), utcnow()
    failure = runtime.orders.failed_tries([order]).get(order.id)
    row = cert_views.cert_row(
        order, cert_views.provider_labels(), now, runtime.follow_ups.chain(order), failure
    )
    tasks = [cert_views.task(values) for values in order.validation]
    return flask.render_template(
        "panel_ssl/cert_details.html",
        order=order,
        cert=row,
        tab=tab,
        tabs=[(key, label, details_url(order, key)) for key, label in TABS.items()],
        summary=cert_views.summary(order, row),
        said=cert_views.said(order, now),
        our_words=cert_views.our_words(order, now),
        next_step=cert_views.next_step(order, tasks),
        tasks=tasks,
        resend_label=cert_views.resend_label(order, tasks),
        can_cancel=order.status in CANCELLABLE and order.status != OrderState.DRAFT,
        may_resolve=order.status == OrderState.UNKNOWN and allowed(actor, ADMIN, None),
        sent_at=f"{order.sent_at:%Y-%m-%d %H:%M} UTC" if order.sent_at else "",
        reorder_href=cert_views.order_again_href(order)
        if order.status in cert_views.REORDERABLE
        else "",
        may_order=allowed(actor, ORDER, order.account_id),
        events=cert_views.history(runtime.orders.events(order.id)),
        downloads=cert_views.downloads(order),
        key_pem=key_pem,
        here=details_url(order, tab),
        list_href=flask.url_for(".certs", account_id=order.account_id),
        panel_ssl_csrf=generate_csrf(),
        min_password=MIN_PASSWORD,
        max_reason=MAX_REASON,
        reissue_form=ReissueForm(formdata=None, idempotency_key=new_idempotency_key()),
    )


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


def discard(order_id: int) -> Response:
    """A refused order the reseller will not resubmit leaves the list (it stays on record)."""
    order, actor = order_for(order_id, ORDER)
    posted(ButtonForm)
    try:
        current_runtime().orders.discard(order.id, actor.audit_name)
    except OrderRejected as error:
        return flash_back(str(error), "error", list_url(order))
    message = f"The refused order for {names.display_domain(order.domain)} is discarded."
    return flash_back(message, "success", list_url(order))


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
    """In this response only (not cached, never in the session), as often as asked; the audit
    log says who saw it each time."""
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
    token is the permission, and it can only move its own order forward. Opening the link
    (GET) shows the order and a button; only the button (POST) approves, so a mail scanner or
    a link preview that fetches every link approves nothing."""
    runtime = current_runtime()
    try:
        if flask.request.method == "POST":
            posted(ButtonForm)
            order = runtime.orders.handle_callback(provider_account_id, token)
            confirm = None
        else:
            order = runtime.orders.callback_order(provider_account_id, token)
            confirm = ButtonForm() if order.status == OrderState.PENDING else None
    except (ProviderError, OrderNotFound, UnknownProviderAccount):
        return flask.render_template("panel_ssl/cert_approved.html", order=None), 404
    return flask.render_template(
        "panel_ssl/cert_approved.html",
        order=order,
        confirm=confirm,
        domain=names.display_domain(order.domain),
    )
