"""The host contract is documented, and the manifest agrees with the code."""

from __future__ import annotations

import inspect
import os

import flask
import pluggy
import pytest
import yaml

import panel_ssl_plugin
from panel_ssl_plugin import hookimpls, hookspecs
from panel_ssl_plugin.resources import resource_path

HOOK_PREFIXES = ("panel_", "host_", "ssl_")
SPECS = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith(HOOK_PREFIXES) and inspect.isfunction(obj)
)


def test_every_design_hook_is_specified():
    design_hooks = {
        "panel_account_tab_links", "panel_blueprints", "panel_admin_pages", "panel_migrations",
        "panel_renewal_due", "panel_account_updated", "panel_tick", "host_account_profile",
        "host_account_contacts", "host_current_actor", "host_permission_allowed",
        "host_publish_http_challenge", "host_publish_dns_record", "host_send_mail",
        "ssl_certificate_issued", "ssl_order_status_changed", "ssl_register_providers",
    }  # fmt: skip
    assert design_hooks <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_hookspec_has_docstring_with_example(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called by" in doc, f"{name}: say who calls it and when"
    assert "Example::" in doc, f"{name}: give a short example"


def load_manifest() -> dict:
    return yaml.safe_load(resource_path("plugin.yaml").read_text())


def test_manifest_version_and_entry_point():
    manifest = load_manifest()
    assert manifest["version"] == panel_ssl_plugin.__version__
    assert manifest["requires_host"] == hookspecs.CONTRACT_VERSION
    assert manifest["entry_point"] == {
        "group": hookspecs.ENTRY_POINT_GROUP, "name": "ssl", "module": hookimpls.__name__,
    }  # fmt: skip
    for key in ("id", "name", "description", "license", "ui", "admin_pages", "events",
                "migrations", "permissions"):  # fmt: skip
        assert manifest.get(key) is not None, key


def test_manifest_events_are_implemented_and_scripts_executable():
    for hook_name, script in load_manifest()["events"].items():
        assert hasattr(hookimpls, hook_name), f"{hook_name} is named but not implemented"
        path = resource_path("hooks") / script
        assert path.is_file() and os.access(path, os.X_OK), f"{script} is not executable"


def test_manifest_links_and_pages_match_the_hooks(app):
    """plugin.yaml and the hooks name the same endpoints, and each href is built from one."""
    manifest = load_manifest()
    with app.test_request_context():
        links = hookimpls.panel_account_tab_links(account_id="7")
        pages = hookimpls.panel_admin_pages()
        built = {
            item.endpoint: flask.url_for(
                item.endpoint, **({"account_id": "7"} if item in links else {})
            )
            for item in (*links, *pages)
        }
    declared = manifest["ui"]["links"]
    assert [(d["label"], d["endpoint"]) for d in declared] == [(k.label, k.endpoint) for k in links]
    for spec, link in zip(declared, links, strict=True):
        assert spec["placement"] == "account_mgmt" and link.href == built[link.endpoint]
        assert (spec["popup"]["width"], spec["popup"]["height"]) == (
            link.popup.width, link.popup.height,
        )  # fmt: skip
    assert [(d["label"], d["endpoint"]) for d in manifest["admin_pages"]] == [
        (page.label, page.endpoint) for page in pages
    ]
    assert all(page.href == built[page.endpoint] for page in pages)


def test_manifest_migrations_match_the_hook():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    migrations = hookimpls.panel_migrations(pm)
    assert load_manifest()["migrations"] == {
        "branch_label": migrations.branch_label,
        "version_table": migrations.version_table,
        "table_prefix": migrations.table_prefix,
    }


def test_hookimpls_match_their_specs():
    """pluggy refuses an implementation whose arguments the spec does not have."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(hookimpls)
    pm.check_pending()


def test_entry_point_is_installed():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if e.name == "ssl"]
    assert ep.load() is hookimpls
