"""One fake :class:`~panel_ssl_plugin.providers.base.ProviderHost` for every adapter's tests.

It records every call (name and arguments, in order) in :attr:`RecordingHost.calls` and offers
views of them (``mails``, ``saved``, ``dns_records``, ``http_tokens``, ``http_files``). What it
can do is configured: ``can_mail`` and ``can_publish`` decide what the host answers, and the
optional publishers route what it publishes somewhere real (Pebble, for the ACME tests). A host
that may publish but has no publisher for a kind of challenge claims it published and serves
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.providers.clock import Clock

CALLBACK_BASE = "http://panel.test/ssl/cb/"

HOST_METHODS = frozenset(
    {
        "send_mail",
        "publish_http_challenge",
        "publish_http_file",
        "unpublish_http_file",
        "publish_dns_record",
        "save_settings",
        "callback_url",
    }
)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class RecordingHost:
    """A ProviderHost that records what it was asked and does what it is configured to do.

    ``publish_http(token, content)`` is called for each http-01 token and ``publish_txt(name,
    value)`` for each TXT record, but only while ``can_publish`` holds. ``forbidden`` maps the
    names of methods the adapter must never call to the reason; calling one fails the test.
    ``clock`` is what :meth:`now` answers (a :class:`Clock` of its own when not given); asking
    the time is not recorded as a call.
    """

    def __init__(
        self,
        *,
        can_mail: bool = True,
        can_publish: bool = False,
        publish_http: Callable[[str, str], object] | None = None,
        publish_txt: Callable[[str, str], object] | None = None,
        callback_base: str = CALLBACK_BASE,
        forbidden: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.can_mail = can_mail
        self.can_publish = can_publish
        self.publish_http = publish_http
        self.publish_txt = publish_txt
        self.callback_base = callback_base
        self.forbidden = dict(forbidden or {})
        assert self.forbidden.keys() <= HOST_METHODS, self.forbidden
        self.calls: list[Call] = []
        self.clock = clock or Clock()

    def _record(self, name: str, *args: Any) -> None:
        if name in self.forbidden:
            raise AssertionError(self.forbidden[name])
        self.calls.append(Call(name, args))

    def args_of(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every call to ``name``, in order."""
        return [call.args for call in self.calls if call.name == name]

    # --- the ProviderHost protocol ----------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def send_mail(self, to: str, subject: str, body: str) -> bool:
        self._record("send_mail", to, subject, body)
        return self.can_mail

    def publish_http_challenge(self, domain: str, token: str, content: str) -> bool:
        self._record("publish_http_challenge", domain, token, content)
        if self.can_publish and self.publish_http is not None:
            self.publish_http(token, content)
        return self.can_publish

    def publish_http_file(self, domain: str, path: str, content: str) -> bool:
        self._record("publish_http_file", domain, path, content)
        return self.can_publish

    def unpublish_http_file(self, domain: str, path: str) -> bool:
        self._record("unpublish_http_file", domain, path)
        return self.can_publish

    def publish_dns_record(self, domain: str, name: str, record_type: str, value: str) -> bool:
        self._record("publish_dns_record", domain, name, record_type, value)
        if self.can_publish and self.publish_txt is not None and record_type == "TXT":
            self.publish_txt(name, value)
        return self.can_publish

    def save_settings(self, settings: dict[str, Any]) -> None:
        self._record("save_settings", dict(settings))

    def callback_url(self, token: str) -> str:
        self._record("callback_url", token)
        return self.callback_base + token

    # --- views of the calls -----------------------------------------------------------------

    @property
    def mails(self) -> list[Mail]:
        return [Mail(*args) for args in self.args_of("send_mail")]

    @property
    def saved(self) -> list[dict[str, Any]]:
        """A copy of the settings of each save_settings call."""
        return [settings for (settings,) in self.args_of("save_settings")]

    @property
    def dns_records(self) -> list[tuple[str, str, str, str]]:
        """(domain, name, record_type, value) of each record the adapter asked to publish."""
        return self.args_of("publish_dns_record")

    @property
    def http_tokens(self) -> list[tuple[str, str, str]]:
        """(domain, token, content) of each http-01 token the adapter asked to serve."""
        return self.args_of("publish_http_challenge")

    @property
    def http_files(self) -> list[tuple[str, str, str]]:
        """(domain, path, content) of each validation file the adapter asked to serve."""
        return self.args_of("publish_http_file")
