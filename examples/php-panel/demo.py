"""``make php-demo``: the SSL service and the PHP panel side by side, on this machine.

The service (``panel-ssl serve``) keeps its tables in its own SQLite file and sells through the
built-in sandbox CA, as ``panel-ssl demo`` does for the minipanel; the PHP panel (``php -S``)
keeps its users and clients in another. Both sign with one bridge secret, made on first run
and kept in ``data/``, like the service's encryption key. tests/e2e/test_php_panel.py starts
the same two processes through :func:`start`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pluggy
from cryptography.fernet import Fernet

from panel_ssl_plugin import hookimpls, hookspecs, schema
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.runtime import runtime_for

HERE = Path(__file__).resolve().parent
PANEL_SSL = Path(sys.executable).with_name("panel-ssl")
SERVICE_PORT, PANEL_PORT = 8001, 8080
TICK_SECONDS = 30  # as `panel-ssl demo` checks the minipanel's pending orders


@dataclass(frozen=True)
class Demo:
    """Where each half listens and keeps its data, and what they share."""

    data: Path
    service_port: int
    panel_port: int

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def panel_url(self) -> str:
        return f"http://127.0.0.1:{self.panel_port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data / 'service.sqlite'}"

    @property
    def secret(self) -> str:
        return _kept(self.data / "bridge-secret", lambda: secrets.token_urlsafe(32))

    @property
    def fernet_key(self) -> str:
        return _kept(self.data / "fernet-key", lambda: Fernet.generate_key().decode())

    def service_env(self) -> dict[str, str]:
        """How ``panel-ssl serve`` finds the panel: the bridge, the webhooks, the secret."""
        return {
            **os.environ,
            "PANEL_SSL_DATABASE_URL": self.database_url,
            "PANEL_SSL_SECRET_KEYS": self.fernet_key,
            "PANEL_SSL_PUBLIC_URL": self.service_url,
            "PANEL_SSL_BRIDGE_URL": f"{self.panel_url}/bridge",
            "PANEL_SSL_WEBHOOK_URL": f"{self.panel_url}/hooks/ssl",
            "PANEL_SSL_BRIDGE_SECRET": self.secret,
        }

    def panel_env(self) -> dict[str, str]:
        """How the PHP panel finds the service. Several workers, since the service calls the
        bridge while the panel waits for its answer to an event."""
        return {
            **os.environ,
            "PANEL_SSL_SERVICE_URL": self.service_url,
            "PANEL_SSL_BRIDGE_SECRET": self.secret,
            "PHP_PANEL_DATABASE": str(self.data / "panel.sqlite"),
            "PHP_CLI_SERVER_WORKERS": "4",
        }


def _kept(path: Path, make) -> str:
    """The value in ``path``, made and written (readable by the owner only) the first time."""
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


class _ServiceHost:
    """The service's database and key, to set up its provider account before it starts."""

    def __init__(self, demo: Demo):
        self.demo = demo

    @hookimpl
    def host_database(self) -> str:
        return self.demo.database_url

    @hookimpl
    def host_secret_keys(self) -> list[str]:
        return [self.demo.fernet_key]


def prepare(demo: Demo) -> None:
    """The service's tables, and the sandbox CA as its default provider account (once)."""
    demo.data.mkdir(parents=True, exist_ok=True)
    schema.upgrade(demo.database_url)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(_ServiceHost(demo))
    pm.register(hookimpls)
    runtime = runtime_for(pm)
    if not runtime.accounts.all():
        runtime.accounts.create("sandbox", "Sandbox (demo CA)", {}, is_default=True)
    runtime.engine.dispose()


def start(demo: Demo, logs: Path) -> list[subprocess.Popen]:
    """Both processes, once each answers on its port; their output goes to ``logs``."""
    php = shutil.which("php")
    if php is None:
        raise SystemExit("The PHP panel needs PHP: apt-get install php-cli php-sqlite3")
    logs.mkdir(parents=True, exist_ok=True)
    service = [PANEL_SSL, "serve", "--bind", f"127.0.0.1:{demo.service_port}"]
    panel = [php, "-S", f"127.0.0.1:{demo.panel_port}", str(HERE / "router.php")]
    processes = [
        # a session of its own: stop() ends php -S together with the workers it forked
        subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=HERE, start_new_session=True
        )
        for command, env, log in (
            (service, demo.service_env(), (logs / "service.log").open("ab")),
            (panel, demo.panel_env(), (logs / "php-panel.log").open("ab")),
        )
    ]
    try:
        for port, process in zip((demo.service_port, demo.panel_port), processes, strict=True):
            _wait_for(port, process, logs)
    except SystemExit:
        stop(processes)
        raise
    return processes


def _wait_for(port: int, process: subprocess.Popen, logs: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} stopped (exit {process.returncode}); see {logs}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port} after 30 s; see {logs}")


def stop(processes: list[subprocess.Popen]) -> None:
    """Each process and everything it started (its process group)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):  # it stopped by itself
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait(timeout=10)


def tick(demo: Demo) -> None:
    """What the panel's cron does: cron.php posts the signed tick event."""
    with (demo.data / "logs" / "cron.log").open("ab") as log:
        command = [shutil.which("php") or "php", str(HERE / "cron.php")]
        subprocess.run(command, env=demo.panel_env(), stdout=log, stderr=log, check=False)


def main() -> None:
    demo = Demo(HERE / "data", SERVICE_PORT, PANEL_PORT)
    prepare(demo)
    processes = start(demo, demo.data / "logs")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop both on kill, as on Ctrl-C
    print(f"SSL service: {demo.service_url}/  (database {demo.database_url})")
    print(f"PHP panel:   {demo.panel_url}/  log in as alice, bob or admin (password = user name)")
    print(f"Logs: {demo.data / 'logs'}   Ctrl-C stops both.")
    print(f"Pending orders are checked every {TICK_SECONDS} s: `php cron.php`, as a panel's cron.")
    try:
        while all(process.poll() is None for process in processes):
            tick(demo)
            time.sleep(TICK_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
