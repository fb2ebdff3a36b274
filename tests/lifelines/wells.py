"""A methane well as SensorThings JSON, for the store-level tests of the lifelines."""

from __future__ import annotations

from typing import Any

__all__ = ["well"]


def well(name: str = "W-1", interval: str | None = None) -> dict[str, Any]:
    """A Thing at (116.4, 39.9) with one methane Datastream in %LEL (reporting every
    ``interval``, ISO 8601, when given)."""
    stream: dict[str, Any] = {
        "name": "CH4", "description": "", "observationType": "OM_Measurement",
        "unitOfMeasurement": {"name": "%LEL", "symbol": "%LEL", "definition": ""},
        "Sensor": {"name": "s", "description": "", "encodingType": "text/plain", "metadata": "m"},
        "ObservedProperty": {"name": "methane", "definition": "CH4", "description": ""},
    }  # fmt: skip
    if interval:
        stream["properties"] = {"reportingInterval": interval}
    return {"name": name, "description": "", "Locations": [{
        "name": "w", "description": "", "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": [116.4, 39.9]}}], "Datastreams": [stream]}  # fmt: skip
