"""The health check's policy numbers as data (``checkup/policy.toml``): implicit targets of
counts, proxy and set shares, the residential-land buffer, the calibration plausibility factor,
year-over-year tolerances and the rounding shown to people, each with its source.

:func:`load_policy` reads the built-in file, optionally merged with a city's own (same keys;
missing keys keep the defaults). :meth:`Policy.record` is what ``summary.json`` keeps, and
:func:`Policy.from_record` reads it back, so that ``compare`` and ``report`` use the numbers the
check was run with.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from cityos.errors import ConfigError
from cityos.tomlfiles import merge, read_with_defaults

__all__ = ["Policy", "format_value", "load_policy"]


@dataclass(frozen=True)
class Policy:
    """The policy numbers of one health check (see ``checkup/policy.toml``)."""

    implicit_zero_units: frozenset[str]
    majority_share: float
    default_set_share: float
    residential_buffer_m: float
    max_calibration_factor: float
    partial_extent_share: float
    tolerance: dict[str, float]
    default_tolerance: float
    decimals: dict[str, int]
    default_decimals: int
    dimensions_en: dict[str, str]
    source: str
    raw: dict[str, Any]

    def decimals_for(self, unit: str) -> int:
        """Decimals shown to people for a unit of measure (percent 1, counts 0, …)."""
        return self.decimals.get(unit, self.default_decimals)

    def tolerance_for(self, unit: str) -> float:
        """Largest year-over-year change of a unit of measure that still reads as unchanged."""
        return self.tolerance.get(unit, self.default_tolerance)

    def for_people(self, value: Any, unit: str) -> float | None:
        """``value`` rounded to the decimals of ``unit`` (None for missing)."""
        try:
            f = float(value)
        except (TypeError, ValueError):
            return None
        if math.isnan(f):
            return None
        dp = self.decimals_for(unit)
        r = round(f, dp)
        return float(int(r)) if dp == 0 else r

    def record(self) -> dict[str, Any]:
        """The policy as recorded in ``summary.json`` (the merged TOML tables and its source)."""
        return {"source": self.source, **self.raw}

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> Policy:
        """The policy a results folder was made with (built-in defaults for older folders)."""
        if not record:
            return load_policy()
        raw = {k: v for k, v in record.items() if k != "source"}
        return _build(merge(_builtin(), raw), str(record.get("source", "summary.json")))


def _builtin() -> dict[str, Any]:
    return read_with_defaults("cityos.healthcheck", "policy.toml", None, what="policy")[0]


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """The built-in policy, or a city's own TOML file merged over it.

    Raises
    ------
    ConfigError
        A missing or invalid file, an unknown table, or a number out of its range.
    """
    raw, where = read_with_defaults("cityos.healthcheck", "policy.toml", path, what="policy")
    return _build(raw, where)


def _build(raw: dict[str, Any], where: str) -> Policy:
    try:
        policy = Policy(
            implicit_zero_units=frozenset(str(u) for u in raw["counts"]["implicit_zero_units"]),
            majority_share=float(raw["proxy"]["majority_share"]),
            default_set_share=float(raw["sets"]["default_share"]),
            residential_buffer_m=float(raw["residential_land"]["buffer_m"]),
            max_calibration_factor=float(raw["calibration"]["max_factor"]),
            partial_extent_share=float(raw["extent"]["partial_share"]),
            tolerance={str(k): float(v) for k, v in raw["compare"].get("tolerance", {}).items()},
            default_tolerance=float(raw["compare"]["default_tolerance"]),
            decimals={str(k): int(v) for k, v in raw["display"].get("decimals", {}).items()},
            default_decimals=int(raw["display"]["default_decimals"]),
            dimensions_en={str(k): str(v) for k, v in raw.get("dimensions", {}).items()},
            source=where,
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: a policy value is missing or not a number ({exc})") from exc
    shares = {"proxy.majority_share": policy.majority_share, "sets.default_share": policy.default_set_share,
              "extent.partial_share": policy.partial_extent_share}  # fmt: skip
    for key, share in shares.items():
        if not 0 <= share <= 100:
            raise ConfigError(f"{where}: {key} = {share:g} is not a share in [0, 100]")
    if policy.max_calibration_factor <= 1:
        raise ConfigError(f"{where}: calibration.max_factor must be > 1")
    if policy.residential_buffer_m < 0 or min([0.0, *policy.tolerance.values()]) < 0:
        raise ConfigError(f"{where}: buffers and tolerances must be >= 0")
    if min([0, *policy.decimals.values()]) < 0 or policy.default_decimals < 0:
        raise ConfigError(f"{where}: display decimals must be >= 0")
    return policy


def format_value(value: Any, unit: str, policy: Policy, *, lang: str = "en") -> str:
    """A value for people: rounded by its unit, thousands separated, ``—`` for missing, with
    the unit (``57.1 %``, ``3 栋``, ``1.25 km/km²``)."""
    v = policy.for_people(value, unit)
    if v is None:
        return "—"
    dp = policy.decimals_for(unit)
    text = f"{v:,.{dp}f}"
    if not unit or unit == "score":
        return text
    return f"{text}{'' if lang == 'zh' else ' '}{unit}"
