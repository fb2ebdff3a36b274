"""The lifeline register the health check reads (``--system lifelines``): one row per community
of the city model — the monitored devices, those silent or flagged now, and the hazard alerts
of a period per domain and at the two highest levels."""

from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine, select

from cityos.lifelines.models import Alert, StaDatastream, StaThing
from cityos.lifelines.rules import RuleSet
from cityos.ops.city import CityModel

__all__ = ["DOMAINS", "lifeline_register"]

DOMAINS = ("gas", "water", "drainage", "bridge")


def _community(units: str | None) -> str | None:
    return json.loads(units).get("community") if units else None


def lifeline_register(engine: Engine, city: CityModel, rules: RuleSet, start: dt.datetime,
                      end: dt.datetime, points: gpd.GeoDataFrame | None = None) -> pd.DataFrame:  # fmt: skip
    """Per community: ``devices`` (datastreams), ``devices_offline`` (with an open device
    alert: silent, flat or out of range), ``hazard_alerts`` raised in [start, end), the same
    per domain (``alerts:DOMAIN``) and those that reached red or orange (``alerts_red_orange``);
    with ``points`` (:func:`cityos.lifelines.waterlogging.read_points`), the waterlogging points
    (``waterlogging_points``; blank without a register: unknown, never 0)."""
    ids = pd.Index(list(city.unit_names("community")), name="unit_id")
    with engine.connect() as conn:
        streams = conn.execute(
            select(StaDatastream.id, StaThing.units).join(StaThing, StaThing.id == StaDatastream.thing_id)
        ).all()  # fmt: skip
        alerts = conn.execute(
            select(Alert.datastream_id, Alert.units, Alert.domain, Alert.hazard, Alert.max_level,
                   Alert.raised_at, Alert.closed_at)
        ).all()  # fmt: skip
    devices = pd.Series([_community(u) for _, u in streams], dtype=object).value_counts()
    frame = pd.DataFrame(
        [(_community(a.units), a.domain, a.hazard, a.max_level, a.raised_at, a.closed_at, a.datastream_id)
         for a in alerts],
        columns=["unit", "domain", "hazard", "max_level", "raised_at", "closed_at", "datastream"],
    )  # fmt: skip
    in_period = frame[
        (frame["raised_at"] >= start) & (frame["raised_at"] < end) & frame["hazard"].astype(bool)
    ]
    offline = frame[~frame["hazard"].astype(bool) & frame["closed_at"].isna()].drop_duplicates(
        "datastream"
    )
    out = pd.DataFrame(index=ids)
    out["devices"] = devices.reindex(ids).fillna(0).astype(int)
    out["devices_offline"] = offline.groupby("unit").size().reindex(ids).fillna(0).astype(int)
    out["hazard_alerts"] = in_period.groupby("unit").size().reindex(ids).fillna(0).astype(int)
    high = in_period[in_period["max_level"].isin(["red", "orange"])]
    out["alerts_red_orange"] = high.groupby("unit").size().reindex(ids).fillna(0).astype(int)
    for d in DOMAINS:
        part = in_period[in_period["domain"] == d]
        out[f"alerts:{d}"] = part.groupby("unit").size().reindex(ids).fillna(0).astype(int)
    if points is not None:
        where = points.geometry.representative_point()
        units = [city.locate(x, y).get("community") for x, y in zip(where.x, where.y, strict=True)]
        out["waterlogging_points"] = (
            pd.Series(units, dtype=object).value_counts().reindex(ids).fillna(0).astype(int)
        )
    return out.reset_index()
