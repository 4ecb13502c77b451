"""A real wheel, installed into a new virtualenv, carries and uses its templates and migrations."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory) -> Path:
    """A venv holding only the built wheel; dependencies come from the test venv read-only."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = work.glob("panel_ssl_plugin-*.whl")
    target = work / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # Dependencies are those of the test venv; a path in a .pth is not itself scanned for .pth
    # files, so this venv does not see the editable install of the source tree.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


def run_in(venv_dir: Path, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={"PATH": str(venv_dir / "bin")}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_wheel_migrates_and_renders(installed_wheel, tmp_path):
    url = f"sqlite:///{tmp_path / 'wheel.db'}"
    output = run_in(
        installed_wheel, "panel-ssl", "db", "upgrade", "--database-url", url, cwd=tmp_path
    )
    assert "panel-ssl tables at" in output
    script = f"""
import panel_ssl_plugin, flask
from panel_ssl_plugin import hookimpls
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.minipanel import create_app
assert "{installed_wheel}" in panel_ssl_plugin.__file__, panel_ssl_plugin.__file__
for name in ("templates", "migrations", "hooks", "plugin.yaml"):
    assert str(resource_path(name)).startswith("{installed_wheel}"), resource_path(name)
app = create_app({{"DATABASE_URL": "{url}", "PLUGINS": [hookimpls]}})
with app.test_request_context():
    html = flask.render_template("panel_ssl/base.html")
print("rendered", "SSL Certificates" in html)
"""
    assert "rendered True" in run_in(installed_wheel, "python", "-c", script, cwd=tmp_path)
