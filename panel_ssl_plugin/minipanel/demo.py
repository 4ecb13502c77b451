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

# reseller -> (client name, its profile, its contacts: the first is the default)
DEMO_CLIENTS = {
    "alice": [
        (
            "Bäckerei Müller",
            {
                "organization": "Bäckerei Müller GmbH",
                "address": "Hauptstraße 12",
                "postal_code": "80331",
                "city": "München",
                "state": "Bayern",
                "country": "DE",
                "phone": "+49 89 123450",
            },
            [("Hans", "Müller", "hans@baeckerei-mueller.example", "+49 89 123456")],
        ),
        (
            "Acme Widgets",
            {
                "organization": "Acme Widgets Ltd",
                "address": "100 Canyon Road",
                "postal_code": "95134",
                "city": "San Jose",
                "state": "California",
                "country": "US",
                "phone": "+1 408 555 0199",
            },
            [
                ("Wile", "Coyote", "wile@acme-widgets.example", "+1 408 555 0100"),
                ("Road", "Runner", "rr@acme-widgets.example", "+1 408 555 0101"),
            ],
        ),
    ],
    "bob": [
        (
            "Nordic Fjord Tours",
            {
                "organization": "Nordic Fjord Tours AS",
                "address": "Bryggen 5",
                "postal_code": "5003",
                "city": "Bergen",
                "state": "Vestland",
                "country": "NO",
                "phone": "+47 55 123400",
            },
            [("Ingrid", "Berg", "ingrid@fjord-tours.example", "+47 55 123456")],
        ),
    ],
}


def seed_demo(db: PanelDB) -> bool:
    """Create the demo users and clients unless the database has users already; each client
    has a full address, so an OV order starts with the organization's address filled in."""
    if db.user_count():
        return False
    ids = {name: db.add_user(name, name, role, display) for name, role, display in DEMO_USERS}
    for reseller, clients in DEMO_CLIENTS.items():
        for name, profile, people in clients:
            client_id = db.add_client(ids[reseller], name, **profile)
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
