"""The provider settings pages in the host's admin area.

Each provider brings its own settings form (plain WTForms). It is nested in the page's Flask-WTF
form under the prefix ``settings-``, so one CSRF token covers the page and a provider's field
names never clash with the account's own. Secret settings are write-only: never sent back to the
browser, and kept when an edit leaves them empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import flask
import wtforms
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response
from wtforms import validators

from panel_ssl_plugin.accounts import ProviderAccount, ProviderAccounts, UnknownProviderAccount
from panel_ssl_plugin.providers.base import Provider, ProviderError
from panel_ssl_plugin.reminders import (
    DEFAULT_DAYS,
    GLOBAL_SCHEDULE,
    Reminders,
    ScheduleInvalid,
    format_days,
    parse_days,
)
from panel_ssl_plugin.web import current_runtime, require
from panel_ssl_plugin.web.forms import ButtonForm, PlainText, choices, posted

ADMIN = "ssl.admin"
LIST_TEMPLATE = "panel_ssl/admin/providers.html"
FORM_TEMPLATE = "panel_ssl/admin/provider_form.html"

# The hint of a settings field with presets: the presets are listed above it, once.
PRESET_HINT = "Use one of these, or type another address (a test server, a simulator)."
PLAIN_HTTP = (
    "{label} talks to {url} over plain http://: its login and every order travel unencrypted. "
    "Use https:// unless this is a test server."
)
# The list page's buttons: what each one changes, and how the page says it was done.
SWITCHES: dict[str, tuple[Callable[[ProviderAccounts, int], None], str]] = {
    "enable": (partial(ProviderAccounts.set_enabled, enabled=True), "{} is enabled."),
    "disable": (partial(ProviderAccounts.set_enabled, enabled=False), "{} is disabled."),
    "default": (ProviderAccounts.set_default, "{} is now the default account."),
}


class AccountForm(FlaskForm):
    """What every provider account has; the provider's own form is added as ``settings``."""

    label = wtforms.StringField("Label", [validators.InputRequired(), validators.Length(max=200)])
    enabled = wtforms.BooleanField("Enabled", default=True)
    is_default = wtforms.BooleanField(
        "Default account", description="Orders go to the default account unless told otherwise."
    )
    auto_renew = wtforms.BooleanField(
        "Auto-renew",
        description="panel-ssl renew-due renews this account's certificates before they end.",
    )

    reminder_days = wtforms.StringField(
        "Expiry reminders (days before the end)",
        [validators.Length(max=100)],
        description="Like 30,14,7,3,1. Empty: the global schedule; none: no reminders.",
    )
    reminder_copy = wtforms.SelectField(
        "Copy of each reminder to the client's reseller",
        choices=choices([("", "As the global setting says"), ("yes", "Yes"), ("no", "No")]),
        default="",
    )

    def validate_is_default(self, field: wtforms.Field) -> None:
        """Making an account the default enables it, which would overrule an unticked box."""
        if field.data and not self.enabled.data:
            raise validators.ValidationError("The default account must be enabled.")

    def validate_reminder_days(self, field: wtforms.Field) -> None:
        _checked_days(field)


class GlobalRemindersForm(FlaskForm):
    """The schedule of every provider account without one of its own."""

    days = wtforms.StringField(
        "Days before a certificate ends",
        [validators.InputRequired(), validators.Length(max=100)],
        description="Like 30,14,7,3,1; none sends no reminders.",
    )
    copy_reseller = wtforms.BooleanField("Send the client's reseller a copy")

    def validate_days(self, field: wtforms.Field) -> None:
        _checked_days(field)


def _checked_days(field: wtforms.Field) -> None:
    try:
        parse_days(field.data or "")
    except ScheduleInvalid as error:
        raise validators.ValidationError(str(error)) from None


def _save_reminders(form: AccountForm, provider_account_id: int) -> None:
    """The account's own schedule; an empty value follows the global one."""
    days = (form.reminder_days.data or "").strip()
    copy = {"yes": True, "no": False}.get(form.reminder_copy.data)
    reminders = Reminders(current_runtime().orders)
    reminders.save_schedule(provider_account_id, parse_days(days) if days else None, copy)


@dataclass(frozen=True)
class Presets:
    """Known values of one text field, offered beside it (a provider's production/sandbox URL)."""

    datalist_id: str
    choices: tuple[tuple[str, str], ...]


def register(blueprint: flask.Blueprint) -> None:
    """Add the admin routes to the plugin's blueprint."""
    prefix = "/admin/providers"
    blueprint.add_url_rule(prefix, "admin_providers", list_accounts)
    blueprint.add_url_rule(
        f"{prefix}/new", "admin_provider_new", new_account, methods=["GET", "POST"]
    )
    blueprint.add_url_rule(
        f"{prefix}/<ssl_id:account_id>/edit",
        "admin_provider_edit",
        edit_account,
        methods=["GET", "POST"],
    )
    blueprint.add_url_rule(
        f"{prefix}/<ssl_id:account_id>/<any({', '.join(SWITCHES)}):switch>",
        "admin_provider_switch",
        switch_account,
        methods=["POST"],
    )
    blueprint.add_url_rule(
        "/admin/reminders", "admin_reminders", save_global_reminders, methods=["POST"]
    )
    blueprint.add_url_rule(
        f"{prefix}/<ssl_id:account_id>/test",
        "admin_provider_test",
        check_connection,
        methods=["POST"],
    )


def list_accounts() -> str:
    """The one page an admin needs to see which accounts orders can go to."""
    require(ADMIN)
    runtime = current_runtime()
    schedule = Reminders(runtime.orders).schedules().default
    reminders = GlobalRemindersForm(
        data={"days": format_days(schedule.days) or "none", "copy_reseller": schedule.copy_reseller}
    )
    return flask.render_template(
        LIST_TEMPLATE,
        accounts=runtime.accounts.all(),
        provider_types={key: cls.name for key, cls in runtime.accounts.classes.items()},
        panel_ssl_csrf=generate_csrf(),
        reminders=reminders,
        default_days=format_days(DEFAULT_DAYS),
    )


def save_global_reminders() -> Response:
    """The global schedule; a value that cannot be used is said on the list page."""
    require(ADMIN)
    form = GlobalRemindersForm()
    if not form.validate_on_submit():
        errors = [error for field in form for error in field.errors]
        return _back_to_list(f"Expiry reminders not saved: {' '.join(errors)}", "error")
    reminders = Reminders(current_runtime().orders)
    days = parse_days(form.days.data)
    reminders.save_schedule(GLOBAL_SCHEDULE, days, form.copy_reseller.data)
    if not days:
        return _back_to_list("No expiry reminders are sent (unless an account has its own).")
    return _back_to_list(f"Expiry reminders go out {format_days(days)} days before the end.")


def new_account() -> str | Response:
    """The provider is chosen on the list page, so its form is known before anything is typed."""
    require(ADMIN)
    accounts = current_runtime().accounts
    key = flask.request.args.get("provider", "")
    cls = _provider_class(accounts, key)
    form = _account_form(cls)
    if not form.validate_on_submit():
        return _render_form(form, cls, set(), f"New {cls.name} account")
    account_id = accounts.create(
        key,
        form.label.data,
        form.settings.data,
        enabled=form.enabled.data,
        is_default=form.is_default.data,
        auto_renew=form.auto_renew.data,
    )
    _save_reminders(form, account_id)
    _warn_plain_http(form)
    return _back_to_list(f"{form.label.data} is added.")


def edit_account(account_id: int) -> str | Response:
    """Secrets already stored stay optional, so a label can change without retyping a password."""
    require(ADMIN)
    accounts = current_runtime().accounts
    account = _account_or_404(accounts, account_id)
    cls = _provider_class(accounts, account.provider_key)
    kept = account.secrets_set(cls)
    form = _account_form(cls, _form_data(account, cls))
    _make_optional(form.settings.form, kept)
    if account.is_default:
        _explain_default(form.is_default)
    if not form.validate_on_submit():
        title = f"Edit {account.label}"
        return _render_form(form, cls, kept, title, unreadable=not account.readable)
    accounts.update(
        account_id,
        label=form.label.data,
        settings=form.settings.data,
        enabled=form.enabled.data,
        auto_renew=form.auto_renew.data,
    )
    _save_reminders(form, account_id)
    if form.is_default.data:
        accounts.set_default(account_id)
    _warn_plain_http(form)
    return _back_to_list(f"{form.label.data} is saved.")


def switch_account(account_id: int, switch: str) -> Response:
    """Enable, disable or make default: one click from the list, no form to fill."""
    require(ADMIN)
    posted(ButtonForm)
    accounts = current_runtime().accounts
    account = _account_or_404(accounts, account_id)
    change, done = SWITCHES[switch]
    change(accounts, account_id)
    return _back_to_list(done.format(account.label))


def check_connection(account_id: int) -> Response:
    """Shows the provider's own words either way, so an admin can fix settings without logs."""
    require(ADMIN)
    posted(ButtonForm)
    accounts = current_runtime().accounts
    account = _account_or_404(accounts, account_id)
    _provider_class(accounts, account.provider_key)  # no adapter for an uninstalled provider
    try:
        result = accounts.test_connection(account_id)
    except ProviderError as error:
        return _back_to_list(f"{account.label}: {error}", "error")
    return _back_to_list(f"{account.label}: {result}")


def _warn_plain_http(form: AccountForm) -> None:
    """Saved all the same (a simulator or a test server speaks http), but said: over plain
    http:// the provider's password and the orders can be read on the way."""
    for field in form.settings.form:
        url = field.data if isinstance(field, wtforms.URLField) else None
        if url and url.strip().lower().startswith("http://"):
            flask.flash(PLAIN_HTTP.format(label=form.label.data, url=url.strip()), "warning")


def _back_to_list(message: str, category: str = "success") -> Response:
    flask.flash(message, category)
    return flask.redirect(flask.url_for(".admin_providers"))


def _account_or_404(accounts: ProviderAccounts, account_id: int) -> ProviderAccount:
    try:
        return accounts.get(account_id)
    except UnknownProviderAccount:
        flask.abort(404)


def _provider_class(accounts: ProviderAccounts, key: str) -> type[Provider]:
    cls = accounts.classes.get(key)
    if cls is None:
        flask.abort(404)
    return cls


def _account_form(cls: type[Provider], data: dict[str, Any] | None = None) -> AccountForm:
    """A subclass per request, because FormField takes the provider's form at class level."""

    class ProviderAccountForm(AccountForm):
        settings = wtforms.FormField(cls.SettingsForm, cls.name)

    form = ProviderAccountForm(data=data)
    _plain_text_only(form)
    return form


def _plain_text_only(form: wtforms.Form) -> None:
    """Every text field of the page, the provider's own included, refuses control characters:
    the label is stored as it is, the settings reach the provider, and no provider's form can
    forget the rule."""
    for field in form:
        if isinstance(field, wtforms.FormField):
            _plain_text_only(field.form)
        elif isinstance(field, wtforms.StringField):
            multiline = isinstance(field, wtforms.TextAreaField)
            field.validators = [*field.validators, PlainText(multiline=multiline)]


def _form_data(account: ProviderAccount, cls: type[Provider]) -> dict[str, Any]:
    schedules = Reminders(current_runtime().orders).schedules()
    days, copy = schedules.own.get(account.id, (None, None))
    return {
        "label": account.label,
        "enabled": account.enabled,
        "is_default": account.is_default,
        "auto_renew": account.auto_renew,
        "settings": account.public_settings(cls),
        "reminder_days": "" if days is None else format_days(days) or "none",
        "reminder_copy": {True: "yes", False: "no"}.get(copy, ""),
    }


def _explain_default(field: wtforms.Field) -> None:
    """Unticking could not work: some account is always the default, and another one is made so."""
    field.render_kw = {"disabled": True}
    field.description = "This is the default account; make another account the default instead."


def _make_optional(settings: wtforms.Form, kept: set[str]) -> None:
    """An empty secret field means "keep the stored one", so it must pass a required check."""
    for field in _fields_named(settings, kept):
        field.validators = [validators.Optional(), *field.validators]
        field.flags.required = False


def _blank(settings: wtforms.Form, secret_fields: tuple[str, ...]) -> None:
    """Not only stored secrets: one just typed into a form that failed goes back empty too."""
    for field in _fields_named(settings, secret_fields):
        field.raw_data = []
        field.data = None


def _fields_named(form: wtforms.Form, names: Iterable[str]) -> list[wtforms.Field]:
    return [form[name] for name in names if name in form]


def _render_form(
    form: AccountForm,
    cls: type[Provider],
    kept: set[str],
    title: str,
    *,
    unreadable: bool = False,
) -> str:
    """``unreadable``: the stored settings cannot be decrypted, so the form starts from the
    provider's defaults and says that every setting must be entered again."""
    _blank(form.settings.form, cls.secret_fields)
    presets = presets_of(cls, form.settings.form)
    for name in presets:
        form.settings.form[name].description = PRESET_HINT
    return flask.render_template(
        FORM_TEMPLATE,
        form=form,
        title=title,
        provider_name=cls.name,
        kept_secrets=kept,
        presets=presets,
        unreadable=unreadable,
    )


def presets_of(cls: type[Provider], settings: wtforms.Form) -> dict[str, Presets]:
    """The adapter's preset tables, by the name of the settings field each one fills.

    Adapters declare presets as class-level dicts (label -> value) whose attribute name ends in
    ``presets``, any case. Values that are not text are left out, and so are tables whose field
    is not a text input: a select field lists its presets already (ACME's directory). The form
    lists them once, under the field, in place of the field's own description (PRESET_HINT),
    which an adapter tends to fill with the same addresses.
    """
    found: dict[str, Presets] = {}
    for attribute in dir(cls):
        table = getattr(cls, attribute)
        if not (attribute.lower().endswith("presets") and isinstance(table, dict)):
            continue
        field = _preset_field(settings, attribute)
        choices = tuple((str(label), v) for label, v in table.items() if isinstance(v, str))
        if field is not None and choices:
            found[field.short_name] = Presets(f"{field.id}-presets", choices)
    return found


def _preset_field(settings: wtforms.Form, attribute: str) -> wtforms.Field | None:
    """``base_url_presets`` fills ``base_url``; a table named for no field fills the only URL."""
    stem = attribute.lower().removesuffix("presets").rstrip("_")
    if stem in settings:
        field = settings[stem]
        return field if isinstance(field, wtforms.StringField) else None
    urls = [field for field in settings if isinstance(field, wtforms.URLField)]
    return urls[0] if len(urls) == 1 else None
