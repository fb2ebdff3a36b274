"""``cityos serve``, ``cityos db upgrade`` and ``cityos keys``: the operations service (Open311
and the hotline workflow), its store's migrations and its API keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session, sessionmaker

from cityos.cli import options as opt

__all__ = ["db_group", "hotline_group", "keys_group", "serve_cmd"]

_DB_HELP = "Store URL: sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DB."

F = TypeVar("F", bound=Callable[..., Any])


def db_option(f: F) -> F:
    """``--db URL`` (required): the operations store."""
    return click.option("--db", required=True, help=_DB_HELP)(f)


def bundle_option(f: F) -> F:
    """``--bundle PATH`` (required): the city bundle whose units place and route tickets."""
    return click.option(
        "--bundle", required=True, type=click.Path(path_type=Path),
        help="The city bundle (its units place and route the tickets).",
    )(f)  # fmt: skip


def hotline_files(f: F) -> F:
    """``--services``, ``--routing``, ``--deadlines``: the hotline's own data files."""
    for flag, what in reversed([
        ("--services", "Service catalogue TOML (replaces the built-in)."),
        ("--routing", "Routing rules TOML (replaces the built-in)."),
        ("--deadlines", "Deadlines TOML (merged over the built-in)."),
    ]):  # fmt: skip
        f = click.option(flag, type=click.Path(path_type=Path), help=what)(f)
    return f


@click.command("serve")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--db", help=_DB_HELP + " Default: BUNDLE.ops.sqlite beside the bundle.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8311, show_default=True)
@hotline_files
@click.option(
    "--outside", type=click.Choice(["flag", "refuse"]), default="flag", show_default=True,
    help="A request outside the city: accept, route to the fallback and flag; or refuse it.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True,
    help="Worker processes (one per core is the most that helps; SQLite writes take turns).",
)  # fmt: skip
@click.option(
    "--mqtt", metavar="URL", help="Take observations from this MQTT broker (mqtt://HOST:PORT)."
)
@click.option("--rules", "lifeline_rules", type=click.Path(path_type=Path),
              help="Lifeline monitoring rules TOML (replaces the built-in).")  # fmt: skip
@click.option(
    "--adcode", help="The city's 6-digit GB/T 2260 code, for GB/T 35965.1 CAP identifiers."
)
@click.option("--sweep-seconds", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
              help="How often silent sensors are looked for.")  # fmt: skip
@click.option("--results", type=click.Path(path_type=Path),
              help="A health-check results folder (cityos checkup) for the dashboard's indicator layers.")  # fmt: skip
@click.option("--previous", type=click.Path(path_type=Path),
              help="Last year's results of the same city: the dashboard shows each value's change.")  # fmt: skip
@opt.quiet_option
def serve_cmd(
    bundle: Path, db: str | None, host: str, port: int, services: Path | None,
    routing: Path | None, deadlines: Path | None, outside: str, workers: int, mqtt: str | None,
    lifeline_rules: Path | None, adcode: str | None, sweep_seconds: float, results: Path | None,
    previous: Path | None, quiet: bool,
) -> None:  # fmt: skip
    """Run the operations service on BUNDLE: the dashboard at /, Open311 GeoReport v2 at
    /open311/v2/, the hotline workflow at /api/v1/, the OpenAPI at /openapi.json."""
    import json
    import os

    import uvicorn

    from cityos.ops.store import default_url
    from cityos.web.app import SERVE_ENV, create_app

    url = db or default_url(bundle)
    args: dict[str, Any] = {"bundle": str(bundle), "db_url": url, "outside": outside, "workers": workers,
            "mqtt": mqtt, "adcode": adcode, "sweep_seconds": sweep_seconds,
            "lifeline_rules": str(lifeline_rules) if lifeline_rules else None,
            "results": str(results) if results else None,
            "previous": str(previous) if previous else None,
            **{k: str(v) for k, v in (("services", services), ("routing", routing),
                                      ("deadlines", deadlines)) if v is not None}}  # fmt: skip
    app = create_app(**args)  # every problem found here, before a worker starts
    if not quiet:
        click.echo(
            f"cityos serve: the dashboard at http://{host}:{port}/, Open311 at "
            f"http://{host}:{port}/open311/v2/discovery.json (store {url}"
            f"{f', {workers} workers' if workers > 1 else ''})", err=True,
        )  # fmt: skip
    level = "warning" if quiet else "info"
    # open dashboard streams end by themselves; a stopping server waits for them at most 5 s
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=level, timeout_graceful_shutdown=5)
        return
    app.state.ops.close()
    os.environ[SERVE_ENV] = json.dumps(args)
    uvicorn.run("cityos.web.app:app_from_environment", factory=True, workers=workers,
                host=host, port=port, log_level=level, timeout_graceful_shutdown=5)  # fmt: skip


@click.group("db")
def db_group() -> None:
    """The operations store: schema migrations."""


@db_group.command("upgrade")
@db_option
@opt.quiet_option
def db_upgrade(db: str, quiet: bool) -> None:
    """Create the store or migrate it to the newest schema."""
    from cityos.ops.store import connect, upgrade

    engine = connect(db)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"{db}: schema {before or 'empty'} → {after}")


@click.group("keys")
def keys_group() -> None:
    """API keys with roles (intake, dispatcher, department:CODE, sensor, inspector, admin), stored hashed."""


@contextmanager
def _session(db: str) -> Iterator[Session]:
    """A committed session on the store at ``db`` (checked to be current), disposed after."""
    from cityos.ops.store import check_current, connect, session_scope

    engine = connect(db)
    try:
        check_current(engine, db)
        with session_scope(sessionmaker(engine)) as s:
            yield s
    finally:
        engine.dispose()


@keys_group.command("create")
@db_option
@click.option("--name", required=True, help="Who or what uses the key (unique).")
@click.option(
    "--role", required=True, help="intake, dispatcher, department:CODE, sensor, inspector or admin."
)
def keys_create(db: str, name: str, role: str) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from cityos.ops.keys import create_key

    with _session(db) as s:
        key = create_key(s, name, role)
    click.echo(key)


@keys_group.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keys_list(db: str, as_json: bool) -> None:
    """List the keys: name, role, prefix, created, revoked (never the keys)."""
    from cityos.ops.keys import list_keys

    with _session(db) as s:
        rows = list_keys(s)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        state = f"revoked {r['revoked']}" if r["revoked"] else "active"
        click.echo(f"{r['name']:<24}{r['role']:<28}{r['prefix']}…  created {r['created']}  {state}")


@keys_group.command("revoke")
@db_option
@click.option("--name", required=True, help="The key to revoke.")
def keys_revoke(db: str, name: str) -> None:
    """Revoke a key: it stops working at once."""
    from cityos.ops.keys import revoke_key

    with _session(db) as s:
        revoke_key(s, name)
    click.echo(f"revoked {name}", err=True)


@click.group("hotline")
def hotline_group() -> None:
    """The hotline's evaluations: the three rates (三率) per unit or department and month."""


@hotline_group.command("rates")
@db_option
@click.option("--month", required=True, help="YYYY-MM, e.g. 2026-11.")
@click.option(
    "--level", type=click.Choice(["subdistrict", "community", "department"]),
    default="subdistrict", show_default=True,
)  # fmt: skip
@click.option(
    "--rates",
    "rule",
    type=click.Path(path_type=Path),
    help="Rate rule TOML (merged over the built-in).",
)
@opt.out_option("rates.csv or rates.xlsx, with the tickets behind each rate.", required=False)
@opt.force_option("the output file")
@opt.quiet_option
def hotline_rates(
    db: str, month: str, level: str, rule: Path | None, out: Path | None, force: bool, quiet: bool
) -> None:
    """响应率, 解决率, 满意率, on-time resolution and the composite score of a month."""
    from cityos.ops.hotline import now
    from cityos.ops.rates import load_rate_rule, month_bounds, rates, read_frames
    from cityos.ops.store import check_current, connect
    from cityos.outputs import check_output_file, write_table

    if out is not None:
        check_output_file(out, [".csv", ".xlsx"], force=force)
    used = load_rate_rule(rule)
    engine = connect(db)
    try:
        check_current(engine, db)
        start, end = month_bounds(month)
        table = rates(read_frames(engine, start, end), month, level, used, as_of=now())
    finally:
        engine.dispose()
    # every rate a column, one with nothing to count yet too ("no data", never left out)
    wide = table.pivot_table(index="group", columns="rate", values="percent", aggfunc="first",
                             dropna=False)  # fmt: skip
    click.echo(wide.round(1).to_string(na_rep="no data") if len(wide) else f"no tickets in {month}")
    click.echo(f"% by rule {used.version} ({used.source}); the tickets behind each rate: --out")
    if out is not None:
        if out.suffix.lower() == ".xlsx":
            from cityos.outputs import atomic_file

            with atomic_file(out) as tmp:
                table.to_excel(tmp, index=False, engine="openpyxl")
        else:
            write_table(table, out)
        if not quiet:
            click.echo(f"wrote {out} ({len(table):,} rows)", err=True)


@hotline_group.command("hotspots")
@db_option
@bundle_option
@opt.out_option("Folder for the hotspot tables and the hotline register.")
@click.option("--until", help="End of the period, YYYY-MM-DD (default: today).")
@click.option(
    "--months", type=opt.POSITIVE_INT, default=12, show_default=True, help="Months before --until."
)
@click.option(
    "--k", type=opt.POSITIVE_INT, default=3, show_default=True, help="Recurrent: in at least k …"
)
@click.option(
    "--m", type=opt.POSITIVE_INT, default=6, show_default=True, help="… of the last m months."
)
@opt.force_option("the hotspots folder")
@opt.quiet_option
def hotline_hotspots(
    db: str, bundle: Path, out: Path, until: str | None, months: int, k: int, m: int,
    force: bool, quiet: bool,
) -> None:  # fmt: skip
    """Hotspots and 每月一题 candidates: counts per unit and category by week and month,
    clusters, recurrence, trends, and the register `cityos checkup --system hotline` reads."""
    import datetime as dt

    from cityos.bundle import read_bundle
    from cityos.errors import InputError
    from cityos.ops.city import CityModel
    from cityos.ops.hotspots import HotspotSettings, write_hotspots
    from cityos.ops.store import check_current, connect
    from cityos.outputs import check_output_folder

    if k > m:
        raise click.BadParameter(f"--k {k} is more than --m {m}", param_hint="--k")
    try:
        end = (
            dt.datetime.combine(dt.date.fromisoformat(until), dt.time()) + dt.timedelta(days=1)
            if until
            else dt.datetime.now(dt.UTC).replace(tzinfo=None)
        )
    except ValueError as exc:
        raise InputError(f"--until {until}: use YYYY-MM-DD") from exc
    check_output_folder(out, "hotspots", force=force)
    engine = connect(db)
    try:
        check_current(engine, db)
        city = CityModel.from_bundle(read_bundle(bundle))
        rows = write_hotspots(engine, city, out, until=end, months=months,
                              settings=HotspotSettings(k=k, m=m), force=force)  # fmt: skip
    finally:
        engine.dispose()
    for name, n in rows.items():
        click.echo(f"{name:<22}{n:>8,} rows")
    if not quiet:
        click.echo(
            f"wrote {out}; `cityos checkup {bundle} --system hotline --register hotline={out}/hotline_units.csv`",
            err=True,
        )


@hotline_group.command("import")
@db_option
@bundle_option
@click.argument("table", type=click.Path(path_type=Path))
@hotline_files
@opt.quiet_option
def hotline_import(
    db: str, bundle: Path, table: Path, services: Path | None, routing: Path | None,
    deadlines: Path | None, quiet: bool,
) -> None:  # fmt: skip
    """Import historic tickets from CSV/XLSX (columns: service_code/诉求类别, requested_at/受理时间,
    lat/纬度, lon/经度, address/地址, description/诉求内容, department/承办单位, handled_at/办结时间,
    resolved/是否解决, satisfaction/满意度, id/工单编号). All rows or none."""
    from cityos.bundle import read_bundle
    from cityos.ops.hotline import load_hotline
    from cityos.ops.transfer import import_tickets
    from cityos.sources.files import check_exists

    check_exists(table, "ticket table")
    hotline = load_hotline(
        read_bundle(bundle), services=services, routing=routing, deadlines=deadlines
    )
    with _session(db) as s:
        n = import_tickets(s, hotline, table)
    click.echo(f"imported {n:,} tickets from {table}")


@hotline_group.command("export")
@db_option
@opt.out_option("tickets.csv, tickets.xlsx or tickets.gpkg (no reporters' data).")
@click.option("--month", help="Only tickets requested in this month, YYYY-MM.")
@opt.force_option("the output file")
@opt.quiet_option
def hotline_export(db: str, out: Path, month: str | None, force: bool, quiet: bool) -> None:
    """Export the tickets (public fields, units, department, deadlines, state)."""
    from cityos.ops.rates import month_bounds
    from cityos.ops.transfer import export_tickets, tickets_frame
    from cityos.outputs import check_output_file

    check_output_file(out, [".csv", ".xlsx", ".gpkg"], force=force)
    since, until = month_bounds(month) if month else (None, None)
    with _session(db) as s:
        frame = tickets_frame(s, since, until)
    export_tickets(frame, out)
    click.echo(f"{len(frame):,} tickets")
    if not quiet:
        click.echo(f"wrote {out}", err=True)
