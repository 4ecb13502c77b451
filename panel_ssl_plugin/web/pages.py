"""What every certificate page does the same way: find the order under the host's permission,
and go back where the user came from, with a message.

Each view looks the order up first and then asks the host's permission for that order's
account, so a reseller never reaches another reseller's certificate.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import flask
from werkzeug.wrappers import Response

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.orders import OrderNotFound
from panel_ssl_plugin.store import OrderRecord
from panel_ssl_plugin.web import current_runtime, require

VIEW = "ssl.view"


def order_for(order_id: int, action: str) -> tuple[OrderRecord, Actor]:
    """The order and the actor, once the host allows ``action`` on the order's account."""
    try:
        order = current_runtime().orders.get(order_id)
    except OrderNotFound:
        flask.abort(404)
    return order, require(action, order.account_id)


def here() -> str:
    """This page's path and query, for the ``next`` of the forms it shows."""
    return flask.request.full_path.rstrip("?")


def back(default: str) -> str:
    """``next`` when it is a path on this site, else ``default``: no open redirect."""
    target = flask.request.args.get("next", "")
    parts = urlsplit(target)
    local = target.startswith("/") and not parts.scheme and not parts.netloc
    return target if local and "\\" not in target else default


def details_url(order: OrderRecord, tab: str = "status") -> str:
    return flask.url_for(".cert", order_id=order.id, tab=tab)


def list_url(order: OrderRecord) -> str:
    return flask.url_for(".certs", account_id=order.account_id)


def flash_back(message: str, category: str, default: str) -> Response:
    flask.flash(message, category)
    return flask.redirect(back(default))
