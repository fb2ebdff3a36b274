"""Hotspots of the hotline and 未诉先办 (acting before complaints): counts per unit and category by
week and month, spatial clusters within a category, recurrence (the same place and category in
at least ``k`` of the last ``m`` months), rising trends, and a ranked list of 每月一题 (monthly
theme) candidates. ../shared/OPS.md §1.6 [OP]: Beijing targets issues that are 普遍性、周期性、
反复性 (widespread, periodic, recurring).

Each is a pure function of the tickets frame; :func:`write_hotspots` writes them with a register
keyed by community (``hotline_units.csv``) that the health check reads (``--system hotline``),
and the clusters as points in ``hotspots.gpkg``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from sqlalchemy import Engine, func, select

from cityos.ops.city import CityModel
from cityos.ops.models import Callback, Ticket
from cityos.ops.workflow import CLOSED_STATES
from cityos.outputs import atomic_folder, write_table

__all__ = [
    "HotspotSettings",
    "clusters",
    "counts",
    "monthly_theme",
    "read_tickets",
    "recurrence",
    "register",
    "trends",
    "write_hotspots",
]


@dataclass(frozen=True)
class HotspotSettings:
    """The [OP] parameters: recurrence ``k`` of ``m`` months, cluster radius and size, the
    trend window and the rise that counts."""

    k: int = 3
    m: int = 6
    cluster_radius_m: float = 100.0
    cluster_min_size: int = 5
    trend_months: int = 3
    trend_factor: float = 1.5
    trend_min: int = 5


def read_tickets(engine: Engine, until: dt.datetime, months: int = 12) -> pd.DataFrame:
    """The tickets of the last ``months`` months before ``until`` with their unit, place,
    month, week and whether the last callback says resolved (None: not called back)."""
    since = until - dt.timedelta(days=31 * months)
    last = (
        select(Callback.ticket_id, func.max(Callback.id).label("cid"))
        .group_by(Callback.ticket_id)
        .subquery()
    )
    stmt = (
        select(Ticket.id, Ticket.service_code, Ticket.lat, Ticket.lon, Ticket.community_id,
               Ticket.subdistrict_id, Ticket.requested_at, Ticket.state, Callback.resolved)
        .outerjoin(last, last.c.ticket_id == Ticket.id)
        .outerjoin(Callback, Callback.id == last.c.cid)
        .where(Ticket.requested_at >= since, Ticket.requested_at < until)
    )  # fmt: skip
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    frame["requested_at"] = pd.to_datetime(frame["requested_at"])  # an empty store: no dtype
    frame["month"] = frame["requested_at"].dt.strftime("%Y-%m")
    frame["week"] = frame["requested_at"].dt.strftime("%G-W%V")
    frame["closed"] = frame["state"].isin(CLOSED_STATES)
    frame["unresolved"] = frame["closed"] & ~frame["resolved"].fillna(False).astype(bool)
    return frame


def counts(tickets: pd.DataFrame, level: str, period: str) -> pd.DataFrame:
    """Requests per unit of ``level`` (``community`` or ``subdistrict``), category and
    ``period`` (``week`` or ``month``)."""
    unit = f"{level}_id"
    t = tickets.assign(unit_id=tickets[unit].fillna("(outside every unit)"))
    out = t.groupby(["unit_id", "service_code", period]).size().rename("requests").reset_index()
    return out.assign(level=level)[["level", "unit_id", "service_code", period, "requests"]]


def recurrence(tickets: pd.DataFrame, end_month: str, s: HotspotSettings) -> pd.DataFrame:
    """Per community and category: the months with a request among the last ``m`` up to
    ``end_month``, recurrent when at least ``k``."""
    months = pd.period_range(end=pd.Period(end_month, "M"), periods=s.m, freq="M").strftime("%Y-%m")
    t = tickets[tickets["month"].isin(months)]
    g = t.groupby([t["community_id"].fillna("(outside every unit)"), "service_code"])
    out = pd.DataFrame({
        "months_with_requests": g["month"].nunique(),
        "requests": g.size(),
        "unresolved": g["unresolved"].sum(),
    }).reset_index().rename(columns={"community_id": "unit_id"})  # fmt: skip
    out["recurrent"] = out["months_with_requests"] >= s.k
    out["rule"] = f"≥ {s.k} of the last {s.m} months (to {end_month}) [OP]"
    return out


def trends(tickets: pd.DataFrame, end_month: str, s: HotspotSettings) -> pd.DataFrame:
    """Per community and category: requests in the last ``trend_months`` months against the
    ``trend_months`` before; rising when at least ``trend_min`` and ``trend_factor`` times as many."""
    end = pd.Period(end_month, "M")
    recent = pd.period_range(end=end, periods=s.trend_months, freq="M").strftime("%Y-%m")
    before = pd.period_range(end=end - s.trend_months, periods=s.trend_months, freq="M").strftime(
        "%Y-%m"
    )
    unit = tickets["community_id"].fillna("(outside every unit)")
    t = tickets.assign(
        unit_id=unit, recent=tickets["month"].isin(recent), before=tickets["month"].isin(before)
    )
    g = t.groupby(["unit_id", "service_code"])
    out = pd.DataFrame({"recent": g["recent"].sum(), "before": g["before"].sum()}).reset_index()
    out["rising"] = (out["recent"] >= s.trend_min) & (
        out["recent"] >= s.trend_factor * out["before"]
    )
    return out


def clusters(tickets: pd.DataFrame, city: CityModel, s: HotspotSettings) -> pd.DataFrame:
    """Spatial clusters within each category: requests linked when within
    ``cluster_radius_m`` of each other (single linkage), kept from ``cluster_min_size``."""
    rows = []
    located = tickets.dropna(subset=["lat", "lon"])
    for code, group in located.groupby("service_code"):
        xy = np.array(
            [city.metres(lon, lat) for lon, lat in zip(group["lon"], group["lat"], strict=True)]
        )
        if len(xy) < s.cluster_min_size:
            continue
        pairs = cKDTree(xy).query_pairs(s.cluster_radius_m, output_type="ndarray")
        n = len(xy)
        graph = (
            coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
            if len(pairs)
            else coo_matrix((n, n))
        )
        _, labels = connected_components(graph, directed=False)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            if len(members) < s.cluster_min_size:
                continue
            sub = group.iloc[members]
            rows.append({
                "service_code": code, "requests": len(members),
                "lon": float(sub["lon"].mean()), "lat": float(sub["lat"].mean()),
                "community_id": sub["community_id"].mode().iloc[0] if sub["community_id"].notna().any() else None,
                "first": sub["requested_at"].min(), "last": sub["requested_at"].max(),
                "tickets": ",".join(str(i) for i in sorted(sub["id"])),
            })  # fmt: skip
    cols = ["service_code", "requests", "lon", "lat", "community_id", "first", "last", "tickets"]
    out = pd.DataFrame(rows, columns=cols)
    out.insert(0, "cluster_id", [f"{c}-{i + 1}" for i, c in enumerate(out["service_code"])])
    return out


def monthly_theme(recur: pd.DataFrame, s: HotspotSettings) -> pd.DataFrame:
    """每月一题 candidates: score = requests (the residents who complained, [OP] for residents
    affected) × recurrence (months with requests ÷ m) × unresolved share (closed unresolved ÷
    requests, at least 0.1 so a recurring, well-handled problem still ranks)."""
    r = recur.copy()
    r["recurrence"] = r["months_with_requests"] / s.m
    r["unresolved_share"] = np.clip(r["unresolved"] / r["requests"].where(r["requests"] > 0), 0, 1)
    r["score"] = (
        r["requests"] * r["recurrence"] * np.maximum(r["unresolved_share"].fillna(0.0), 0.1)
    )
    r = r.sort_values(["score", "requests"], ascending=False, kind="stable").reset_index(drop=True)
    r.insert(0, "rank", np.arange(1, len(r) + 1))
    r["formula"] = "requests × months with requests ÷ m × max(unresolved share, 0.1) [OP]"
    return r


def register(tickets: pd.DataFrame, recur: pd.DataFrame, city: CityModel) -> pd.DataFrame:
    """The register the health check reads, one row per community of the city model:
    ``requests``, ``closed``, ``unresolved``, ``recurrent`` (recurrent categories) and the
    requests per category (``requests:CODE``)."""
    ids = pd.Index(list(city.unit_names("community")), name="unit_id")
    t = tickets.dropna(subset=["community_id"])
    g = t.groupby("community_id")
    out = pd.DataFrame({
        "requests": g.size(), "closed": g["closed"].sum(), "unresolved": g["unresolved"].sum(),
    }).reindex(ids).fillna(0).astype(int)  # fmt: skip
    out["recurrent"] = (
        recur[recur["recurrent"]].groupby("unit_id").size().reindex(ids).fillna(0).astype(int)
    )
    per = (
        t.groupby(["community_id", "service_code"])
        .size()
        .unstack(fill_value=0)
        .reindex(ids)
        .fillna(0)
        .astype(int)
    )
    per.columns = [f"requests:{c}" for c in per.columns]
    return out.join(per).reset_index()


def write_hotspots(
    engine: Engine, city: CityModel, out: Path, *, until: dt.datetime, months: int = 12,
    settings: HotspotSettings | None = None, force: bool = False,
) -> dict[str, int]:  # fmt: skip
    """Write every hotspot table and the register into the folder ``out`` (atomically);
    returns the row counts."""
    s = settings or HotspotSettings()
    tickets = read_tickets(engine, until, months)
    end_month = (until - dt.timedelta(seconds=1)).strftime("%Y-%m")
    recur = recurrence(tickets, end_month, s)
    tables = {
        "counts_weekly.csv": pd.concat(
            [counts(tickets, lv, "week") for lv in ("community", "subdistrict")]
        ),
        "counts_monthly.csv": pd.concat(
            [counts(tickets, lv, "month") for lv in ("community", "subdistrict")]
        ),
        "recurrence.csv": recur,
        "trends.csv": trends(tickets, end_month, s),
        "clusters.csv": clusters(tickets, city, s),
        "monthly_theme.csv": monthly_theme(recur, s),
        "hotline_units.csv": register(tickets, recur, city),
    }
    with atomic_folder(out, force=force, kind="hotspots") as tmp:
        for name, table in tables.items():
            write_table(table, tmp / name)
        spots = tables["clusters.csv"]
        gpd.GeoDataFrame(
            spots.assign(first=spots["first"].astype(str), last=spots["last"].astype(str)),
            geometry=gpd.points_from_xy(spots["lon"], spots["lat"]), crs="EPSG:4326",
        ).to_file(tmp / "hotspots.gpkg", layer="clusters", driver="GPKG", engine="pyogrio")  # fmt: skip
    return {name: len(t) for name, t in tables.items()}
