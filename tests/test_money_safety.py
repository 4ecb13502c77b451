"""Money safety (issue 8): no order, renewal or reissue is ever paid for twice.

Every count is taken where the money goes, at the provider's simulator, never in our tables.
The races really race: twenty clients or billing events released at once by a barrier, on
SQLite, PostgreSQL and MariaDB. The fault matrix over every provider is in
tests/test_fault_matrix.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Barrier
from typing import Any

import flask
import pytest

from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.runtime import Runtime, runtime_for
from panel_ssl_plugin.store import OrderRecord

from .conftest import csrf_token, login, minipanel
from .ordering import draft
from .providers.gogetssl_sim import PASSWORD, USER, GoGetSSLSim
from .test_minipanel import client_ids

RACERS = 20


@dataclass
class Shop:
    """The minipanel selling GoGetSSL certificates to alice's first client."""

    app: flask.Flask
    runtime: Runtime
    sim: GoGetSSLSim
    account: int  # the GoGetSSL provider account
    client: str  # alice's client, whose certificates these are

    def issued(self, domain: str = "shop.example.com") -> OrderRecord:
        """A certificate GoGetSSL issued: ordered, validated at the simulator, checked."""
        form = draft(self.account, product_id="71", account_id=self.client, domain=domain)
        return self.approve(self.runtime.orders.place(form, "alice").order)

    def approve(self, order: OrderRecord) -> OrderRecord:
        self.sim.approve(order.provider_order_id)
        return self.runtime.orders.check(order.id)

    def renewals_at_provider(self) -> list[str]:
        return [o.id for o in self.sim.orders.values() if o.renewal]

    def reissues_at_provider(self) -> int:
        return sum(o.reissues for o in self.sim.orders.values())

    def bill(self, certificate_id: int) -> int:
        """The host's billing: "renew this certificate"; the renewal order's id."""
        pm = self.app.extensions["hosting_panel"]
        (renewal_id,) = pm.hook.panel_renewal_due(
            pm=pm, account_id=self.client, certificate_id=certificate_id, period_months=12
        )
        return renewal_id


@pytest.fixture
def shop(database_url, gogetssl_sim) -> Shop:
    app = minipanel(database_url)
    runtime = runtime_for(app.extensions["hosting_panel"])
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD, "timeout": 2}
    account = runtime.accounts.create("gogetssl", "GoGetSSL", settings)
    return Shop(app, runtime, gogetssl_sim, account, str(client_ids(app, "alice")[0]))


def alices(app: flask.Flask, count: int) -> list:
    """``count`` test clients sharing one login of alice, as tabs of one browser would."""
    first = app.test_client()
    login(first, "alice")
    session = first.get_cookie("session").value
    clients = [first]
    for _ in range(count - 1):
        clients.append(app.test_client())
        clients[-1].set_cookie("session", session)
    return clients


def race(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run every action at once, each in its own thread, released together by a barrier."""
    start = Barrier(len(actions))

    def run(action: Callable[[], Any]) -> Any:
        start.wait()
        return action()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return list(pool.map(run, actions))


def words(response) -> str:
    """What a person reads on the page: tags gone, whitespace squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.05)


def form_values(page: str, form_class: str = "") -> dict[str, str]:
    """The hidden values (CSRF token, idempotency key) of a page's form."""
    if form_class:
        page = page[page.index(f'class="{form_class}"') :]
    return dict(re.findall(r'name="(csrf_token|idempotency_key)"[^>]*value="([^"]+)"', page))


def renew_post(client, order: OrderRecord) -> Callable[[], Any]:
    """Open the Renew form now; the returned action posts it."""
    values = form_values(client.get(f"/ssl/certs/{order.id}/renew").text)
    return lambda: client.post(f"/ssl/certs/{order.id}/renew", data={**values, "period_months": 12})


def reissue_post(client, order: OrderRecord) -> Callable[[], Any]:
    """Open the details page now; the returned action posts its reissue form."""
    values = form_values(client.get(f"/ssl/certs/{order.id}").text, "reissue-form")
    return lambda: client.post(
        f"/ssl/certs/{order.id}/reissue", data={**values, "key_type": "ec256"}
    )


# --- 2. concurrent renewals and reissues ----------------------------------------------------------


def test_twenty_renew_forms_posted_at_once_renew_once(shop):
    order = shop.issued()
    posts = [renew_post(client, order) for client in alices(shop.app, RACERS)]
    responses = race(posts)
    assert len(shop.renewals_at_provider()) == 1
    assert len(shop.runtime.follow_ups.renewals(order.id)) == 1
    assert [r.status_code for r in responses] == [302] * RACERS


def test_twenty_reissues_posted_at_once_reissue_once(shop):
    order = shop.issued()
    posts = [reissue_post(client, order) for client in alices(shop.app, RACERS)]
    responses = race(posts)
    assert shop.reissues_at_provider() == 1
    assert len(shop.runtime.follow_ups.reissues(order.id)) == 1
    assert [r.status_code for r in responses] == [302] * RACERS


# --- 3. a renewed certificate is superseded ------------------------------------------------------


def test_a_certificate_with_an_issued_renewal_is_superseded_and_not_renewed_again(shop):
    (alice,) = alices(shop.app, 1)
    order = shop.issued()
    renew_post(alice, order)()
    (renewal,) = shop.runtime.follow_ups.renewals(order.id)
    shop.approve(renewal)

    page = alice.get(f"/ssl/accounts/{shop.client}/certs")
    assert f"/ssl/certs/{order.id}/renew" not in page.text
    assert f"superseded by #{renewal.id}" in words(page)
    refused = alice.get(f"/ssl/certs/{order.id}/renew")
    assert f"renewed by #{renewal.id}" in words(refused)
    token = csrf_token(alice, f"/ssl/certs/{renewal.id}")
    alice.post(f"/ssl/certs/{order.id}/renew", data={"csrf_token": token, "period_months": 12})
    assert len(shop.renewals_at_provider()) == 1


# --- 4. the popup and the host's billing share one renewal ---------------------------------------


@pytest.mark.parametrize("renewal_issued_first", [False, True], ids=["pending", "issued"])
def test_billing_after_a_renewal_clicked_in_the_popup_orders_nothing(shop, renewal_issued_first):
    (alice,) = alices(shop.app, 1)
    order = shop.issued()
    renew_post(alice, order)()
    (renewal,) = shop.runtime.follow_ups.renewals(order.id)
    if renewal_issued_first:
        shop.approve(renewal)
    assert shop.bill(order.id) == renewal.id
    assert len(shop.renewals_at_provider()) == 1


def test_a_click_after_billing_gets_the_billed_renewal(shop):
    (alice,) = alices(shop.app, 1)
    order = shop.issued()
    billed = shop.bill(order.id)
    shown = alice.post(
        f"/ssl/certs/{order.id}/renew",
        data={**form_values(alice.get(f"/ssl/certs/{order.id}").text), "period_months": 12},
        follow_redirects=True,
    )
    assert f"already ordered: order #{billed}" in words(shown)
    assert len(shop.renewals_at_provider()) == 1


def test_clicks_and_billing_events_at_once_make_one_renewal(shop):
    order = shop.issued()
    clicks = [renew_post(client, order) for client in alices(shop.app, RACERS // 2)]
    bills = [lambda: shop.bill(order.id)] * (RACERS // 2)
    outcomes = race(clicks + bills)
    (renewal,) = shop.runtime.follow_ups.renewals(order.id)
    assert set(outcomes[RACERS // 2 :]) == {renewal.id}
    assert [r.status_code for r in outcomes[: RACERS // 2]] == [302] * (RACERS // 2)
    assert len(shop.renewals_at_provider()) == 1


# --- 1. a lost reply is looked up, never placed again ---------------------------------------------


def test_an_order_whose_reply_timed_out_is_found_not_placed_again(shop):
    shop.sim.slow_seconds = 2.5  # the simulator places the order after our 2 s read timeout
    shop.sim.fail_next("slow", "/orders/add_ssl_order/")
    form = draft(shop.account, product_id="71", account_id=shop.client)
    placed = shop.runtime.orders.place(form, "alice").order
    assert placed.status == "unknown" and placed.provider_order_id is None
    wait_until(lambda: len(shop.sim.orders) == 1)  # the provider finishes its work meanwhile
    later = datetime.now(UTC)
    for minutes in (2, 10, 60):
        poll_due(shop.runtime.orders, later + timedelta(minutes=minutes))
    (at_provider,) = shop.sim.orders
    tracked = shop.runtime.orders.get(placed.id)
    assert tracked.status == "pending" and tracked.provider_order_id == at_provider
