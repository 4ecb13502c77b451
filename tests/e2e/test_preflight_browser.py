"""The pre-flight checks in the Order SSL Cert popup, in Chromium, against the local DNS server:
a CAA record naming another CA, and an approver whose domain takes no mail."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from panel_ssl_plugin.preflight import Preflight
from tests.e2e.test_order_browser import APPROVER_LABEL, DOMAIN, open_order_popup

pytestmark = pytest.mark.e2e

RECORD = 'xn--bcher-kva.example CAA 0 issue "letsencrypt.org"'


def fill_step1(popup) -> None:
    popup.get_by_label("Domain name").press_sequentially(DOMAIN, delay=15)
    expect(popup.locator("#domain-status .spinner")).to_be_visible()
    approvers = popup.get_by_label("Approval Email Address")
    expect(approvers).to_contain_text(APPROVER_LABEL)
    approvers.select_option(label=APPROVER_LABEL)


def test_caa_refusal_and_a_mailbox_without_mx_in_the_popup(
    panel_server, context, screenshot, local_dns
):
    local_dns.add('xn--bcher-kva.example. 60 CAA 0 issue "letsencrypt.org"')
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    fill_step1(popup)
    refusal = popup.locator("#domain-preflight .preflight-blocked")
    expect(refusal).to_contain_text("CAA forbids Sandbox (sandbox.panel-ssl.test) to issue")
    expect(refusal).to_contain_text(RECORD)
    mailbox = popup.locator("#approver_email-preflight .preflight-warning")
    expect(mailbox).to_contain_text("bücher.example has no MX record and no address")
    expect(popup.locator("#domain-status .spinner")).to_have_count(0)
    screenshot(popup, "1-checks")

    popup.get_by_role("button", name="Specify Contact Info").click()
    popup.get_by_role("button", name="Place order").click()
    expect(popup.locator("#domain-errors")).to_contain_text(RECORD)
    expect(popup.get_by_label("Domain name")).to_have_value(DOMAIN)
    expect(mailbox).to_contain_text("has no MX record")  # checked again as the page opens
    expect(popup.locator("#domain-status .spinner")).to_have_count(0)
    screenshot(popup, "2-refused-at-submit")
    assert panel_server.runtime.orders.store.account_orders("1")[0] == []
    # the sandbox mails an approval link for every order it takes: none reached it
    assert panel_server.app.extensions["minipanel"].mails() == []


def test_without_dns_the_popup_warns_and_the_order_waits_for_caa(
    panel_server, context, screenshot, local_dns
):
    """Issue 19: CAA that cannot be read stops the order with a sentence to retry (a CA does not
    issue without it either); nothing is stored or sent, every value is kept."""
    panel_server.runtime.orders.preflight = Preflight("127.0.0.1:9")  # nothing listens there
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    fill_step1(popup)
    expect(popup.locator("#domain-preflight .preflight-warning")).to_contain_text(
        "Could not check the CAA records of www.bücher.example"
    )
    expect(popup.locator("#approver_email-preflight .preflight-warning")).to_contain_text(
        "Could not check"
    )
    screenshot(popup, "1-no-dns")
    popup.get_by_role("button", name="Specify Contact Info").click()
    popup.get_by_role("button", name="Place order").click()
    expect(popup.locator("#domain-errors")).to_contain_text("Try again in a moment")
    expect(popup.get_by_label("Domain name")).to_have_value(DOMAIN)
    screenshot(popup, "2-no-dns-refused")
    assert panel_server.runtime.orders.store.account_orders("1")[0] == []
