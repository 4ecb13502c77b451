"""``panel-ssl``: the demo, the plugin's migrations, and the periodic work, from a shell."""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pluggy
import requests
import waitress

from panel_ssl_plugin import events, hookspecs, polling, schema
from panel_ssl_plugin.bridge import service
from panel_ssl_plugin.bridge.settings import BridgeMisconfigured, BridgeSettings
from panel_ssl_plugin.bridge.signing import BridgeKeys
from panel_ssl_plugin.bridge.webhooks import Deliverer
from panel_ssl_plugin.encryption import DecryptionError, InvalidKey
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.minipanel.app import (
    create_app,
    make_plugin_manager,
    open_host,
    start_ticker,
)
from panel_ssl_plugin.minipanel.demo import prepare_demo
from panel_ssl_plugin.reminders import Reminders
from panel_ssl_plugin.runtime import Runtime, runtime_for
from panel_ssl_plugin.store import Outbox, PollerBusy, make_engine

DEFAULT_DEMO_DB = "sqlite:///panel-ssl-demo.db"
KEYS_VARIABLE = "PANEL_SSL_SECRET_KEYS"
TICK_SECONDS = 30.0  # the demo polls pending orders this often, as a host's cron would

database_option = click.option(
    "--database-url",
    envvar="PANEL_SSL_DATABASE_URL",
    required=True,
    help="SQLAlchemy URL of the host's database (env PANEL_SSL_DATABASE_URL).",
)


@click.group()
@click.version_option(package_name="panel-ssl-plugin")
def main() -> None:
    """SSL certificates for hosting panels: demo, migrations, polling and renewals."""


@main.group()
def db() -> None:
    """The plugin's own tables (Alembic branch panel_ssl, table alembic_version_panel_ssl)."""


@db.command()
@database_option
@click.argument("revision", default=schema.HEAD)
def upgrade(database_url: str, revision: str) -> None:
    """Create or upgrade the plugin's tables (to REVISION, the newest by default)."""
    schema.upgrade(database_url, revision)
    click.echo(f"panel-ssl tables at {schema.current(database_url)}")


@db.command()
@database_option
@click.argument("revision")
def downgrade(database_url: str, revision: str) -> None:
    """Take the plugin's tables back to REVISION; "base" removes them all."""
    schema.downgrade(database_url, revision)
    click.echo(f"panel-ssl tables at {schema.current(database_url) or 'base (none)'}")


@db.command()
@database_option
def current(database_url: str) -> None:
    """Show the revision the database is at."""
    click.echo(schema.current(database_url) or "base (no panel-ssl tables)")


@db.command()
def history() -> None:
    """List the plugin's revisions, newest first."""
    for revision, description in schema.history():
        click.echo(f"{revision}  {description}")


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--database-url", default=DEFAULT_DEMO_DB, show_default=True)
def demo(port: int, database_url: str) -> None:
    """Run the minipanel with this plugin and the sandbox provider, seeded with demo users."""
    schema.upgrade(database_url)
    public_url = f"http://127.0.0.1:{port}"
    app = create_app({"DATABASE_URL": database_url, "DEMO": True, "PUBLIC_URL": public_url})
    prepare_demo(app)
    start_ticker(app.extensions["hosting_panel"], TICK_SECONDS)
    location = database_url
    if database_url.startswith("sqlite:///"):
        location = str(Path(database_url.removeprefix("sqlite:///")).resolve())
    click.echo(f"Database: {location}")
    click.echo("Demo users (password = user name): admin, alice, bob")
    click.echo(f"MiniPanel: {public_url}/  (pending orders are checked every {TICK_SECONDS:g} s)")
    waitress.serve(app, host="127.0.0.1", port=port, threads=8)


# --- the periodic work, outside the panel's own process -------------------------------------------


class CommandLineHost:
    """The host side of the contract for a cron job: database and keys from the environment.

    ``PANEL_SSL_SECRET_KEYS`` holds the host's Fernet keys, comma-separated, newest first;
    ``PANEL_SSL_PUBLIC_URL`` the panel's address for links in mail. The host's own hooks
    (publishing challenges, mail, notifications) come from ``--host`` or from plugins installed
    in the entry point group hosting_panel.plugins, and answer before these.
    """

    def __init__(self, database_url: str):
        self.database_url = database_url

    @hookimpl
    def host_database(self) -> str:
        return self.database_url

    @hookimpl
    def host_secret_keys(self) -> list[str]:
        keys = [k.strip() for k in os.environ.get(KEYS_VARIABLE, "").split(",")]
        return [k for k in keys if k]

    @hookimpl
    def host_public_url(self) -> str | None:
        return os.environ.get("PANEL_SSL_PUBLIC_URL")


class KeyTrouble(click.ClickException):
    """A key problem the admin fixes in the configuration: one line on stderr, exit code 2,
    and nothing in the database touched."""

    exit_code = 2

    def __init__(self, problem: str):
        super().__init__(f"{problem}. Nothing was changed.")


@dataclass(frozen=True)
class Host:
    """Which host a command acts as: the cron host with the host's own hook object on top
    (``--host module:object``), or the minipanel (``--minipanel``, the demo)."""

    database_url: str | None
    minipanel: bool = False
    hooks: str | None = None

    def plugin_manager(self) -> pluggy.PluginManager:
        """The hooks this command acts with. In the bridge's environment
        (``PANEL_SSL_BRIDGE_SECRET``), the panel's hooks are the bridge's: the mail and the
        validation files of the orders a poll moves reach the panel, as the service's do."""
        if not self.database_url:
            raise click.UsageError("no database: give --database-url or set PANEL_SSL_DATABASE_URL")
        if self.minipanel:
            return make_plugin_manager(open_host(make_engine(self.database_url)), None)
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.register(CommandLineHost(self.database_url), name="command-line-host")
        settings = optional_bridge_settings()
        if settings is not None:
            pm.register(service.bridge_host(settings, requests.Session()), name="bridge")
        if self.hooks:
            pm.register(load_hooks(self.hooks), name="host")
        pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
        return pm

    def runtime(self) -> Runtime:
        """The plugin's runtime, or KeyTrouble when the keys are missing or malformed: checked
        before any work, since the plugin itself can only say that a hook gave nothing, and a
        shell user needs to hear which variable to set."""
        pm = self.plugin_manager()
        if not pm.hook.host_secret_keys(pm=pm):
            raise KeyTrouble(
                f"no encryption keys: set {KEYS_VARIABLE} to the host's Fernet keys, "
                "comma-separated, newest first"
            )
        try:
            return runtime_for(pm)
        except InvalidKey as error:
            raise KeyTrouble(f"{KEYS_VARIABLE}: {error}") from None


def load_hooks(spec: str) -> object:
    """The host's hook object named ``module:attribute`` (a module, or an object with hookimpl
    methods), imported as the host's own processes import it."""
    module_name, _, attribute = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
        for name in filter(None, attribute.split(".")):
            target = getattr(target, name)
    except (ImportError, AttributeError, ValueError) as error:
        raise click.BadParameter(f"cannot load {spec!r}: {error}", param_hint="--host") from None
    return target


def with_host(command):
    """Give a command ``host``: the database, and which host's hooks answer."""

    @click.option(
        "--database-url",
        envvar="PANEL_SSL_DATABASE_URL",
        help="SQLAlchemy URL of the host's database (env PANEL_SSL_DATABASE_URL).",
    )
    @click.option(
        "--host",
        "hooks",
        envvar="PANEL_SSL_HOST",
        metavar="MODULE:OBJECT",
        help="The host's hook object, so challenges, mail and notifications reach it "
        "(env PANEL_SSL_HOST).",
    )
    @click.option(
        "--minipanel",
        is_flag=True,
        help="Act as the minipanel (its mail outbox and demo keys), e.g. on the demo database.",
    )
    @functools.wraps(command)
    def run(database_url: str | None, hooks: str | None, minipanel: bool, **options):
        return command(Host(database_url, minipanel, hooks), **options)

    return run


def parse_duration(value: str) -> timedelta:
    """'30d', '12h', '90m' or a plain number of days."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm]?)\s*", value)
    if not match:
        raise click.BadParameter("use a number with d, h or m, like 30d")
    units = {"d": "days", "h": "hours", "m": "minutes"}
    return timedelta(**{units[match.group(2) or "d"]: int(match.group(1))})


@main.command()
@with_host
@click.option(
    "--limit", type=click.IntRange(min=1), help="Most orders to check this run [default: all due]."
)
@click.option(
    "--batch", default=polling.CLAIM_SIZE, show_default=True, type=click.IntRange(min=1),
    help="Orders claimed at a time.",
)  # fmt: skip
@click.option(
    "--workers", default=polling.WORKERS, show_default=True, type=click.IntRange(min=1),
    help="Provider calls at once.",
)  # fmt: skip
def poll(host: Host, limit: int | None, batch: int, workers: int) -> None:
    """Check every order whose next check is due, in batches, then expire ended certificates
    and send the expiry reminders due."""
    orders, now = host.runtime().orders, datetime.now(UTC)
    try:
        report = polling.poll_due(orders, now, limit=limit, batch=batch, workers=workers)
    except PollerBusy as busy:
        raise click.ClickException(str(busy)) from None
    click.echo(report.summary())
    click.echo(Reminders(orders).run(now).summary())


@main.command()
@with_host
def remind(host: Host) -> None:
    """Send the expiry reminders that are due (poll sends them too)."""
    click.echo(Reminders(host.runtime().orders).run(datetime.now(UTC)).summary())


@main.command()
@with_host
def reconcile(host: Host) -> None:
    """Ask the providers about every order whose outcome is unknown, held ones too.

    Found: tracked. Provably absent: placed again. Otherwise it stays unknown, for an admin.
    """
    orders = host.runtime().orders

    def show(order) -> None:
        click.echo(f"#{order.id} {order.domain}: {order.status}. {order.status_detail}")

    report = polling.reconcile_unknown(orders, datetime.now(UTC), on_done=show)
    states = ", ".join(f"{n} {state}" for state, n in sorted(report.by_status.items()))
    click.echo(f"Looked up {report.claimed} orders of unknown outcome ({states or 'none'}).")


@main.command("rotate-keys")
@with_host
def rotate_keys(host: Host) -> None:
    """Re-encrypt every private key and provider credential with the newest key.

    Put the new key first in PANEL_SSL_SECRET_KEYS (keep the old ones after it), run this,
    then the old keys may be removed. A secret no key opens stops it with every value as it was.
    """
    orders = host.runtime().orders
    try:
        count = orders.rotate_encryption()
    except DecryptionError as error:
        raise KeyTrouble(
            f"{error}: keep the key it was encrypted with after the new one in {KEYS_VARIABLE}"
        ) from None
    click.echo(f"Re-encrypted {count} secrets with the newest key.")


@main.command("renew-due")
@with_host
@click.option("--within", default="30d", show_default=True, help="Renew what ends within this.")
def renew_due(host: Host, within: str) -> None:
    """Renew issued certificates ending soon, on provider accounts with auto-renew on."""
    follow_ups = host.runtime().follow_ups
    results = list(follow_ups.renew_expiring(datetime.now(UTC), parse_duration(within)))
    for order, outcome in results:
        if isinstance(outcome, Exception):
            text = f"refused: {outcome}"
        else:
            text = f"renewal order {outcome.id} ({outcome.status})"
        click.echo(f"{order.domain} (order {order.id}, ends {order.not_after:%Y-%m-%d}): {text}")
    count = len(results)
    click.echo(f"{count} certificate{'' if count == 1 else 's'} due for renewal.")


@main.group()
def event() -> None:
    """Events from a host's billing, scheduler or client records: JSON on stdin, JSON on stdout.

    Exit 0 done, 1 refused (the reply says why), 2 bad input or configuration. The scripts in
    hooks/ are thin wrappers of these commands; the service takes the same JSON over HTTP.
    """


def _event_reply(host: Host, name: str) -> None:
    """Run event ``name`` (events.py) on stdin's JSON and answer in JSON, failures in words."""
    try:
        payload = json.loads(sys.stdin.read() or "{}")
        code, reply = events.handle(name, host.runtime().pm, payload)
    except events.REFUSALS as error:
        code, reply = events.failure(events.REFUSED, str(error) or type(error).__name__)
    except click.ClickException as error:
        code, reply = events.failure(events.BAD_INPUT, error.format_message())
    except ValueError as error:
        code, reply = events.failure(events.BAD_INPUT, f"bad input: {error}")
    click.echo(json.dumps(reply))
    sys.exit(code)


@event.command("renewal-due")
@with_host
def event_renewal_due(host: Host) -> None:
    """{"account_id": "42", "certificate_id": 7, "period_months": 12} → the renewal order.

    Nothing is assumed: a missing period_months is refused, since it is what was billed.
    """
    _event_reply(host, "renewal-due")


@event.command("tick")
@with_host
def event_tick(host: Host) -> None:
    """{} → poll due orders now (what panel_tick does inside a Python host)."""
    _event_reply(host, "tick")


@event.command("account-updated")
@with_host
def event_account_updated(host: Host) -> None:
    """{"account_id": "42"} → every plugin hears that the client's record changed."""
    _event_reply(host, "account-updated")


# --- the service (panel_ssl_plugin/bridge) --------------------------------------------------------


def optional_bridge_settings() -> BridgeSettings | None:
    """The bridge's settings when its environment is set, None when not; a usage error for a
    half-set one."""
    try:
        return BridgeSettings.from_env()
    except BridgeMisconfigured as error:
        raise click.UsageError(str(error)) from None


def bridge_settings() -> BridgeSettings:
    """The bridge's settings from the environment, or a usage error saying what to set."""
    settings = optional_bridge_settings()
    if settings is None:
        raise click.UsageError(
            "no bridge secret: set PANEL_SSL_BRIDGE_SECRET (or PANEL_SSL_BRIDGE_SECRET_FILE), "
            "the string your panel signs launch links and calls with, and PANEL_SSL_BRIDGE_URL"
        )
    return settings


@main.command()
@with_host
@click.option(
    "--bind", default="127.0.0.1:8080", show_default=True, help="Address and port to listen on."
)
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(min=1),
    help="Requests served at once (each waits up to PANEL_SSL_BRIDGE_TIMEOUT for the panel).",
)  # fmt: skip
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="Take the client's address, scheme and host from the X-Forwarded-* headers of the "
    "reverse proxy at --proxy (and from no one else).",
)
@click.option(
    "--proxy", default="127.0.0.1", show_default=True, metavar="ADDRESS",
    help="The reverse proxy's address, trusted with --behind-proxy.",
)  # fmt: skip
def serve(host: Host, bind: str, threads: int, behind_proxy: bool, proxy: str) -> None:
    """Serve the popups to a panel in any language, under waitress (the bridge).

    The panel signs launch links and answers the plugin's calls at PANEL_SSL_BRIDGE_URL with
    PANEL_SSL_BRIDGE_SECRET; webhooks go to PANEL_SSL_WEBHOOK_URL; PANEL_SSL_PUBLIC_URL is where
    browsers reach the service (links in mail, the host names it answers to). See the bridge's
    pages in the documentation (docs/bridge/), "Deploying the bridge" first.
    """
    settings = bridge_settings()
    if not settings.public_url:
        raise click.UsageError(
            "no public address: set PANEL_SSL_PUBLIC_URL to where browsers reach the service, "
            "like https://ssl.panel.example (approval links in mail lead there, and the service "
            "answers only to its host name)"
        )
    app = service.create_service(host.runtime().pm, settings)
    service.start_delivery(app)
    click.echo(
        f"panel-ssl service on http://{bind}/ssl/ for {settings.public_url} "
        f"(bridge: {settings.url or 'none'})"
    )
    proxy_options = {}
    if behind_proxy:  # waitress drops X-Forwarded-* unless told whose to believe
        proxy_options = {
            "trusted_proxy": proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto",
                                      "x-forwarded-host", "x-forwarded-port"},
            "clear_untrusted_proxy_headers": True,
        }  # fmt: skip
    waitress.serve(app, listen=bind, threads=threads, ident="panel-ssl", **proxy_options)


@main.group()
def webhooks() -> None:
    """The webhook outbox of the service (PANEL_SSL_WEBHOOK_URL)."""


@webhooks.command("deliver")
@with_host
def webhooks_deliver(host: Host) -> None:
    """Send every due webhook now (the service does this by itself, too)."""
    settings = bridge_settings()
    if not settings.webhook_url:
        raise click.UsageError("no webhook address: set PANEL_SSL_WEBHOOK_URL")
    engine = host.runtime().engine
    key = BridgeKeys.from_secret(settings.secret).webhooks
    deliverer = Deliverer(Outbox(engine), settings.webhook_url, key, requests.Session())
    click.echo(deliverer.deliver_due().summary())
