"""A clock the tests move: months pass in a line, nothing sleeps.

One :class:`Clock` is handed to everything that tells the time in a test (the order service's
``ProviderAccounts.clock``, a :class:`~tests.providers.recording_host.RecordingHost`, the GoGetSSL
and Sectigo simulators), so the plugin, the adapters and the simulated CA agree on the day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Callable like ``datetime.now(UTC)``; stands still until a test moves it."""

    def __init__(self, now: datetime | None = None) -> None:
        self.time = now or datetime.now(UTC).replace(microsecond=0)
        if self.time.tzinfo is None:
            raise ValueError("a Clock tells aware UTC time")

    def __call__(self) -> datetime:
        return self.time

    def set(self, when: datetime) -> datetime:
        self.time = when
        return when

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move on by ``delta`` or by keyword parts (``days=30``)."""
        self.time += delta if delta is not None else timedelta(**parts)
        return self.time
