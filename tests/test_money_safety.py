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
from click.testing import CliRunner

from panel_ssl_plugin.cli import main
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


def open_shop(database_url: str, sim: GoGetSSLSim) -> Shop:
    app = minipanel(database_url)
    runtime = runtime_for(app.extensions["hosting_panel"])
    settings = {"base_url": sim.url, "username": USER, "password": PASSWORD, "timeout": 2}
    account = runtime.accounts.create("gogetssl", "GoGetSSL", settings)
    return Shop(app, runtime, sim, account, str(client_ids(app, "alice")[0]))


@pytest.fixture
def shop(database_url, gogetssl_sim) -> Shop:
    """On each of the three databases: for races."""
    return open_shop(database_url, gogetssl_sim)


@pytest.fixture
def small_shop(sqlite_url, gogetssl_sim) -> Shop:
    """On SQLite: for what does not race."""
    return open_shop(sqlite_url, gogetssl_sim)


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


# --- what nobody can tell: held for an admin ----------------------------------------------------


def held(shop: Shop) -> OrderRecord:
    """An order GoGetSSL never made (a 500 before any work) whose lookup GoGetSSL cannot
    answer (an unreadable listing): the plugin cannot tell, so it holds the order."""
    shop.sim.fail_next("500", "/orders/add_ssl_order/")
    form = draft(shop.account, product_id="71", account_id=shop.client)
    order = shop.runtime.orders.place(form, "alice").order
    assert order.status == "unknown"
    shop.sim.fail_next("garbage", "/orders/ssl/all")
    poll_due(shop.runtime.orders, datetime.now(UTC) + timedelta(minutes=3))
    order = shop.runtime.orders.get(order.id)
    assert order.status == "unknown" and order.next_check_at is None
    return order


def resolve(client, order: OrderRecord, **form):
    token = csrf_token(client, f"/ssl/certs/{order.id}")
    data = {"csrf_token": token, **form}
    return client.post(f"/ssl/certs/{order.id}/resolve", data=data, follow_redirects=True)


def test_an_order_nobody_can_tell_about_is_held_and_shown_to_the_admin(small_shop, as_user):
    order = held(small_shop)
    page = words(as_user("admin").get(f"/ssl/certs/{order.id}"))
    assert "cannot tell whether it arrived" in page and "Nothing more is sent" in page
    assert "It exists at the provider: link order id" in page
    assert "It does not exist there: place it again" in page
    reseller = words(as_user("alice").get(f"/ssl/certs/{order.id}"))
    assert "cannot tell whether it arrived" in reseller and "place it again" not in reseller
    poll_due(small_shop.runtime.orders, datetime.now(UTC) + timedelta(days=2))
    assert small_shop.sim.path_calls["/orders/add_ssl_order/"] == 1  # nothing sent on its own


def test_the_admin_says_it_does_not_exist_and_it_is_placed_once(small_shop, as_user):
    order = held(small_shop)
    refused = resolve(as_user("alice"), order, action="absent")
    assert refused.status_code == 403 and small_shop.sim.orders == {}
    shown = words(resolve(as_user("admin"), order, action="absent"))
    (at_provider,) = small_shop.sim.orders
    placed = small_shop.runtime.orders.get(order.id)
    assert placed.status == "pending" and placed.provider_order_id == at_provider
    assert f"Order #{order.id} is pending" in shown
    events = [(e.actor, e.event) for e in small_shop.runtime.orders.events(order.id)]
    assert ("Ada Admin (#1)", "declared_absent") in events


def test_the_admin_links_the_order_found_at_the_provider(small_shop, as_user):
    order = held(small_shop)
    admin = as_user("admin")
    unknown_id = words(resolve(admin, order, action="link", provider_order_id="999999"))
    assert "does not confirm order 999999" in unknown_id
    tracked = small_shop.issued("other.example.com").provider_order_id
    taken = words(resolve(admin, order, action="link", provider_order_id=tracked))
    assert f"Provider order {tracked} is already tracked" in taken
    # GoGetSSL made it after all, and the admin finds it in the GoGetSSL account:
    adapter = small_shop.runtime.accounts.adapter(small_shop.account)
    sent = small_shop.runtime.orders.sending.placement(order).request
    found = adapter.place_order(sent).order_id
    linked = words(resolve(admin, order, action="link", provider_order_id=found))
    assert f"Order #{order.id} is pending" in linked
    assert small_shop.runtime.orders.get(order.id).provider_order_id == found
    events = [(e.actor, e.event) for e in small_shop.runtime.orders.events(order.id)]
    assert ("Ada Admin (#1)", "linked") in events


def test_reconcile_from_cron_looks_up_every_unknown_order(small_shop):
    order = held(small_shop)
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)  # long enough to be settled
    small_shop.runtime.orders.store.update_order(order, "test", "test", sent_at=ten_minutes_ago)
    runner = CliRunner()
    url = str(small_shop.runtime.engine.url)
    result = runner.invoke(main, ["reconcile", "--minipanel", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"#{order.id} shop.example.com: pending." in result.output
    assert "Looked up 1 orders of unknown outcome (1 pending)." in result.output
    assert list(small_shop.sim.orders) == [
        small_shop.runtime.orders.get(order.id).provider_order_id
    ]


# --- cancel: one cancel at the provider ---------------------------------------------------------


def test_twenty_cancels_at_once_send_one(shop):
    form = draft(shop.account, product_id="71", account_id=shop.client)
    order = shop.runtime.orders.place(form, "alice").order
    posts = []
    for client in alices(shop.app, RACERS):
        token = csrf_token(client, f"/ssl/certs/{order.id}")
        url = f"/ssl/certs/{order.id}/cancel"
        posts.append(
            lambda c=client, t=token, u=url: c.post(u, data={"csrf_token": t, "reason": "x"})
        )
    responses = race(posts)
    assert shop.sim.path_calls["/orders/cancel_ssl_order/"] == 1
    assert shop.runtime.orders.get(order.id).status == "cancelled"
    assert [r.status_code for r in responses] == [302] * RACERS
