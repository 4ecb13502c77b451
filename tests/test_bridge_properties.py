"""Property tests of the service's doors (issue 19): whatever a panel, or anyone, sends to the
events endpoint (signed with the right key, so it is parsed) or puts in a launch token's claims
(signed too, so every claim is read), the service answers in words, never with a 500.

Hypothesis draws JSON of every kind (NaN and infinities, numbers beyond any column, deep lists,
NUL, lone surrogates, control characters, 10,000 characters) and raw bytes. The service runs on
PostgreSQL, which refuses NUL and lone surrogates that SQLite would store. How many examples
ran, and how many 500s (none) is written to test-output/bridge-property-tests.txt.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panel_ssl_plugin.bridge.signing import signed_headers
from panel_ssl_plugin.bridge.tokens import CLAIMS
from tests.bridge_panel import KEYS, FakePanel, launch_token, service
from tests.conftest import fresh_database

EVENTS = ["renewal-due", "tick", "account-updated", "logout"]
ANY_TEXT = st.one_of(
    st.text(max_size=80),  # lone surrogates and control characters included
    st.sampled_from(["\x00", "7\x00", "\ud800", "7 ", "ACME", "-1", "1e999", "<b>x</b>", ""]),
    st.builds(lambda char, times: char * times, st.characters(), st.integers(100, 10_000)),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
FIELDS = ["account_id", "certificate_id", "period_months", "user", "id"]
PAYLOADS = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES) | JSON_VALUES
COUNTS: Counter[str] = Counter()
RUN = settings(
    max_examples=450,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def bridged(server_engines, tmp_path_factory) -> Iterator:
    panel = FakePanel()
    databases = fresh_database("postgresql", server_engines, tmp_path_factory.mktemp("bridge"))
    yield service(next(databases), panel)
    next(databases, None)
    panel.stop()


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    out = Path("test-output")
    out.mkdir(exist_ok=True)
    answers = {k: v for k, v in COUNTS.items() if k.endswith("xx")}
    lines = [f"{name}: {count}" for name, count in sorted(COUNTS.items()) if name not in answers]
    lines.append(
        f"requests answered: {sum(answers.values())}, of which 500s: {answers.get('5xx', 0)}"
    )
    lines += [f"  {status}: {count}" for status, count in sorted(answers.items())]
    (out / "bridge-property-tests.txt").write_text("\n".join(lines) + "\n")


def answered(response) -> None:
    COUNTS[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, response.get_data(as_text=True)[:500]


def _sendable(header: str) -> bool:
    """What HTTP can carry in a header value: Latin-1, no line break."""
    return "\n" not in header and "\r" not in header and all(ord(c) < 256 for c in header)


def _with_id(payload: object, fresh: bool) -> object:
    """Most examples get a fresh id, so that their payload is what is judged."""
    if fresh and isinstance(payload, dict):
        return {"id": secrets.token_hex(8), **payload}
    return payload


@RUN
@given(name=st.sampled_from(EVENTS), payload=PAYLOADS, fresh=st.booleans())
def test_a_signed_event_of_any_json_is_answered_in_words(bridged, name, payload, fresh):
    COUNTS["signed events (any JSON)"] += 1
    body = json.dumps(_with_id(payload, fresh)).encode()  # NaN and Infinity as JavaScript has
    headers = signed_headers(KEYS.events, int(time.time()), body)
    response = bridged.test_client().post(f"/ssl/bridge/events/{name}", data=body,
                                          headers=headers)  # fmt: skip
    answered(response)
    assert response.is_json and response.json["ok"] in (True, False)


@settings(RUN, max_examples=250)
@given(body=st.binary(max_size=3000), stamp=ANY_TEXT, signature=ANY_TEXT, sign=st.booleans())
def test_any_bytes_and_any_headers_are_answered_in_words(bridged, body, stamp, signature, sign):
    COUNTS["raw bodies and signature headers"] += 1
    headers = signed_headers(KEYS.events, int(time.time()), body) if sign else {}
    if not sign:
        headers = {"X-Panel-SSL-Timestamp": stamp, "X-Panel-SSL-Signature": signature}
    if not all(_sendable(value) for value in headers.values()):
        return  # no HTTP client can send this header
    answered(bridged.test_client().post("/ssl/bridge/events/tick", data=body, headers=headers))


@RUN
@given(claims=st.dictionaries(st.sampled_from(CLAIMS), JSON_VALUES, min_size=1))
def test_a_signed_launch_token_with_any_claims_is_answered_in_words(bridged, claims):
    COUNTS["launch tokens (any claims)"] += 1
    try:
        token = launch_token(**claims)
    except (TypeError, ValueError):
        return  # PyJWT cannot encode it (a float for a time it reads as a date), so nobody can
    response = bridged.test_client().get("/ssl/launch", query_string={"token": token})
    answered(response)
    assert response.status_code in (200, 302, 401)
