"""Issue 19, finding 2: one reseller's flood of pre-flight checks, and what it must not do.

Before: one 70 KB POST of 3,000 names queued 6,000 jobs in the process's 16 threads; for 25 s
every other reseller's checks said "could not check in time", and an order for a name whose CAA
forbids the CA was placed meanwhile (the submit's CAA check timed out and let it through). Now
the names are capped by the product, each actor has a per-minute budget and queues apart
(workshare.FairPool), queued work is cancelled at its deadline, and a CAA answer that did not
arrive stops the submit with a sentence to retry. The flood here is slow on purpose: every
flooding name's questions take 0.6 s at the local DNS server, as a far name server would.
"""

from __future__ import annotations

import threading
import time

import pytest

from panel_ssl_plugin import preflight
from panel_ssl_plugin.preflight import Plan, Preflight
from panel_ssl_plugin.workshare import FairPool, Throttle
from tests import test_order_flow as flow
from tests.conftest import login
from tests.test_minipanel import client_ids
from tests.test_order_flow import CAA_OTHER_CA, all_orders, errors_of, post, step1_url, submit

# the order flow's fixtures: the minipanel with a scripted provider that counts what it places
app, runtime, bakery = flow.app, flow.runtime, flow.bakery
script, scripted = flow.script, flow.scripted

FLOOD = "flood.example"
SANDBOX = ("sandbox.panel-ssl.test",)


def flood_names(count: int, start: int = 0) -> list[str]:
    return [f"n{i}.{FLOOD}" for i in range(start, start + count)]


def client_of(app, user: str):
    client = app.test_client()
    login(client, user)
    return client


def preflight_post(client, account: str, **changes):
    page = client.get(step1_url(account)).text
    return post(client, f"/ssl/accounts/{account}/preflight", page, "", **changes)


@pytest.fixture
def bob_account(app) -> str:
    return str(client_ids(app, "bob")[0])


def test_names_beyond_what_the_product_covers_are_not_checked(app, bakery, local_dns):
    """One POST of 3,000 names (about 70 KB): the multi-domain product covers 100 more, so 101
    names are asked about, each once."""
    alice = client_of(app, "alice")
    response = preflight_post(
        alice,
        bakery,
        product_id="dv-multi",
        domain=f"www.{FLOOD}",
        sans="\n".join(flood_names(3000)),
    )
    assert response.status_code == 200
    asked = {name for name, kind in local_dns.asked if kind == "CAA" and name.endswith(FLOOD)}
    assert len(asked) == 1 + 100 + 1  # the domain, the first 100 names, and their parent
    assert f"n100.{FLOOD}" not in asked and f"n99.{FLOOD}" in asked


def test_an_actor_over_its_budget_is_told_to_wait(local_dns):
    checks = Preflight(local_dns.address, throttle=Throttle(per_minute=150))
    plan = Plan(tuple(flood_names(100)), "Sandbox", SANDBOX, "dns", actor="alice")
    assert all(f.message != preflight.TOO_MANY for f in checks.check(plan))
    (refused,) = checks.check(plan)  # 100 more in the same minute: over 150
    assert refused.message == preflight.TOO_MANY
    other = Plan(("shop.example",), "Sandbox", SANDBOX, "dns", actor="bob")
    assert all(f.message != preflight.TOO_MANY for f in checks.check(other))


def test_queued_work_is_cancelled_at_the_deadline(local_dns):
    """Two threads, one slow question each at a time: of 40 names most never start."""
    local_dns.slow[FLOOD] = 0.6
    pool = FairPool(workers=2, per_key=2, name="test-flood")
    checks = Preflight(local_dns.address, pool=pool)
    plan = Plan(tuple(flood_names(40)), "Sandbox", SANDBOX, "dns", actor="alice")
    findings = checks.check(plan)
    late = [f for f in findings if f.message.startswith(preflight.COULD_NOT)]
    assert len(findings) == 80 and len(late) > 40
    assert pool.queued("alice") == 0  # nothing left to run after the caller gave up
    started = {name for name, kind in local_dns.asked if kind == "CAA"}
    assert len(started) < 40


def test_a_flood_leaves_the_others_their_checks_and_caa_still_stops_an_order(
    app, bakery, bob_account, local_dns, script, scripted, runtime
):
    """3,000 names from alice at once (30 POSTs of 100, on 30 threads) while bob checks a name
    and then places an order CAA forbids: bob's check answers, and his order is refused before
    the provider hears of it."""
    local_dns.slow[FLOOD] = 0.6
    local_dns.add("shop.bob.example. 60 A 192.0.2.10", CAA_OTHER_CA)
    start, statuses = threading.Barrier(31, timeout=60), []
    clients = [client_of(app, "alice") for _ in range(30)]

    def flood(batch: int) -> None:
        client = clients[batch]
        start.wait()
        response = preflight_post(
            client, bakery, product_id="dv-multi", domain=f"www{batch}.{FLOOD}",
            sans="\n".join(flood_names(100, batch * 100)),
        )  # fmt: skip
        statuses.append(response.status_code)

    threads = [threading.Thread(target=flood, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    bob = client_of(app, "bob")
    start.wait()
    _wait_for_flood(local_dns)

    began = time.monotonic()
    checked = preflight_post(bob, bob_account, domain="shop.bob.example")
    took = time.monotonic() - began
    findings = checked.json["findings"]
    assert ("caa", "ok") in [(f["check"], f["level"]) for f in findings]
    assert not any(f["message"].startswith("Could not check") for f in findings)

    refused = submit(bob, bob_account, {"provider_account_id": str(scripted)})
    assert refused.status_code == 422
    assert "CAA forbids Sandbox" in errors_of(refused.text, "domain")
    assert script.placed == [] and all_orders(runtime) == []

    for thread in threads:
        thread.join()
    assert statuses == [200] * 30
    flooded = {n for n, kind in local_dns.asked if kind == "CAA" and n.endswith(FLOOD)}
    print(
        f"\nflood: bob's check answered in {took:.2f} s while alice's 3,000 names were "
        f"checked; DNS questions: {len(local_dns.asked)}, flood names asked: {len(flooded)}"
    )


def _wait_for_flood(local_dns) -> None:
    """Until the flood's questions reach the DNS server (an event, not a guessed time)."""
    for _ in range(500):
        if any(name.endswith(FLOOD) for name, _ in list(local_dns.asked)):
            return
        time.sleep(0.01)
    raise AssertionError("the flood never reached DNS")


def test_a_caa_answer_that_did_not_arrive_never_lets_an_order_through(
    app, bakery, local_dns, script, scripted, runtime
):
    """DNS too slow for the deadline at submit: the CA would not issue without CAA either, so
    nothing is placed and the reseller is told to try again; the values are kept."""
    alice = client_of(app, "alice")
    local_dns.slow["xn--bcher-kva.example"] = preflight.LOOKUP_SECONDS + 1
    refused = submit(alice, bakery, {"provider_account_id": str(scripted)})
    assert refused.status_code == 422
    assert "Try again in a moment" in errors_of(refused.text, "domain")
    assert script.placed == [] and all_orders(runtime) == []
