"""``cityos access``, ``checkup``, ``compare`` and ``report``: walking distances and the city
health check (城市体检), its year-over-year change and its report."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import click

from cityos.cli.options import (
    POSITIVE,
    NamedPath,
    cutoff_option,
    distance_option,
    force_option,
    out_option,
    population_options,
    quiet_option,
    systems_option,
    systems_or_default,
)
from cityos.network.snap import DEFAULT_MAX_SNAP_M

__all__ = ["access_cmd", "checkup_cmd", "compare_cmd", "report_cmd"]


@click.command("access")
@click.argument("bundle", type=click.Path(path_type=Path))
@out_option("Parquet or CSV file to write.")
@click.option(
    "--category", "categories", multiple=True, help="Facility category (repeatable; default all)."
)
@cutoff_option
@distance_option()
@click.option(
    "--max-snap", type=POSITIVE, default=DEFAULT_MAX_SNAP_M, show_default=True,
    help="Longest access leg from a building or facility to the street (m).",
)  # fmt: skip
@force_option("the output file")
@quiet_option
def access_cmd(
    bundle: Path,
    out: Path,
    categories: Sequence[str],
    cutoff: float,
    distance: str,
    max_snap: float,
    force: bool,
    quiet: bool,
) -> None:
    """Nearest facility of each category for every building (building_id, category, distance_m,
    facility_id), by walking distance along the streets or straight line."""
    from cityos.bundle import read_bundle
    from cityos.errors import CityosWarning
    from cityos.network import accessibility_table
    from cityos.outputs import check_output_file, files_of, write_table
    from cityos.progress import Reporter

    check_output_file(out, [".parquet", ".csv"], force=force, inputs=files_of(bundle))
    b = read_bundle(bundle)
    with Reporter(quiet=quiet).stage("walking distances"):
        table = accessibility_table(
            b, categories=list(categories) or None, cutoff=cutoff, distance=distance,  # type: ignore[arg-type]
            max_snap=max_snap,
        )  # fmt: skip
    write_table(table, out)
    if table.attrs.get("unsnapped_buildings"):
        warnings.warn(
            f"{table.attrs['unsnapped_buildings']} buildings lie farther than {max_snap:g} m from "
            "every walkable street and reach nothing by network",
            CityosWarning,
            stacklevel=1,
        )
    if not quiet:
        reached = table["distance_m"].notna().mean() if len(table) else 0.0
        click.echo(
            f"wrote {out} ({len(table):,} rows, {reached:.1%} within {cutoff:g} m)", err=True
        )


@click.command("checkup")
@click.argument("bundle", type=click.Path(path_type=Path))
@out_option("Results folder to create.")
@systems_option(
    "Indicator system: a built-in id (mohurd-2024, complete-community, sdg-11; default all "
    "three) or a TOML file of your own. Repeatable."
)
@cutoff_option
@population_options
@distance_option(
    None, "Use this distance for every coverage indicator (default: each indicator's own)."
)
@click.option(
    "--clip-units",
    is_flag=True,
    help="Leave out units that hold no data (no building, or outside the OSM extract) instead of "
    "reporting them as no data.",
)
@click.option(
    "--register",
    "registers",
    multiple=True,
    type=NamedPath(),
    help="A register for this check (adds to or replaces the bundle's), e.g. "
    "hotline=HOTSPOTS/hotline_units.csv for --system hotline. Repeatable.",
)
@click.option(
    "--policy",
    type=click.Path(path_type=Path),
    help="Policy numbers TOML (copy cityos/healthcheck/policy.toml): implicit targets, proxy "
    "shares, calibration warning factor, rounding.",
)
@force_option("the results folder")
@quiet_option
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
    registers: Sequence[tuple[str, Path]],
    policy: Path | None,
    force: bool,
    quiet: bool,
) -> None:
    """Run the city health check (城市体检) on a bundle and write the results folder.

    Every value is met (pass), not met (fail) or unmeasured (no data, with the reason): missing
    data is never a failure."""
    from cityos.bundle import read_bundle
    from cityos.healthcheck.catalogue import load_system
    from cityos.healthcheck.engine import checkup
    from cityos.healthcheck.policy import load_policy
    from cityos.healthcheck.results import write_results
    from cityos.outputs import check_output_folder, files_of
    from cityos.progress import Reporter
    from cityos.registers.check import read_checked
    from cityos.units import admin_level_table

    names = systems_or_default(systems)
    inputs = [*files_of(bundle), policy, *(s for s in names if Path(s).suffix == ".toml"),
              *(p for _, p in registers)]  # fmt: skip
    check_output_folder(out, "results", force=force, inputs=inputs)
    b = read_bundle(bundle)
    table = admin_level_table(country) if country else None
    for name, path in registers:  # a register for this run only: the bundle is not changed
        b.registers[name] = read_checked(name, path, b, table)
    own = set(b.facilities["category"])
    chosen = [load_system(s, categories=own) for s in names]  # refused before the long work
    rules = load_policy(policy)
    with Reporter(quiet=quiet).stage("health check"):
        result = checkup(
            b, systems=chosen, cutoff_m=cutoff, area_per_person=area_per_person,
            admin_levels=table, city_population=city_population, distance=distance,
            policy=rules, clip_units=clip_units,
        )  # fmt: skip
        write_results(result, out, force=force)
    counts = result.summary["status_counts"]
    click.echo(
        f"wrote {out}: {counts['pass']} pass, {counts['fail']} fail, {counts['no_data']} no data, "
        f"{counts['no_target']} without target"
    )


@click.command("compare")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@out_option("Write the full comparison as CSV.", required=False)
@force_option("the CSV")
@quiet_option
def compare_cmd(old: Path, new: Path, out: Path | None, force: bool, quiet: bool) -> None:
    """Year-over-year change per indicator and unit (improved / worsened / unchanged)."""
    from cityos.healthcheck.compare import compare_results, read_indicators
    from cityos.outputs import check_output_file, files_of, write_table

    if out is not None:
        check_output_file(out, [".csv"], force=force, inputs=[*files_of(old), *files_of(new)])
    table = compare_results(read_indicators(old), read_indicators(new), where=(old, new))
    counts = table.groupby(["level", "trend"]).size().unstack(fill_value=0)
    lines = [f"{'level':<12}" + "".join(f"{c:>16}" for c in counts.columns)]
    for level, row in counts.iterrows():
        lines.append(f"{level!s:<12}" + "".join(f"{int(v):>16,}" for v in row))
    click.echo("\n".join(lines))
    if out is not None:
        write_table(table, out)
        if not quiet:
            click.echo(f"wrote {out} ({len(table):,} rows)", err=True)


@click.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@out_option("report.html or report.xlsx")
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
@force_option("the report file")
@quiet_option
def report_cmd(
    results: Path,
    out: Path,
    fmt: str | None,
    lang: str | None,
    compare: Path | None,
    force: bool,
    quiet: bool,
) -> None:
    """The health-check report: one offline HTML file with maps, or the Excel reporting tables."""
    from cityos.report import write_report

    write_report(results, out, fmt=fmt, lang=lang, compare=compare, force=force)  # type: ignore[arg-type]
    if not quiet:
        click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", err=True)
