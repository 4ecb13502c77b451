"""Orders for tests: a draft with sensible values, and sandbox approval through the outbox.

Every test that needs an order starts here, so a change to what an order needs is made once.
"""

from __future__ import annotations

import re
import uuid

from panel_ssl_plugin import names
from panel_ssl_plugin.drafts import OrderDraft
from panel_ssl_plugin.store import OrderRecord

# client 1's contact in the minipanel: reminders go to addresses the host knows for the account
CONTACT = {"first_name": "Hans", "last_name": "Müller", "email": "hans@baeckerei-mueller.example"}
# the organization's address: OV/EV products need it, the others leave it out
ADDRESS = {
    "street": "Hauptstraße 12",
    "city": "München",
    "postal_code": "80331",
    "phone": "+49 89 123450",
}


def draft(provider_account_id: int, **changes) -> OrderDraft:
    """A sandbox-style single-domain order of client 1; ``changes`` override any field.

    The approver defaults to admin@ the domain, the way every provider here offers it, and so
    does each additional name's.
    """
    domain = changes.get("domain", "shop.example.com")
    values = {
        "san_approvers": {name: _approver(name) for name in changes.get("sans", ())},
        "account_id": "1",
        "provider_account_id": provider_account_id,
        "product_id": "dv-single",
        "period_months": 12,
        "server_type": "nginx",
        "domain": domain,
        "dcv_method": "email",
        "idempotency_key": uuid.uuid4().hex,
        "approver_email": _approver(domain),
        "organization": "Bäckerei Müller GmbH",
        "state": "Bayern",
        "country": "de",
        "contact": CONTACT,
        "address": ADDRESS,
        **changes,
    }
    return OrderDraft(**values)


def _approver(domain: str) -> str:
    try:
        return f"admin@{names.normalize_domain(domain.removeprefix('*.'))}"
    except names.InvalidInput:
        return f"admin@{domain}"  # the test is about the bad domain, not its approver


def approval_token(app, order: OrderRecord | None = None) -> str:
    """The token of the newest approval link in the minipanel's outbox (for ``order``)."""
    mails = app.extensions["minipanel"].mails()
    body = next(m.body for m in mails if order is None or order.provider_order_id in m.body)
    return re.search(r"/callback/(\S+)", body).group(1)


def approval_tokens(app, order: OrderRecord | None = None) -> list[str]:
    """The newest approval link of each approver of ``order`` (of the newest mail's order when
    none is given): the sandbox mails every approver of a name, and each must approve."""
    mails = app.extensions["minipanel"].mails()
    if order is None:
        order_id = re.search(r"\(order (\S+)\)", mails[0].body).group(1)
    else:
        order_id = order.provider_order_id
    newest: dict[str, str] = {}
    for mail in mails:
        link = re.search(r"/callback/(\S+)", mail.body)
        if link and f"(order {order_id})" in mail.body:
            newest.setdefault(mail.recipient, link.group(1))
    return list(newest.values())


def approve(app, runtime, order: OrderRecord | None = None) -> OrderRecord:
    """Follow the approval links as the approvers would; the order is checked after each."""
    account = runtime.accounts.all()[0].id if order is None else order.provider_account_id
    approved = None
    for token in approval_tokens(app, order):
        approved = runtime.orders.handle_callback(account, token)
    assert approved is not None, "no approval link in the outbox"
    return approved


def issued(app, runtime, **changes) -> OrderRecord:
    """An issued sandbox certificate: placed with the default account, then approved."""
    account = runtime.accounts.all()[0].id
    order = runtime.orders.place(draft(account, **changes), "alice").order
    return approve(app, runtime, order)


def follow_approval_link(client, path: str):
    """What the approver does: open the link (a page with a button), then press the button."""
    page = client.get(path)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token, f"no approval button on {path} ({page.status_code})"
    return client.post(path, data={"csrf_token": token.group(1)})
