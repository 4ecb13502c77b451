"""The pages under their Content-Security-Policy in Chromium: everything works, nothing is
refused. Chromium reports each refused script or style on the console and as a
``securitypolicyviolation`` event; both are collected from every page and popup."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from panel_ssl_plugin.providers.gogetssl import URL_PRESETS

pytestmark = pytest.mark.e2e

# runs before any page script, outside the page's policy: reports what the policy refuses
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def violations(context) -> list[str]:
    """Every console message about the Content-Security-Policy, from every page."""
    found: list[str] = []
    context.add_init_script(REPORT_VIOLATIONS)
    context.on(
        "console",
        lambda message: (
            found.append(message.text)
            if re.search("Content Security Policy|CSP violation", message.text)
            else None
        ),
    )
    return found


def log_in(page, base_url: str, user: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(user)
    page.get_by_role("button", name="Log in").click()


def test_order_popup_works_under_the_policy(panel_server, context, violations):
    page = context.new_page()
    log_in(page, panel_server.url, "alice")
    page.get_by_role("row", name=re.compile("Bäckerei Müller")).get_by_role("link").click()
    with context.expect_page() as opened:
        page.get_by_role("link", name="Order SSL Cert").click()
    popup = opened.value
    popup.wait_for_load_state()
    # the minipanel's script opened it as a popup of the size the plugin asked for
    opened_by_script = popup.evaluate("window.opener !== null && window.name")
    popup.get_by_label("Domain name").press_sequentially("shop.example", delay=10)
    expect(popup.get_by_label("Approval Email Address")).to_contain_text("admin@shop.example")
    popup.get_by_role("button", name="Specify Contact Info").click()
    expect(popup.get_by_label("First name")).to_have_value("Hans")
    popup.get_by_label("I already have a CSR").check()
    expect(popup.locator("#key_type-row")).to_be_hidden()
    assert violations == []
    assert opened_by_script == "panel_popup"


def test_admin_pages_work_under_the_policy(panel_server, context, violations):
    page = context.new_page()
    log_in(page, panel_server.url, "admin")
    page.goto(f"{panel_server.url}/ssl/admin/providers/new?provider=gogetssl")
    page.get_by_role("listitem").filter(has_text="sandbox").get_by_role("button").click()
    expect(page.get_by_label("API base URL")).to_have_value(URL_PRESETS["sandbox"])
    for path in ("/ssl/admin/providers", "/ssl/accounts/1/certs", "/outbox", "/admin"):
        page.goto(f"{panel_server.url}{path}")
    assert violations == []
