"""Hook objects the benchmarks load into hosts, also as ``panel-ssl poll --host
benchmarks.hosts:HOOKS`` in their poller processes."""

from __future__ import annotations

from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.providers.base import Provider
from panel_ssl_plugin.providers.gogetssl import GoGetSSLProvider


class GoGetSSLOneByOne(GoGetSSLProvider):
    """GoGetSSL without its batch call: each order's status asked on its own, as an API
    without a batch call (Sectigo's) is asked."""

    key = "gogetssl-single"
    name = "GoGetSSL, one status call per order"
    statuses = Provider.statuses


class Hooks:
    @hookimpl
    def ssl_register_providers(self) -> list[type]:
        return [GoGetSSLOneByOne]


HOOKS = Hooks()
