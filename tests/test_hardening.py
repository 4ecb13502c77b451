"""Issue 9, items 1 and 2 (the plugin's part): no input makes a plugin page answer 500, and no
``next`` leads a redirect off the site.

Each test names the cause it pins down: a domain too long for a certificate's common name, a
step 2 posted without a provider account, ids beyond their column, control characters in text
fields, provider settings (and an order's key) the host's keys no longer open, and hostile
``next`` values. The ones that depend on the database run on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from panel_ssl_plugin import drafts, keys, names
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.minipanel.demo import prepare_demo
from panel_ssl_plugin.orders import OrderRejected
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.providers.base import OrderState
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import utcnow
from panel_ssl_plugin.web import pages
from tests.conftest import csrf_token, fresh_database, minipanel
from tests.ordering import approval_token, draft
from tests.test_minipanel import client_ids
from tests.test_order_flow import FormReader, all_orders, step1_url, step2_url

DATABASES = pytest.mark.parametrize("app", ["sqlite", "postgresql", "mariadb"], indirect=True)
# 72 characters: a valid name (labels of at most 63), too long for a common name (64)
LONG_DOMAIN = "a" * 60 + ".example.com"
SHORT_DOMAIN = "shop.example.com"
# beyond a 32-bit INTEGER (PostgreSQL, MariaDB), beyond SQLite's 64 bits, and far beyond
HUGE_IDS = (2**31, 2**63, 10**20)


@pytest.fixture
def app(request, server_engines, tmp_path):
    """The minipanel on SQLite, or on the database a test names (``DATABASES``)."""
    databases = fresh_database(getattr(request, "param", "sqlite"), server_engines, tmp_path)
    yield minipanel(next(databases))
    next(databases, None)


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def bakery(app) -> str:
    """Alice's first client."""
    return str(client_ids(app, "alice")[0])


@pytest.fixture
def alice(as_user):
    return as_user("alice")


@pytest.fixture
def admin(as_user):
    return as_user("admin")


def place(runtime, account_id: str = "1", **changes):
    """A pending sandbox order of ``account_id`` on the default account."""
    changes.setdefault("provider_account_id", runtime.accounts.all()[0].id)
    provider_account_id = changes.pop("provider_account_id")
    return runtime.orders.place(
        draft(provider_account_id, account_id=account_id, **changes), "alice"
    ).order


def approve(app, runtime, order):
    return runtime.orders.handle_callback(order.provider_account_id, approval_token(app, order))


def flashed(client) -> str:
    """The messages a redirected page shows, read from the page it leads to."""
    with client.session_transaction() as session:
        messages = session.get("_flashes", [])
    return " ".join(message for _category, message in messages)


def cancels_at_provider(monkeypatch, runtime, account_id: int) -> list[str]:
    """Every cancel call that reaches the account's adapter."""
    calls: list[str] = []
    adapter = runtime.accounts.adapter(account_id)
    original = adapter.cancel

    def cancel(ref, reason=""):
        calls.append(reason)
        return original(ref, reason)

    monkeypatch.setattr(adapter, "cancel", cancel)
    return calls


# --- 1a. a domain longer than a common name --------------------------------------------------


def subject_and_sans(csr_pem: str) -> tuple[list[str], list[str], bool]:
    csr = keys.load_csr(csr_pem)
    common_names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return common_names, san.value.get_values_for_type(x509.DNSName), san.critical


def test_a_name_too_long_for_the_common_name_goes_in_the_san_only(app, runtime):
    """Before: Subject.to_name raised ValueError (CN longer than 64), a 500 on submit."""
    order = place(runtime, domain=LONG_DOMAIN, organization="", state="", country="")
    assert order.status == OrderState.PENDING
    common_names, sans, critical = subject_and_sans(order.csr)
    assert common_names == [] and sans == [LONG_DOMAIN]
    assert critical  # RFC 5280: with an empty subject the SAN is critical
    issued = approve(app, runtime, order)
    assert issued.status == OrderState.ISSUED and issued.certificate


def test_the_common_name_is_the_first_name_that_fits(runtime):
    order = place(runtime, product_id="dv-multi", domain=LONG_DOMAIN, sans=(SHORT_DOMAIN,))
    common_names, sans, critical = subject_and_sans(order.csr)
    assert common_names == [SHORT_DOMAIN] and sans == [LONG_DOMAIN, SHORT_DOMAIN]
    assert not critical


def test_a_long_name_is_ordered_through_the_popup_and_reissued(app, runtime, alice, bakery):
    page = alice.get(step1_url(bakery)).text
    contact = post_form(
        alice, step2_url(bakery), page, "contact",
        domain=LONG_DOMAIN, approver_email=f"admin@{LONG_DOMAIN}",
    )  # fmt: skip
    assert contact.status_code == 200, contact.text
    response = post_form(alice, step2_url(bakery), contact.text, "submit")
    assert response.status_code == 200 and "Order received" in response.text
    (order,) = all_orders(runtime)
    issued = approve(app, runtime, order)
    reissue = runtime.follow_ups.reissue(issued.id, "alice").order
    assert reissue.status == OrderState.PENDING
    assert subject_and_sans(reissue.csr)[:2] == ([], [LONG_DOMAIN])


# --- 1b. step 2 without a provider account ---------------------------------------------------


def post_form(client, url: str, page: str, action: str, drop: tuple[str, ...] = (), **changes):
    """Press ``action`` on ``page`` with some fields changed and the ``drop`` ones left out."""
    data = FormReader(page).values
    for name, value in changes.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    for name in drop:
        data.poplist(name)
    data["action"] = action
    return client.post(url, data=data)


@pytest.mark.parametrize(
    "account", [None, "", "999", str(2**31), str(10**20), "abc", "1\x00"], ids=repr
)
@pytest.mark.parametrize("action", ["contact", "submit", "pick_contact"])
def test_step2_without_a_known_provider_account_says_so_and_keeps_the_values(
    alice, bakery, runtime, account, action
):
    """Before: UnknownProviderAccount from the draft check of "contact", a 500."""
    page = alice.get(step1_url(bakery)).text
    changes = {"domain": "www.bücher.example", "approver_email": "admin@xn--bcher-kva.example"}
    contact = post_form(alice, step2_url(bakery), page, "contact", **changes)
    drop = ("provider_account_id",) if account is None else ()
    if account is not None:
        changes["provider_account_id"] = account
    response = post_form(alice, step2_url(bakery), contact.text, action, drop=drop, **changes)
    assert response.status_code in (200, 422), response.text
    assert FormReader(response.text).values["domain"] == "www.bücher.example"
    if response.status_code == 422:
        assert "Choose a provider account from the list." in response.text
    assert all_orders(runtime) == []


# --- 1c. ids beyond their column -------------------------------------------------------------


def id_urls(order_id: int) -> list[tuple[str, str]]:
    """(method, path) of every route that names an order or a provider account."""
    cert = f"/ssl/certs/{order_id}"
    admin = f"/ssl/admin/providers/{order_id}"
    return [
        ("GET", cert),
        ("GET", f"{cert}?tab=certificate"),
        ("GET", f"{cert}/renew"),
        ("POST", f"{cert}/renew"),
        ("POST", f"{cert}/check-status"),
        ("POST", f"{cert}/resend-approval"),
        ("POST", f"{cert}/cancel"),
        ("POST", f"{cert}/resolve"),
        ("POST", f"{cert}/reveal-key"),
        ("POST", f"{cert}/reissue"),
        ("GET", f"{cert}/download/pem"),
        ("POST", f"{cert}/download/key"),
        ("GET", f"/ssl/providers/{order_id}/callback/some-token"),
        ("GET", f"{admin}/edit"),
        ("POST", f"{admin}/edit"),
        ("POST", f"{admin}/enable"),
        ("POST", f"{admin}/test"),
    ]


@DATABASES
@pytest.mark.parametrize("who", ["anonymous", "alice", "admin"])
def test_ids_beyond_the_column_are_not_found(app, as_user, bakery, who):
    """Before: /ssl/certs/2147483648 was a 500 on PostgreSQL (integer out of range), 2**63 on
    SQLite (Python int too large), for anyone, anonymous included."""
    client = app.test_client() if who == "anonymous" else as_user(who)
    token = csrf_token(client, "/login" if who == "anonymous" else step1_url(bakery))
    for order_id in HUGE_IDS:
        for method, url in id_urls(order_id):
            data = {"csrf_token": token} if method == "POST" else None
            response = client.open(url, method=method, data=data)
            assert response.status_code == 404, (method, url, response.status_code)


@DATABASES
@pytest.mark.parametrize(
    "query",
    [
        "page=1e20",
        f"page={10**20}",
        f"page={2**63}",
        "page=-3",
        "page=",
        f"from={2**31}",
        f"from={10**20}",
        "from=",
        "from=-1",
        "provider_account_id=" + str(10**20),
    ],
)
def test_numbers_beyond_range_in_a_query_fall_back_to_the_default(app, admin, bakery, query):
    """Before: ?page= and ?from= past the column's range reached the database: a 500."""
    for path in ("certs", "order"):
        response = admin.get(f"/ssl/accounts/{bakery}/{path}?{query}")
        assert response.status_code == 200, (path, query, response.status_code)
    lookup = admin.get(f"/ssl/accounts/{bakery}/dcv-emails?domain=shop.example.com&{query}")
    assert lookup.status_code in (200, 400)


@DATABASES
@pytest.mark.parametrize("account", ["%00", "1%00", "%1B", "a" * 65])
def test_account_ids_no_column_can_hold_are_not_found(app, admin, account):
    """Before: an admin's /ssl/accounts/%00/certs sent NUL to PostgreSQL: a 500."""
    for path in ("certs", "order", "order/contact", "dcv-emails?domain=shop.example.com"):
        response = admin.get(f"/ssl/accounts/{account}/{path}")
        assert response.status_code == 404, (account, path, response.status_code)


def test_a_provider_account_id_in_a_form_beyond_its_column_is_refused(runtime):
    """The order service itself never asks the database about an id no row can have."""
    for huge in HUGE_IDS:
        errors = runtime.orders.draft_errors(draft(huge))
        assert errors["provider_account_id"] == "Choose a provider account from the list."


# --- 1d. control characters in text fields ---------------------------------------------------

TEXT_FIELDS = ("organization", "unit", "state")
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "title")
CONTROLS = ("\x00", "\x1b[31m", "\x7f", "\x85", "\ud800")


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
@pytest.mark.parametrize("field", TEXT_FIELDS + tuple(f"contact_{n}" for n in CONTACT_FIELDS))
def test_control_characters_are_refused_in_every_text_field_of_an_order(runtime, field, control):
    """Before: nothing looked; on SQLite they reached the CSR and the CA, on PostgreSQL a 500."""
    contact = {"first_name": "Hans", "last_name": "Müller", "email": "hans@example.com"}
    if field.startswith("contact_"):
        name = field.removeprefix("contact_")
        contact[name] = f"{contact.get(name) or ''}ab{control}cd"
        changes = {"contact": contact}
    else:
        changes = {field: f"ab{control}cd"}
    errors = runtime.orders.draft_errors(draft(runtime.accounts.all()[0].id, **changes))
    assert "control character" in errors[field]


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
def test_control_characters_are_refused_in_a_pasted_csr(runtime, control):
    csr = keys.make_csr(keys.generate_key(), keys.Subject("shop.example.com"))
    with pytest.raises(drafts.OrderInvalid) as invalid:
        runtime.orders.place(draft(runtime.accounts.all()[0].id, csr=control + csr), "alice")
    assert "control character" in invalid.value.errors["csr"]
    assert all_orders(runtime) == []


def test_line_breaks_and_tabs_are_fine_where_text_has_lines():
    assert names.plain_text("one\r\ntwo\tthree", multiline=True) == "one\r\ntwo\tthree"
    with pytest.raises(names.InvalidInput):
        names.plain_text("one\ntwo")


@DATABASES
@pytest.mark.parametrize("field", ["organization", "unit", "state", "contact_title"])
def test_a_popup_submit_with_nul_orders_nothing_and_keeps_the_values(alice, bakery, runtime, field):
    """Before: PostgreSQL answered 500; SQLite stored the order and sent NUL to the CA."""
    page = alice.get(step1_url(bakery)).text
    changes = {"domain": "www.bücher.example", "approver_email": "admin@xn--bcher-kva.example"}
    contact = post_form(alice, step2_url(bakery), page, "contact", **changes)
    response = post_form(alice, step2_url(bakery), contact.text, "submit", **{field: "Web\x00team"})
    assert response.status_code == 422, response.text
    assert "control character" in response.text
    assert FormReader(response.text).values["domain"] == "www.bücher.example"
    assert all_orders(runtime) == []


@DATABASES
def test_a_cancel_with_nul_never_reaches_the_provider(app, runtime, alice, monkeypatch):
    """Before: SQLite cancelled at the provider with NUL in the reason, and PostgreSQL answered
    500; the order must stay pending, with nothing sent, and say why."""
    order = place(runtime, client_ids(app, "alice")[0])
    calls = cancels_at_provider(monkeypatch, runtime, order.provider_account_id)
    details = f"/ssl/certs/{order.id}"
    token = csrf_token(alice, details)
    response = alice.post(f"{details}/cancel", data={"csrf_token": token, "reason": "typo\x00"})
    assert response.status_code == 302 and "control character" in flashed(alice)
    assert calls == []
    after = runtime.orders.get(order.id)
    assert after.status == OrderState.PENDING and after.lease_until is None
    with pytest.raises(OrderRejected, match="control character"):
        runtime.orders.cancel(order.id, "alice", "typo\x00")
    assert calls == [] and runtime.orders.get(order.id).version == after.version


@DATABASES
def test_an_admin_link_with_nul_is_refused_before_the_provider(app, runtime, admin):
    """Before: the id went to the provider and the write after it failed on PostgreSQL."""
    order = place(runtime, client_ids(app, "alice")[0])
    unknown = runtime.orders.store.update_order(
        order, "system", "outcome_unknown", "", status=OrderState.UNKNOWN
    )
    details = f"/ssl/certs/{order.id}"
    response = admin.post(
        f"{details}/resolve",
        data={"csrf_token": csrf_token(admin, details), "provider_order_id": "SBX-1\x00"},
    )
    assert response.status_code == 302 and "control character" in flashed(admin)
    after = runtime.orders.get(order.id)
    assert after.status == OrderState.UNKNOWN and after.version == unknown.version


@DATABASES
@pytest.mark.parametrize("key", ["A" * 16 + "\x00", "A" * 200, "A" * 16 + "!"])
def test_a_reissue_key_that_is_not_one_is_refused(app, runtime, alice, key):
    """Before: the key's pattern matched only its start, so NUL or 200 characters reached the
    idempotency column (PostgreSQL: a 500)."""
    order = approve(app, runtime, place(runtime, client_ids(app, "alice")[0]))
    details = f"/ssl/certs/{order.id}"
    data = {"csrf_token": csrf_token(alice, details), "key_type": "ec256", "idempotency_key": key}
    response = alice.post(f"{details}/reissue", data=data)
    assert response.status_code == 302 and "form was incomplete" in flashed(alice)
    assert runtime.follow_ups.reissues(order.id) == []


@DATABASES
def test_provider_settings_with_nul_are_refused_and_nothing_is_saved(runtime, admin):
    """Before: the label reached PostgreSQL (a 500); SQLite stored NUL in settings the adapter
    then sends to its provider."""
    url = "/ssl/admin/providers/new?provider=sandbox"
    before = len(runtime.accounts.all())
    for label, organization in (("Lab\x00", "Org"), ("Label", "Org\x00"), ("Label", "O\x1bg")):
        data = {
            "csrf_token": csrf_token(admin, url),
            "label": label,
            "enabled": "y",
            "settings-organization": organization,
            "settings-issue_delay": "0",
            "settings-periods": ["12"],
        }
        response = admin.post(url, data=data)
        assert response.status_code == 200 and "control character" in response.text
    assert len(runtime.accounts.all()) == before


# --- 1e. provider settings the host's keys no longer open ------------------------------------


def lose_the_key(runtime, account_id: int) -> None:
    """The account's settings, encrypted under a key the host no longer has."""
    stale = Vault([Vault.generate_key()]).encrypt_json({"organization": "Old"})
    runtime.orders.store.update_provider_account(account_id, settings_encrypted=stale)


@pytest.fixture
def orphaned(app, runtime):
    """A pending order of Alice's client on a second sandbox account whose settings cannot be
    read now, beside one on the demo account."""
    account_id = runtime.accounts.create("sandbox", "Old sandbox", {})
    client = client_ids(app, "alice")[0]
    order = place(runtime, client, provider_account_id=account_id, domain="old.example.com")
    other = place(runtime, client, domain="fine.example.com")
    lose_the_key(runtime, account_id)
    return order, other


UNREADABLE = "settings unreadable — re-enter them"


def test_pages_show_orders_of_an_account_whose_settings_cannot_be_read(
    app, runtime, alice, admin, orphaned
):
    """Before: list, details and admin pages were 500s (DecryptionError)."""
    order, _other = orphaned
    listing = alice.get(f"/ssl/accounts/{order.account_id}/certs")
    assert listing.status_code == 200
    assert "old.example.com" in listing.text and "fine.example.com" in listing.text
    details = alice.get(f"/ssl/certs/{order.id}")
    assert details.status_code == 200 and "Old sandbox" in details.text
    providers = admin.get("/ssl/admin/providers")
    assert providers.status_code == 200 and UNREADABLE in providers.text
    assert providers.text.count(UNREADABLE) == 1
    assert runtime.accounts.get(order.provider_account_id).readable is False


def test_actions_on_such_an_order_say_the_settings_must_be_re_entered(
    app, runtime, alice, orphaned, monkeypatch
):
    order, _other = orphaned
    details = f"/ssl/certs/{order.id}"
    token = csrf_token(alice, details)
    for action, data in (
        ("check-status", {}),
        ("resend-approval", {}),
        ("cancel", {"reason": "not needed"}),
    ):
        response = alice.post(f"{details}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 302, (action, response.status_code)
        assert "re-enter" in flashed(alice), action
        after = runtime.orders.get(order.id)
        assert after.status == OrderState.PENDING and after.lease_until is None, action


def test_the_order_popup_explains_an_unreadable_default_account(app, runtime, alice, orphaned):
    order, _other = orphaned
    runtime.accounts.set_default(order.provider_account_id)
    page = alice.get(step1_url(order.account_id))
    assert page.status_code == 200 and "re-enter" in page.text


def test_the_poller_and_the_demo_carry_on(app, runtime, orphaned):
    """Before: ``panel-ssl demo`` refused to start (prepare_demo read every account)."""
    order, other = orphaned
    prepare_demo(app)
    report = poll_due(runtime.orders, utcnow() + timedelta(hours=1))
    assert report.claimed == 2
    assert runtime.orders.get(order.id).check_failures == 1
    assert runtime.orders.get(other.id).check_failures == 0


def test_an_admin_re_enters_the_settings_and_the_account_works_again(app, runtime, admin, orphaned):
    order, _other = orphaned
    edit = f"/ssl/admin/providers/{order.provider_account_id}/edit"
    form = admin.get(edit)
    assert form.status_code == 200 and "re-enter" in form.text
    data = FormReader(form.text).values
    data.setlist("settings-periods", ["12", "24"])
    data["settings-organization"] = "New CA"
    data["settings-issue_delay"] = "0"
    saved = admin.post(edit, data=data)
    assert saved.status_code == 302, saved.text
    account = runtime.accounts.get(order.provider_account_id)
    assert account.readable and account.settings["organization"] == "New CA"
    assert "Connected" in runtime.accounts.test_connection(account.id)


# --- 2. where "next" may lead ----------------------------------------------------------------

HOSTILE_NEXT = (
    "////evil.example/x",
    "///evil.example",
    "//evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/\x00/evil.example",
    "evil.example",
    "//[evil.example",
    "http://[::1",
    "/%2F[evil.example",
    "",
)
SAME_SITE = ("/ssl/accounts/1/certs?page=2&sort=domain", "/clients/1/account-mgmt", "/")


@pytest.mark.parametrize("target", HOSTILE_NEXT, ids=repr)
def test_safe_next_refuses_what_could_leave_the_site(target):
    assert pages.safe_next(target) is None


@pytest.mark.parametrize("target", SAME_SITE)
def test_safe_next_keeps_paths_of_this_site(target):
    assert pages.safe_next(target) == target


@pytest.fixture
def next_routes(app, runtime):
    """(method, path, form data, who) of every route that goes back to ``next``, each set up to
    take the branch that redirects."""
    client = str(client_ids(app, "alice")[0])
    pending = place(runtime, client, domain="pending.example.com")
    issued = approve(app, runtime, place(runtime, client, domain="issued.example.com"))
    own_csr = keys.make_csr(keys.generate_key(), keys.Subject("csr.example.com"))
    pasted = place(runtime, client, domain="csr.example.com", csr=own_csr)
    routes = [
        ("POST", f"/ssl/certs/{pending.id}/check-status", {}, "alice"),
        ("POST", f"/ssl/certs/{issued.id}/resend-approval", {}, "alice"),
        ("POST", f"/ssl/certs/{pending.id}/cancel", {"reason": ""}, "alice"),
        ("POST", f"/ssl/certs/{pending.id}/resolve", {}, "admin"),
        ("POST", f"/ssl/certs/{issued.id}/renew", {"period_months": "12"}, "alice"),
        ("POST", f"/ssl/certs/{issued.id}/reissue", {"key_type": "nope"}, "alice"),
        ("POST", f"/ssl/certs/{pasted.id}/reveal-key", {}, "alice"),
        ("GET", f"/ssl/certs/{pending.id}/download/pem", {}, "alice"),
        ("POST", f"/ssl/certs/{pending.id}/download/key", {}, "alice"),
    ]
    return routes, f"/ssl/certs/{issued.id}"


def test_every_route_that_goes_back_stays_on_the_site(as_user, next_routes):
    """Before: ?next=////evil.example/x became Location: //evil.example/x (renew, check status,
    resend, cancel)."""
    routes, page = next_routes
    clients = {name: as_user(name) for name in ("alice", "admin")}
    tokens = {name: csrf_token(client, page) for name, client in clients.items()}
    for method, path, data, who in routes:
        client = clients[who]
        for target in (*HOSTILE_NEXT, *SAME_SITE):
            response = client.open(
                f"{path}?next={quote(target, safe='')}",
                method=method,
                data={"csrf_token": tokens[who], **data} if method == "POST" else None,
            )
            assert response.status_code == 302, (path, target, response.status_code)
            location = response.headers["Location"]
            if target in SAME_SITE:
                assert location == target, (path, target, location)
            else:
                assert location.startswith("/ssl/") and "evil" not in location, (path, target)


def test_the_renew_page_never_offers_a_hostile_next(app, runtime, alice):
    issued = approve(app, runtime, place(runtime, client_ids(app, "alice")[0]))
    for target in HOSTILE_NEXT:
        page = alice.get(f"/ssl/certs/{issued.id}/renew?next={quote(target, safe='')}")
        assert page.status_code == 200 and "evil" not in page.text, target
        assert re.search(r'href="/ssl/accounts/\d+/certs"', page.text), target


def test_an_order_key_the_host_cannot_open_is_refused_in_words(app, runtime, alice):
    """The same dropped key, on an order's private key: before, the key's downloads, the
    certificate's own (pem) and the check that accepts the issued certificate were 500s."""
    order = place(runtime, client_ids(app, "alice")[0])
    stale = Vault([Vault.generate_key()]).encrypt("a key under a dropped key")
    runtime.orders.store.update_order(order, "x", "x", "", private_key_encrypted=stale)
    issued = approve(app, runtime, order)
    assert issued.status == OrderState.ISSUED
    details = f"/ssl/certs/{order.id}"
    token = csrf_token(alice, details)
    assert alice.get(f"{details}/download/pem").status_code == 200
    for path, data in (
        ("reveal-key", {}),
        ("download/key", {}),
        ("download/pfx", {"password": "long enough"}),
    ):
        response = alice.post(f"{details}/{path}", data={"csrf_token": token, **data})
        assert response.status_code == 302, (path, response.status_code)
        assert "cannot be read" in flashed(alice), path
