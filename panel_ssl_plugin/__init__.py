"""panel-ssl-plugin: SSL/TLS certificates for hosting control panels, as a pluggy plugin."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("panel-ssl-plugin")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
