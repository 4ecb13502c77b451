"""``panel-ssl``: the demo, the plugin's migrations, and the periodic work, from a shell."""

from __future__ import annotations

from pathlib import Path

import click

from panel_ssl_plugin import schema

DEFAULT_DEMO_DB = "sqlite:///panel-ssl-demo.db"

database_option = click.option(
    "--database-url",
    envvar="PANEL_SSL_DATABASE_URL",
    required=True,
    help="SQLAlchemy URL of the host's database (env PANEL_SSL_DATABASE_URL).",
)


@click.group()
@click.version_option(package_name="panel-ssl-plugin")
def main() -> None:
    """SSL certificates for hosting panels: demo, migrations, polling and renewals."""


@main.group()
def db() -> None:
    """The plugin's own tables (Alembic branch panel_ssl, table alembic_version_panel_ssl)."""


@db.command()
@database_option
@click.argument("revision", default=schema.HEAD)
def upgrade(database_url: str, revision: str) -> None:
    """Create or upgrade the plugin's tables (to REVISION, the newest by default)."""
    schema.upgrade(database_url, revision)
    click.echo(f"panel-ssl tables at {schema.current(database_url)}")


@db.command()
@database_option
@click.argument("revision")
def downgrade(database_url: str, revision: str) -> None:
    """Take the plugin's tables back to REVISION; "base" removes them all."""
    schema.downgrade(database_url, revision)
    click.echo(f"panel-ssl tables at {schema.current(database_url) or 'base (none)'}")


@db.command()
@database_option
def current(database_url: str) -> None:
    """Show the revision the database is at."""
    click.echo(schema.current(database_url) or "base (no panel-ssl tables)")


@db.command()
def history() -> None:
    """List the plugin's revisions, newest first."""
    for revision, description in schema.history():
        click.echo(f"{revision}  {description}")


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--database-url", default=DEFAULT_DEMO_DB, show_default=True)
def demo(port: int, database_url: str) -> None:
    """Run the minipanel with this plugin and the sandbox provider, seeded with demo users."""
    from panel_ssl_plugin.minipanel.app import create_app
    from panel_ssl_plugin.minipanel.demo import prepare_demo

    schema.upgrade(database_url)
    app = create_app({"DATABASE_URL": database_url, "DEMO": True})
    prepare_demo(app)
    location = database_url
    if database_url.startswith("sqlite:///"):
        location = str(Path(database_url.removeprefix("sqlite:///")).resolve())
    click.echo(f"Database: {location}")
    click.echo("Demo users (password = user name): admin, alice, bob")
    click.echo(f"MiniPanel: http://127.0.0.1:{port}/")
    app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)
