"""cityos — an open-source city digital foundation (城市数字底座).

The pipeline, one function a step::

    import cityos
    bundle = cityos.import_city("helsinki", osm=cityos.demo_osm_path())
    bundle = cityos.read_bundle("helsinki")
    result = cityos.checkup(bundle, systems=["mohurd-2024"])
    cityos.write_results(result, "helsinki-checkup")
    saved = cityos.read_results("helsinki-checkup")
    cityos.write_priorities("helsinki-checkup")             # renewal priorities (城市更新)
    plan = cityos.plan_sites(bundle, category="supermarket", add=3, radius=300)
    cityos.write_report("helsinki-checkup", "report.html")
    cityos.batch("cities.csv", "province", client=None)       # many cities (Dask or sequential)

Names are loaded on first use, so ``import cityos`` is quick and has no side effects. The health
check's parts live in :mod:`cityos.healthcheck`, urban renewal in :mod:`cityos.renewal`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cityos.version import __version__

if TYPE_CHECKING:
    from cityos.bundle import Bundle, read_bundle
    from cityos.cities import batch
    from cityos.errors import (
        BundleError,
        CityosError,
        CityosWarning,
        ConfigError,
        InputError,
        OutputError,
        OutputExistsError,
    )
    from cityos.healthcheck.engine import CheckupResult, checkup
    from cityos.healthcheck.results import read_results, write_results
    from cityos.importer import import_city
    from cityos.renewal.plan import plan_sites, write_plan
    from cityos.renewal.priorities import priorities, write_priorities
    from cityos.report import write_report
    from cityos.sources.demo import demo_osm_path

#: public name → the module that defines it
_WHERE = {
    "Bundle": "cityos.bundle",
    "read_bundle": "cityos.bundle",
    "batch": "cityos.cities",
    "BundleError": "cityos.errors",
    "CityosError": "cityos.errors",
    "CityosWarning": "cityos.errors",
    "ConfigError": "cityos.errors",
    "InputError": "cityos.errors",
    "OutputError": "cityos.errors",
    "OutputExistsError": "cityos.errors",
    "CheckupResult": "cityos.healthcheck.engine",
    "checkup": "cityos.healthcheck.engine",
    "read_results": "cityos.healthcheck.results",
    "write_results": "cityos.healthcheck.results",
    "import_city": "cityos.importer",
    "plan_sites": "cityos.renewal.plan",
    "write_plan": "cityos.renewal.plan",
    "priorities": "cityos.renewal.priorities",
    "write_priorities": "cityos.renewal.priorities",
    "write_report": "cityos.report",
    "demo_osm_path": "cityos.sources.demo",
}

__all__ = [
    "Bundle",
    "BundleError",
    "CheckupResult",
    "CityosError",
    "CityosWarning",
    "ConfigError",
    "InputError",
    "OutputError",
    "OutputExistsError",
    "__version__",
    "batch",
    "checkup",
    "demo_osm_path",
    "import_city",
    "plan_sites",
    "priorities",
    "read_bundle",
    "read_results",
    "write_plan",
    "write_priorities",
    "write_report",
    "write_results",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cityos' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
