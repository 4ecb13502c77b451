"""Provider accounts: which providers exist, their encrypted settings, and live adapter objects.

The admin pages and the order service both come here for a provider. Settings are stored as one
encrypted JSON document per account; a secret setting left empty on an edit keeps its old value,
so an admin never has to see or retype a password to change a label.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pluggy

from panel_ssl_plugin.encryption import DecryptionError, Vault
from panel_ssl_plugin.links import NoPublicAddress, public_link
from panel_ssl_plugin.providers.base import Provider, ProviderUnavailable
from panel_ssl_plugin.store import ProviderAccountRecord, Store, utcnow


class UnknownProviderAccount(LookupError):
    """No provider account with that id (or it is disabled where an enabled one is needed)."""


@dataclass(frozen=True)
class ProviderAccount:
    """A provider account as the rest of the plugin sees it; settings are decrypted."""

    id: int
    provider_key: str
    provider_name: str
    label: str
    enabled: bool
    is_default: bool
    auto_renew: bool
    settings: dict[str, Any]
    # False when the host's keys no longer open the stored settings (a key dropped before
    # ``panel-ssl rotate-keys`` ran): ``settings`` is empty and an admin must enter them again.
    readable: bool = True

    def public_settings(self, provider_class: type[Provider]) -> dict[str, Any]:
        """The settings an admin form may show again: secrets left out."""
        return {k: v for k, v in self.settings.items() if k not in provider_class.secret_fields}

    def secrets_set(self, provider_class: type[Provider]) -> set[str]:
        """Names of the secret settings that hold a value (the form says "set, keep it")."""
        return {k for k in provider_class.secret_fields if self.settings.get(k)}


def provider_classes(pm: pluggy.PluginManager) -> dict[str, type[Provider]]:
    """Every provider class registered through ``ssl_register_providers``, by key."""
    classes: dict[str, type[Provider]] = {}
    for group in pm.hook.ssl_register_providers():
        for cls in group or ():
            classes.setdefault(cls.key, cls)
    return classes


# The client account the work at hand is about (an order being placed, an approval sent again),
# so that mail an adapter sends names it (host_send_mail's account_id). Providers know nothing
# of accounts; the order service says whose work it is around each call that may mail.
_ABOUT: ContextVar[str | None] = ContextVar("panel_ssl_about_account", default=None)


@contextmanager
def about_account(account_id: str) -> Iterator[None]:
    """Mail sent by adapters within is about ``account_id``."""
    token = _ABOUT.set(account_id)
    try:
        yield
    finally:
        _ABOUT.reset(token)


class _Bridge:
    """The ProviderHost an adapter gets: the host's hooks, and its own settings store."""

    def __init__(self, accounts: ProviderAccounts, account_id: int):
        self._accounts = accounts
        self._account_id = account_id
        self._hook = accounts.pm.hook

    def now(self) -> datetime:
        """The accounts' clock: the order service's, which tests replace to move time."""
        return self._accounts.clock()

    def send_mail(self, to: str, subject: str, body: str) -> bool:
        return bool(
            self._hook.host_send_mail(to=to, subject=subject, body=body, account_id=_ABOUT.get())
        )

    def publish_http_challenge(self, domain: str, token: str, content: str) -> bool:
        return bool(
            self._hook.host_publish_http_challenge(domain=domain, token=token, content=content)
        )

    def publish_http_file(self, domain: str, path: str, content: str) -> bool:
        return bool(self._hook.host_publish_http_file(domain=domain, path=path, content=content))

    def unpublish_http_file(self, domain: str, path: str) -> bool:
        return bool(self._hook.host_unpublish_http_file(domain=domain, path=path))

    def publish_dns_record(self, domain: str, name: str, record_type: str, value: str) -> bool:
        return bool(
            self._hook.host_publish_dns_record(
                domain=domain, name=name, record_type=record_type, value=value
            )
        )

    def save_settings(self, settings: dict[str, Any]) -> None:
        self._accounts.save_settings(self._account_id, settings)

    def callback_url(self, token: str) -> str:
        """Where the provider's mail sends the approver (links.public_link). Without a public
        address nothing is sent: the order waits, as for a mail server that is down."""
        account_id = self._account_id
        try:
            return public_link(
                self._accounts.pm,
                "provider_callback",
                f"/providers/{account_id}/callback/{token}",
                provider_account_id=account_id,
                token=token,
            )
        except NoPublicAddress as error:
            raise ProviderUnavailable(str(error)) from None


class ProviderAccounts:
    """The provider accounts of one host.

    ``clock`` is what every adapter's :meth:`ProviderHost.now` answers (aware UTC); a test that
    spans months sets it to a clock it moves.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        store: Store,
        vault: Vault,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.pm = pm
        self.store = store
        self.vault = vault
        self.clock = clock
        self.classes = provider_classes(pm)
        # Adapters hold an HTTP session and cached products: one per account, rebuilt when the
        # account's settings change (every save writes a new ciphertext, part of the key).
        self._adapters: dict[tuple[int, str], Provider] = {}
        self._adapters_lock = threading.Lock()  # one adapter per account, however many ask

    def _account(self, record: ProviderAccountRecord) -> ProviderAccount:
        cls = self.classes.get(record.provider_key)
        settings = self._settings(record)
        return ProviderAccount(
            id=record.id,
            provider_key=record.provider_key,
            provider_name=cls.name if cls else f"{record.provider_key} (not installed)",
            label=record.label,
            enabled=record.enabled,
            is_default=record.is_default,
            auto_renew=record.auto_renew,
            settings=settings or {},
            readable=settings is not None,
        )

    def _settings(self, record: ProviderAccountRecord) -> dict[str, Any] | None:
        """The account's settings in clear; None when no key of the host opens them, so one
        such account leaves every other page and account working."""
        try:
            return self.vault.decrypt_json(record.settings_encrypted)
        except DecryptionError:
            return None

    def all(self, *, enabled_only: bool = False) -> list[ProviderAccount]:
        """Accounts, the default first, then by label."""
        records = self.store.provider_accounts(enabled_only=enabled_only)
        return [self._account(r) for r in records]

    def labels(self) -> dict[int, str]:
        """Every account's label by id, nothing decrypted: what a list of orders shows."""
        return {record.id: record.label for record in self.store.provider_accounts()}

    def get(self, account_id: int) -> ProviderAccount:
        record = self.store.provider_account(account_id)
        if record is None:
            raise UnknownProviderAccount(account_id)
        return self._account(record)

    def create(
        self,
        provider_key: str,
        label: str,
        settings: dict[str, Any],
        *,
        enabled: bool = True,
        is_default: bool = False,
        auto_renew: bool = False,
    ) -> int:
        if provider_key not in self.classes:
            raise UnknownProviderAccount(provider_key)
        if not self.store.provider_accounts():
            is_default = True  # the first account is the default; nobody has to pick
        return self.store.add_provider_account(
            provider_key=provider_key,
            label=label,
            settings_encrypted=self.vault.encrypt_json(settings),
            enabled=enabled,
            is_default=is_default,
            auto_renew=auto_renew,
        )

    def update(
        self,
        account_id: int,
        *,
        label: str,
        settings: dict[str, Any],
        enabled: bool,
        auto_renew: bool = False,
    ) -> None:
        """Save an edit; secret settings given empty keep their stored value."""
        account = self.get(account_id)
        cls = self.classes[account.provider_key]
        # Start from what is stored: adapters keep settings the form does not show (an ACME
        # account URL, the sandbox CA), and an edit must not drop them.
        merged = {**account.settings, **settings}
        for name in cls.secret_fields:
            if not merged.get(name) and account.settings.get(name):
                merged[name] = account.settings[name]
        self.store.update_provider_account(
            account_id,
            label=label,
            enabled=enabled,
            auto_renew=auto_renew,
            settings_encrypted=self.vault.encrypt_json(merged),
        )

    def save_settings(self, account_id: int, settings: dict[str, Any]) -> None:
        """Merge what an adapter asked to keep (an ACME account key, the sandbox CA)."""
        account = self.get(account_id)
        merged = {**account.settings, **settings}
        self.store.update_provider_account(
            account_id, settings_encrypted=self.vault.encrypt_json(merged)
        )

    def set_enabled(self, account_id: int, enabled: bool) -> None:
        self.get(account_id)
        self.store.update_provider_account(account_id, enabled=enabled)

    def set_default(self, account_id: int) -> None:
        self.get(account_id)
        self.store.update_provider_account(account_id, is_default=True, enabled=True)

    def adapter(self, account_id: int) -> Provider:
        """The live adapter of an account, reused while its settings stay the same."""
        record = self.store.provider_account(account_id)
        if record is None or record.provider_key not in self.classes:
            raise UnknownProviderAccount(account_id)
        key = (record.id, record.settings_encrypted)
        with self._adapters_lock:
            adapter = self._adapters.get(key)
            return adapter if adapter is not None else self._new_adapter(key, record)

    def _new_adapter(self, key: tuple[int, str], record: ProviderAccountRecord) -> Provider:
        """A fresh adapter for the account's current settings; the old one is dropped."""
        self._adapters = {k: v for k, v in self._adapters.items() if k[0] != record.id}
        cls = self.classes[record.provider_key]
        settings = self._settings(record)
        bridge = _Bridge(self, record.id)
        adapter = (
            cls(settings, bridge) if settings is not None else _Locked(cls, record.label, bridge)
        )
        self._adapters[key] = adapter
        return adapter

    def test_connection(self, account_id: int) -> str:
        """Ask the provider with the saved settings; ProviderError says what went wrong."""
        return self.adapter(account_id).test_connection()


class _Locked(Provider):
    """The adapter of an account whose settings cannot be read: every call says so, as
    ProviderUnavailable, since no request leaves for the provider. The order service then keeps
    each order as it was (a submitted one is retried, a check is asked again later, a cancel is
    refused) and shows the message, until an admin re-enters the settings; their new
    ciphertext then makes a real adapter (``ProviderAccounts.adapter``)."""

    def __init__(self, cls: type[Provider], label: str, host: _Bridge):
        super().__init__({}, host)
        self.key, self.name = cls.key, cls.name
        self._message = (
            f"The settings of provider account “{label}” cannot be read with the panel's "
            "encryption keys; an admin must re-enter them under SSL Providers."
        )

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise ProviderUnavailable(self._message)

    products = dcv_emails = place_order = status = renew = reissue = _refuse
    cancel = resend_approval = find_order = revoke = renewal_window = _refuse
