"""The popups a reseller opens from a client's Account Mgmt tab: Order SSL Cert.

The order popup is two pages that post to each other (DESIGN section 1): step 1 describes the
certificate (with the organization's address for OV/EV products, and an approver for each
additional name), step 2 the contact and the key under a summary of what is bought and for how
much, then ``orders.place`` judges the whole draft. The pages work without JavaScript; order.js
adds the live approver lookups, one per name, through ``dcv_emails``.
Every view asks the host's permission first (``require``), and every POST checks its CSRF token
itself, so a host without CSRFProtect is covered too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import flask
from flask.typing import ResponseReturnValue

from panel_ssl_plugin import names
from panel_ssl_plugin.accounts import ProviderAccount
from panel_ssl_plugin.drafts import NO_PROVIDER_ACCOUNT, OrderInvalid
from panel_ssl_plugin.hookspecs import AccountProfile, Actor
from panel_ssl_plugin.orders import OrderNotFound, OrderRejected, Placed
from panel_ssl_plugin.preflight import Finding
from panel_ssl_plugin.providers.base import (
    SERVER_TYPES,
    DcvMethod,
    OrderState,
    Product,
    ProviderError,
)
from panel_ssl_plugin.store import OrderRecord
from panel_ssl_plugin.web import URL_PREFIX, current_runtime, query_number, require
from panel_ssl_plugin.web.forms import (
    ADDRESS_FIELDS,
    CONTACT_FIELDS,
    DCV_LABELS,
    STEP1_FIELDS,
    STEP2_FIELDS,
    OrderForm,
    SanApproverForm,
    approver_choices,
    approver_label,
    email_choices,
    period_label,
    posted,
    priced,
)

ORDER = "ssl.order"
UNPROCESSABLE = 422
PASTE_CSR = "Paste your CSR, or choose to have the key and CSR generated."
FIX_FIELDS = "Please correct the marked fields."
STALE_FORM = "This form was incomplete, so nothing was ordered; check the values and submit again."
# status -> (page title, words before the order's status detail, flash style)
RESULTS = {
    OrderState.PENDING: ("Order received", "", "success"),
    OrderState.SUBMITTED: (
        "Order saved",
        "Your order is saved; nothing you entered is lost.",
        "info",
    ),
}
IN_FLIGHT = "Order received; it is being placed with the provider."


def register(blueprint: flask.Blueprint) -> None:
    """Add the popup routes to the plugin's blueprint."""
    blueprint.add_url_rule(
        "/accounts/<ssl_account:account_id>/order", "order", order, methods=["GET", "POST"]
    )
    blueprint.add_url_rule(
        "/accounts/<ssl_account:account_id>/order/contact",
        "order_contact",
        order_contact,
        methods=["GET", "POST"],
    )
    blueprint.add_url_rule(
        "/accounts/<ssl_account:account_id>/dcv-emails", "dcv_emails", dcv_emails
    )
    blueprint.add_url_rule(
        "/accounts/<ssl_account:account_id>/preflight", "preflight", preflight, methods=["POST"]
    )


# --- what the provider offers -----------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What the chosen provider account sells, as far as the form needs to know."""

    accounts: list[ProviderAccount]
    account: ProviderAccount
    products: list[Product]
    product: Product | None
    error: str = ""

    @property
    def choose_account(self) -> bool:
        return len(self.accounts) > 1

    @property
    def methods(self) -> tuple[DcvMethod, ...]:
        return self.product.dcv_methods if self.product else ()

    @property
    def choose_method(self) -> bool:
        return len(self.methods) > 1

    @property
    def by_email(self) -> bool:
        return DcvMethod.EMAIL in self.methods

    @property
    def takes_sans(self) -> bool:
        return bool(self.product and self.product.max_sans)

    @property
    def has_addons(self) -> bool:
        return bool(self.product and self.product.addons)

    @property
    def approver_per_name(self) -> bool:
        """Each additional name gets its own approver dropdown."""
        return self.by_email and self.takes_sans

    @property
    def needs_address(self) -> bool:
        """The product validates the organization, so its address is asked for."""
        return bool(self.product and self.product.org_required)

    @property
    def unseen(self) -> set[str]:
        """Fields step 1 does not show here: their errors go to the top of the page instead."""
        shown = {
            "provider_account_id": self.choose_account,
            "dcv_method": self.choose_method,
            "approver_email": self.by_email,
            "san_approvers": self.approver_per_name,
            "sans": self.takes_sans,
            "addons": self.has_addons,
            **dict.fromkeys(ADDRESS_FIELDS, self.needs_address),
        }
        return {name for name, visible in shown.items() if not visible}


@dataclass(frozen=True)
class Lookup:
    """The provider's approver addresses for a domain, or why there are none."""

    emails: tuple[str, ...] = ()
    domain: str = ""
    error: str = ""
    field: str = "approver_email"
    status: int = 200


def _enabled_account(
    provider_account_id: int | None, *, default: bool = False
) -> ProviderAccount | None:
    """The enabled account asked for; with ``default``, the admin's default when none is named."""
    accounts = current_runtime().accounts.all(enabled_only=True)
    if provider_account_id is None and default:
        return next(iter(accounts), None)
    return next((a for a in accounts if a.id == provider_account_id), None)


def _offer(form: OrderForm) -> Offer | None:
    """The form's provider account and product, falling back to the defaults; None: no provider."""
    accounts = current_runtime().accounts.all(enabled_only=True)
    if not accounts:
        return None
    chosen = form.provider_account_id.data
    account = next((a for a in accounts if a.id == chosen), accounts[0])
    try:
        products = current_runtime().orders.products(account.id)
    except ProviderError as error:
        message = f"The provider's products could not be loaded: {error}"
        return Offer(accounts, account, [], None, message)
    product = next((p for p in products if p.id == form.product_id.data), None)
    return Offer(accounts, account, products, product or next(iter(products), None))


def _fit(form: OrderForm, offer: Offer) -> None:
    choices = [(a.id, a.label) for a in offer.accounts]
    form.offer(choices, offer.account.id, offer.products, offer.product)


def _lookup(provider_account_id: int, typed: str) -> Lookup:
    """Shared by the JSON endpoint and the no-JavaScript button, so both say the same."""
    try:
        emails = current_runtime().orders.dcv_emails(provider_account_id, typed)
    except names.InvalidInput as error:
        return Lookup(error=str(error), field="domain", status=UNPROCESSABLE)
    except ProviderError as error:
        message = f"The provider could not list the approval addresses: {error}"
        return Lookup(error=message, status=502)
    return Lookup(tuple(emails), _display_domain(typed))


def _display_domain(typed: str) -> str:
    """The name as people read it (U-label), or as typed when it is no domain name."""
    try:
        return names.display_domain(names.normalize_domain(typed, allow_wildcard=True))
    except names.InvalidInput:
        return typed.strip()


# --- permission, CSRF, the client ---------------------------------------------------------------


def _client(account_id: str) -> tuple[Actor, AccountProfile]:
    """The actor, once the host allows ordering for this client, and the client's record."""
    actor = require(ORDER, account_id)
    profile = current_runtime().pm.hook.host_account_profile(account_id=account_id)
    if profile is None:
        flask.abort(404)
    return actor, profile


# --- the views --------------------------------------------------------------------------------


def order(account_id: str) -> ResponseReturnValue:
    """Step 1. GET opens a fresh popup; POST draws it again with the posted values.

    A POST comes from "back" on step 2, from a changed provider or product, or from the
    "Look up approval emails" button that stands in for the live lookups without JavaScript
    (the approvers and the pre-flight checks).
    """
    _, profile = _client(account_id)
    if flask.request.method == "GET":
        form = OrderForm()
        form.prefill(profile)
        earlier = _earlier_order(account_id)
        if earlier is not None:
            form.prefill_from(earlier)
    else:
        form = posted(OrderForm)
    return _step1(account_id, form, checked=flask.request.form.get("action") == "lookup")


def _earlier_order(account_id: str) -> OrderRecord | None:
    """``?from=<order id>``: an order of this client to start from ("order again")."""
    order_id = query_number("from")
    if order_id is None:
        return None
    try:
        order = current_runtime().orders.get(order_id)
    except OrderNotFound:
        return None
    return order if order.account_id == account_id else None


def order_contact(account_id: str) -> ResponseReturnValue:
    """Step 2 "Specify Contact Info", and the order's submit button."""
    actor, profile = _client(account_id)
    if flask.request.method == "GET":
        return flask.redirect(flask.url_for(".order", account_id=account_id))
    form = posted(OrderForm)
    action = flask.request.form.get("action", "")
    if action == "submit":
        return _submit(account_id, form, actor, profile)
    if action == "contact":
        errors = current_runtime().orders.draft_errors(form.draft(account_id))
        step1 = {name: text for name, text in errors.items() if name not in STEP2_FIELDS}
        if step1:
            return _step1(account_id, form, step1, alert=FIX_FIELDS)
    return _step2(account_id, form, profile, pick=action == "pick_contact")


def dcv_emails(account_id: str) -> ResponseReturnValue:
    """The approver addresses for ``?domain=`` as JSON: the popup's live dropdown.

    Errors come back as ``{"error": text, "field": name}`` so the page can show the provider's
    own words beside the field they concern. The client's record is not needed here, so it
    is not asked for (over the bridge, each read is a call to the panel).
    """
    require(ORDER, account_id)
    asked = flask.request.args.get("provider_account_id", type=int)
    account = _enabled_account(asked, default=True)
    if account is None:
        return {"error": NO_PROVIDER_ACCOUNT, "field": "provider_account_id"}, 400
    lookup = _lookup(account.id, flask.request.args.get("domain", ""))
    if lookup.error:
        return {"error": lookup.error, "field": lookup.field}, lookup.status
    emails = [{"value": value, "label": label} for value, label in email_choices(lookup.emails)]
    return {"domain": lookup.domain, "emails": emails}


def preflight(account_id: str) -> ResponseReturnValue:
    """The pre-flight checks of step 1 as typed (the form is posted as it stands), as JSON:
    ``{"findings": [{"check", "field", "level", "message"}]}``, each shown beside its field.

    Nothing is stopped here: a CAA refusal found now is asked again at submit, and stops it.
    The client's record is not needed, so not asked for.
    """
    actor = require(ORDER, account_id)
    form = posted(OrderForm)
    if _enabled_account(form.provider_account_id.data) is None:
        return {"findings": []}
    findings = current_runtime().orders.preflight_findings(form.draft(account_id), actor.audit_name)
    return {"findings": [asdict(finding) for finding in findings]}


# --- step 1 -----------------------------------------------------------------------------------


def _step1(
    account_id: str,
    form: OrderForm,
    errors: dict[str, str] | None = None,
    alert: str = "",
    *,
    checked: bool = False,
) -> ResponseReturnValue:
    offer = _offer(form)
    if offer is None:
        return flask.render_template("panel_ssl/order_no_provider.html"), 503
    _fit(form, offer)
    form.keep_key()
    if offer.error:
        form.show_errors({"product_id": offer.error})
    if offer.by_email:
        _fill_approvers(form, offer)
    if offer.approver_per_name:
        _fill_san_approvers(form, offer)
    errors = errors or {}
    form.show_errors(errors)
    unseen = [message for name, message in errors.items() if name in offer.unseen]
    page = flask.render_template(
        "panel_ssl/order.html",
        account_id=account_id,
        form=form,
        offer=offer,
        alert=" ".join([alert, *unseen]),
        hidden=form.hidden_values(STEP2_FIELDS),
        san_row=_san_row_template(),
        findings=_findings_by_field(account_id, form, offer) if checked else {},
    )
    return page, UNPROCESSABLE if alert else 200


def _findings_by_field(account_id: str, form: OrderForm, offer: Offer) -> dict[str, list[Finding]]:
    """The pre-flight findings, each under the field the page shows it beside (the domain's
    when that field is not on the page), as order.js places them."""
    by_field: dict[str, list[Finding]] = {}
    actor = current_runtime().pm.hook.host_current_actor()
    for finding in current_runtime().orders.preflight_findings(
        form.draft(account_id), actor.audit_name
    ):
        field = "domain" if finding.field in offer.unseen else finding.field
        by_field.setdefault(field, []).append(finding)
    return by_field


def _fill_approvers(form: OrderForm, offer: Offer) -> None:
    """Server-side lookup: the no-JavaScript path, and the dropdown a redrawn page starts with."""
    if not (form.domain.data or "").strip():
        form.offer_approvers([], "Enter the domain name first")
        return
    lookup = _lookup(offer.account.id, form.domain.data)
    form.offer_approvers(list(lookup.emails), "No address available")
    if lookup.error:
        form.show_errors({lookup.field: lookup.error})


def _fill_san_approvers(form: OrderForm, offer: Offer) -> None:
    """An approver dropdown per additional name, each looked up as the domain's is; no more
    names than the product covers (the draft says when there are too many)."""
    typed = form.additional_names()[: offer.product.max_sans if offer.product else 0]
    found = {name: _lookup(offer.account.id, name) for name in typed}
    form.offer_san_approvers([(name, list(f.emails), f.error) for name, f in found.items()])


def _san_row_template() -> SanApproverForm:
    """The row order.js copies for a name typed in: it puts the row's number for ``__i__`` and
    the name for ``__name__``."""
    row = SanApproverForm(prefix="san_approvers-__i__-")
    row.approver.choices = approver_choices([], "Looking up the approval addresses…")
    row.approver.label.text = approver_label("__name__")
    return row


# --- step 2 -----------------------------------------------------------------------------------


def _step2(
    account_id: str,
    form: OrderForm,
    profile: AccountProfile,
    *,
    pick: bool = False,
    errors: dict[str, str] | None = None,
) -> ResponseReturnValue:
    contacts = current_runtime().pm.hook.host_account_contacts(account_id=account_id) or []
    form.offer_contacts(contacts)
    if pick:
        form.use_contact(next((c for c in contacts if c.id == form.contact_id.data), None))
    elif not form.contact_id.data:
        form.use_contact(profile.default_contact or next(iter(contacts), None))
    form.show_errors(errors or {})
    offer = _offer(form)
    if offer is not None:
        _fit(form, offer)
    form.keep_key()
    page = flask.render_template(
        "panel_ssl/order_contact.html",
        account_id=account_id,
        form=form,
        summary=_summary(form, offer),
        contacts={c.id: {f"contact_{n}": getattr(c, n) for n in CONTACT_FIELDS} for c in contacts},
        hidden=form.hidden_values(STEP1_FIELDS),
        alert=FIX_FIELDS if errors else "",
    )
    return page, UNPROCESSABLE if errors else 200


def _summary(form: OrderForm, offer: Offer | None) -> list[tuple[str, str]]:
    """Step 1 in words, so the contact page says what is being bought, for how much, and for
    whom, before *Place order*; a line without a value is left out."""
    product = offer.product if offer else None
    months = form.period_months.data or 0
    lines = [
        ("Domain name", _display_domain(form.domain.data or "")),
        *(("Additional name", name) for name in _additional_names(form)),
        ("Product", product.name if product else form.product_id.data or ""),
        ("Server type", SERVER_TYPES.get(form.server_type.data or "", "")),
        ("Validity period", period_label(months)),
        ("Price", _price(product, months)),
        ("Add-ons", _addons(form, product)),
        ("Validation", _validation(form)),
        ("Organization", _organization(form)),
        ("Address", _address(form) if offer and offer.needs_address else ""),
    ]
    return [(label, value) for label, value in lines if value]


def _price(product: Product | None, months: int) -> str:
    if product is None:
        return ""
    price = product.prices.get(months)
    return f"{price} for {period_label(months)}" if price else "not listed by the provider"


def _addons(form: OrderForm, product: Product | None) -> str:
    chosen = set(form.addons.data or ())
    offered = product.addons if product else ()
    return "; ".join(priced(addon.name, addon.price) for addon in offered if addon.id in chosen)


def _validation(form: OrderForm) -> str:
    method = form.dcv_method.data
    if method != DcvMethod.EMAIL:
        return DCV_LABELS.get(method, method or "")
    return f"Approval e-mail to {names.display_email(form.approver_email.data or '')}"


def _additional_names(form: OrderForm) -> list[str]:
    """The additional names, each with its approver when one was chosen."""
    approvers = {e.form.name.data: e.form.approver.data for e in form.san_approvers}
    if form.dcv_method.data != DcvMethod.EMAIL:
        approvers = {}
    return [
        f"{_display_domain(name)} · approval e-mail to {names.display_email(approvers[name])}"
        if approvers.get(name)
        else _display_domain(name)
        for name in form.additional_names()
    ]


def _organization(form: OrderForm) -> str:
    return _joined(form.organization.data, form.unit.data, form.state.data, form.country.data)


def _address(form: OrderForm) -> str:
    place = f"{form.org_postal_code.data or ''} {form.org_city.data or ''}"
    return _joined(form.org_street.data, place, form.org_phone.data)


def _joined(*parts: str | None) -> str:
    """The parts that say something, in one line."""
    return ", ".join(part.strip() for part in parts if part and part.strip())


# --- submit -----------------------------------------------------------------------------------


def _submit(
    account_id: str, form: OrderForm, actor: Actor, profile: AccountProfile
) -> ResponseReturnValue:
    """Place the order; the idempotency key makes any repeat of this request the same order.

    A request without a sound key is refused rather than given a new one: a new key per
    repeat would place the order once per repeat.
    """
    if not form.has_valid_key():
        return _step1(account_id, form, alert=STALE_FORM)
    if _enabled_account(form.provider_account_id.data) is None:
        return _step1(account_id, form, {"provider_account_id": NO_PROVIDER_ACCOUNT}, FIX_FIELDS)
    if form.key_source.data == "csr" and not (form.csr.data or "").strip():
        return _step2(account_id, form, profile, errors={"csr": PASTE_CSR})
    try:
        placed = current_runtime().orders.place(form.draft(account_id), actor.audit_name)
    except OrderInvalid as error:
        if "idempotency_key" in error.errors:
            form.idempotency_key.data = ""
            form.keep_key()
            return _step1(account_id, form, alert=error.errors["idempotency_key"])
        return _invalid(account_id, form, profile, error.errors)
    except OrderRejected as error:
        return _step1(account_id, form, alert=str(error))
    return _result(account_id, placed)


def _invalid(
    account_id: str, form: OrderForm, profile: AccountProfile, errors: dict[str, str]
) -> ResponseReturnValue:
    """Back to step 1 if any of its fields is wrong, else to step 2; every value kept.

    Step 2's own messages wait for the next submit then: one page of corrections at a time.
    """
    if any(name not in STEP2_FIELDS for name in errors):
        step1 = {k: v for k, v in errors.items() if k not in STEP2_FIELDS}
        return _step1(account_id, form, step1, FIX_FIELDS)
    return _step2(account_id, form, profile, errors=errors)


def _result(account_id: str, placed: Placed) -> str:
    order = placed.order
    message = order.status_detail
    if order.status == OrderState.SUBMITTED and not message:
        message = IN_FLIGHT
    title, lead, tone = RESULTS.get(order.status, (f"This order is {order.status}", "", "info"))
    return flask.render_template(
        "panel_ssl/order_result.html",
        order=order,
        title=title,
        lead=lead,
        tone=tone,
        message=message,
        domain=names.display_domain(order.domain),
        approver=names.display_email(order.approver_email or ""),
        additional=[
            (names.display_domain(name), names.display_email(order.san_approvers.get(name, "")))
            for name in order.sans
        ],
        certs_href=f"{flask.request.script_root}{URL_PREFIX}/accounts/{account_id}/certs",
    )
