"""The demo: three users and a few clients each, made once per database."""

from __future__ import annotations

import flask

from panel_ssl_plugin.minipanel.db import PanelDB
from panel_ssl_plugin.runtime import runtime_for

DEMO_USERS = (
    ("admin", "admin", "Ada Admin"),
    ("alice", "reseller", "Alice Reseller"),
    ("bob", "reseller", "Bob Reseller"),
)

DEMO_CLIENTS = {
    "alice": [
        (
            "Bäckerei Müller",
            "Bäckerei Müller GmbH",
            "Bayern",
            "DE",
            "München",
            [("Hans", "Müller", "hans@baeckerei-mueller.example", "+49 89 123456")],
        ),
        (
            "Acme Widgets",
            "Acme Widgets Ltd",
            "California",
            "US",
            "San Jose",
            [
                ("Wile", "Coyote", "wile@acme-widgets.example", "+1 408 555 0100"),
                ("Road", "Runner", "rr@acme-widgets.example", "+1 408 555 0101"),
            ],
        ),
    ],
    "bob": [
        (
            "Nordic Fjord Tours",
            "Nordic Fjord Tours AS",
            "Vestland",
            "NO",
            "Bergen",
            [("Ingrid", "Berg", "ingrid@fjord-tours.example", "+47 55 123456")],
        ),
    ],
}


def seed_demo(db: PanelDB) -> bool:
    """Create the demo users and clients unless the database has users already."""
    if db.user_count():
        return False
    ids = {name: db.add_user(name, name, role, display) for name, role, display in DEMO_USERS}
    for reseller, clients in DEMO_CLIENTS.items():
        for name, org, state, country, city, people in clients:
            client_id = db.add_client(
                ids[reseller], name, organization=org, state=state, country=country, city=city
            )
            for index, (first, last, email, phone) in enumerate(people):
                db.add_contact(
                    client_id,
                    is_default=index == 0,
                    first_name=first,
                    last_name=last,
                    email=email,
                    phone=phone,
                )
    return True


def prepare_demo(app: flask.Flask) -> None:
    """Everything ``panel-ssl demo`` shows: demo users and clients, and a sandbox provider."""
    seed_demo(app.extensions["minipanel"])
    accounts = runtime_for(app.extensions["hosting_panel"]).accounts
    if not accounts.all():
        accounts.create("sandbox", "Sandbox (demo CA)", {}, is_default=True)
