"""Security headers for every response of the plugin's pages, and of the minipanel's.

A strict Content-Security-Policy: the pages load their own script and style files and nothing
else, no inline code anywhere, so markup that slipped past escaping cannot run. Approval tokens
travel in URLs, so the referrer stays on the panel's own origin. Popups may be framed by the
host's own pages only, unless the host names other origins in ``PANEL_SSL_FRAME_ANCESTORS``.

Headers a view or the host set already are left as they are.
"""

from __future__ import annotations

import re

import flask

FRAME_ANCESTORS_KEY = "PANEL_SSL_FRAME_ANCESTORS"
DEFAULT_FRAME_ANCESTORS = "'self'"
POLICY = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
)
# a CSP source list: separators that would end the directive, or the header, are refused
NOT_A_SOURCE_LIST = re.compile(r"[;,\x00-\x1f\x7f]")


def security_headers(frame_ancestors: str = DEFAULT_FRAME_ANCESTORS) -> dict[str, str]:
    """The headers every page sends; ``frame_ancestors`` is a CSP source list."""
    if not frame_ancestors.strip() or NOT_A_SOURCE_LIST.search(frame_ancestors):
        raise ValueError(
            f"{FRAME_ANCESTORS_KEY} must be a CSP source list such as "
            f"\"'self' https://panel.example\", not {frame_ancestors!r}"
        )
    policy = "; ".join((*POLICY, f"frame-ancestors {frame_ancestors.strip()}"))
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def add_security_headers(response: flask.Response) -> flask.Response:
    """An ``after_request`` function: the headers, framing as the app's config says."""
    ancestors = flask.current_app.config.get(FRAME_ANCESTORS_KEY, DEFAULT_FRAME_ANCESTORS)
    for name, value in security_headers(ancestors).items():
        response.headers.setdefault(name, value)
    return response
