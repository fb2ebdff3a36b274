"""The city health check (城市体检): indicator systems as data (:mod:`cityos.healthcheck.catalogue`)."""

from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS, Indicator, IndicatorSystem, load_system

__all__ = ["BUILTIN_SYSTEMS", "Indicator", "IndicatorSystem", "load_system"]
