"""Webhooks to the panel (contract section 4): Standard Webhooks from the durable outbox.

store/events.py queues each notification in the transaction of the order's transition; this module
sends what is due, at least once: a webhook leaves the outbox only when the panel answered 2xx.
Every attempt of one webhook carries the same ``webhook-id`` and body, so the panel keeps the
first and ignores the rest. Failures wait longer each time (30 s, 1 min, 2 min ... 6 h) and
are listed on the plugin's admin page (web.py) until they go through.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from standardwebhooks import Webhook

from panel_ssl_plugin.store import Outbox, WebhookRecord, utcnow

log = logging.getLogger(__name__)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=6)
LEASE = timedelta(minutes=2)  # longer than an attempt can take (TIMEOUT), so leases never overlap
TIMEOUT = 10.0
BATCH = 50


def retry_after(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling from 30 s, at most 6 h."""
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 16), MAX_RETRY)


def signer(key: bytes) -> Webhook:
    """Standard Webhooks' signer with the bridge's ``webhooks`` key (signing.BridgeKeys)."""
    return Webhook(key)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0

    def summary(self) -> str:
        return f"Delivered {self.delivered} webhooks; {self.failed} failed and wait for a retry."


class Deliverer:
    """Sends the outbox's due webhooks to ``url``."""

    def __init__(self, outbox: Outbox, url: str, key: bytes, session: requests.Session):
        self.outbox = outbox
        self.url = url
        self.signer = signer(key)
        self.session = session
        self.wake = threading.Event()

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Send every webhook due at ``now`` once, in batches, until none is due; the next
        attempt of a failed one is due a backoff after ``now``."""
        now, report = now or utcnow(), DeliveryReport()
        while batch := self.outbox.claim(now, BATCH, LEASE):
            for webhook in batch:
                error = self.send(webhook)
                if error is None:
                    self.outbox.delivered(webhook, now)
                    report.delivered += 1
                else:
                    self.outbox.failed(webhook, error, now + retry_after(webhook.attempts + 1))
                    report.failed += 1
        return report

    def send(self, webhook: WebhookRecord) -> str | None:
        """One attempt: None when the panel has it, else what went wrong, in words."""
        sent_at = utcnow()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook.message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self.signer.sign(webhook.message_id, sent_at, webhook.payload),
        }
        try:
            response = self.session.post(
                self.url,
                data=webhook.payload.encode(),
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return f"the panel could not be reached: {type(error).__name__}"
        if not 200 <= response.status_code < 300:
            return f"the panel answered HTTP {response.status_code}"
        return None

    def run(self, stop: threading.Event, every: float) -> None:
        """Deliver whenever woken (a transition happened here) or every ``every`` seconds,
        until ``stop`` is set: the service's delivery thread."""
        while not stop.is_set():
            try:
                self.deliver_due()
            except Exception:
                log.exception("webhook delivery failed; trying again in %s s", every)
            self.wake.wait(every)
            self.wake.clear()
