"""The documentation site and the releases (issue 23).

The site builds strictly (a broken link or anchor, a page left out of the nav fails); its contract
page is written from the hookspecs at build time, so a changed docstring changes the page; the
README is a short front door whose every link lands on a page the site builds; and CHANGELOG.md,
the package metadata, ``panel-ssl --version`` and pyproject.toml name one version.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner
from mkdocs.commands.build import build
from mkdocs.config import load_config

from panel_ssl_plugin import hookspecs
from panel_ssl_plugin.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SPECS = [
    name
    for name, obj in vars(hookspecs).items()
    if inspect.isfunction(obj) and hasattr(obj, f"{hookspecs.PROJECT}_spec")
]
# A page for each reader the README must point to (issue 23).
READERS = (
    "admins/install.md",
    "resellers/ordering.md",
    "resellers/statuses.md",
    "hosts/index.md",
    "hosts/contract.md",
    "bridge/index.md",
    "bridge/deploying.md",
    "bridge/php-panel.md",
    "security.md",
    "money-safety.md",
    "benchmarks.md",
    "development.md",
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def build_site(site_dir: Path) -> Path:
    """``mkdocs build --strict`` into ``site_dir``, in this process (so a test may change the
    hookspecs first); a warning raises."""
    with contextlib.chdir(ROOT):  # the snippets' base path is the repository's root
        build(load_config(str(ROOT / "mkdocs.yml"), site_dir=str(site_dir), strict=True))
    return site_dir


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site"))


def built_page(site: Path, source: str) -> Path:
    """Where MkDocs writes the page ``source`` (``hosts/index.md`` → ``hosts/index.html``,
    ``security.md`` → ``security/index.html``)."""
    stem = source.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site / f"{stem}.html"
    return site / stem / "index.html"


def test_the_contract_page_has_every_hook_and_record(site):
    page = built_page(site, "hosts/contract.md").read_text()
    for name in SPECS:
        assert f'id="{name}"' in page, f"the contract page has no section for the hook {name}"
    for record in ("Actor", "Link", "AdminPage", "MigrationSet", "Contact", "AccountProfile"):
        assert f'id="{record}"' in page, record
    assert f"<code>{hookspecs.CONTRACT_VERSION}</code>" in page


def test_a_changed_hookspec_changes_the_built_page(tmp_path, monkeypatch, site):
    """Nothing is copied: the page is what hookspecs.py says at build time, deprecations too."""
    said = "Written by a test, to see the page follow the docstring."
    spec = hookspecs.host_send_mail
    monkeypatch.setattr(spec, "__doc__", f"{said}\n\n{inspect.getdoc(spec)}")
    options = {**getattr(spec, f"{hookspecs.PROJECT}_spec")}
    options["warn_on_impl"] = DeprecationWarning("use host_send_message; removed in contract 2.0")
    monkeypatch.setattr(spec, f"{hookspecs.PROJECT}_spec", options)
    before = built_page(site, "hosts/contract.md").read_text()
    after = built_page(build_site(tmp_path / "site"), "hosts/contract.md").read_text()
    assert said not in before and said in after
    assert "use host_send_message; removed in contract 2.0" in after
    deprecated = 'class="admonition-title">Deprecated<'
    assert deprecated in after and deprecated not in before


def test_the_readme_is_a_front_door():
    assert len(README.read_text().splitlines()) <= 150
    assert "make demo" in README.read_text() and "make test" in README.read_text()


def readme_links() -> list[str]:
    return LINK.findall(README.read_text())


def test_the_readme_links_every_reader_to_a_page():
    linked = {link.removeprefix("docs/").split("#")[0] for link in readme_links()}
    assert set(READERS) <= linked, set(READERS) - linked


@pytest.mark.parametrize("link", [link for link in readme_links() if link.startswith("docs/")])
def test_each_readme_link_lands_on_a_built_page(site, link):
    source, _, anchor = link.removeprefix("docs/").partition("#")
    target = built_page(site, source) if source.endswith(".md") else site / source
    assert target.is_file(), f"README links {link}, which the site does not build"
    if anchor:
        assert f'id="{anchor}"' in target.read_text(), f"{link}: no such anchor"


def test_the_readme_links_outside_the_site_exist():
    for link in readme_links():
        if not link.startswith(("docs/", "http")):
            assert (ROOT / link).is_file(), link


def test_benchmarks_and_changelog_are_included_not_copied(site):
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text().splitlines()
    row = next(line for line in results if line.startswith("| poll due orders"))
    first_cell = row.split("|")[1].strip()
    assert first_cell in built_page(site, "benchmarks.md").read_text()
    assert f"{top_release()} (" in built_page(site, "changelog.md").read_text()


def top_release() -> str:
    match = re.search(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert match, "CHANGELOG.md has no release"
    return match.group(1)


def test_changelog_cli_and_metadata_name_one_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    printed = CliRunner().invoke(main, ["--version"]).output
    assert top_release() == version("panel-ssl-plugin") == project["version"]
    assert printed.split()[-1] == project["version"], printed


def test_the_news_fragments_make_a_changelog():
    """Every fragment waiting in changes/ has a name and type towncrier knows."""
    result = subprocess.run(
        [sys.executable, "-m", "towncrier", "build", "--draft", "--version", "99.0.0"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
