"""The order service on SQLite, PostgreSQL and MariaDB: placing, retries, renewals, reissues,
polling."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from panel_ssl_plugin import keys
from panel_ssl_plugin import orders as orders_module
from panel_ssl_plugin.drafts import OrderInvalid
from panel_ssl_plugin.followups import ReissueRefused, RenewalRefused
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.orders import OrderRejected
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import orders as orders_table

from .conftest import minipanel
from .ordering import approve, draft, issued
from .providers.clock import Clock
from .providers.gogetssl_sim import PASSWORD, USER


class Listener:
    """A host plugin that records the plugin's notifications."""

    def __init__(self):
        self.changes: list[tuple[int, str, str]] = []
        self.issued: list[int] = []

    @hookimpl
    def ssl_order_status_changed(self, order, old, new):
        self.changes.append((order["id"], old, new))

    @hookimpl
    def ssl_certificate_issued(self, certificate):
        assert "private_key_encrypted" not in certificate
        self.issued.append(certificate["id"])


@pytest.fixture
def listener():
    return Listener()


@pytest.fixture
def panel(database_url, listener):
    """The minipanel on each database, the sandbox as default provider, a listener."""
    return minipanel(database_url, listener)


@pytest.fixture
def runtime(panel):
    return runtime_for(panel.extensions["hosting_panel"])


@pytest.fixture
def sandbox_id(runtime) -> int:
    return runtime.accounts.all()[0].id


@pytest.fixture
def gogetssl_id(runtime, gogetssl_sim) -> int:
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD, "timeout": 2}
    return runtime.accounts.create("gogetssl", "GoGetSSL", settings)


def test_place_encrypts_the_key_and_issues_after_approval(panel, runtime, sandbox_id, listener):
    placed = runtime.orders.place(draft(sandbox_id), "alice")
    order = placed.order
    assert order.status == "pending" and not placed.duplicate
    assert "approval email was sent to admin@shop.example.com" in order.status_detail
    assert order.country == "DE"
    with runtime.engine.connect() as conn:
        stored = conn.execute(sa.select(orders_table.c.private_key_encrypted)).scalar_one()
    assert "PRIVATE KEY" not in stored
    key = keys.key_from_pem(runtime.orders.private_key(order))
    assert keys.public_key_der(key) == keys.public_key_der(keys.load_csr(order.csr))

    issued = approve(panel, runtime)
    assert issued.status == "issued" and issued.not_after > datetime.now(UTC)
    assert listener.changes == [(order.id, "submitted", "pending"), (order.id, "pending", "issued")]
    assert listener.issued == [order.id]
    events = [e.event for e in runtime.orders.store.events(order.id)]
    assert events == ["submitted", "sending", "placed", "approved", "issued"]


def test_adapters_tell_the_time_by_the_accounts_clock(sqlite_url):
    """ProviderHost.now() is ProviderAccounts.clock: the sandbox dates its certificate by it."""
    app = minipanel(sqlite_url)
    runtime = runtime_for(app.extensions["hosting_panel"])
    runtime.accounts.clock = Clock(datetime(2027, 4, 1, 12, tzinfo=UTC))
    order = issued(app, runtime)
    assert order.not_before == datetime(2027, 4, 1, 12, tzinfo=UTC)
    assert order.not_after - order.not_before == timedelta(days=100)


def test_invalid_draft_names_every_field(runtime, sandbox_id):
    bad = draft(
        sandbox_id, domain="bad_domain.example", country="XX", approver_email="",
        period_months=7, contact={"first_name": "", "last_name": "x", "email": "nope"},
    )  # fmt: skip
    with pytest.raises(OrderInvalid) as caught:
        runtime.orders.place(bad, "alice")
    assert set(caught.value.errors) >= {
        "domain", "country", "period_months", "contact_first_name", "contact_email",
    }  # fmt: skip
    assert "underscore" in caught.value.errors["domain"]


def test_approver_must_be_offered_for_the_domain(runtime, sandbox_id):
    with pytest.raises(OrderInvalid) as caught:
        runtime.orders.place(draft(sandbox_id, approver_email="ceo@gmail.com"), "alice")
    assert "approval addresses the provider offers" in caught.value.errors["approver_email"]


def test_idn_domain_is_ordered_as_a_label(runtime, sandbox_id):
    order = runtime.orders.place(
        draft(sandbox_id, domain="Bücher.example", approver_email="admin@xn--bcher-kva.example"),
        "alice",
    ).order
    assert order.domain == "xn--bcher-kva.example"
    assert keys.csr_names(keys.load_csr(order.csr)) == ["xn--bcher-kva.example"]


def test_pasted_csr_is_checked(runtime, sandbox_id):
    key = keys.generate_key("rsa2048")
    other = keys.make_csr(key, keys.Subject("other.example"))
    with pytest.raises(OrderInvalid, match=r"other\.example"):
        runtime.orders.place(draft(sandbox_id, csr=other), "alice")
    with pytest.raises(OrderInvalid, match="a private key"):
        runtime.orders.place(draft(sandbox_id, csr=keys.key_to_pem(key)), "alice")
    good = keys.make_csr(key, keys.Subject("shop.example.com"))
    order = runtime.orders.place(draft(sandbox_id, csr=good), "alice").order
    assert order.private_key_encrypted is None and order.key_type == "csr"


def test_same_form_twice_places_one_order(panel, runtime, gogetssl_id, gogetssl_sim):
    form = draft(gogetssl_id, product_id="71")
    first = runtime.orders.place(form, "alice")
    second = runtime.orders.place(form, "alice")
    assert second.duplicate and second.order.id == first.order.id
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 1


def test_two_threads_submitting_at_once_place_one_order(runtime, gogetssl_id, gogetssl_sim):
    form = draft(gogetssl_id, product_id="71")
    runtime.orders.products(gogetssl_id)  # warm the cache so both threads race on the insert
    barrier, results = threading.Barrier(2), []

    def submit():
        barrier.wait()
        results.append(runtime.orders.place(form, "alice"))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.order.id for r in results}) == 1
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 1
    with runtime.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders_table)).scalar() == 1


def test_rejection_keeps_the_draft_and_a_fixed_resubmit_places_it(
    runtime, gogetssl_id, gogetssl_sim
):
    form = draft(gogetssl_id, product_id="88")  # OV: the provider wants organization details
    form = replace(form, organization="", state="", country="")
    with pytest.raises(OrderInvalid):
        runtime.orders.place(form, "alice")
    gogetssl_sim.fail_next("429", "/orders/add_ssl_order/")  # turned away before any work
    fixed = replace(form, organization="Acme Widgets Ltd", state="California", country="US")
    placed = runtime.orders.place(fixed, "alice")
    assert placed.order.status == "submitted" and "retry" in placed.order.status_detail
    assert placed.order.organization == "Acme Widgets Ltd"


def test_provider_error_returns_the_draft_and_a_resubmit_reuses_it(runtime, sandbox_id):
    runtime.accounts.save_settings(sandbox_id, {"reject_message": "Domain is on a blocklist."})
    form = draft(sandbox_id, domain="www.shop.example.com", approver_email="admin@shop.example.com")
    with pytest.raises(OrderRejected, match="Domain is on a blocklist") as caught:
        runtime.orders.place(form, "alice")
    order = caught.value.order
    assert order.status == "draft" and order.domain == "www.shop.example.com"
    assert order.approver_email == "admin@shop.example.com"

    runtime.accounts.save_settings(sandbox_id, {"reject_message": ""})
    placed = runtime.orders.place(form, "alice")
    assert placed.order.id == order.id and placed.order.status == "pending"


def test_provider_down_keeps_the_order_and_the_poller_places_it_once(
    runtime, gogetssl_id, gogetssl_sim
):
    gogetssl_sim.fail_next("429", "/orders/add_ssl_order/")  # turned away before any work
    placed = runtime.orders.place(draft(gogetssl_id, product_id="71"), "alice")
    assert placed.order.status == "submitted"
    assert runtime.orders.place(
        draft(gogetssl_id, product_id="71", idempotency_key=placed.order.idempotency_key), "alice"
    ).duplicate

    later = datetime.now(UTC) + timedelta(hours=1)
    report = poll_due(runtime.orders, later)
    assert report.by_status == {"pending": 1}
    assert poll_due(runtime.orders, later).claimed == 0  # next check is a minute after that
    assert poll_due(runtime.orders, later + timedelta(minutes=2)).by_status == {"pending": 1}
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 2  # the failed one and the retry
    assert len(gogetssl_sim.orders) == 1


def test_poll_issues_verified_certificates(runtime, gogetssl_id, gogetssl_sim, listener):
    order = runtime.orders.place(draft(gogetssl_id, product_id="71"), "alice").order
    gogetssl_sim.approve(order.provider_order_id)
    report = poll_due(runtime.orders, datetime.now(UTC) + timedelta(minutes=2))
    assert report.by_status == {"issued": 1}
    issued = runtime.orders.get(order.id)
    assert issued.certificate and issued.chain and issued.not_after
    assert listener.issued == [order.id]


def test_renewal_event_twice_and_concurrently_makes_one_renewal(panel, runtime, sandbox_id):
    order = issued(panel, runtime)
    pm = panel.extensions["hosting_panel"]
    barrier, ids = threading.Barrier(3), []

    def deliver():
        barrier.wait()
        ids.extend(
            pm.hook.panel_renewal_due(
                pm=pm, account_id="1", certificate_id=order.id, period_months=24
            )
        )

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 3
    renewals = runtime.follow_ups.renewals(order.id)
    assert len(renewals) == 1
    renewal = renewals[0]
    assert renewal.status == "pending" and renewal.period_months == 24
    assert renewal.csr == order.csr and renewal.private_key_encrypted == order.private_key_encrypted
    assert runtime.orders.get(order.id).status == "issued"  # the old one stays usable


def test_renewal_refusals(panel, runtime, sandbox_id):
    order = issued(panel, runtime)
    renewal = runtime.follow_ups.renew(order.id, "alice").order
    again = runtime.follow_ups.renew(order.id, "alice", period_months=24)
    assert again.duplicate and again.order.id == renewal.id
    with pytest.raises(RenewalRefused, match="Only issued"):
        runtime.follow_ups.renew(renewal.id, "alice")
    with pytest.raises(RenewalRefused, match="period"):
        other = issued(panel, runtime)
        runtime.follow_ups.renew(other.id, "alice", period_months=5)


def test_renewal_due_for_another_account_is_refused(panel, runtime, sandbox_id):
    from panel_ssl_plugin.orders import OrderNotFound

    order = issued(panel, runtime)
    with pytest.raises(OrderNotFound):
        runtime.follow_ups.renewal_due("2", order.id, 12)


def test_expired_certificates_are_marked(panel, runtime, sandbox_id, listener):
    order = issued(panel, runtime)
    report = poll_due(runtime.orders, order.not_after + timedelta(days=1))
    assert report.expired == 1
    assert runtime.orders.get(order.id).status == "expired"
    assert listener.changes[-1] == (order.id, "issued", "expired")


def test_cancel_pending(panel, runtime, sandbox_id, listener):
    order = runtime.orders.place(draft(sandbox_id), "alice").order
    cancelled = runtime.orders.cancel(order.id, "alice", "typo in the domain")
    assert cancelled.status == "cancelled"
    assert runtime.orders.check(order.id).status == "cancelled"


def forged_status(order, *, key=None, names=None, signer=None):
    """A provider's answer carrying a certificate that does not belong to the order."""
    from panel_ssl_plugin.providers.base import OrderState, ProviderStatus

    key = key or keys.generate_key()
    csr = keys.load_csr(keys.make_csr(key, keys.Subject(order.domain), names or []))
    ca_key, ca_cert = signer or keys.create_ca("Somebody Else's CA")
    cert = keys.sign_csr(csr, ca_key, ca_cert)
    return ProviderStatus(
        OrderState.ISSUED, "issued", certificate=keys.cert_to_pem(cert),
        chain=keys.cert_to_pem(ca_cert), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )  # fmt: skip


@pytest.mark.parametrize("flaw", ["key", "names", "root"])
def test_an_issued_certificate_that_does_not_belong_fails_the_order(
    runtime, sandbox_id, flaw, listener
):
    order = runtime.orders.place(draft(sandbox_id), "alice").order
    own_key = keys.key_from_pem(runtime.orders.private_key(order))
    status = {
        "key": lambda: forged_status(order),
        "names": lambda: forged_status(order, key=own_key, names=["evil.example"]),
        "root": lambda: forged_status(order, key=own_key),
    }[flaw]()
    adapter = runtime.accounts.adapter(sandbox_id)
    failed = runtime.orders.apply_status(order, status, "poller", adapter)
    assert failed.status == "failed" and failed.certificate is None
    reason = {"key": "private key", "names": "evil.example", "root": "root certificate"}[flaw]
    assert "refused" in failed.status_detail and reason in failed.status_detail
    assert listener.issued == []


def test_check_status_of_an_issued_certificate_asks_the_provider(
    panel, runtime, gogetssl_id, gogetssl_sim, listener
):
    order = runtime.orders.place(draft(gogetssl_id, product_id="71"), "alice").order
    gogetssl_sim.approve(order.provider_order_id)
    issued = runtime.orders.check(order.id)
    assert issued.status == "issued"
    again = runtime.orders.check(order.id)
    assert (
        again.certificate == issued.certificate and again.last_checked_at > issued.last_checked_at
    )
    gogetssl_sim.set_status(order.provider_order_id, "cancelled", "Refunded on request.")
    refunded = runtime.orders.check(order.id)
    assert (refunded.status, refunded.provider_status) == ("cancelled", "cancelled")
    assert listener.changes[-1] == (order.id, "issued", "cancelled")


def test_renewals_of_renewals_stay_grouped_under_the_original(panel, runtime, sandbox_id):
    order = issued(panel, runtime)
    first = runtime.follow_ups.renew(order.id, "alice").order
    approve(panel, runtime)
    assert runtime.orders.get(first.id).status == "issued"
    second = runtime.follow_ups.renew(first.id, "alice").order
    page = runtime.orders.account_page("1")
    assert page.next_after is None and page.previous_before is None
    ((original, renewals),) = page.rows
    assert original.id == order.id and [r.id for r in renewals] == [first.id, second.id]


def test_validation_files_go_to_a_host_that_serves_the_site(panel, runtime, gogetssl_id):
    """HTTP DCV: the minipanel serves the file itself; DNS DCV: it runs no zone, the user does."""
    http = runtime.orders.place(
        draft(gogetssl_id, product_id="71", dcv_method="http", approver_email=""), "alice"
    ).order
    (task,) = http.validation
    assert task["published"] is True
    path = task["location"].split("/", 3)[3]
    assert path.startswith(".well-known/pki-validation/")
    assert panel.test_client().get(f"/{path}").text == task["value"]

    dns = runtime.orders.place(
        draft(gogetssl_id, product_id="71", dcv_method="dns", approver_email=""), "alice"
    ).order
    assert [t["published"] for t in dns.validation] == [False]


# --- reissue: a new key for an issued certificate, the old key kept with its order ---------------


def public_key(pem: str) -> bytes:
    """The public key of a private key or certificate PEM, for comparing them."""
    if "CERTIFICATE" in pem:
        return keys.public_key_der(keys.load_certificates(pem)[0])
    return keys.public_key_der(keys.key_from_pem(pem))


def test_reissue_with_the_sandbox_keeps_the_old_key_and_certificate(
    panel, runtime, sandbox_id, listener
):
    order = issued(panel, runtime, sans=("www.shop.example.com",), product_id="dv-multi")
    old_key = runtime.orders.private_key(order)
    placed = runtime.follow_ups.reissue(order.id, "alice", key_type="rsa2048")
    reissue = placed.order
    assert (reissue.status, reissue.reissue_of, reissue.key_type) == (
        "pending",
        order.id,
        "rsa2048",
    )
    assert not placed.duplicate and reissue.provider_order_id == order.provider_order_id
    assert "approval email was sent to admin@shop.example.com" in reissue.status_detail
    for name in ("domain", "sans", "period_months", "product_id", "organization", "contact"):
        assert getattr(reissue, name) == getattr(order, name), name
    new_key = runtime.orders.private_key(reissue)
    assert public_key(new_key) != public_key(old_key)
    new_csr, old_csr = keys.load_csr(reissue.csr), keys.load_csr(order.csr)
    assert keys.public_key_der(new_csr) == public_key(new_key)
    assert keys.csr_names(new_csr) == keys.csr_names(old_csr) == [order.domain, *order.sans]
    assert new_csr.subject == old_csr.subject

    done = approve(panel, runtime)  # the reissue's mail is the newest
    assert (done.id, done.status) == (reissue.id, "issued")
    assert public_key(done.certificate) == public_key(new_key)
    assert done.certificate != order.certificate and listener.issued[-1] == reissue.id

    old = runtime.orders.get(order.id)
    assert (old.status, old.certificate, old.csr) == ("issued", order.certificate, order.csr)
    assert runtime.orders.private_key(old) == old_key
    assert public_key(old.certificate) == public_key(old_key)
    assert "reissue_ordered" in [e.event for e in runtime.orders.events(order.id)]


def test_reissue_twice_makes_one_and_a_later_one_a_new_one(panel, runtime, sandbox_id):
    order = issued(panel, runtime, key_type="rsa3072")
    barrier, results = threading.Barrier(2), []

    def click():
        barrier.wait()
        results.append(runtime.follow_ups.reissue(order.id, "alice"))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    again = runtime.follow_ups.reissue(order.id, "alice")
    assert len({r.order.id for r in [*results, again]}) == 1 and again.duplicate
    assert again.order.key_type == "rsa3072"  # the order's own key type when none is chosen
    other_form = runtime.follow_ups.reissue(order.id, "alice", idempotency_key="another-form")
    assert other_form.duplicate and other_form.order.id == again.order.id
    assert [r.id for r in runtime.follow_ups.reissues(order.id)] == [again.order.id]

    approve(panel, runtime)
    with pytest.raises(ReissueRefused, match=f"reissued by #{again.order.id}"):
        runtime.follow_ups.reissue(order.id, "alice")  # superseded: the reissue is current now
    later = runtime.follow_ups.reissue(again.order.id, "alice")
    assert not later.duplicate and later.order.reissue_of == again.order.id


def test_reissue_refusals(runtime, sandbox_id, gogetssl_id, gogetssl_sim):
    pending = runtime.orders.place(draft(sandbox_id), "alice").order
    with pytest.raises(ReissueRefused, match="Only issued certificates can be reissued; this one"):
        runtime.follow_ups.reissue(pending.id, "alice")

    order = runtime.orders.place(draft(gogetssl_id, product_id="71"), "alice").order
    gogetssl_sim.approve(order.provider_order_id)
    runtime.orders.check(order.id)
    with pytest.raises(ReissueRefused, match="key type"):
        runtime.follow_ups.reissue(order.id, "alice", key_type="dsa1024")
    gogetssl_sim.set_status(order.provider_order_id, "processing")  # GoGetSSL now refuses
    with pytest.raises(
        ReissueRefused, match=r"refused the reissue: .*Only active orders"
    ) as caught:
        runtime.follow_ups.reissue(order.id, "alice")
    failed = caught.value.order
    assert (failed.status, failed.reissue_of) == ("failed", order.id)
    assert "Only active orders can be reissued" in failed.status_detail
    assert runtime.orders.get(order.id).status == "issued"


def test_provider_down_keeps_the_reissue_and_the_poller_reissues_it(
    runtime, gogetssl_id, gogetssl_sim
):
    order = runtime.orders.place(draft(gogetssl_id, product_id="71"), "alice").order
    provider_id = order.provider_order_id
    gogetssl_sim.approve(provider_id)
    issued = runtime.orders.check(order.id)
    reissue_path = f"/orders/ssl/reissue/{provider_id}"
    gogetssl_sim.fail_next("429", reissue_path)  # turned away before any work
    placed = runtime.follow_ups.reissue(order.id, "alice")
    assert placed.order.status == "submitted"
    assert "retry automatically" in placed.order.status_detail

    later = datetime.now(UTC) + timedelta(hours=1)
    assert poll_due(runtime.orders, later).by_status == {"pending": 1}
    reissue = runtime.orders.get(placed.order.id)
    assert (reissue.status, reissue.provider_order_id) == ("pending", provider_id)
    assert gogetssl_sim.path_calls[reissue_path] == 2  # the failed one and the retry
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 1  # never placed as new
    assert gogetssl_sim.orders[provider_id].reissues == 1 and len(gogetssl_sim.orders) == 1
    # the provider's order is the reissue's now: its pending state stays off the old row
    assert runtime.orders.check(order.id) == runtime.orders.get(order.id)
    assert runtime.orders.get(order.id).status == "issued"

    gogetssl_sim.approve(provider_id)
    assert poll_due(runtime.orders, later + timedelta(minutes=2)).by_status == {"issued": 1}
    done = runtime.orders.get(reissue.id)
    assert public_key(done.certificate) == public_key(runtime.orders.private_key(done))
    old = runtime.orders.get(order.id)
    assert old.certificate == issued.certificate != done.certificate
    assert public_key(old.certificate) == public_key(runtime.orders.private_key(old))


def test_reissues_and_renewals_are_grouped_under_the_original(panel, runtime, sandbox_id):
    order = issued(panel, runtime)
    reissue = runtime.follow_ups.reissue(order.id, "alice").order
    approve(panel, runtime)
    renewal = runtime.follow_ups.renew(reissue.id, "alice").order
    assert runtime.follow_ups.reissues(order.id) == [runtime.orders.get(reissue.id)]
    assert runtime.follow_ups.renewals(order.id) == []
    page = runtime.orders.account_page("1")
    assert page.next_after is None and page.previous_before is None
    ((original, follow_ups),) = page.rows
    assert original.id == order.id and [f.id for f in follow_ups] == [reissue.id, renewal.id]


def test_a_dropped_adapters_answers_never_serve_another_account(
    runtime, sandbox_id, gogetssl_id, monkeypatch
):
    """The catalogue cache once keyed answers by ``id(adapter)``, which Python hands to a new
    object once the old one is gone: a GoGetSSL account then got the sandbox's products (an
    intermittent failure in CI). Here every object gets the same id, as after such a reuse."""
    monkeypatch.setattr(orders_module, "id", lambda obj: 42, raising=False)
    sandbox_products = {p.id for p in runtime.orders.products(sandbox_id)}
    gogetssl_products = {p.id for p in runtime.orders.products(gogetssl_id)}
    assert "71" in gogetssl_products and "71" not in sandbox_products
