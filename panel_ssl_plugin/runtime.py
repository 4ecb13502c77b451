"""The plugin's long-lived objects for one host: database, vault, provider accounts, orders.

A host hands its PluginManager to every ``panel_*`` hook; from it the plugin asks the host, once,
for the database and the encryption keys (``host_database``, ``host_secret_keys``). The result is
cached per PluginManager, so two hosts in one process (tests do this) never share state, and the
per-request cost is a dictionary lookup.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import pluggy
import sqlalchemy as sa

from panel_ssl_plugin.accounts import ProviderAccounts
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.followups import FollowUps
from panel_ssl_plugin.orders import OrderService
from panel_ssl_plugin.store import Store, make_engine


class HostMisconfigured(RuntimeError):
    """The host did not implement a hook the plugin cannot work without."""


@dataclass
class Runtime:
    """What the plugin needs to serve one host."""

    pm: pluggy.PluginManager
    engine: sa.Engine
    vault: Vault
    accounts: ProviderAccounts
    orders: OrderService
    follow_ups: FollowUps


_runtimes: weakref.WeakKeyDictionary[pluggy.PluginManager, Runtime] = weakref.WeakKeyDictionary()


def runtime_for(pm: pluggy.PluginManager) -> Runtime:
    """The Runtime of the host that owns ``pm``, built on first use."""
    runtime = _runtimes.get(pm)
    if runtime is None:
        database = pm.hook.host_database(pm=pm)
        if database is None:
            raise HostMisconfigured("the host implements no host_database hook")
        keys = pm.hook.host_secret_keys(pm=pm)
        if keys is None:
            raise HostMisconfigured("the host implements no host_secret_keys hook")
        if not keys:
            raise HostMisconfigured("the host's host_secret_keys hook gave no key")
        engine, vault = make_engine(database), Vault(list(keys))
        store = Store(engine)
        accounts = ProviderAccounts(pm, store, vault)
        orders = OrderService(pm, store, vault, accounts)
        runtime = Runtime(
            pm=pm,
            engine=engine,
            vault=vault,
            accounts=accounts,
            orders=orders,
            follow_ups=FollowUps(orders),
        )
        _runtimes[pm] = runtime
    return runtime
