"""The application factory of ``cityos serve``: the routers, the store, and errors translated at
one edge — Open311 paths answer in the Open311 error shape (``errors › error`` with ``code`` and
``description``) in the format asked for, the JSON API as ``{"error": {type, message, allowed}}``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from cityos.bundle import read_bundle
from cityos.errors import (
    CityosError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from cityos.lifelines.cap import CapSettings
from cityos.lifelines.lifecycle import load_limits
from cityos.lifelines.monitor import Monitor
from cityos.lifelines.mqtt import IngestStats, claim_client_id, parse_mqtt_url, run_subscriber
from cityos.lifelines.rules import load_rules
from cityos.ops.city import CityModel
from cityos.ops.hotline import load_hotline
from cityos.ops.rates import load_rate_rule
from cityos.ops.store import check_current, connect
from cityos.version import __version__
from cityos.web import alerts, api, dashboard, housing, live, open311, sta, trends
from cityos.web.deps import Ops
from cityos.web.formats import open311_response
from cityos.web.writer import Writer

__all__ = ["SERVE_ENV", "app_from_environment", "create_app", "status_of"]

#: the variable ``cityos serve --workers N`` hands each worker process its arguments in (JSON)
SERVE_ENV = "CITYOS_SERVE"


def status_of(exc: CityosError) -> int:
    """The HTTP status of a cityos error."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, ConflictError):
        return 409
    return 400


def _error(
    request: Request, status: int, message: str, kind: str, allowed: list[str] | None = None
) -> Response:
    path = request.url.path
    if path.startswith("/open311/"):
        fmt = "xml" if path.endswith(".xml") else "json"
        return open311_response(
            fmt, "errors", "error", [{"code": status, "description": message}], status=status
        )
    if path.startswith("/sta/"):  # SensorThings: FROST's error shape
        return JSONResponse(
            {"code": status, "type": "error", "message": message}, status_code=status
        )
    body: dict[str, Any] = {"type": kind, "message": message}
    if allowed is not None:
        body["allowed"] = allowed
    return JSONResponse({"error": body}, status_code=status)


#: datastreams the sweep evaluates in one write
SWEEP_CHUNK = 100


def create_app(
    bundle: str | Path,
    db_url: str,
    *,
    services: str | Path | None = None,
    routing: str | Path | None = None,
    deadlines: str | Path | None = None,
    rates: str | Path | None = None,
    outside: str = "flag",
    workers: int = 1,
    lifeline_rules: str | Path | None = None,
    alert_limits: str | Path | None = None,
    adcode: str | None = None,
    cap_sender: str = "cityos@localhost",
    mqtt: str | None = None,
    sweep_seconds: float = 30.0,
    results: str | Path | None = None,
    previous: str | Path | None = None,
) -> FastAPI:
    """The service over the bundle's city model and the store at ``db_url`` (which must be at
    the newest schema: ``cityos db upgrade``); ``workers``: how many processes serve it;
    ``results``: a health-check folder whose indicators the dashboard at ``/`` draws;
    ``previous``: last year's, for the change."""
    if mqtt:
        parse_mqtt_url(mqtt)  # a bad URL is one line before anything starts
    b = read_bundle(bundle)
    # the hotline's units (grids generated over a million buildings take seconds) are formed on
    # a second thread while the map's tiles load: both run mostly in GEOS, PROJ and DuckDB,
    # which release the GIL
    with ThreadPoolExecutor(max_workers=1) as pool:
        city = pool.submit(CityModel.from_bundle, b)
        map_data = dashboard.load_map(b, results, previous)
        city_model = city.result()
    engine = connect(db_url)
    check_current(engine, db_url)
    hotline = load_hotline(
        b, services=services, routing=routing, deadlines=deadlines, outside=outside,
        media_dir=Path(str(engine.url.database)).with_suffix(".media") if db_url.startswith("sqlite") else None,
        city=city_model,
    )  # fmt: skip
    sessions = sessionmaker(engine, expire_on_commit=False)
    shared = engine.dialect.name == "sqlite" and workers > 1
    writer = Writer(sessions, Path(f"{engine.url.database}.writelock") if shared else None)
    monitor = Monitor(load_rules(lifeline_rules), load_limits(alert_limits))
    ops = Ops(hotline, sessions, engine, load_rate_rule(rates), writer, monitor,
              CapSettings(sender=cap_sender, adcode=adcode),
              frozenset(b.buildings["building_id"].astype(str)), b.registers.get("housing_safety"))  # fmt: skip

    stats = IngestStats() if mqtt else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stack = contextlib.ExitStack()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_sweeper(ops, sweep_seconds, stop))]
        if mqtt and stats is not None:
            store = functools.partial(sta.store_observations, ops)
            client_id, lock = claim_client_id(engine.url.render_as_string(hide_password=True))
            stack.callback(lock.close)
            tasks.append(asyncio.create_task(run_subscriber(mqtt, store, stats, stop, client_id)))
        yield
        stop.set()
        await asyncio.wait(tasks, timeout=30)  # messages being stored are committed, acknowledged
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ops.close()  # on shutdown: the queued writes finish before the process ends
        stack.close()

    app = FastAPI(
        title="cityos operations service",
        version=__version__,
        description="Citizen requests over Open311 GeoReport v2 and the 12345 workflow (接诉即办).",
        lifespan=lifespan,
    )
    app.state.ops = ops
    app.state.map = map_data
    app.state.rates_by_month = {}  # the dashboard's trends: a past month's city rates, read once

    @app.get("/api/v1/ingest", summary="What the MQTT subscriber received, stored and dropped")
    async def ingest() -> dict[str, Any]:
        return {"mqtt": stats.as_json() if stats is not None else None}

    app.include_router(open311.router)
    app.include_router(api.router)
    app.include_router(sta.router)
    app.include_router(alerts.router)
    app.include_router(housing.router)
    app.include_router(dashboard.router)
    app.include_router(live.router)
    app.include_router(trends.router)
    # the page's script and the indicators' JSON shrink about four times; tiles too
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    static = resources.files("cityos.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/media/{name}", include_in_schema=False)
    def media(name: str) -> Response:
        path = hotline.media_dir / Path(name).name
        if not path.is_file():
            raise NotFoundError(f"no media {name}")
        return FileResponse(path)

    @app.exception_handler(CityosError)
    def cityos_error(request: Request, exc: CityosError) -> Response:
        allowed = exc.allowed if isinstance(exc, ConflictError) else None
        return _error(request, status_of(exc), str(exc), type(exc).__name__, allowed)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(request, 400, f"{where}: {first.get('msg')}", "InputError")

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail), "HTTPError")

    return app


async def _sweeper(ops: Ops, every: float, stop: asyncio.Event) -> None:
    """Every ``every`` seconds, look for silent sensors (their readings cannot say so) and raise
    their alerts in writes of :data:`SWEEP_CHUNK` datastreams, so readings are stored between
    them even when a whole district falls silent."""
    log = logging.getLogger("cityos.monitor")
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        if stop.is_set():
            return
        try:
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            ids = await asyncio.to_thread(_silent, ops, now)
            for k in range(0, len(ids), SWEEP_CHUNK):
                chunk = ids[k : k + SWEEP_CHUNK]
                await ops.write(functools.partial(_sweep, ops, now, chunk))
                if stop.is_set():
                    return
        except Exception:  # the sweep must not stop; the next one tries again
            log.exception("the sweep for silent sensors failed")


def _sweep(ops: Ops, now: dt.datetime, ids: list[int], s: Session) -> list[int]:
    return ops.monitor.sweep(s.connection(), now, ids)


def _silent(ops: Ops, now: dt.datetime) -> list[int]:
    with ops.reading() as conn:
        return ops.monitor.silent(conn, now)


def app_from_environment() -> FastAPI:
    """The application of one worker process of ``cityos serve --workers N`` (uvicorn's
    factory), from the arguments the command put in :data:`SERVE_ENV`."""
    args = json.loads(os.environ[SERVE_ENV])
    return create_app(**args)
