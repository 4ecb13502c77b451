"""Encryption at rest for private keys and provider credentials.

Fernet (AES-128-CBC with HMAC-SHA256) through MultiFernet: the host's keys come newest first, data
is encrypted with the newest and decrypted with any, and :meth:`Vault.rotate` re-encrypts old
tokens under the newest key, so a host rotates by prepending a key and running the rotation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(Exception):
    """A stored secret cannot be read with any configured key (a key was removed too early)."""


class InvalidKey(ValueError):
    """A configured key is no Fernet key. The message says which one, never its value: keys
    end up in error output, and error output in logs."""


class Vault:
    """Encrypts and decrypts text and JSON with the host's keys."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise InvalidKey("at least one encryption key is needed (host_secret_keys)")
        self._fernet = MultiFernet([_fernet(key, n, len(keys)) for n, key in enumerate(keys, 1)])

    @staticmethod
    def generate_key() -> str:
        """A new key for a host's configuration."""
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._open(self._fernet.decrypt, token)

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value, sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        return json.loads(self.decrypt(token))

    def rotate(self, token: str) -> str:
        """The same secret, encrypted under the newest key."""
        return self._open(self._fernet.rotate, token)

    @staticmethod
    def _open(operation: Callable[[bytes], bytes], token: str) -> str:
        """Run a Fernet operation that must read ``token``; a token no key opens says so."""
        try:
            return operation(token.encode()).decode()
        except InvalidToken as error:
            raise DecryptionError(
                "stored secret cannot be decrypted with the configured keys"
            ) from error


def _fernet(key: str, position: int, count: int) -> Fernet:
    """One of the host's keys as a Fernet, or InvalidKey naming its place in the list."""
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise InvalidKey(
            f"encryption key {position} of {count} is not a Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from None
