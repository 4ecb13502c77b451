"""This plugin's side of the host contract (see hookspecs.py for what each hook means)."""

from __future__ import annotations

import logging
from datetime import datetime

import flask
import pluggy

from panel_ssl_plugin import polling
from panel_ssl_plugin.hookspecs import AdminPage, Link, MigrationSet, PopupSize, hookimpl
from panel_ssl_plugin.providers.acme import AcmeProvider
from panel_ssl_plugin.providers.gogetssl import GoGetSSLProvider
from panel_ssl_plugin.providers.sandbox import SandboxProvider
from panel_ssl_plugin.providers.sectigo import SectigoProvider
from panel_ssl_plugin.reminders import Reminders
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.schema import BRANCH_LABEL, VERSION_TABLE
from panel_ssl_plugin.store import TABLE_PREFIX, Outbox, PollerBusy
from panel_ssl_plugin.web import create_blueprint

log = logging.getLogger(__name__)

ORDER_POPUP = PopupSize(760, 880)
LIST_POPUP = PopupSize(1000, 720)


@hookimpl
def panel_account_tab_links(account_id: str) -> list[Link]:
    # Runs on every view of the Account Mgmt tab: two url_for calls, no I/O. The views behind
    # the links ask the host's permission hook on every request.
    return [
        Link(
            "Order SSL Cert",
            flask.url_for("panel_ssl.order", account_id=account_id),
            popup=ORDER_POPUP,
            order=10,
            description="Order a new SSL/TLS certificate for this client",
            endpoint="panel_ssl.order",
        ),
        Link(
            "List SSL Certs",
            flask.url_for("panel_ssl.certs", account_id=account_id),
            popup=LIST_POPUP,
            order=11,
            description="Status, details, downloads and renewal of this client's certificates",
            endpoint="panel_ssl.certs",
        ),
    ]


@hookimpl
def panel_blueprints(pm: pluggy.PluginManager) -> list[flask.Blueprint]:
    return [create_blueprint(pm)]


@hookimpl
def panel_migrations(pm: pluggy.PluginManager) -> MigrationSet:
    return MigrationSet(
        script_location=resource_path("migrations"),
        version_table=VERSION_TABLE,
        branch_label=BRANCH_LABEL,
        table_prefix=TABLE_PREFIX,
        database=pm.hook.host_database(pm=pm),
    )


@hookimpl
def panel_admin_pages() -> list[AdminPage]:
    return [
        AdminPage(
            "SSL Providers",
            flask.url_for("panel_ssl.admin_providers"),
            description="Provider accounts the SSL plugin orders certificates through",
            order=50,
            endpoint="panel_ssl.admin_providers",
        )
    ]


@hookimpl
def ssl_register_providers() -> list[type]:
    return [SandboxProvider, AcmeProvider, GoGetSSLProvider, SectigoProvider]


@hookimpl
def panel_renewal_due(
    pm: pluggy.PluginManager, account_id: str, certificate_id: int, period_months: int
) -> int:
    follow_ups = runtime_for(pm).follow_ups
    return follow_ups.renewal_due(str(account_id), int(certificate_id), int(period_months)).id


@hookimpl
def panel_tick(pm: pluggy.PluginManager, now: datetime) -> None:
    """Polls every order due, in batches, with the host's PANEL_SSL_POLL_* settings
    (polling.py); prunes the webhook outbox; sends expiry reminders."""
    runtime = runtime_for(pm)
    settings = polling.PollSettings.from_env()
    try:
        polling.poll_due(runtime.orders, now, workers=settings.workers, batch=settings.batch)
    except PollerBusy as busy:  # the previous tick, or a cron poller, is still at it
        log.warning("panel_tick skipped polling: %s", busy)
    Outbox(runtime.engine).prune(now)  # every host queues webhooks (store/events.py says why)
    Reminders(runtime.orders).run(now)
