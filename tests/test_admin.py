"""The provider account pages of the admin area, driven through the minipanel as a browser would."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from panel_ssl_plugin.providers.acme import AcmeProvider
from panel_ssl_plugin.providers.sandbox import SandboxProvider
from panel_ssl_plugin.providers.sectigo import BASE_URL_PRESETS, SectigoProvider
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import provider_accounts
from panel_ssl_plugin.web.admin import presets_of
from tests.providers.gogetssl_sim import PASSWORD, USER, GoGetSSLSim

from .conftest import csrf_token

LIST = "/ssl/admin/providers"
NEW_SANDBOX = f"{LIST}/new?provider=sandbox"
ORGANIZATION = "Admin Test CA Org"


def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


def sandbox_form(token: str, **changes: str) -> dict[str, str | list[str]]:
    """What a browser posts from the sandbox form: defaults, ticked boxes, then ``changes``."""
    return {
        "csrf_token": token,
        "label": "Test sandbox",
        "enabled": "y",
        "settings-organization": ORGANIZATION,
        "settings-reject_message": "",
        "settings-issue_delay": "0",
        "settings-periods": ["12", "24"],
        **changes,
    }


def add_sandbox(admin, **changes: str) -> int:
    """Add a sandbox account through the form; its id, read back from the list."""
    response = admin.post(NEW_SANDBOX, data=sandbox_form(csrf_token(admin, NEW_SANDBOX), **changes))
    assert response.status_code == 302 and response.location.endswith(LIST), response.text
    return max(account.id for account in runtime(admin.application).accounts.all())


def post(client, url: str, **data: str):
    """A POST from a list-page button, with the CSRF token the page carries."""
    return client.post(url, data={"csrf_token": csrf_token(client, LIST), **data})


@pytest.fixture
def admin(as_user):
    return as_user("admin")


@pytest.fixture
def tested_sandbox(admin) -> int:
    """A sandbox account whose test connection created the CA (secret settings now stored)."""
    account_id = add_sandbox(admin)
    post(admin, f"{LIST}/{account_id}/test")
    return account_id


def test_list_shows_the_demo_account_and_offers_every_provider_type(admin):
    page = admin.get(LIST).text
    assert "Sandbox (demo CA)" in page and 'class="badge badge-default"' in page
    assert f'action="{LIST}/1/test"' in page and f'action="{LIST}/1/disable"' in page
    assert '<option value="sandbox">Sandbox (local test CA)</option>' in page
    assert '<option value="gogetssl">GoGetSSL</option>' in page


def test_admin_adds_a_sandbox_account(app, admin):
    account_id = add_sandbox(admin)
    account = runtime(app).accounts.get(account_id)
    assert (account.provider_key, account.label) == ("sandbox", "Test sandbox")
    assert account.enabled and not account.is_default  # the demo account stays the default
    assert account.settings["organization"] == ORGANIZATION
    assert account.settings["periods"] == [12, 24]
    page = admin.get(LIST).text
    assert "Test sandbox is added." in page
    assert "Test sandbox" in page and "Sandbox (local test CA)" in page
    assert f'href="{LIST}/{account_id}/edit"' in page


def test_new_form_nests_the_provider_settings_under_a_prefix(admin):
    page = admin.get(NEW_SANDBOX).text
    assert 'name="label"' in page and 'name="settings-organization"' in page
    assert 'value="Panel SSL Sandbox"' in page  # the provider form's own default


def test_invalid_form_is_shown_again_with_the_values_kept(app, admin):
    token = csrf_token(admin, NEW_SANDBOX)
    data = sandbox_form(token, label="Kept label", **{"settings-organization": ""})
    response = admin.post(NEW_SANDBOX, data=data)
    assert response.status_code == 200
    assert "This field is required." in response.text
    assert 'value="Kept label"' in response.text
    assert len(runtime(app).accounts.all()) == 1


def test_default_account_must_be_enabled(app, admin):
    data = sandbox_form(csrf_token(admin, NEW_SANDBOX), is_default="y")
    del data["enabled"]
    response = admin.post(NEW_SANDBOX, data=data)
    assert "The default account must be enabled." in response.text
    assert len(runtime(app).accounts.all()) == 1


def test_admin_edits_an_account(app, admin):
    account_id = add_sandbox(admin)
    edit = f"{LIST}/{account_id}/edit"
    form = admin.get(edit).text
    assert 'value="Test sandbox"' in form and f'value="{ORGANIZATION}"' in form
    assert runtime(app).accounts.get(account_id).auto_renew is False
    data = sandbox_form(
        csrf_token(admin, edit), label="Renamed", auto_renew="y", **{"settings-issue_delay": "5"}
    )
    assert admin.post(edit, data=data).status_code == 302
    account = runtime(app).accounts.get(account_id)
    assert account.label == "Renamed" and account.settings["issue_delay"] == 5
    assert account.auto_renew is True


def test_secrets_never_reach_a_page_and_stay_when_left_empty(app, admin, tested_sandbox):
    accounts = runtime(app).accounts
    before = accounts.get(tested_sandbox).settings
    assert "PRIVATE KEY" in before["ca_root_key"]  # the test connection stored the CA
    edit = f"{LIST}/{tested_sandbox}/edit"
    pages = [admin.get(LIST).text, admin.get(edit).text, admin.get(NEW_SANDBOX).text]
    pages.append(admin.post(edit, data=sandbox_form(csrf_token(admin, edit), label="")).text)
    for page in pages:
        assert "PRIVATE KEY" not in page and before["link_secret"] not in page
    admin.post(edit, data=sandbox_form(csrf_token(admin, edit), label="Still mine"))
    after = accounts.get(tested_sandbox).settings
    assert {k: after[k] for k in accounts.classes["sandbox"].secret_fields} == {
        k: before[k] for k in accounts.classes["sandbox"].secret_fields
    }


def test_settings_are_encrypted_in_the_database(app, tested_sandbox):
    settings = runtime(app).accounts.get(tested_sandbox).settings
    with runtime(app).engine.connect() as conn:
        rows = conn.execute(sa.select(provider_accounts)).all()
    stored = repr(rows)
    assert "PRIVATE KEY" not in stored and "CERTIFICATE" not in stored
    for value in (settings["link_secret"], ORGANIZATION):
        assert value not in stored


def test_enable_disable_and_default(app, admin):
    first, second = add_sandbox(admin), add_sandbox(admin, label="Second")
    accounts = runtime(app).accounts
    assert not accounts.get(second).is_default
    assert post(admin, f"{LIST}/{second}/disable").status_code == 302
    assert not accounts.get(second).enabled
    assert "Second is disabled." in admin.get(LIST).text
    post(admin, f"{LIST}/{second}/enable")
    assert accounts.get(second).enabled
    post(admin, f"{LIST}/{second}/default")
    assert accounts.get(second).is_default and not accounts.get(first).is_default
    assert "Second is now the default account." in admin.get(LIST).text


def test_test_connection_shows_the_sandbox_ca_and_products(admin, tested_sandbox):
    page = admin.get(LIST).text
    assert f"Sandbox CA CN={ORGANIZATION} Root CA" in page
    assert "Connected: 4 products (Sandbox DV Single Domain" in page


def test_test_connection_shows_the_providers_error(app, admin, tested_sandbox, monkeypatch):
    from panel_ssl_plugin.providers.base import ProviderUnavailable

    def unavailable(self):
        raise ProviderUnavailable("The CA is down for maintenance.")

    monkeypatch.setattr(SandboxProvider, "products", unavailable)
    post(admin, f"{LIST}/{tested_sandbox}/test")
    page = admin.get(LIST).text
    assert "Test sandbox: The CA is down for maintenance." in page
    assert "flash-error" in page and "Traceback" not in page


def test_the_default_account_stays_default_when_edited(app, admin):
    edit = f"{LIST}/1/edit"
    assert '<input checked disabled id="is_default"' in admin.get(edit).text
    data = sandbox_form(csrf_token(admin, edit), label="Demo")
    assert admin.post(edit, data=data).status_code == 302  # a disabled box is never sent
    assert runtime(app).accounts.get(1).is_default


def test_buttons_check_csrf_where_the_host_does_not(app, admin):
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # the host runs no CSRFProtect
    assert admin.post(f"{LIST}/1/disable").status_code == 400
    assert "The CSRF token is missing." in admin.post(NEW_SANDBOX, data=sandbox_form("")).text
    assert runtime(app).accounts.get(1).enabled and len(runtime(app).accounts.all()) == 1


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (SectigoProvider, {"base_url": tuple(BASE_URL_PRESETS.items())}),
        (AcmeProvider, {}),  # its directory select lists the presets already
        (SandboxProvider, {}),
    ],
)
def test_presets_are_found_by_name_on_any_adapter(provider, expected):
    settings = provider.SettingsForm(prefix="settings-")
    found = presets_of(provider, settings)
    assert {name: presets.choices for name, presets in found.items()} == expected
    assert all(p.datalist_id == f"settings-{n}-presets" for n, p in found.items())


def admin_routes(account_id: int) -> list[tuple[str, str]]:
    base = f"{LIST}/{account_id}"
    return [
        ("GET", LIST),
        ("GET", NEW_SANDBOX),
        ("POST", NEW_SANDBOX),
        ("GET", f"{base}/edit"),
        ("POST", f"{base}/edit"),
        *(("POST", f"{base}/{action}") for action in ("enable", "disable", "default", "test")),
    ]


@pytest.mark.parametrize(("user", "status"), [("alice", 403), (None, 401)])
def test_only_admins_get_in(app, admin, as_user, client, user, status):
    account_id = add_sandbox(admin)
    visitor = as_user(user) if user else client
    token = csrf_token(visitor, "/login")
    for method, url in admin_routes(account_id):
        response = visitor.open(url, method=method, data={"csrf_token": token})
        if user is None and method == "GET":  # a person is sent to log in, and back
            assert response.status_code == 302 and "/login?next=" in response.location
        else:
            assert response.status_code == status, (method, url)
    assert runtime(app).accounts.get(account_id).label == "Test sandbox"


def test_posts_without_csrf_token_are_refused(app, admin):
    account_id = add_sandbox(admin)
    for method, url in admin_routes(account_id):
        if method == "POST":
            assert admin.post(url, data=sandbox_form("")).status_code == 400, url
    assert len(runtime(app).accounts.all()) == 2


def test_unknown_provider_and_account_are_not_found(admin):
    assert admin.get(f"{LIST}/new?provider=nope").status_code == 404
    assert admin.get(f"{LIST}/new").status_code == 404
    assert admin.get(f"{LIST}/999/edit").status_code == 404
    for action in ("enable", "disable", "default", "test"):
        assert post(admin, f"{LIST}/999/{action}").status_code == 404
    assert post(admin, f"{LIST}/1/explode").status_code == 404


def test_gogetssl_account_against_the_simulator(app, admin, gogetssl_sim: GoGetSSLSim):
    new = f"{LIST}/new?provider=gogetssl"
    form = admin.get(new).text
    assert '<option value="https://sandbox.gogetssl.com/api">sandbox</option>' in form
    assert 'data-fill="settings-base_url"' in form
    data = {
        "csrf_token": csrf_token(admin, new),
        "label": "GoGetSSL simulator",
        "enabled": "y",
        "settings-base_url": gogetssl_sim.url,
        "settings-username": USER,
        "settings-password": PASSWORD,
        "settings-timeout": "5",
    }
    refused = admin.post(new, data={**data, "label": ""})
    assert "This field is required." in refused.text and PASSWORD not in refused.text
    assert f'value="{gogetssl_sim.url}"' in refused.text
    assert admin.post(new, data=data).status_code == 302
    account_id = max(account.id for account in runtime(app).accounts.all())
    edit = admin.get(f"{LIST}/{account_id}/edit").text
    assert "A value is set — leave empty to keep it." in edit and PASSWORD not in edit
    assert 'name="settings-password" required' not in edit
    post(admin, f"{LIST}/{account_id}/test")
    page = admin.get(LIST).text
    assert "GoGetSSL simulator: Connected: 4 products (PositiveSSL, " in page
    assert "Balance:" in page and PASSWORD not in page
    with runtime(app).engine.connect() as conn:
        assert PASSWORD not in repr(conn.execute(sa.select(provider_accounts)).all())


def test_gogetssl_wrong_password_shows_the_providers_message(app, admin, gogetssl_sim):
    accounts = runtime(app).accounts
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": "wrong"}
    account_id = accounts.create("gogetssl", "Wrong password", settings)
    post(admin, f"{LIST}/{account_id}/test")
    page = admin.get(LIST).text
    assert "Wrong password: " in page and "Wrong user name or API password." in page
    assert "wrong" not in page.replace("Wrong", "")
