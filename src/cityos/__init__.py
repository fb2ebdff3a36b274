"""cityos — an open-source city digital foundation (城市数字底座).

Build a city bundle from OpenStreetMap and the city's own files, then read it back::

    import cityos
    bundle = cityos.import_city("helsinki", osm=cityos.demo_osm_path())
    bundle = cityos.read_bundle("helsinki")
    bundle.facilities.category.value_counts()
    result = cityos.checkup(bundle, systems=["mohurd-2024"])
    result.indicators.query("status == 'fail'")
"""

from cityos.bundle import Bundle, read_bundle
from cityos.checkup.engine import CheckupResult, checkup
from cityos.errors import (
    BundleError,
    CityosError,
    CityosWarning,
    ConfigError,
    InputError,
    OutputExistsError,
)
from cityos.importer import import_city
from cityos.sources.demo import demo_osm_path
from cityos.version import __version__

__all__ = [
    "Bundle",
    "BundleError",
    "CheckupResult",
    "CityosError",
    "CityosWarning",
    "ConfigError",
    "InputError",
    "OutputExistsError",
    "__version__",
    "checkup",
    "demo_osm_path",
    "import_city",
    "read_bundle",
]
