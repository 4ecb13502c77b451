"""Property tests (issue 9): whatever arrives in a form field, a JSON parameter or a URL, the
plugin answers without a 500, makes no half-made order, and escapes every markup it shows.

Hypothesis draws the values: anything (NUL and control characters included), markup, 10,000
characters, IDNs, e-mail addresses, countries, CSRs, numbers too big for any column. Each test
runs on SQLite and PostgreSQL; how many examples ran is written to
test-output/property-tests.txt for docs/security.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panel_ssl_plugin import drafts
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.web.forms import STEP1_FIELDS, STEP2_FIELDS

from .conftest import csrf_token, fresh_database, login, minipanel
from .ordering import draft
from .test_minipanel import client_ids
from .test_order_flow import FormReader, all_orders, step1_url, step2_url

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'
_, CSR = drafts.new_key_and_csr(
    "ec256",
    {"domain": "www.example.com", "organization": "", "unit": "", "state": "", "country": "",
     "sans": []},
)  # fmt: skip
SAMPLES = [
    MARKUP, "\x00", "a\x00b", "\x1b[31m", "bücher.example", "xn--bcher-kva.example",
    "*.example.com", "a" * 64 + ".example.com", ("b" * 63 + ".") * 3 + "example.com",
    "admin@example.com", "ädmin@bücher.example", "DE", "zz", "-1", "0", "1e20",
    str(2**63), str(2**31), "", " ", CSR, CSR.replace("M", "x", 3), "null", "[]", "{}",
]  # fmt: skip
# Any character a browser can send: UTF-8 has no lone surrogates, so neither has a request.
SENDABLE = st.characters(exclude_categories=["Cs"])
HOSTILE = st.one_of(
    st.sampled_from(SAMPLES),
    st.text(SENDABLE, max_size=80),
    st.builds(lambda char, times: char * times, SENDABLE, st.integers(1_000, 10_000)),
)
EXAMPLES: Counter[str] = Counter()
EXAMPLES_RUN = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def panel(request, server_engines, tmp_path_factory) -> Iterator:
    databases = fresh_database(request.param, server_engines, tmp_path_factory.mktemp("props"))
    app = minipanel(next(databases))
    yield app
    next(databases, None)


@pytest.fixture(scope="module")
def alice(panel):
    client = panel.test_client()
    login(client, "alice")
    return client


@pytest.fixture(scope="module")
def admin(panel):
    client = panel.test_client()
    login(client, "admin")
    return client


@pytest.fixture(scope="module")
def bakery(panel) -> str:
    return str(client_ids(panel, "alice")[0])


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    out = Path("test-output")
    out.mkdir(exist_ok=True)
    lines = [f"{name}: {count}" for name, count in sorted(EXAMPLES.items())]
    lines.append(f"total: {sum(EXAMPLES.values())}")
    (out / "property-tests.txt").write_text("\n".join(lines) + "\n")


def answered(response, sent: str) -> None:
    """No 500, and what was sent is never shown as markup."""
    assert response.status_code < 500, response.status_code
    if "<script" in sent or "<img" in sent:
        assert MARKUP not in response.get_data(as_text=True)


def no_half_made_orders(panel) -> None:
    """Every stored order is whole: names, CSR, a state it can be in, nothing un-storable."""
    for order in all_orders(runtime_for(panel.extensions["hosting_panel"])):
        assert order.domain and order.csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")
        assert order.status in {"draft", "submitted", "unknown", "pending", "issued", "cancelled"}
        assert "\x00" not in order.organization + order.unit + order.state + str(order.contact)


@EXAMPLES_RUN
@given(field=st.sampled_from(STEP1_FIELDS + STEP2_FIELDS), value=HOSTILE)
def test_order_popup_with_any_value_in_any_field(panel, alice, bakery, field, value):
    EXAMPLES["order popup (step 1, step 2, submit)"] += 1
    page = alice.get(step1_url(bakery)).text
    data = FormReader(page).values
    data.update({"domain": "www.example.com", "approver_email": "admin@example.com"})
    contact = alice.post(step2_url(bakery), data={**data, "action": "contact"})
    data = FormReader(contact.text).values if contact.status_code == 200 else data
    data.setlist(field, [value])
    for action in ("contact", "submit"):
        answered(alice.post(step2_url(bakery), data={**data, "action": action}), value)
    no_half_made_orders(panel)


@EXAMPLES_RUN
@given(domain=HOSTILE)
def test_approver_lookup_with_any_domain(alice, bakery, domain):
    EXAMPLES["approver lookup (JSON)"] += 1
    response = alice.get(f"/ssl/accounts/{bakery}/dcv-emails", query_string={"domain": domain})
    answered(response, domain)
    assert response.is_json


@EXAMPLES_RUN
@given(
    order_id=st.one_of(st.integers(min_value=0, max_value=2**80), st.sampled_from([2**31, 2**63])),
    account=HOSTILE,
    page=HOSTILE,
)
def test_any_id_in_any_url(panel, alice, order_id, account, page):
    EXAMPLES["ids and query values in URLs"] += 1
    anonymous = panel.test_client()
    for path in (f"/ssl/certs/{order_id}", f"/ssl/certs/{order_id}/renew",
                 f"/ssl/certs/{order_id}/download/pem"):  # fmt: skip
        assert alice.get(path).status_code < 500
        assert anonymous.get(path).status_code < 500
    listed = f"/ssl/accounts/{quote(account, safe='')}/certs"
    answered(alice.get(listed, query_string={"page": page, "sort": page, "dir": page}), account)
    answered(alice.get("/ssl/accounts/1/order", query_string={"from": page}), page)


@EXAMPLES_RUN
@given(reason=HOSTILE)
def test_cancel_with_any_reason(panel, alice, bakery, reason):
    EXAMPLES["cancel reason"] += 1
    runtime = runtime_for(panel.extensions["hosting_panel"])
    account = runtime.accounts.all()[0].id
    order = runtime.orders.place(draft(account, account_id=bakery), "alice").order
    token = csrf_token(alice, f"/ssl/certs/{order.id}")
    response = alice.post(
        f"/ssl/certs/{order.id}/cancel", data={"csrf_token": token, "reason": reason}
    )
    answered(response, reason)
    after = runtime.orders.get(order.id)
    assert after.status in ("pending", "cancelled")
    if after.status == "cancelled":
        assert after.status_detail == reason.strip()


@EXAMPLES_RUN
@given(
    field=st.sampled_from(["label", "organization", "reject_message", "issue_delay"]), value=HOSTILE
)
def test_provider_settings_with_any_value(panel, admin, field, value):
    EXAMPLES["provider settings (admin)"] += 1
    runtime = runtime_for(panel.extensions["hosting_panel"])
    account = runtime.accounts.all()[0].id
    url = f"/ssl/admin/providers/{account}/edit"
    data = FormReader(admin.get(url).text).values
    data.setlist(field, [value])
    answered(admin.post(url, data=data), value)
    runtime.accounts.all()  # every account still reads back
