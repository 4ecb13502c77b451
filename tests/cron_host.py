"""A host's own hook object, as its cron processes load it: ``panel-ssl poll --host
tests.cron_host:HOST``. It records what reaches the host outside its web process."""

from __future__ import annotations

from panel_ssl_plugin.hookspecs import hookimpl


class CronHost:
    """Publishes validation files and hears of issued certificates, like a host's web process."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []
        self.issued: list[int] = []

    @hookimpl
    def host_publish_http_file(self, domain: str, path: str, content: str) -> bool:
        self.published.append((domain, path))
        return True

    @hookimpl
    def ssl_certificate_issued(self, certificate: dict) -> None:
        self.issued.append(certificate["id"])


HOST = CronHost()
