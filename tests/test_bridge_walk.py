"""The reseller's walk through the service, as the PHP panel's browser test walks it: a launch
link, the order popup filled from the panel's data, the approval mail at the panel, the list
showing the certificate issued, the panel holding the signed webhook (issue 13)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.bridge_panel import FakePanel, launch_token, service
from tests.ordering import follow_approval_link
from tests.test_order_flow import DOMAIN, submit


def test_order_approve_list_and_webhook_through_the_bridge(sqlite_url):
    panel = FakePanel()
    app = service(sqlite_url, panel)
    client = app.test_client()
    assert client.get("/ssl/launch", query_string={"token": launch_token()}).status_code == 302

    result = submit(client, "7")
    assert result.status_code == 200, result.text
    assert [call for call, _ in panel.calls].count("account_contacts") == 1
    mail = panel.mails[-1]
    link = re.search(r"http\S+/callback/\S+", mail["body"]).group(0)
    assert follow_approval_link(client, urlsplit(link).path).status_code == 200

    token = launch_token(target="certs")
    listing = client.get(client.get("/ssl/launch", query_string={"token": token}).location)
    assert DOMAIN in listing.text
    assert "issued" in listing.text.lower()

    app.extensions["panel_ssl_deliverer"].deliver_due()
    issued = [body for _, body in panel.webhooks if body["type"] == "certificate.issued"]
    assert len(issued) == 1
    assert issued[0]["data"]["domain"] == "www.xn--bcher-kva.example"  # stored as A-label
    assert issued[0]["data"]["account_id"] == "7"
    panel.stop()


def test_approval_links_lead_to_the_public_url_never_the_host_header(sqlite_url):
    """Issue 19, finding 5: a request naming another host gets 400 (TRUSTED_HOSTS), and the
    link in the mail is the configured address whatever the request said."""
    panel = FakePanel()
    app = service(
        sqlite_url, panel, public_url="https://ssl.panel.example", trusted_hosts=("localhost",)
    )
    client = app.test_client()
    assert client.get("/ssl/launch", query_string={"token": launch_token()}).status_code == 302
    forged = client.get("/ssl/accounts/7/order", headers={"Host": "attacker.example"})
    assert forged.status_code == 400
    assert submit(client, "7").status_code == 200
    assert "https://ssl.panel.example/ssl/providers/" in panel.mails[-1]["body"]
    panel.stop()
