"""The minipanel: a small hosting panel that implements the host side of the contract.

It is the demo, the reference for host developers, and the host every test runs in. Plugins come
from the ``hosting_panel.plugins`` entry points unless the config names them (tests do).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import flask
import pluggy
import sqlalchemy as sa
from flask_wtf import CSRFProtect

from panel_ssl_plugin import hookspecs
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.logs import redact_logs
from panel_ssl_plugin.minipanel import auth
from panel_ssl_plugin.minipanel.db import PanelDB, new_secret
from panel_ssl_plugin.minipanel.host import MiniPanelHost
from panel_ssl_plugin.store import make_engine
from panel_ssl_plugin.web.headers import add_security_headers
from panel_ssl_plugin.web.pages import safe_next

csrf = CSRFProtect()
log = logging.getLogger(__name__)
# what the minipanel's billing sells a renewal for: (months, label)
RENEWAL_PERIODS = ((12, "1 year"), (24, "2 years"), (36, "3 years"))


def make_plugin_manager(host: MiniPanelHost, plugins: Iterable[Any] | None) -> pluggy.PluginManager:
    """The host's PluginManager: the contract, the host's own hookimpls, then the plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(host, name="minipanel")
    if plugins is None:
        pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    else:
        for plugin in plugins:
            pm.register(plugin)
    return pm


def open_host(
    engine: sa.Engine, secret_keys: list[str] | None = None, public_url: str | None = None
) -> MiniPanelHost:
    """The minipanel's host hooks on a database, its tables made if missing.

    The CLI uses this too, so ``panel-ssl poll --minipanel`` acts exactly as the running panel.
    Without keys the panel makes one once and keeps it in its own table (demo only).
    """
    db = PanelDB(engine)
    db.create_tables()
    keys = secret_keys or [db.setting("fernet_key", Vault.generate_key)]
    return MiniPanelHost(db, keys, public_url or "http://127.0.0.1:8000")


def start_ticker(pm: pluggy.PluginManager, seconds: float) -> threading.Event:
    """The host's scheduler: ``panel_tick`` every ``seconds`` in a daemon thread.

    A real panel has cron or a job queue for this; the demo needs pending orders to move on by
    themselves all the same. Set the returned event to stop it.
    """
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(seconds):
            try:
                pm.hook.panel_tick(pm=pm, now=datetime.now(UTC))
            except Exception:
                log.exception("panel_tick failed; trying again in %s s", seconds)

    threading.Thread(target=tick, name="minipanel-tick", daemon=True).start()
    return stop


def create_app(config: dict[str, Any] | None = None) -> flask.Flask:
    """Build the minipanel.

    Config: ``DATABASE_URL`` (or ``ENGINE``), ``SECRET_KEY``, ``SSL_SECRET_KEYS`` (Fernet keys,
    newest first), ``PLUGINS`` (objects to register instead of loading entry points), ``DEMO``,
    ``PUBLIC_URL`` (the panel's address, for every link that leaves it; the only host name it
    answers to, unless ``TRUSTED_HOSTS`` says more), ``PERMANENT_SESSION_LIFETIME`` (how long
    a login lasts at most; 12 hours unless set).
    """
    config = dict(config or {})
    engine = config.pop("ENGINE", None) or make_engine(config.get("DATABASE_URL", "sqlite://"))
    host = open_host(engine, config.pop("SSL_SECRET_KEYS", None), config.get("PUBLIC_URL"))
    db = host.db
    app = flask.Flask(__name__)
    app.config.update(
        SECRET_KEY=config.pop("SECRET_KEY", None) or db.setting("flask_secret", new_secret),
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    if config.get("PUBLIC_URL") and "TRUSTED_HOSTS" not in config:
        app.config["TRUSTED_HOSTS"] = [urlsplit(config["PUBLIC_URL"]).hostname]
    app.config.update(config)
    pm = make_plugin_manager(host, config.get("PLUGINS"))
    app.extensions["minipanel"] = db
    app.extensions["hosting_panel"] = pm
    csrf.init_app(app)
    app.after_request(add_security_headers)  # the plugin's popups send the same headers
    redact_logs("werkzeug", app.logger.name)  # approval links are in the request log's URLs
    for blueprints in pm.hook.panel_blueprints(pm=pm):
        for blueprint in blueprints:
            app.register_blueprint(blueprint)
    _register_routes(app, db, pm)
    return app


def login_required(role: str | None = None) -> Callable:
    """Refuse anonymous users (redirect to login) and, with ``role``, everyone else (403)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = flask.g.get("user")
            if user is None:
                return flask.redirect(flask.url_for("login", next=flask.request.full_path))
            if role is not None and user.role != role:
                flask.abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def _register_routes(app: flask.Flask, db: PanelDB, pm: pluggy.PluginManager) -> None:
    @app.before_request
    def load_user() -> None:
        flask.g.user = auth.current_user(db)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        form = flask.request.form
        username = form.get("username", "")
        if flask.request.method == "GET":
            return login_page(username)
        try:
            address = flask.request.remote_addr or ""
            user = auth.log_in(db, username, form.get("password", ""), address)
        except auth.Throttled as refused:
            headers = {"Retry-After": str(refused.retry_after)}
            return login_page(username, str(refused)), 429, headers
        if user is None:
            return login_page(username, "Wrong user name or password.")
        auth.start_session(db, user, app.permanent_session_lifetime)
        target = safe_next(flask.request.args.get("next", ""))
        return flask.redirect(target or flask.url_for("home"))

    def login_page(username: str, error: str | None = None) -> str:
        return flask.render_template(
            "minipanel/login.html", error=error, username=username, demo=app.config.get("DEMO")
        )

    @app.post("/logout")
    def logout():
        auth.end_session(db)
        return flask.redirect(flask.url_for("login"))

    @app.get("/")
    @login_required()
    def home():
        return flask.render_template("minipanel/clients.html", clients=db.clients_of(flask.g.user))

    def client_for_user(client_id: int):
        client = db.client(client_id)
        user = flask.g.user
        if client is None or (user.role != "admin" and client.reseller_id != user.id):
            flask.abort(404)
        return client

    @app.get("/clients/<int:client_id>")
    @login_required()
    def client(client_id: int):
        return flask.redirect(flask.url_for("account_mgmt", client_id=client_id))

    @app.get("/clients/<int:client_id>/account-mgmt")
    @login_required()
    def account_mgmt(client_id: int):
        client = client_for_user(client_id)
        actor = pm.hook.host_current_actor()
        groups = pm.hook.panel_account_tab_links(pm=pm, account_id=str(client.id), actor=actor)
        links = sorted((link for group in groups for link in group or ()), key=lambda k: k.order)
        return flask.render_template(
            "minipanel/account_mgmt.html",
            client=client,
            contacts=db.contacts_of(client.id),
            links=links,
            certificates=db.certificates_of(client.id),
            periods=RENEWAL_PERIODS,
        )

    @app.post("/clients/<int:client_id>/bill-renewal")
    @login_required()
    def bill_renewal(client_id: int):
        """The billing cycle's "renew this", by hand: the plugin makes one renewal however
        often it is told, so a second click bills nothing twice."""
        client = client_for_user(client_id)
        certificate_id = flask.request.form.get("certificate_id", type=int)
        period = flask.request.form.get("period_months", type=int)
        known = {row.certificate_id for row in db.certificates_of(client.id)}
        if certificate_id not in known or period not in dict(RENEWAL_PERIODS):
            flask.abort(400)
        try:
            renewals = pm.hook.panel_renewal_due(
                pm=pm,
                account_id=str(client.id),
                certificate_id=certificate_id,
                period_months=period,
            )
        except Exception as error:  # a host cannot know every plugin's exception types
            log.warning("renewal of certificate %s refused: %s", certificate_id, error)
            flask.flash(f"Renewal of certificate #{certificate_id} not billed: {error}", "error")
        else:
            orders = ", ".join(f"#{order_id}" for order_id in renewals if order_id is not None)
            flask.flash(
                f"Renewal of certificate #{certificate_id} billed: order {orders}.", "success"
            )
        return flask.redirect(flask.url_for("account_mgmt", client_id=client.id))

    @app.get("/admin")
    @login_required(role="admin")
    def admin():
        groups = pm.hook.panel_admin_pages(pm=pm)
        pages = sorted((page for group in groups for page in group or ()), key=lambda p: p.order)
        return flask.render_template("minipanel/admin.html", pages=pages)

    @app.get("/outbox")
    @login_required()
    def outbox():
        user = flask.g.user
        return flask.render_template(
            "minipanel/outbox.html", mails=db.mails_for(user), every_client=user.role == "admin"
        )

    @app.get("/.well-known/<path:rest>")
    def well_known(rest: str):
        content = db.published_file(f".well-known/{rest}")
        if content is None:
            flask.abort(404)
        return flask.Response(content, mimetype="text/plain")
