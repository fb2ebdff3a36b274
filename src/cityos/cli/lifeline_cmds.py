"""``cityos alerts``: lifeline monitoring rules replayed on history (backtest)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from cityos.cli import options as opt

__all__ = ["alerts_group"]


@click.group("alerts")
def alerts_group() -> None:
    """Lifeline alerts: replay the monitoring rules on stored or given readings."""


def _when(text: str, flag: str) -> dt.datetime:
    from cityos.errors import InputError
    from cityos.lifelines.entities import parse_time

    try:
        return parse_time(text if "T" in text else f"{text}T00:00:00Z", flag)
    except InputError as exc:
        raise InputError(
            f"{flag} {text!r}: give a date (2026-11-01) or an ISO 8601 time with its offset"
        ) from exc


@alerts_group.command("replay")
@click.option("--db", help="Store URL whose observations to replay (or --observations).")
@click.option("--observations", type=click.Path(path_type=Path),
              help="A CSV of readings instead: datastream, property, unit, time, result.")  # fmt: skip
@click.option(
    "--rules", type=click.Path(path_type=Path), help="Rules TOML to try (replaces the built-in)."
)
@click.option("--from", "start", help="First instant (date or ISO 8601); with --db.")
@click.option("--to", "end", help="End instant, exclusive; with --db.")
@opt.out_option(
    "episodes.csv: every alert the rules would have raised, with its readings.", required=False
)
@opt.force_option("the output file")
@opt.quiet_option
def replay_cmd(db: str | None, observations: Path | None, rules: Path | None, start: str | None,
               end: str | None, out: Path | None, force: bool, quiet: bool) -> None:  # fmt: skip
    """Evaluate the rules on history and report the alerts they would have raised (per level),
    and the datastreams no rule watches: tune thresholds before going live."""
    from cityos.errors import InputError
    from cityos.lifelines.replay import count_by_level, read_history, read_readings_file, replay
    from cityos.lifelines.rules import load_rules
    from cityos.outputs import check_output_file, write_table

    if (db is None) == (observations is None):
        raise InputError("give --db URL (with --from and --to) or --observations FILE.csv")
    if out is not None:
        check_output_file(out, [".csv"], force=force, inputs=[observations] if observations else [])
    used = load_rules(rules)
    if observations is not None:
        readings = read_readings_file(observations)
    else:
        from cityos.ops.store import check_current, connect

        if not start or not end:
            raise InputError("--db needs --from and --to (e.g. --from 2026-11-01 --to 2026-12-01)")
        a, b = _when(start, "--from"), _when(end, "--to")
        assert db is not None
        engine = connect(db)
        try:
            check_current(engine, db)
            readings = read_history(engine, a, b)
        finally:
            engine.dispose()
    episodes, unwatched = replay(readings, used)
    counts = count_by_level(episodes)
    click.echo(f"{len(readings):,} readings of {readings['datastream'].nunique():,} datastreams; "
               f"rules {used.version} ({used.source})")  # fmt: skip
    click.echo("alerts: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"))
    for row in unwatched.itertuples(index=False):
        click.echo(f"unwatched: datastream {row.datastream}: {row.reason}")
    if out is not None:
        write_table(episodes, out)
        if not quiet:
            click.echo(f"wrote {out} ({len(episodes):,} episodes)", err=True)


@alerts_group.command("register")
@click.option(
    "--db",
    required=True,
    help="Store URL: sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DB.",
)
@click.option(
    "--bundle",
    required=True,
    type=click.Path(path_type=Path),
    help="The city bundle (its communities).",
)
@click.option(
    "--from", "start", required=True, help="First instant of the period (date or ISO 8601)."
)
@click.option("--to", "end", required=True, help="End of the period, exclusive.")
@click.option("--points", "points_file", type=click.Path(path_type=Path),
              help="The waterlogging points register (as for `cityos alerts points`), counted per community.")  # fmt: skip
@opt.out_option("lifeline_units.csv: the register `cityos checkup --system lifelines` reads.")
@opt.force_option("the output file")
@opt.quiet_option
def register_cmd(db: str, bundle: Path, start: str, end: str, points_file: Path | None, out: Path,
                 force: bool, quiet: bool) -> None:  # fmt: skip
    """The lifeline register per community (devices, offline, hazard alerts per domain and at
    red/orange) for the health check: `cityos checkup BUNDLE --system lifelines --register
    lifelines=FILE`."""
    import cityos
    from cityos.lifelines.register import lifeline_register
    from cityos.lifelines.rules import load_rules
    from cityos.lifelines.waterlogging import read_points
    from cityos.ops.city import CityModel
    from cityos.ops.store import check_current, connect
    from cityos.outputs import check_output_file, write_table

    check_output_file(out, [".csv"], force=force, inputs=[p for p in (bundle, points_file) if p])
    points = read_points(points_file) if points_file is not None else None
    a, b = _when(start, "--from"), _when(end, "--to")
    city = CityModel.from_bundle(cityos.read_bundle(bundle))
    engine = connect(db)
    try:
        check_current(engine, db)
        table = lifeline_register(engine, city, load_rules(), a, b, points)
    finally:
        engine.dispose()
    write_table(table, out)
    if not quiet:
        click.echo(
            f"wrote {out} ({len(table):,} communities, {int(table['hazard_alerts'].sum()):,} hazard alerts)",
            err=True,
        )


@alerts_group.command("points")
@click.option("--points", "points_file", required=True, type=click.Path(path_type=Path),
              help="易涝积水点: CSV/XLSX (id/编号, name/名称, kind/类型, responsible_unit/责任单位, "
                   "responsible_person/责任人, yellow_cm, red_cm, lon/经度, lat/纬度) or GIS.")  # fmt: skip
@click.option("--bundle", required=True, type=click.Path(path_type=Path), help="The city bundle.")
@click.option("--staging", type=click.Path(path_type=Path),
              help="Pump-truck staging points (CSV with id, lon, lat, or GIS): the nearest by street.")  # fmt: skip
@click.option("--db", help="Store URL: link each point to the water-depth sensors within --radius.")
@click.option("--radius", type=click.FloatRange(0, 5000), default=100.0, show_default=True,
              help="Metres within which a depth sensor belongs to a point.")  # fmt: skip
@opt.out_option("points.csv: the register with units, sensors and the nearest staging point.")
@opt.force_option("the output file")
@opt.quiet_option
def points_cmd(points_file: Path, bundle: Path, staging: Path | None, db: str | None, radius: float,
               out: Path, force: bool, quiet: bool) -> None:  # fmt: skip
    """The register of waterlogging points (易涝积水点), checked, placed in the city's units,
    linked to depth sensors and given the nearest pump-truck staging point along the streets."""
    import json

    import geopandas as gpd
    import pandas as pd

    import cityos
    from cityos.lifelines.waterlogging import nearest_staging, read_points
    from cityos.ops.city import CityModel
    from cityos.outputs import check_output_file, write_table

    check_output_file(
        out, [".csv"], force=force, inputs=[p for p in (points_file, staging, bundle) if p]
    )
    points = read_points(points_file)
    b = cityos.read_bundle(bundle)
    city = CityModel.from_bundle(b)
    table = pd.DataFrame(points.drop(columns="geometry"))
    where = points.geometry.representative_point()
    table["lon"], table["lat"] = where.x.to_numpy(), where.y.to_numpy()
    table["community"] = [
        city.locate(x, y).get("community") for x, y in zip(where.x, where.y, strict=True)
    ]
    if staging is not None:
        raw = (
            pd.read_csv(staging, dtype={"id": str})
            if staging.suffix.lower() == ".csv"
            else gpd.read_file(staging)
        )
        if not isinstance(raw, gpd.GeoDataFrame):
            raw = gpd.GeoDataFrame(
                raw, geometry=gpd.points_from_xy(raw["lon"], raw["lat"]), crs=4326
            )
        table = table.merge(nearest_staging(b, points, raw), on="id", how="left")
    if db is not None:
        from sqlalchemy import select

        from cityos.lifelines.geometry import metres_between
        from cityos.lifelines.models import (
            StaDatastream,
            StaLocation,
            StaObservedProperty,
            thing_locations,
        )
        from cityos.ops.store import check_current, connect

        engine = connect(db)
        try:
            check_current(engine, db)
            with engine.connect() as conn:
                rows = conn.execute(
                    select(StaDatastream.id, StaLocation.location)
                    .join(StaObservedProperty, StaObservedProperty.id == StaDatastream.observed_property_id)
                    .join(thing_locations, thing_locations.c.thing_id == StaDatastream.thing_id)
                    .join(StaLocation, StaLocation.id == thing_locations.c.location_id)
                    .where(StaObservedProperty.name == "water_depth")
                ).all()  # fmt: skip
        finally:
            engine.dispose()
        sensors = [(int(i), json.loads(loc)["coordinates"]) for i, loc in rows]
        table["sensors"] = [",".join(str(i) for i, (x, y) in sensors if metres_between(lon, lat, x, y) <= radius)
                            for lon, lat in zip(table["lon"], table["lat"], strict=True)]  # fmt: skip
    write_table(table, out)
    if not quiet:
        click.echo(f"wrote {out} ({len(table):,} waterlogging points)", err=True)
