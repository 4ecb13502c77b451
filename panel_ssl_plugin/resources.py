"""Where the plugin's shipped data lives, installed or not.

A wheel carries ``templates/``, ``migrations/``, ``hooks/`` and ``plugin.yaml`` inside the package
(hatchling's force-include); an editable install or a source checkout has them at the top of the
repository. Every caller asks here, so the two layouts never leak into the rest of the code.
"""

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def resource_path(name: str) -> Path:
    """Return the path of a shipped resource (``"templates"``, ``"migrations"``, ...)."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"panel-ssl-plugin resource {name!r} is missing from this install")
