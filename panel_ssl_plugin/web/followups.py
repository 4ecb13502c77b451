"""Renew and reissue, from the list and the details popup (followups.py does the ordering).

A renewal needs no key of its own from the form: the order service keys it by the current
certificate and its end, so twenty open Renew forms, a billing event and a double click all come
to one renewal. A reissue form carries its own key, so a second reissue can be asked for once
the first has settled.
"""

from __future__ import annotations

import flask
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectField
from wtforms.validators import Regexp

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.accounts import UnknownProviderAccount
from panel_ssl_plugin.followups import (
    REISSUE,
    RENEWAL,
    FollowUp,
    ReissueRefused,
    RenewalRefused,
    superseded,
)
from panel_ssl_plugin.orders import Placed
from panel_ssl_plugin.providers.base import ProviderError
from panel_ssl_plugin.store import OrderRecord
from panel_ssl_plugin.web import current_runtime
from panel_ssl_plugin.web.forms import IDEMPOTENCY_KEY, choices, period_label, posted, priced
from panel_ssl_plugin.web.pages import back, details_url, flash_back, list_url, order_for
from panel_ssl_plugin.web.views import ORDER, STALE_FORM, UNPROCESSABLE

CHOOSE_PERIOD = "Choose a validity period from the list."
CHOOSE_KEY_TYPE = "Choose a key type from the list."


def register(blueprint: flask.Blueprint) -> None:
    """Add the renewal and reissue routes to the plugin's blueprint."""
    add = blueprint.add_url_rule
    add("/certs/<ssl_id:order_id>/renew", "cert_renew", renew, methods=["GET", "POST"])
    add("/certs/<ssl_id:order_id>/reissue", "cert_reissue", reissue, methods=["POST"])


class RenewForm(FlaskForm):
    """The renewal's period."""

    period_months = SelectField("Validity period", coerce=int)


class ReissueForm(FlaskForm):
    """The new key's type; the key makes a double click or a resent form one reissue."""

    key_type = SelectField(
        "New key type", choices=choices(keys.KEY_TYPES.items()), default=keys.DEFAULT_KEY_TYPE
    )
    idempotency_key = HiddenField(validators=[Regexp(IDEMPOTENCY_KEY)])


# --- renewal ----------------------------------------------------------------------------------


def renew(order_id: int) -> ResponseReturnValue:
    """GET: the period to renew for. POST: order the renewal, then back where the user was.

    A superseded certificate gets no form: the page names the certificate to renew instead.
    """
    order, actor = order_for(order_id, ORDER)
    follow_ups = current_runtime().follow_ups
    current = follow_ups.chain(order).superseded_by(order)
    if flask.request.method == "GET":
        form = RenewForm(formdata=None, period_months=order.period_months)
        alert = superseded(current, RENEWAL) if current else _offer_periods(order, form)
        return _renew_page(order, form, alert, current=current)
    form = posted(RenewForm)
    unavailable = _offer_periods(order, form)
    if not form.validate():
        alert = " ".join(filter(None, (CHOOSE_PERIOD, unavailable)))
        return _renew_page(order, form, alert, UNPROCESSABLE)
    try:
        placed = follow_ups.renew(order.id, actor.audit_name, period_months=form.period_months.data)
    except RenewalRefused as error:
        return _renew_page(order, form, str(error), UNPROCESSABLE, current=error.current)
    period = period_label(placed.order.period_months)
    return flash_back(_ordered(order, placed, RENEWAL, f"for {period}"), "success", list_url(order))


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
    order: OrderRecord,
    form: RenewForm,
    alert: str = "",
    status: int = 200,
    current: OrderRecord | None = None,
) -> ResponseReturnValue:
    back_href = back(list_url(order))
    page = flask.render_template(
        "panel_ssl/cert_renew.html",
        order=order,
        domain=names.display_domain(order.domain),
        period=period_label(order.period_months),
        form=form,
        alert=alert,
        action=flask.url_for(".cert_renew", order_id=order.id, next=back_href),
        back_href=back_href,
        current_href=details_url(current) if current else "",
        current_id=current.id if current else None,
    )
    return page, status


# --- reissue ----------------------------------------------------------------------------------


def reissue(order_id: int) -> Response:
    """Order a new key and certificate for the same names, then show the new order: its
    approval, and later its certificate and key, are there. The old order keeps its own."""
    order, actor = order_for(order_id, ORDER)
    form = posted(ReissueForm)
    if not form.validate():
        problem = STALE_FORM if form.idempotency_key.errors else CHOOSE_KEY_TYPE
        return flash_back(problem, "error", details_url(order))
    try:
        placed = current_runtime().follow_ups.reissue(
            order.id,
            actor.audit_name,
            key_type=form.key_type.data,
            idempotency_key=form.idempotency_key.data,
        )
    except ReissueRefused as error:
        return flash_back(str(error), "error", details_url(order))
    flask.flash(_ordered(order, placed, REISSUE, "with a new key"), "success")
    return flask.redirect(details_url(placed.order))
