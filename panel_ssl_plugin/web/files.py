"""Downloads of an issued certificate: the public files by link, the key's files by POST.

Files holding the private key (the key, PKCS#12, a server bundle) are POST only, so no link,
prefetch or log can fetch one, and the order service records each in the order's history.
"""

from __future__ import annotations

import io

import flask
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField

from panel_ssl_plugin.downloads import FORMATS, Download, DownloadRefused
from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.orders import KEY_FORMATS
from panel_ssl_plugin.store import OrderRecord
from panel_ssl_plugin.web import current_runtime
from panel_ssl_plugin.web.forms import posted
from panel_ssl_plugin.web.pages import VIEW, details_url, flash_back, order_for
from panel_ssl_plugin.web.views import ORDER

PUBLIC_FORMATS = tuple(fmt for fmt in FORMATS if fmt not in KEY_FORMATS)
LABELS = {
    "pem": "Certificate (.crt)",
    "chain": "CA chain (.ca-bundle)",
    "fullchain": "Full chain (.pem)",
    "key": "Private key (.key)",
    "pfx": "PKCS#12 (.pfx)",
    "bundle": "Bundle for {server} (.zip)",
}


def register(blueprint: flask.Blueprint) -> None:
    """Add the download routes to the plugin's blueprint."""
    blueprint.add_url_rule(
        f"/certs/<ssl_id:order_id>/download/<any({', '.join(PUBLIC_FORMATS)}):fmt>",
        "cert_download",
        download,
    )
    blueprint.add_url_rule(
        f"/certs/<ssl_id:order_id>/download/<any({', '.join(sorted(KEY_FORMATS))}):fmt>",
        "cert_download_secret",
        download_secret,
        methods=["POST"],
    )


class PasswordForm(FlaskForm):
    """The PKCS#12 password; the order service judges it, so the rule lives in one place."""

    password = PasswordField("Password")


def download(order_id: int, fmt: str) -> Response:
    """Certificate and chain: public material, a plain link."""
    order, actor = order_for(order_id, VIEW)
    return _download(order, actor, fmt, "")


def download_secret(order_id: int, fmt: str) -> Response:
    """Files holding the private key: POST only, so no link, prefetch or log can fetch one."""
    order, actor = order_for(order_id, ORDER)
    form = posted(PasswordForm)
    return _download(order, actor, fmt, form.password.data or "")


def _download(order: OrderRecord, actor: Actor, fmt: str, password: str) -> Response:
    try:
        made: Download = current_runtime().orders.download(
            order.id, fmt, actor.audit_name, password
        )
    except DownloadRefused as error:
        return flash_back(str(error), "error", details_url(order, "certificate"))
    response = flask.send_file(
        io.BytesIO(made.content),
        mimetype=made.mimetype,
        as_attachment=True,
        download_name=made.filename,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
