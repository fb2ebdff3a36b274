"""``cityos template`` (survey workbooks for the city's registers) and ``cityos register check``
(a filled register against its schema)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import click

from cityos.cli import options as opt

__all__ = ["register_group", "stock_cmd", "template_cmd"]

#: characters a unit id may keep in a folder name
_SAFE = re.compile(r"[^\w.-]+")


@click.command("template")
@click.argument("bundle", type=click.Path(path_type=Path))
@opt.out_option("Folder for the forms: NAME.xlsx and NAME.csv per register, forms.json.")
@opt.systems_option("Registers these indicator systems read (default: the built-in ones).")
@click.option("--register", "registers", multiple=True,
              help="A register by name (housing, community, subdistrict, city, idle_property) or schema TOML; repeatable.")  # fmt: skip
@click.option("--units", "units", multiple=True, metavar="LEVEL=ID[,ID…]",
              help="Also one set of forms per unit (community=C1,C2): only its buildings or units; repeatable.")  # fmt: skip
@click.option("--country", help="OSM admin_level table for units from OSM boundaries (cn, fi).")
@opt.force_option("the forms folder")
@opt.quiet_option
def template_cmd(bundle: Path, out: Path, systems: Sequence[str], registers: Sequence[str],
                 units: Sequence[str], country: str | None, force: bool, quiet: bool) -> None:  # fmt: skip
    """Survey workbooks for the city's registers, pre-filled with the bundle's buildings or
    units: fill them in, check them (`cityos register check`), give them to the health check
    (`--register NAME=FILE`)."""
    import cityos
    from cityos.outputs import atomic_folder
    from cityos.registers import load_schema, registers_of
    from cityos.registers.template import prefill, write_template
    from cityos.units import admin_level_table

    b = cityos.read_bundle(bundle)
    names = list(registers) or registers_of(opt.systems_or_default(systems))
    schemas = [load_schema(n) for n in names]
    levels = admin_level_table(country) if country else None
    parts: list[tuple[str, str] | None] = [None]
    for spec in units:
        level, _, ids = spec.partition("=")
        if not level or not ids:
            raise click.BadParameter(
                f"{spec!r}: give LEVEL=ID[,ID…], e.g. community=C1", param_hint="--units"
            )
        parts += [(level, i.strip()) for i in ids.split(",") if i.strip()]
    written = []
    with atomic_folder(out, force=force, kind="forms", inputs=[bundle]) as tmp:
        for part in parts:
            folder = tmp if part is None else tmp / (part[0] + "_" + _SAFE.sub("_", part[1]))
            folder.mkdir(exist_ok=True)
            for schema in schemas:
                rows = prefill(schema, b, levels, part)
                write_template(
                    schema, rows, folder / f"{schema.name}.xlsx", folder / f"{schema.name}.csv"
                )
                written.append({"register": schema.name, "name_zh": schema.name_zh, "rows": len(rows),
                                "schema": schema.path, "unit": None if part is None else f"{part[0]}={part[1]}",
                                "folder": str(folder.relative_to(tmp))})  # fmt: skip
                if not quiet and part is None:
                    click.echo(f"{schema.name}: {len(rows):,} rows ({schema.name_zh})", err=True)
        manifest = {"bundle": str(bundle), "registers": written, "cityos": cityos.__version__}
        (tmp / "forms.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    if not quiet:
        click.echo(
            f"wrote {out}: fill the workbooks, then `cityos register check {bundle} NAME=FILE`",
            err=True,
        )


@click.group("register")
def register_group() -> None:
    """The city's registers: check a filled one against its schema, add it to a bundle."""


@register_group.command("add")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("register", type=opt.NamedPath())
@click.option("--country", help="OSM admin_level table for units from OSM boundaries (cn, fi).")
@opt.quiet_option
def add_cmd(bundle: Path, register: tuple[str, Path], country: str | None, quiet: bool) -> None:
    """Add or replace register NAME=FILE in BUNDLE, checked against its schema (refused with the
    first problem when it has errors); the version it replaces is kept with its date."""
    import cityos
    from cityos.registers.check import read_checked
    from cityos.registers.store import add_register
    from cityos.units import admin_level_table

    name, path = register
    b = cityos.read_bundle(bundle)
    table = read_checked(name, path, b, admin_level_table(country) if country else None)
    kept = add_register(b, name, table, path)
    if not quiet:
        click.echo(f"{bundle}: register {name} ({len(table):,} rows)"
                   + (f"; the previous one kept as {kept.relative_to(bundle)}" if kept else ""), err=True)  # fmt: skip


@register_group.command("check")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("register", type=opt.NamedPath())
@click.option("--report", type=click.Path(path_type=Path),
              help="Write every problem (row, column, value, fix) to this .xlsx or .csv.")  # fmt: skip
@click.option("--country", help="OSM admin_level table for units from OSM boundaries (cn, fi).")
@opt.force_option("the report")
@opt.quiet_option
def check_cmd(bundle: Path, register: tuple[str, Path], report: Path | None, country: str | None,
              force: bool, quiet: bool) -> None:  # fmt: skip
    """Check a filled register NAME=FILE against its schema and the bundle's ids; exit 2 when
    it has errors (warnings alone pass)."""
    import cityos
    from cityos.errors import InputError
    from cityos.outputs import check_output_file
    from cityos.registers.check import check_file, write_report
    from cityos.units import admin_level_table

    name, path = register
    if report is not None:
        check_output_file(report, [".xlsx", ".csv"], force=force, inputs=[path, bundle])
    b = cityos.read_bundle(bundle)
    checked = check_file(name, path, b, admin_level_table(country) if country else None)
    if report is not None:
        write_report(checked, report)
    warnings = [p for p in checked.problems if p.severity == "warning"]
    if not quiet:
        for p in checked.problems[:20]:
            click.echo(
                f"{path}: row {p.row}, {p.column} {p.value!r}: {p.problem}; {p.fix} ({p.severity})",
                err=True,
            )
        if len(checked.problems) > 20:
            click.echo(
                f"… and {len(checked.problems) - 20} more" + (f" in {report}" if report else ""),
                err=True,
            )
        if checked.ignored:
            click.echo(
                f"{path}: columns not in the schema, ignored: {', '.join(checked.ignored)}",
                err=True,
            )
    if checked.errors:
        raise InputError(
            f"{path}: {len(checked.errors)} errors, {len(warnings)} warnings in {len(checked.table)} rows"
            + (f"; every one in {report}" if report else "; pass --report FILE for the list")
        )
    if not quiet:
        click.echo(
            f"{path}: {len(checked.table):,} rows, no errors, {len(warnings)} warnings", err=True
        )


@register_group.command("due")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--as-of", "as_of", help="The day to judge by (YYYY-MM-DD; default today).")
@click.option("--rules", type=click.Path(path_type=Path),
              help="Inspection frequency TOML (copy cityos/registers/inspection.toml).")  # fmt: skip
@opt.out_option("due.csv: per building its rule, last periodic inspection, next due, overdue days.")
@opt.force_option("the output file")
@opt.quiet_option
def due_cmd(bundle: Path, as_of: str | None, rules: Path | None, out: Path, force: bool,
            quiet: bool) -> None:  # fmt: skip
    """When each building's next safety inspection is due, from the bundle's housing_safety
    register and the frequency table; the overdue ones first."""
    import datetime as dt

    import cityos
    from cityos.errors import InputError
    from cityos.outputs import check_output_file, write_table
    from cityos.registers.housing import load_inspection_rules, next_due

    check_output_file(out, [".csv"], force=force, inputs=[bundle])
    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise InputError(f"--as-of {as_of!r}: give a date, YYYY-MM-DD") from exc
    b = cityos.read_bundle(bundle)
    if "housing_safety" not in b.registers:
        raise InputError(f"{bundle}: no housing_safety register; add one with "
                         f"`cityos register add {bundle} housing_safety=FILE`")  # fmt: skip
    table = next_due(b.registers["housing_safety"], load_inspection_rules(rules), day)
    table = table.sort_values(["overdue", "days_overdue"], ascending=False, kind="stable")
    write_table(table, out)
    if not quiet:
        click.echo(
            f"wrote {out}: {int(table['overdue'].sum()):,} of {len(table):,} buildings overdue on {day}",
            err=True,
        )


@click.command("stock")
@click.argument("bundle", type=click.Path(path_type=Path))
@opt.out_option("Folder for stock.xlsx and stock.gpkg.")
@click.option("--stock-rules", type=click.Path(path_type=Path),
              help="Stock rules TOML (copy cityos/renewal/stock.toml): what counts as under-used.")  # fmt: skip
@click.option("--country", help="OSM admin_level table for units from OSM boundaries (cn, fi).")
@opt.force_option("the stock folder")
@opt.quiet_option
def stock_cmd(bundle: Path, out: Path, stock_rules: Path | None, country: str | None, force: bool,
              quiet: bool) -> None:  # fmt: skip
    """Take stock (全面摸清底数): per unit the buildings by use and age, floor area, facilities by
    category, green space and residential land, and the under-used building stock."""
    import cityos
    from cityos.outputs import atomic_folder
    from cityos.renewal.candidates import load_stock_rules
    from cityos.stock import take_stock, write_stock
    from cityos.units import admin_level_table

    b = cityos.read_bundle(bundle)
    result = take_stock(
        b, load_stock_rules(stock_rules), admin_level_table(country) if country else None
    )
    with atomic_folder(out, force=force, kind="stock", inputs=[bundle]) as tmp:
        write_stock(result, tmp)
    if not quiet:
        city = result.units["city"].iloc[0]
        click.echo(f"wrote {out}: {int(city['buildings']):,} buildings, {city['floor_area_m2']:,.0f} m² floor, "
                   f"{len(result.under_used):,} under-used", err=True)  # fmt: skip


@register_group.command("export")
@click.option("--db", required=True, help="Store URL of the operations service.")
@click.option("--bundle", type=click.Path(path_type=Path),
              help="Put the bundle's housing_safety register first (the field adds to it).")  # fmt: skip
@opt.out_option("housing_safety.csv or .xlsx: the register, for `cityos register add`.")
@opt.force_option("the output file")
@opt.quiet_option
def export_cmd(db: str, bundle: Path | None, out: Path, force: bool, quiet: bool) -> None:
    """Write the inspections recorded through the service back as the housing_safety register
    (its columns), so the next health check reads them."""
    import pandas as pd

    import cityos
    from cityos.ops.inspections import events_table
    from cityos.ops.store import check_current, connect
    from cityos.outputs import atomic_file, check_output_file

    check_output_file(out, [".csv", ".xlsx"], force=force, inputs=[bundle] if bundle else [])
    engine = connect(db)
    try:
        check_current(engine, db)
        with engine.connect() as conn:
            table = events_table(conn)
    finally:
        engine.dispose()
    recorded = len(table)
    if bundle is not None:
        base = cityos.read_bundle(bundle).registers.get("housing_safety")
        if base is not None:
            table = pd.concat([base.astype(str).reindex(columns=table.columns, fill_value=""), table],
                              ignore_index=True)  # fmt: skip
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".xlsx":
            table.to_excel(tmp, index=False, engine="openpyxl")
        else:
            table.to_csv(tmp, index=False, encoding="utf-8-sig")
    if not quiet:
        click.echo(
            f"wrote {out}: {len(table):,} inspection events ({recorded:,} from the service)",
            err=True,
        )
