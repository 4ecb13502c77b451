"""The host contract: every hook between a hosting panel and its plugins.

No hosting panel ships these specifications yet, so this module publishes them for hosts to adopt::

    import pluggy
    from panel_ssl_plugin import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)

Three families of hooks live here:

* host → plugin (``panel_*``): the host calls them, plugins implement them;
* plugin → host (``host_*``): a plugin calls them, the host implements them;
* notifications and extensions (``ssl_*``): this plugin calls them, anyone may implement them.

Every host → plugin hook may take ``pm``, the host's :class:`pluggy.PluginManager`: that is how a
plugin reaches the host's side of the contract without global state. A hookimpl names only the
arguments it needs; pluggy passes just those.

The small records that cross the boundary (:class:`Link`, :class:`Actor`, ...) are frozen
dataclasses defined here too, so host and plugin share one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import flask
    import sqlalchemy

PROJECT = "hosting_panel"
ENTRY_POINT_GROUP = "hosting_panel.plugins"
CONTRACT_VERSION = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Whoever is using the panel: ``role`` is the host's own word (``"admin"``, ``"reseller"``)."""

    id: str
    name: str
    role: str

    @property
    def audit_name(self) -> str:
        """How the order history names this actor: readable, and unique by the id."""
        return f"{self.name} (#{self.id})"


@dataclass(frozen=True)
class PopupSize:
    """Size of the window a link opens in, in CSS pixels."""

    width: int
    height: int


@dataclass(frozen=True)
class Link:
    """One entry of a link bar: what a host renders for :func:`panel_account_tab_links`.

    ``href`` is built for the current request (wherever the host mounted the plugin);
    ``endpoint`` is the Flask endpoint it was built from, the name ``plugin.yaml`` uses.
    """

    label: str
    href: str
    popup: PopupSize | None = None
    order: int = 100
    description: str = ""
    endpoint: str = ""


@dataclass(frozen=True)
class AdminPage:
    """A page a plugin adds to the host's admin area; ``href`` and ``endpoint`` as for
    :class:`Link`."""

    label: str
    href: str
    description: str = ""
    order: int = 100
    endpoint: str = ""


@dataclass(frozen=True)
class MigrationSet:
    """Where a plugin's Alembic scripts live and which version table keeps their state.

    ``database`` is what the plugin would connect to (the host's ``host_database`` answer, a URL
    or an Engine). Alembic takes it as ``config.attributes["database"]``; a connection in
    ``config.attributes["connection"]`` (the host's own, inside its own run) or a
    ``sqlalchemy.url`` option wins over it.
    """

    script_location: Path
    version_table: str
    branch_label: str
    table_prefix: str
    database: Any = None


@dataclass(frozen=True)
class Contact:
    """A person at the client's organization; the SSL order's admin/tech contact comes from one."""

    id: str
    first_name: str
    last_name: str
    email: str
    phone: str = ""
    title: str = ""
    address: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""


@dataclass(frozen=True)
class AccountProfile:
    """What the host knows of a client account, used to pre-fill the order form.

    ``organization``, ``state`` and ``country`` (ISO 3166-1 alpha-2) go into every certificate's
    subject. ``address`` (street and number), ``city``, ``postal_code`` and ``phone`` are the
    organization's own: products that validate the organization (OV, EV) need them, and the
    order form starts with these. All are optional; the reseller fills in what is missing.
    """

    account_id: str
    name: str
    organization: str = ""
    state: str = ""
    country: str = ""
    city: str = ""
    address: str = ""
    postal_code: str = ""
    phone: str = ""
    default_contact: Contact | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- host → plugin --------------------------------------------------------------------------------


@hookspec
def panel_account_tab_links(pm: pluggy.PluginManager, account_id: str, actor: Actor) -> list[Link]:
    """Links for the orange link bar of a client's **Account Mgmt** tab.

    Called by the host every time it renders that tab, so an implementation must be cheap: build
    the links from the arguments, do no I/O. The host renders each link as a button that opens
    ``href`` in a popup window of ``popup`` size (a new tab where ``popup`` is ``None``), sorted
    by ``order``. Return an empty list (or nothing) to show no link to this actor. The SSL plugin
    returns **Order SSL Cert** (``/ssl/accounts/<id>/order``, a 760 by 880 popup) and
    **List SSL Certs** (``/ssl/accounts/<id>/certs``, 1000 by 720).

    Example::

        @hookimpl
        def panel_account_tab_links(account_id, actor):
            return [Link("Order SSL Cert", f"/ssl/accounts/{account_id}/order",
                         popup=PopupSize(720, 820), order=10)]
    """


@hookspec
def panel_blueprints(pm: pluggy.PluginManager) -> list[flask.Blueprint]:
    """Flask blueprints the host registers on its application at start-up.

    Called by a Flask host once, while it builds its app, after every plugin is loaded. The
    blueprints carry their own URL prefix; a plugin's views reach the host's side of the contract
    through the ``pm`` it was given here. The SSL plugin's blueprint is ``panel_ssl``, under
    ``/ssl``; a host may register it under a prefix of its own.

    Example::

        @hookimpl
        def panel_blueprints(pm):
            return [create_blueprint(pm)]
    """


@hookspec
def panel_admin_pages(pm: pluggy.PluginManager) -> list[AdminPage]:
    """Pages a plugin adds to the host's admin area (only admins see that area).

    Called by the host when it renders its admin navigation. The pages themselves are served by
    the plugin's blueprint and check permission again on every request. The SSL plugin adds
    **SSL Providers**.

    Example::

        @hookimpl
        def panel_admin_pages():
            return [AdminPage("SSL Providers", "/ssl/admin/providers")]
    """


@hookspec
def panel_migrations(pm: pluggy.PluginManager) -> MigrationSet:
    """Where the plugin's Alembic migrations live, for a host that runs migrations itself.

    Called by the host's installer or upgrade command. The plugin's scripts use their own version
    table and branch label, so running them never touches the host's own migration history, and
    a downgrade to ``panel_ssl@base`` leaves no table behind, the version table included.

    Example::

        for migrations in pm.hook.panel_migrations(pm=pm):
            cfg = alembic.config.Config()
            cfg.set_main_option("script_location", str(migrations.script_location))
            cfg.attributes["database"] = migrations.database  # or a connection of the host's
            alembic.command.upgrade(cfg, f"{migrations.branch_label}@head")
    """


@hookspec
def panel_renewal_due(
    pm: pluggy.PluginManager, account_id: str, certificate_id: int, period_months: int
) -> int | None:
    """The host's billing says: renew this certificate for ``period_months`` more.

    Called by the host's billing cycle, cron or a "renew now" button, possibly more than once for
    the same bill, late, or after the reseller already clicked Renew: the plugin makes one
    renewal order per period however often the event arrives, and gives back that one. The
    renewal is of the newest certificate of ``certificate_id``'s chain; a period already renewed
    (a renewal issued while the certificate is far from its end) makes nothing new. Returns the
    id of the renewal order; name it as ``certificate_id`` next time (naming the first one works
    too).

    Example::

        pm.hook.panel_renewal_due(pm=pm, account_id="42", certificate_id=7, period_months=12)
    """


@hookspec
def panel_account_updated(pm: pluggy.PluginManager, account_id: str) -> None:
    """A client's profile or contacts changed in the host.

    Called by the host after it saves a client record, so a plugin that caches pre-fill data can
    drop it. Optional for plugins: the SSL plugin reads a client's profile and contacts each
    time a popup opens, keeps nothing of them, and so does not implement it.

    Example::

        pm.hook.panel_account_updated(pm=pm, account_id="42")
    """


@hookspec
def panel_tick(pm: pluggy.PluginManager, now: datetime) -> None:
    """Periodic work. Called by the host's scheduler every minute or so.

    The SSL plugin polls providers for orders whose next check is due, expires certificates
    past their end date and sends the expiry reminders that are due. ``now`` is an aware UTC
    datetime.

    Example::

        pm.hook.panel_tick(pm=pm, now=datetime.now(UTC))
    """


# --- plugin → host --------------------------------------------------------------------------------


@hookspec(firstresult=True)
def host_database(pm: pluggy.PluginManager) -> sqlalchemy.Engine | str:
    """The host's database, as an SQLAlchemy Engine or URL; the plugin keeps its tables there.

    Called by a plugin once, when it first needs the database.

    Example::

        @hookimpl
        def host_database():
            return "postgresql+psycopg://panel@db/panel"
    """


@hookspec(firstresult=True)
def host_secret_keys(pm: pluggy.PluginManager) -> list[str]:
    """Keys for encryption at rest (Fernet keys, URL-safe base64), newest first.

    Called by a plugin once, when it first encrypts or decrypts. Data is encrypted with the first
    key and decrypted with any of them, so a host rotates by putting a new key in front.

    Example::

        @hookimpl
        def host_secret_keys():
            return [os.environ["PANEL_FERNET_KEY"]]
    """


@hookspec(firstresult=True)
def host_public_url() -> str | None:
    """The panel's public base URL (scheme, host, optional path), without a trailing slash.

    Called by a plugin when it builds a link that leaves the panel, such as the approval link in
    a sandbox approval e-mail, possibly outside any request (polling, renewals from cron).

    Example::

        @hookimpl
        def host_public_url():
            return "https://panel.example.net"
    """


@hookspec(firstresult=True)
def host_account_profile(account_id: str) -> AccountProfile | None:
    """What the host knows of a client: organization, state, country and default contact.

    Called by the SSL plugin when it renders the order form, to pre-fill it. Return ``None`` for an
    unknown account.

    Example::

        @hookimpl
        def host_account_profile(account_id):
            client = db.get_client(account_id)
            return AccountProfile(account_id, client.name, organization=client.company,
                                  state=client.state, country=client.country)
    """


@hookspec(firstresult=True)
def host_account_contacts(account_id: str) -> list[Contact]:
    """Every contact of a client, default contact first.

    Called by the SSL plugin on the "Specify Contact Info" step of an order.

    Example::

        @hookimpl
        def host_account_contacts(account_id):
            return [Contact(str(c.id), c.first, c.last, c.email) for c in db.contacts(account_id)]
    """


@hookspec(firstresult=True)
def host_current_actor() -> Actor | None:
    """Who is making the current request, or ``None`` when nobody is logged in.

    Called by a plugin's views at the start of every request.

    Example::

        @hookimpl
        def host_current_actor():
            user = flask.g.get("user")
            return Actor(str(user.id), user.name, user.role) if user else None
    """


@hookspec(firstresult=True)
def host_login_url(next: str) -> str | None:
    """Where to send someone who is not logged in, so that they come back to ``next`` after.

    Called by a plugin's views when ``host_current_actor`` answers ``None`` on a page a person
    opened (a link, a popup). ``next`` is the page's path and query. Return ``None`` and the
    plugin answers 401; so it always does for requests that want JSON and for posted forms.

    Example::

        @hookimpl
        def host_login_url(next):
            return flask.url_for("login", next=next)
    """


@hookspec(firstresult=True)
def host_permission_allowed(actor: Actor, action: str, account_id: str | None) -> bool | None:
    """May ``actor`` do ``action`` on ``account_id``? The host's answer is final.

    Called by a plugin before it reads or writes anything. Actions of the SSL plugin:
    ``ssl.view`` and ``ssl.order`` on an account, and ``ssl.admin`` (``account_id`` ``None``) for
    provider settings. Return ``None`` to let another implementation answer; nothing answering
    means no.

    Example::

        @hookimpl
        def host_permission_allowed(actor, action, account_id):
            if actor.role == "admin":
                return True
            return action != "ssl.admin" and db.owner_of(account_id) == actor.id
    """


@hookspec(firstresult=True)
def host_publish_http_challenge(domain: str, token: str, content: str) -> bool | None:
    """Serve ``content`` at ``http://<domain>/.well-known/acme-challenge/<token>``.

    Called by the SSL plugin when an ACME (or HTTP-file DCV) order needs proof of control and the
    host owns the site's document root. Return ``True`` once it is served; return ``None`` (or do
    not implement the hook) and the plugin shows the user what to publish instead.

    Example::

        @hookimpl
        def host_publish_http_challenge(domain, token, content):
            (docroot(domain) / ".well-known/acme-challenge" / token).write_text(content)
            return True
    """


@hookspec(firstresult=True)
def host_publish_http_file(domain: str, path: str, content: str) -> bool | None:
    """Serve ``content`` at ``http://<domain>/<path>``, e.g. ``.well-known/pki-validation/X.txt``.

    Called by the SSL plugin when a commercial provider (GoGetSSL, Sectigo) validates by HTTP
    file and the host owns the site's document root. Return ``True`` once it is served; return
    ``None`` and the plugin shows the user which file to upload instead. Whatever the provider,
    the plugin hands every HTTP file and DNS record of an order to the host first and shows the
    user only what the host could not publish. The order popup's
    pre-flight check publishes a small probe the same way
    (``.well-known/pki-validation/panel-ssl-probe-<random>.txt``), fetches it back, and removes
    it with :func:`host_unpublish_http_file`.

    Example::

        @hookimpl
        def host_publish_http_file(domain, path, content):
            target = docroot(domain) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            return True
    """


@hookspec(firstresult=True)
def host_unpublish_http_file(domain: str, path: str) -> bool | None:
    """Stop serving ``http://<domain>/<path>``, a file :func:`host_publish_http_file` published.

    Called by the SSL plugin right after the order popup's pre-flight check fetched its probe
    file back, whether the fetch worked or not, so probes never pile up in a site's document
    root. ``path`` is the one published, e.g. ``.well-known/pki-validation/panel-ssl-probe-
    <random>.txt``. Optional: a host that does not implement it keeps the probe files (they are
    a few bytes each, and say nothing). Return ``True`` once the file is gone.

    Example::

        @hookimpl
        def host_unpublish_http_file(domain, path):
            (docroot(domain) / path).unlink(missing_ok=True)
            return True
    """


@hookspec(firstresult=True)
def host_publish_dns_record(domain: str, name: str, record_type: str, value: str) -> bool | None:
    """Create the DNS record ``name`` of ``record_type`` (``TXT`` or ``CNAME``) with ``value``.

    Called by the SSL plugin for dns-01 or DNS/CNAME DCV when the host runs the zone of
    ``domain``. Return ``True`` once the record is published, ``None`` to let the user do it.

    Example::

        @hookimpl
        def host_publish_dns_record(domain, name, record_type, value):
            zones.add_record(domain, name, record_type, value, ttl=60)
            return True
    """


@hookspec(firstresult=True)
def host_send_mail(to: str, subject: str, body: str, account_id: str | None) -> bool | None:
    """Send an e-mail on the plugin's behalf, through the host's own mail setup.

    Called by the SSL plugin's sandbox provider to deliver approval links, and for expiry
    reminders. ``account_id`` is the client account the mail is about (``None`` for none): file
    the mail, and show it in the panel, by that account, never by the address it goes to (one
    address may be the contact of several clients, or of none). Return ``True`` when the host
    accepted the mail. An implementation written before ``account_id`` existed, naming only
    ``to``, ``subject`` and ``body``, keeps working: pluggy passes only the arguments it names.

    Example::

        @hookimpl
        def host_send_mail(to, subject, body, account_id):
            smtp.send_message(make_message(to, subject, body))
            db.file_mail(client_id=account_id, to=to, subject=subject)
            return True
    """


@hookspec(firstresult=True)
def host_reseller_email(account_id: str) -> str | None:
    """The e-mail address of the reseller who looks after the client ``account_id``.

    Called by the SSL plugin when it sends an expiry reminder on a provider account whose
    reminders go to the reseller too: the reseller gets a copy of the client's mail. Return
    ``None`` when the client has no reseller, or the reseller wants no copies.

    Example::

        @hookimpl
        def host_reseller_email(account_id):
            return db.get_client(account_id).reseller.email
    """


# --- notifications and extensions -----------------------------------------------------------------


@hookspec
def ssl_certificate_issued(certificate: dict[str, Any]) -> None:
    """A certificate was issued and verified; ``certificate`` holds the order's public fields.

    Called by the SSL plugin once per issuance, after the change is committed. A host can install
    the certificate on the web server here (the PEM is in ``certificate["certificate"]``, the chain
    in ``certificate["chain"]``; the private key is not passed).

    Example::

        @hookimpl
        def ssl_certificate_issued(certificate):
            webserver.install(certificate["domain"], certificate["certificate"])
    """


@hookspec
def ssl_order_status_changed(order: dict[str, Any], old: str, new: str) -> None:
    """An order moved from state ``old`` to state ``new`` (the documentation's "Statuses and
    words" page draws the states and the moves between them).

    Called by the SSL plugin exactly once per transition, after it is committed.

    Example::

        @hookimpl
        def ssl_order_status_changed(order, old, new):
            log.info("order %s: %s -> %s", order["id"], old, new)
    """


@hookspec
def ssl_register_providers() -> list[type]:
    """Provider classes to offer beside the built-in ones.

    Called by the SSL plugin when it builds its provider registry. Each class subclasses
    ``panel_ssl_plugin.providers.base.Provider`` and has a unique ``key``.

    Example::

        @hookimpl
        def ssl_register_providers():
            return [MyCAProvider]
    """
