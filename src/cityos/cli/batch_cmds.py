"""``cityos batch``: the health check of many cities (a province, the country) in one run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from cityos.cities.table import STEPS
from cityos.cli.options import force_option, out_option, quiet_option, systems_option

__all__ = ["batch_cmd"]


class ByteSize(click.ParamType):  # type: ignore[type-arg]
    """A memory size such as ``6GiB``, ``4GB`` or ``500MB``, as bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from dask.utils import parse_bytes

        try:
            n = int(parse_bytes(str(value)))
        except (ValueError, TypeError):
            self.fail(f"{value!r}: a size such as 6GiB, 4GB or 500MB", param, ctx)
        if n <= 0:
            self.fail(f"{value!r}: give a size above zero", param, ctx)
        return n


@contextmanager
def _client(scheduler: str, workers: int | None, memory: int | None, dashboard: str,
            quiet: bool) -> Iterator[Any]:  # fmt: skip
    """None for ``sequential``; else a Client of a new LocalCluster or of a running scheduler."""
    if scheduler == "sequential":
        yield None
        return
    from distributed import Client

    from cityos.cities.cluster import local_cluster, quiet_interrupt
    from cityos.errors import InputError

    if scheduler == "local":
        with (
            quiet_interrupt(),
            local_cluster(workers, memory, dashboard) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            _show(client, f"local cluster of {len(cluster.workers)} workers", quiet)
            yield client
        return
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise click.BadParameter(
            f"{scheduler!r}: use local, sequential or a scheduler address tcp://HOST:PORT",
            param_hint="--scheduler",
        )
    try:
        client = Client(scheduler, timeout="5s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"{scheduler}: no dask scheduler answers there ({type(exc).__name__}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS --nthreads 1`, or check the "
            "address"
        ) from None
    with quiet_interrupt(), client:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        _show(client, f"scheduler {scheduler} with {n} workers", quiet)
        yield client


def _show(client: Any, what: str, quiet: bool) -> None:
    if not quiet:
        click.echo(f"{what}; dashboard {client.dashboard_link}", err=True)


@click.command("batch")
@click.argument("cities", type=click.Path(path_type=Path))
@out_option("Batch folder: a folder per city and the results across cities.")
@click.option(
    "--scheduler", default="local", show_default=True,
    help="local: a Dask LocalCluster on this machine; sequential: one city after another in this "
    "process, no Dask; or a running dask scheduler's address, tcp://HOST:PORT.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(min=1),
    help="Worker processes of the local cluster (default: the cores, at most 4).",
)  # fmt: skip
@click.option(
    "--memory-limit", type=ByteSize(),
    help="Memory of each local worker, e.g. 6GiB (default: 90% of RAM shared among them). A city "
    "that needs more is recorded as failed.",
)  # fmt: skip
@click.option(
    "--dashboard", default=":8787", show_default=True,
    help="Address of the local cluster's Dask dashboard (:0 for any free port).",
)  # fmt: skip
@click.option(
    "--skip", multiple=True, type=click.Choice(STEPS),
    help="A step to skip for every city (repeatable); its output from the last run is kept.",
)  # fmt: skip
@systems_option("Indicator systems for the cities that set none (default the three built-in).")
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Language of the reports.")
@click.option(
    "--retries", type=click.IntRange(min=0), default=1, show_default=True,
    help="Further attempts of a city after an unexpected error (a broken extract fails at once).",
)  # fmt: skip
@click.option(
    "--resume", is_flag=True,
    help="Run only the cities whose inputs or options changed, that failed, or are missing.",
)  # fmt: skip
@click.option(
    "--settings", type=click.Path(path_type=Path),
    help="A copy of cityos/cities/batch.toml: memory per city, headline indicators.",
)  # fmt: skip
@force_option("the batch folder's cities (each once its new set is complete)")
@quiet_option
def batch_cmd(
    cities: Path, out: Path, scheduler: str, workers: int | None, memory_limit: int | None,
    dashboard: str, skip: Sequence[str], systems: Sequence[str], lang: str | None, retries: int,
    resume: bool, settings: Path | None, force: bool, quiet: bool,
) -> None:  # fmt: skip
    """Run import → checkup → renew → report for every city of CITIES (a CSV, one city per row:
    city_id, name, adcode, osm, units, facilities, registers, population, options) and write
    OUT/<city_id>/ per city, OUT/all_indicators.parquet, OUT/cities.csv and the comparison
    report OUT/comparison.html and .xlsx.

    Exit status 0 when every city finished, 1 when some failed (each is in cities.csv with its
    error), 2 for a problem of the arguments or of CITIES."""
    from cityos.cities.run import batch
    from cityos.cities.table import read_cities

    rows = read_cities(cities)  # every problem of the list before a cluster starts
    steps = [s for s in STEPS if s not in skip]
    with _client(scheduler, workers, memory_limit, dashboard, quiet) as client:
        result = batch(
            rows, out, client, steps=steps, systems=systems, lang=lang, retries=retries,
            resume=resume, force=force, settings_file=settings, quiet=quiet,
        )  # fmt: skip
    n = result.counts()
    failed = [r for r in result.records if r["status"] != "ok"]
    for r in failed:
        step = f" at {r['step']}" if r.get("step") else ""
        click.echo(f"cityos: city {r['city_id']} failed{step}: {r.get('error')}", err=True)
    resumed = f" ({n['resumed']} unchanged, not run again)" if n["resumed"] else ""
    click.echo(
        f"wrote {result.out}: {n['ok']} of {len(result.records)} cities done{resumed}, "
        f"{n['failed']} failed; cities.csv, all_indicators.parquet, comparison.html"
    )
    if failed:
        raise click.exceptions.Exit(1)
