"""The plugin's tables and every query on them: the only package that writes SQL.

One module per table family, each owning its records and queries:

- ``tables``: the metadata, every table, the clock, ``make_engine`` and the ``Queries`` base;
- ``accounts``: provider accounts and the per-request memory of them;
- ``order_queries``: orders (add, read, claim and lease, list pages, updates, chains);
- ``events``: order events, and the webhooks a transition queues in its transaction;
- ``outbox``: the webhook outbox as its deliverers read it (``Outbox``);
- ``reminder_queries``: reminder schedules, the due query, the reminder rows;
- ``bridge``: the bridge's launch tokens, sessions and grants (``BridgeRecords``);
- ``lease``: the lease the poller's claim and the outbox's share.

The modules of orders and reminders are not named ``orders`` and ``reminders``: those are the
tables' names here, and a submodule of the same name would shadow the table on the package.

``Store`` stays one object for its callers: the mixins of the families, composed here, so
``store.add_order`` and ``store.provider_account`` read as before and a query moves between
modules without its callers knowing. The outbox's and the bridge's classes stand alone, as
their callers hold only them. Everything is importable from here, as it was from store.py.
"""

from panel_ssl_plugin.store.accounts import AccountQueries, ProviderAccountRecord
from panel_ssl_plugin.store.events import (
    CERTIFICATE_ISSUED,
    STATUS_CHANGED,
    EventQueries,
    EventRecord,
)
from panel_ssl_plugin.store.order_queries import (
    CLAIM_INDEX_HINT,
    DISCARDED,
    IN_FLIGHT,
    JSON_COLUMNS,
    NO_END,
    SORTABLE,
    DuplicateOrder,
    OrderQueries,
    OrderRecord,
    PollerBusy,
    StaleOrder,
    _encode,
)
from panel_ssl_plugin.store.outbox import OUTBOX_KEEP, Outbox, WebhookRecord
from panel_ssl_plugin.store.reminder_queries import Due, ReminderQueries
from panel_ssl_plugin.store.tables import (
    MAX_ID,
    TABLE_PREFIX,
    UTCDateTime,
    bridge_events,
    bridge_grants,
    bridge_launches,
    bridge_sessions,
    make_engine,
    metadata,
    order_events,
    orders,
    provider_accounts,
    reminder_schedules,
    reminders,
    utcnow,
    webhook_outbox,
)


class Store(AccountQueries, OrderQueries, EventQueries, ReminderQueries):
    """Every query of the plugin but the outbox's and the bridge's, on the host's engine."""


__all__ = [
    "CERTIFICATE_ISSUED",
    "CLAIM_INDEX_HINT",
    "DISCARDED",
    "IN_FLIGHT",
    "JSON_COLUMNS",
    "MAX_ID",
    "NO_END",
    "OUTBOX_KEEP",
    "SORTABLE",
    "STATUS_CHANGED",
    "TABLE_PREFIX",
    "Due",
    "DuplicateOrder",
    "EventRecord",
    "OrderRecord",
    "Outbox",
    "PollerBusy",
    "ProviderAccountRecord",
    "StaleOrder",
    "Store",
    "UTCDateTime",
    "WebhookRecord",
    "_encode",
    "bridge_events",
    "bridge_grants",
    "bridge_launches",
    "bridge_sessions",
    "make_engine",
    "metadata",
    "order_events",
    "orders",
    "provider_accounts",
    "reminder_schedules",
    "reminders",
    "utcnow",
    "webhook_outbox",
]
