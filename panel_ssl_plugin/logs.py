"""Secrets out of log lines: approval-link tokens and secret-looking query values.

An approval link's token is the approver's permission, and it travels in the URL; a request
log (werkzeug's in the demo, any access log in production) writes every URL it serves. A host
attaches :class:`RedactSecrets` to the loggers that write URLs, and the lines keep their shape
with the secrets replaced.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
SECRETS = (
    # /ssl/providers/<id>/callback/<token>: the path segment after "callback"
    re.compile(r"(/callback/)[^/?#\s\"]+"),
    # ?token=…, &api_key=…, &csrf_token=…, &password=…: any parameter named like a secret
    re.compile(
        r"([?&][\w.-]*(?:token|key|secret|pass|auth|sig|session|csrf)[\w.-]*=)[^&#\s\"]*",
        re.IGNORECASE,
    ),
)


def redact(text: str) -> str:
    """``text`` with every approval token and secret-looking query value replaced."""
    for pattern in SECRETS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message without its secrets; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def redact_logs(*names: str) -> None:
    """Attach RedactSecrets to the named loggers, once each, however often it is called."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
