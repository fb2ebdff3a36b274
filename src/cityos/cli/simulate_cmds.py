"""``cityos simulate``: a seeded month of operations in a store, and live events while a server
shows it (the living demo)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from cityos.cli import options as opt
from cityos.cli.ops_cmds import db_option

__all__ = ["simulate_cmd"]


def _when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 date-time (2026-12-01T08:00Z)"
        ) from exc
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


@click.command("simulate")
@click.argument("bundle", type=click.Path(path_type=Path))
@db_option
@click.option("--days", type=click.FloatRange(0, 366), default=30.0, show_default=True,
              help="Days of history to write, ending now (0: none, with --live: go on from the store).")  # fmt: skip
@click.option(
    "--seed", type=int, default=0, show_default=True, help="The same seed, the same month."
)
@click.option(
    "--end", "end_text", metavar="DATETIME", help="End of the history (ISO 8601, UTC; default now)."
)
@click.option("--timezone", "timezone_name", default="UTC", show_default=True,
              help="The city's IANA time zone (daily cycle, call-back hours), e.g. Asia/Shanghai.")  # fmt: skip
@click.option("--plan", "plan_path", type=click.Path(path_type=Path),
              help="Distributions TOML merged over the built-in simulate.toml.")  # fmt: skip
@click.option("--live", is_flag=True, help="Then keep feeding live events until Ctrl-C.")
@click.option("--speed", type=click.FloatRange(1, 100000), default=120.0, show_default=True,
              help="--live: how many times faster than the month tickets come and move.")  # fmt: skip
@click.option("--for", "seconds", type=click.FloatRange(0.1), help="--live: stop after SECONDS.")
@opt.force_option("an earlier simulation in the store (never real operations data)")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@opt.quiet_option
def simulate_cmd(
    bundle: Path, db: str, days: float, seed: int, end_text: str | None, timezone_name: str,
    plan_path: Path | None, live: bool, speed: float, seconds: float | None, force: bool,
    as_json: bool, quiet: bool,
) -> None:  # fmt: skip
    """Fill the operations store at --db with a seeded, realistic month on BUNDLE: hotline
    tickets with their workflow, lifeline sensors with readings and the alerts the rules raise,
    house inspections. The distributions and their sources: cityos/simulate/simulate.toml."""
    from cityos.progress import Reporter
    from cityos.simulate import prepare, simulate

    sim = prepare(bundle, db, seed=seed, timezone_name=timezone_name, plan_path=plan_path,
                  force=force, fill=days > 0)  # fmt: skip
    try:
        if days > 0:
            summary = simulate(
                sim, days=days, end=_when(end_text), seed=seed, reporter=Reporter(quiet=quiet)
            )
            if as_json:
                click.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
            elif not quiet:
                t = summary.tickets
                open_ = sum(
                    v
                    for k, v in t.items()
                    if not k.startswith(("closed", "answered", "merged", "cancelled", "rejected"))
                )
                click.echo(
                    f"{db}: {sum(t.values())} tickets ({open_} open), {summary.devices} sensors, "
                    f"{summary.readings:,} readings, {sum(summary.alerts['hazard'].values())} hazard and "
                    f"{sum(summary.alerts['device'].values())} device alerts ({summary.alerts['open']} open, "
                    f"{summary.alerts['work_orders']} with a hotline work order), "
                    f"{summary.inspections} inspections; {summary.start} → {summary.end}, seed {seed}", err=True,
                )  # fmt: skip
        if live:
            from cityos.simulate.live import run_live

            if not quiet:
                click.echo(
                    f"live: feeding {db} ({speed:g}× the month's pace); Ctrl-C stops", err=True
                )
            counts = run_live(sim, speed=speed, seconds=seconds,
                              on_event=(lambda m: None) if quiet else (lambda m: click.echo(f"  {m}", err=True)))  # fmt: skip
            if not quiet:
                click.echo(f"live: {counts['tickets']} tickets, {counts['steps']} steps, "
                           f"{counts['readings']} readings, {counts['spikes']} spikes", err=True)  # fmt: skip
    finally:
        sim.engine.dispose()
