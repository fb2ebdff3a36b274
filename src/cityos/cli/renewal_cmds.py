"""``cityos renew`` and ``cityos site``: urban renewal (城市更新) priorities and facility siting."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from cityos.cli import options as opt
from cityos.renewal.siting import DEFAULT_TIME_LIMIT_S

__all__ = ["renew_cmd", "site_cmd"]


@click.command("renew")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--weights", type=click.Path(path_type=Path), help="Weights TOML (default built-in).")
@opt.out_option("Folder for the priority files (default RESULTS/priorities).", required=False)
@click.option(
    "--top", type=click.IntRange(min=0), default=5, show_default=True,
    help="Units to print per level.",
)  # fmt: skip
@opt.force_option("the priorities folder")
@opt.quiet_option
def renew_cmd(
    results: Path, weights: Path | None, out: Path | None, top: int, force: bool, quiet: bool
) -> None:
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
                lines.append(
                    f"  {r['rank']:>3}. {r['unit_name']}  score {r['score']:,.0f}  "
                    f"most: {r['top_indicator']}"
                )
    click.echo("\n".join(lines))
    if not quiet:
        click.echo(
            f"wrote {target} (priorities.csv, priorities_detail.csv, priorities.gpkg, "
            "priorities.json)",
            err=True,
        )


@click.command("site")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--category", required=True, help="Facility category, e.g. kindergarten, elderly_care."
)
@click.option("--add", "add", type=click.IntRange(min=0), default=0, help="Number of new sites K.")
@click.option("--radius", type=opt.POSITIVE, required=True, help="Service radius in metres.")
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
    "--solver",
    type=click.Choice(["auto", "exact", "greedy"]),
    default="auto",
    show_default=True,
    help="exact: HiGHS MIP; greedy: lazy greedy with a bound; auto: exact when it fits.",
)
@opt.distance_option()
@opt.cutoff_option
@click.option("--existing-only", is_flag=True, help="Score the existing facilities, add none.")
@opt.systems_option("Indicator systems to recompute (default the three built-in ones). Repeatable.")
@click.option("--stock-rules", type=click.Path(path_type=Path), help="TOML replacing stock.toml.")
@click.option(
    "--time-limit", type=opt.POSITIVE, default=DEFAULT_TIME_LIMIT_S, show_default=True,
    help="Exact solver limit (s).",
)  # fmt: skip
@opt.population_options
@opt.out_option("Output folder to create.")
@opt.force_option("the siting folder")
@opt.quiet_option
def site_cmd(
    bundle: Path,
    category: str,
    add: int,
    radius: float,
    objective: str,
    candidates: str,
    solver: str,
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
    from cityos.bundle import read_bundle
    from cityos.errors import InputError
    from cityos.outputs import check_output_folder, files_of
    from cityos.progress import Reporter
    from cityos.renewal import plan_sites, write_plan
    from cityos.renewal.plan import PLAN_STAGES
    from cityos.units import admin_level_table

    if existing_only and add:
        raise click.UsageError("--existing-only scores the current facilities; drop --add")
    if not existing_only and add < 1:
        raise InputError("give the number of new sites with --add K (K >= 1), or --existing-only")
    from_file = candidates not in ("network", "stock")
    if from_file and not Path(candidates).exists():
        raise InputError(
            f"--candidates {candidates}: no such file; give a file, 'stock' or 'network'"
        )
    check_output_folder(
        out,
        "sites",
        force=force,
        inputs=[*files_of(bundle), candidates if from_file else None, stock_rules],
    )
    b = read_bundle(bundle)
    stages = 2 if existing_only else PLAN_STAGES
    with Reporter(quiet=quiet).stage("siting", total=stages) as advance:
        plan = plan_sites(
            b, category=category, add=add, radius=radius, objective=objective,  # type: ignore[arg-type]
            candidates=candidates, solver=solver, distance=distance, cutoff=cutoff,  # type: ignore[arg-type]
            existing_only=existing_only, systems=opt.systems_or_default(systems),
            area_per_person=area_per_person, city_population=city_population, time_limit=time_limit,
            admin_levels=admin_level_table(country) if country else None, stock_rules=stock_rules,
            progress=advance,
        )  # fmt: skip
        write_plan(plan, out, force=force)
    s = plan.summary
    gap = f", gap {s['gap']:.2%}" if not existing_only else ""
    click.echo(f"{s['headline']} ({s['solver']}{gap})")
    if not quiet:
        click.echo(f"wrote {out}", err=True)
