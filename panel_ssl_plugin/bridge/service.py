"""The app ``panel-ssl serve`` runs: the plugin's blueprint on its own, in bridge mode.

The PluginManager comes from the command line (the database, the Fernet keys, a ``--host``
hook object); this module adds the bridge (hooks.py) as the host of the popups, the service's
routes (web.py), and the service's share of the periodic work: webhooks out, expired launches
and sessions away.
"""

from __future__ import annotations

import threading
from datetime import datetime
from urllib.parse import urlsplit

import flask
import pluggy
import requests

from panel_ssl_plugin.bridge.client import BridgeClient
from panel_ssl_plugin.bridge.hooks import BridgeHost
from panel_ssl_plugin.bridge.settings import BridgeSettings
from panel_ssl_plugin.bridge.signing import BridgeKeys
from panel_ssl_plugin.bridge.web import create_bridge_blueprint
from panel_ssl_plugin.bridge.webhooks import Deliverer
from panel_ssl_plugin.hookspecs import AdminPage, hookimpl
from panel_ssl_plugin.logs import redact_logs
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import Outbox
from panel_ssl_plugin.store.bridge import BridgeRecords
from panel_ssl_plugin.web.headers import add_security_headers

DELIVERY_SECONDS = 30.0  # webhooks are retried this often at least; a transition wakes it at once
MAX_REQUEST = 1024 * 1024  # bytes of any request's body (an order form with a pasted CSR: ~20 KB)
FORM_COOKIE = "panel_ssl_form"  # Flask's session (the forms' CSRF token), named so as not to
# overwrite a panel's own "session" cookie on the same host


class ServiceWork:
    """The service's hookimpls beside the BridgeHost: its admin page, and what a tick does."""

    def __init__(self, records: BridgeRecords, deliverer: Deliverer | None):
        self.records = records
        self.deliverer = deliverer

    @hookimpl
    def panel_admin_pages(self) -> list[AdminPage]:
        return [
            AdminPage(
                "Webhooks",
                flask.url_for("panel_ssl_bridge.admin_webhooks"),
                description="Notifications the panel has not taken yet",
                order=60,
                endpoint="panel_ssl_bridge.admin_webhooks",
            )
        ]

    @hookimpl
    def panel_tick(self, now: datetime) -> None:
        """Wake the delivery thread rather than deliver here: the tick may be the panel's own
        request, and a panel serving one request at a time (``php -S``) could not take a
        webhook while it waits for this one's answer."""
        self._wake()
        self.records.forget_expired(now)

    @hookimpl
    def ssl_order_status_changed(self) -> None:
        """The transition's webhooks are in the outbox: wake the delivery thread."""
        self._wake()

    def _wake(self) -> None:
        if self.deliverer is not None:
            self.deliverer.wake.set()


def bridge_host(settings: BridgeSettings, http: requests.Session) -> BridgeHost:
    """The bridge as the host of the plugin's hooks: the service registers it, and so does a
    cron command run in the bridge's environment (cli.py), so its mail and publishing reach
    the panel too."""
    client = None
    if settings.url:
        client = BridgeClient(settings.url, BridgeKeys.from_secret(settings.secret).calls,
                              settings.timeout, http)  # fmt: skip
    return BridgeHost(client, settings.public_url)


def create_service(
    pm: pluggy.PluginManager, settings: BridgeSettings, http: requests.Session | None = None
) -> flask.Flask:
    """The service's Flask app on ``pm``; ``http`` carries the bridge calls and webhooks."""
    http = http or requests.Session()
    keys = BridgeKeys.from_secret(settings.secret)
    engine = runtime_for(pm).engine
    records, outbox = BridgeRecords(engine), Outbox(engine)
    deliverer = None
    if settings.webhook_url:
        deliverer = Deliverer(outbox, settings.webhook_url, keys.webhooks, http)
    if pm.get_plugin("bridge") is not None:  # the command line's, made before the app
        pm.unregister(name="bridge")
    pm.register(bridge_host(settings, http), name="bridge")
    pm.register(ServiceWork(records, deliverer), name="bridge-service")

    app = flask.Flask(__name__, template_folder="templates")
    secure = bool(settings.public_url) and urlsplit(settings.public_url).scheme == "https"
    app.config.update(
        # shared by every instance with the bridge secret: a form one serves posts to another
        SECRET_KEY=keys.forms.hex(),
        SESSION_COOKIE_NAME=FORM_COOKIE,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        MAX_CONTENT_LENGTH=MAX_REQUEST,
        TRUSTED_HOSTS=settings.hosts() or None,
    )
    app.extensions["panel_ssl_deliverer"] = deliverer
    for blueprints in pm.hook.panel_blueprints(pm=pm):
        for blueprint in blueprints:
            app.register_blueprint(blueprint)
    app.register_blueprint(create_bridge_blueprint(pm, keys, records, outbox, secure))
    app.after_request(add_security_headers)
    redact_logs(app.logger.name)

    @app.context_processor
    def admin_navigation() -> dict:
        """What the service's admin layout shows: the admin pages, failing webhooks."""
        if not (flask.request.endpoint or "").startswith(("panel_ssl.admin", "panel_ssl_bridge.")):
            return {}
        pages = sorted(
            (page for group in pm.hook.panel_admin_pages(pm=pm) for page in group or ()),
            key=lambda page: page.order,
        )
        return {"service_admin_pages": pages, "service_failing_webhooks": outbox.failing()}

    return app


def start_delivery(app: flask.Flask, every: float = DELIVERY_SECONDS) -> threading.Event | None:
    """The delivery thread of a running service (None without webhooks); set the returned
    event to stop it."""
    deliverer = app.extensions["panel_ssl_deliverer"]
    if deliverer is None:
        return None
    stop = threading.Event()
    threading.Thread(
        target=deliverer.run, args=(stop, every), name="panel-ssl-webhooks", daemon=True
    ).start()
    return stop
