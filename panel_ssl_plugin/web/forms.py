"""The Order SSL Cert popup's form: both steps in one Flask-WTF form.

Each step renders its own fields and carries the other step's values as hidden inputs, so going
back and forth keeps everything without a server-side session holding key material. Nothing in
here is trusted: ``orders.place`` checks the whole draft again on submit, so these fields only
collect, coerce and offer choices; they do not validate (one set of rules, in orders.py).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import TypeVar

import flask
import wtforms
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.drafts import ADDRESS_LIMITS, OrderDraft
from panel_ssl_plugin.hookspecs import AccountProfile, Contact
from panel_ssl_plugin.providers.base import SERVER_TYPES, DcvMethod, OrderState, Product
from panel_ssl_plugin.store import OrderRecord

DEFAULT_PERIOD = 12
DEFAULT_SERVER_TYPE = "apache"
NEW_CONTACT = "new"
KEY_SOURCES = {
    "generate": "Generate the private key and CSR for me",
    "csr": "I already have a CSR",
}
DCV_LABELS = {
    DcvMethod.EMAIL: "Approval e-mail",
    DcvMethod.HTTP: "HTTP file on the website",
    DcvMethod.DNS: "DNS record",
}
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "title")
ADDRESS_FIELDS = tuple(f"org_{name}" for name in ADDRESS_LIMITS)
# \Z: WTForms' Regexp matches at the start only; a key must be nothing else
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")
_NAME_SEPARATORS = re.compile(r"[\s,;]+")

STEP1_FIELDS = (
    "provider_account_id",
    "domain",
    "period_months",
    "server_type",
    "product_id",
    "addons",
    "sans",
    "dcv_method",
    "approver_email",
    "san_approvers",
    "organization",
    "unit",
    "state",
    "country",
    *ADDRESS_FIELDS,
)
STEP2_FIELDS = (
    "contact_id",
    *(f"contact_{name}" for name in CONTACT_FIELDS),
    "key_source",
    "key_type",
    "csr",
)


def new_idempotency_key() -> str:
    """Made once per popup, so every submit of that popup names the same order."""
    return secrets.token_urlsafe(24)


def period_label(months: int) -> str:
    years, rest = divmod(months, 12)
    if rest:
        return f"{months} months"
    return "1 year" if years == 1 else f"{years} years"


def choices(pairs: Iterable[tuple[object, str]]) -> list[SelectChoice]:
    """WTForms options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def email_choices(emails: Iterable[str]) -> list[tuple[str, str]]:
    """The provider's A-label addresses as values, their readable forms as labels."""
    return [(email, names.display_email(email)) for email in emails]


class SanApproverForm(wtforms.Form):
    """The approver of one additional name: the name as typed and the address chosen for it."""

    name = HiddenField()
    approver = SelectField("Approval Email Address")


class OrderForm(FlaskForm):
    """Every value of an order as typed; ``offer`` fits the choices to the chosen product."""

    idempotency_key = HiddenField()

    # step 1: the certificate
    provider_account_id = SelectField("Provider account", coerce=int)
    domain = StringField(
        "Domain name",
        render_kw={
            "autocomplete": "off",
            "spellcheck": "false",
            "placeholder": "www.example.com",
            "required": True,
        },
        description="International names are fine (bücher.example); the provider gets the "
        "xn-- form.",
    )
    period_months = SelectField("Validity period", coerce=int)
    server_type = SelectField(
        "Server type", choices=choices(SERVER_TYPES.items()), default=DEFAULT_SERVER_TYPE
    )
    product_id = SelectField("Product")
    addons = SelectMultipleField(
        "Add-ons", widget=ListWidget(prefix_label=False), option_widget=CheckboxInput()
    )
    sans = TextAreaField(
        "Additional domain names",
        render_kw={"rows": 3, "spellcheck": "false"},
        description="One per line, besides the domain name above.",
    )
    dcv_method = SelectField("Validation method")
    approver_email = SelectField("Approval Email Address")
    san_approvers = FieldList(FormField(SanApproverForm))
    organization = StringField("Organization", render_kw={"autocomplete": "organization"})
    unit = StringField("Organizational unit", description="Optional, e.g. IT Department.")
    org_street = StringField(
        "Street address",
        render_kw={"autocomplete": "street-address"},
        description="The organization's, as public registers list it: the CA checks it.",
    )
    org_city = StringField("City", render_kw={"autocomplete": "address-level2"})
    org_postal_code = StringField("Postal code", render_kw={"autocomplete": "postal-code"})
    state = StringField("State or province", render_kw={"autocomplete": "address-level1"})
    country = SelectField("Country")
    org_phone = TelField(
        "Organization phone",
        render_kw={"autocomplete": "tel"},
        description="A number the CA may call to confirm the order.",
    )

    # step 2: the contact and the key
    contact_id = SelectField("Contact")
    contact_first_name = StringField("First name", render_kw={"autocomplete": "given-name"})
    contact_last_name = StringField("Last name", render_kw={"autocomplete": "family-name"})
    contact_email = EmailField("E-mail", render_kw={"autocomplete": "email"})
    contact_phone = TelField("Phone", render_kw={"autocomplete": "tel"})
    contact_title = StringField("Job title", render_kw={"autocomplete": "organization-title"})
    key_source = RadioField("Private key", choices=choices(KEY_SOURCES.items()), default="generate")
    key_type = SelectField(
        "Key type", choices=choices(keys.KEY_TYPES.items()), default=keys.DEFAULT_KEY_TYPE
    )
    csr = TextAreaField(
        "Your CSR",
        render_kw={"rows": 8, "spellcheck": "false", "class": "pem"},
        description="Paste the block from -----BEGIN CERTIFICATE REQUEST----- to its END line. "
        "It must name exactly the domain names of this order.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = choices([("", "— choose —"), *names.country_choices()])

    # --- filling --------------------------------------------------------------------------------

    def prefill(self, profile: AccountProfile) -> None:
        """A fresh popup: the client's organization data and a new idempotency key."""
        self.organization.data = profile.organization
        self.state.data = profile.state
        self.country.data = profile.country.upper()
        self.org_street.data = profile.address
        self.org_city.data = profile.city
        self.org_postal_code.data = profile.postal_code
        self.org_phone.data = profile.phone
        self.idempotency_key.data = new_idempotency_key()

    def prefill_from(self, order: OrderRecord) -> None:
        """A popup to order again what an earlier order asked for (a cancelled typo, a refusal).

        Everything but the key: the new order gets its own key pair. A refused order (a draft)
        keeps its idempotency key, so "fix and resubmit" resubmits that order (orders.place)
        rather than leave it refused beside a new one, and two such popups place it once.
        """
        self.provider_account_id.data = order.provider_account_id
        self.domain.data = names.display_domain(order.domain)
        self.sans.data = "\n".join(names.display_domain(n) for n in order.sans)
        self.period_months.data = order.period_months
        self.server_type.data = order.server_type
        self.product_id.data = order.product_id
        self.addons.data = list(order.addons)
        self.dcv_method.data = order.dcv_method
        self.approver_email.data = order.approver_email or ""
        for name, approver in order.san_approvers.items():
            self.san_approvers.append_entry(
                {"name": names.display_domain(name), "approver": approver}
            )
        for name in ("organization", "unit", "state", "country"):
            getattr(self, name).data = getattr(order, name)
        for name in ADDRESS_LIMITS:
            getattr(self, f"org_{name}").data = order.organization_address.get(name, "")
        for name in CONTACT_FIELDS:
            getattr(self, f"contact_{name}").data = order.contact.get(name, "")
        refused = order.status == OrderState.DRAFT
        self.idempotency_key.data = order.idempotency_key if refused else new_idempotency_key()

    def has_valid_key(self) -> bool:
        return bool(IDEMPOTENCY_KEY.fullmatch(self.idempotency_key.data or ""))

    def keep_key(self) -> None:
        """Every page carries a key: one that was lost or tampered with is replaced."""
        if not self.has_valid_key():
            self.idempotency_key.data = new_idempotency_key()

    def offer(
        self,
        accounts: list[tuple[int, str]],
        account_id: int,
        products: list[Product],
        product: Product | None,
    ) -> None:
        """Fit choices and selections to what the chosen provider sells for ``product``."""
        self.provider_account_id.choices = choices(accounts)
        self.provider_account_id.data = account_id
        self.product_id.choices = choices((p.id, p.name) for p in products)
        if product is None:
            self.period_months.choices = self.dcv_method.choices = self.addons.choices = []
            return
        self.product_id.data = product.id
        self.period_months.choices = choices(
            (months, priced(period_label(months), product.prices.get(months)))
            for months in product.periods
        )
        self.period_months.data = _pick(
            self.period_months.data, product.periods, DEFAULT_PERIOD, product.periods[0]
        )
        self.addons.choices = choices((a.id, priced(a.name, a.price)) for a in product.addons)
        offered = {a.id for a in product.addons}
        self.addons.data = [a for a in self.addons.data or () if a in offered]
        methods = [str(m) for m in product.dcv_methods]
        self.dcv_method.choices = choices((m, DCV_LABELS[DcvMethod(m)]) for m in methods)
        self.dcv_method.data = _pick(self.dcv_method.data, methods, DcvMethod.EMAIL, methods[0])

    def offer_approvers(self, emails: list[str], placeholder: str) -> None:
        """The approver dropdown: the provider's addresses, or one line saying why none."""
        self.approver_email.choices = approver_choices(emails, placeholder)

    def additional_names(self) -> list[str]:
        """The additional names as typed, in order, each once."""
        return list(dict.fromkeys(n for n in _NAME_SEPARATORS.split(self.sans.data or "") if n))

    def offer_san_approvers(self, offers: list[tuple[str, list[str], str]]) -> None:
        """One approver dropdown per additional name, from (name as typed, the provider's
        addresses for it, why there are none); each keeps the address chosen for it before."""
        chosen = {_name_key(e.form.name.data): e.form.approver.data for e in self.san_approvers}
        self.san_approvers.entries, self.san_approvers.last_index = [], -1
        for name, emails, error in offers:
            entry = self.san_approvers.append_entry(
                {"name": name, "approver": chosen.get(_name_key(name), "")}
            )
            entry.form.approver.choices = approver_choices(emails, "No address available")
            entry.form.approver.label.text = approver_label(name)
            entry.form.approver.errors = [error] if error else []

    def offer_contacts(self, contacts: list[Contact]) -> None:
        self.contact_id.choices = choices(
            [
                *((c.id, f"{c.first_name} {c.last_name} <{c.email}>") for c in contacts),
                (NEW_CONTACT, "Someone else (type the details below)"),
            ]
        )

    def use_contact(self, contact: Contact | None) -> None:
        """Copy a contact of the client into the editable fields."""
        self.contact_id.data = contact.id if contact else NEW_CONTACT
        for name in CONTACT_FIELDS:
            getattr(self, f"contact_{name}").data = getattr(contact, name) if contact else ""

    def show_errors(self, errors: dict[str, str]) -> None:
        """Put the order service's messages beside the fields they are about."""
        for name, message in errors.items():
            if name in self:
                self[name].errors = [message]

    # --- reading --------------------------------------------------------------------------------

    def hidden_values(self, field_names: Iterable[str]) -> list[tuple[str, str]]:
        """(name, value) pairs that carry the other step's fields through this one."""
        pairs = []
        for leaf in (leaf for name in field_names for leaf in _leaves(self[name])):
            values = leaf.data if isinstance(leaf.data, list) else [leaf.data]
            pairs.extend((leaf.name, "" if value is None else str(value)) for value in values)
        return pairs

    def draft(self, account_id: str) -> OrderDraft:
        """The order as typed, for ``orders.place`` to judge."""
        pasted = self.key_source.data == "csr"
        return OrderDraft(
            account_id=account_id,
            provider_account_id=self.provider_account_id.data,
            product_id=self.product_id.data or "",
            period_months=self.period_months.data or 0,
            server_type=self.server_type.data or "",
            domain=self.domain.data or "",
            dcv_method=self.dcv_method.data or "",
            idempotency_key=self.idempotency_key.data or "",
            approver_email=self.approver_email.data or "",
            sans=tuple(n for n in _NAME_SEPARATORS.split(self.sans.data or "") if n),
            organization=self.organization.data or "",
            unit=self.unit.data or "",
            state=self.state.data or "",
            country=self.country.data or "",
            contact={n: getattr(self, f"contact_{n}").data or "" for n in CONTACT_FIELDS},
            key_type=self.key_type.data or "",
            csr=(self.csr.data or "") if pasted else "",
            addons=tuple(self.addons.data or ()),
            address={n: getattr(self, f"org_{n}").data or "" for n in ADDRESS_LIMITS},
            san_approvers={
                e.form.name.data or "": e.form.approver.data or "" for e in self.san_approvers
            },
        )


def priced(label: str, price: str | None) -> str:
    return f"{label} — {price}" if price else label


def approver_choices(emails: list[str], placeholder: str) -> list[SelectChoice]:
    """An approver dropdown's options: the provider's addresses, or one line saying why none."""
    return choices(email_choices(emails) or [("", placeholder)])


def approver_label(name: str) -> str:
    return f"Approval address for {name}"


def _name_key(typed: str | None) -> str:
    """A name as typed, the way a provider reads it, so "Bücher.example" and its xn-- form are
    the same name; as typed when it is no domain name."""
    try:
        return names.normalize_domain(typed or "", allow_wildcard=True)
    except names.InvalidInput:
        return (typed or "").strip()


def _leaves(field: Field) -> list[Field]:
    """A field, or every field a list of sub-forms holds."""
    if isinstance(field, FieldList | FormField):
        return [leaf for inner in field for leaf in _leaves(inner)]
    return [field]


def _pick(current, allowed, preferred, fallback):
    """Keep the user's choice while it is still offered, else the preferred or first one."""
    if current in allowed:
        return current
    return preferred if preferred in allowed else fallback


class PlainText:
    """A WTForms validator: no control characters (``names.plain_text``), so what one database
    would refuse is a message beside the field on all of them. ``multiline`` keeps line breaks
    and tabs."""

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, form: FlaskForm, field: Field) -> None:
        try:
            names.plain_text(field.data or "", multiline=self.multiline)
        except names.InvalidInput as error:
            raise ValidationError(str(error)) from None


class ButtonForm(FlaskForm):
    """No fields: a POST button's CSRF token, checked even where the host runs no CSRFProtect."""


F = TypeVar("F", bound=FlaskForm)
EXPIRED_FORM = "The form has expired or came from elsewhere; open the page again."


def posted(form_class: type[F]) -> F:
    """The form of this POST, refused with 400 unless its CSRF token checks out.

    Every POST of the plugin comes through here, so CSRF holds on a host that does not run
    Flask-WTF's CSRFProtect itself.
    """
    form = form_class()
    if form.meta.csrf and not form[form.meta.csrf_field_name].validate(form):
        flask.abort(400, EXPIRED_FORM)
    return form
