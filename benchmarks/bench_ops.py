"""Benchmark of the operations service: a mixed load on loopback against ``cityos serve`` on
SQLite and on PostgreSQL, with 10,000 requests pre-loaded, and as the floor the same load against
a bare FastAPI endpoint that returns a constant (same server, same client, same run).

Load: 70 % GET (list of 50 / one request), 25 % POST a request, 5 % workflow actions; a fixed
number of requests from concurrent async clients in a second process. Prints throughput and
p50/p99 latency per backend and the ratio to the floor; then the time of the month's rates for
1,000,000 tickets (read from SQLite and computed).

    .venv/bin/python benchmarks/bench_ops.py            # about 9 minutes on 2 cores
    .venv/bin/python benchmarks/bench_ops.py --quick    # the load only, about 5 minutes
    .venv/bin/python benchmarks/bench_ops.py --rates    # the rates only, about 4 minutes
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cityos  # noqa: E402
from tests.conftest import TOY_CRS, ToyOsm, toy_communities  # noqa: E402
from tests.pg import fresh_database, throwaway_cluster  # noqa: E402
from tests.web.conftest import free_port, start, toy_point  # noqa: E402

REQUESTS = 6000
CONCURRENCY = 16
PRELOAD = 10_000

FLOOR_APP = """
from fastapi import FastAPI
from fastapi.responses import Response
app = FastAPI()
@app.get("/{path:path}")
@app.post("/{path:path}")
async def floor(path: str):
    return Response('[{"service_request_id": "1"}]', media_type="application/json")
"""
#: seconds of wrk load per server
WRK_SECONDS = 20
#: worker processes of each server (and of its floor): one, and one per core of the machine
WORKERS = (1, 2)


def toy_city(root: Path) -> Path:
    t = ToyOsm()
    t.street_with_blocks(name="东华门大街")
    osm = t.write(root / "toy.osm")
    units = toy_communities(root / "communities.geojson")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cityos.import_city(
            root / "city", osm=osm, measure_crs=TOY_CRS, units=[("community", units)]
        )
    return root / "city"


def preload(bundle: Path, db: str, n: int) -> None:
    """``n`` tickets through the hotline's own intake (placed, routed, timed), one session."""
    from sqlalchemy.orm import sessionmaker

    from cityos.ops.hotline import Intake, load_hotline
    from cityos.ops.keys import KeyInfo
    from cityos.ops.store import connect

    hotline = load_hotline(cityos.read_bundle(bundle))
    engine = connect(db)
    key = KeyInfo("preload", "intake")
    rng = random.Random(1)
    with sessionmaker(engine)() as s:
        for i in range(n):
            lon, lat = toy_point(rng.uniform(0, 1000), rng.uniform(-100, 300))
            hotline.create(
                s, Intake("streetlight", lat=lat, lon=lon, description=f"preload {i}"), key
            )
            if i % 1000 == 999:
                s.commit()
        s.commit()
    engine.dispose()


async def load(base: str, keys: dict[str, str], n: int) -> tuple[float, list[float]]:
    """Run ``n`` requests of the mix with CONCURRENCY clients; (seconds, latencies in s)."""
    rng = random.Random(7)
    kinds = rng.choices(["list", "one", "post", "act"], weights=[35, 35, 25, 5], k=n)
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for k in kinds:
        queue.put_nowait(k)
    lon, lat = toy_point(250, 100)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            kind = queue.get_nowait()
            t0 = time.perf_counter()
            if base.endswith("floor"):
                r = await (client.post(base) if kind in ("post", "act") else client.get(base))
            elif kind == "list":
                r = await client.get(
                    f"{base}/open311/v2/requests.json",
                    params={"page_size": 50, "page": rng.randint(1, 100)},
                )
            elif kind == "one":
                r = await client.get(f"{base}/open311/v2/requests/{rng.randint(1, PRELOAD)}.json")
            elif kind == "post":
                r = await client.post(f"{base}/open311/v2/requests.json", data={
                    "api_key": keys["intake"], "service_code": "road_damage", "lat": lat, "long": lon + rng.random() * 1e-3})  # fmt: skip
            else:
                rid = rng.randint(1, PRELOAD)
                r = await client.post(f"{base}/api/v1/requests/{rid}/actions/sign", json={},
                                      headers={"X-API-Key": keys["admin"]})  # fmt: skip
            if r.status_code >= 500:
                raise RuntimeError(f"{kind}: {r.status_code} {r.text[:200]}")
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY)
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0, latencies


def run_load(base: str, keys: dict[str, str]) -> dict[str, float]:
    """The load from a second process: wrk (C, with ``ops_mix.lua``) when installed, else the
    Python client below (slower than the servers it measures: its floor is its own ceiling)."""
    import shutil

    if shutil.which("wrk"):
        lon, lat = toy_point(250, 100)
        env = {**os.environ, "OPS_INTAKE_KEY": keys.get("intake", ""), "OPS_ADMIN_KEY": keys.get("admin", ""),
               "OPS_PRELOAD": str(PRELOAD), "OPS_LAT": f"{lat:.7f}", "OPS_LON": f"{lon:.7f}"}  # fmt: skip
        root = base.removesuffix("/floor")
        out = subprocess.run(
            ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{WRK_SECONDS}s", "--latency", "-s",
             str(REPO / "benchmarks" / "ops_mix.lua"), root],
            check=True, capture_output=True, text=True, env=env,
        ).stdout  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        if result["errors"] or (result["non2xx"] and not base.endswith("floor")):
            print(
                f"  wrk: {result['errors']} socket errors, {result['non2xx']} non-2xx (409s of repeated signs)"
            )
        return {"rps": result["rps"], "p50": result["p50"], "p99": result["p99"], "client": "wrk"}
    code = (
        f"import asyncio, json, sys; sys.path.insert(0, {str(REPO)!r}); "
        "from benchmarks.bench_ops import load; "
        f"s, lat = asyncio.run(load({base!r}, json.loads({json.dumps(keys)!r}), {REQUESTS})); "
        "print(json.dumps([s, lat]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    seconds, lat = json.loads(out.strip().splitlines()[-1])
    lat_ms = np.array(lat) * 1000
    return {
        "rps": len(lat) / seconds,
        "p50": float(np.percentile(lat_ms, 50)),
        "p99": float(np.percentile(lat_ms, 99)),
        "client": "httpx",
    }


def serve_backend(bundle: Path, db: str, workers: int = 1) -> dict[str, float]:
    from cityos.cli import main

    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    keys = {}
    for name, role in (("intake", "intake"), ("admin", "admin")):
        keys[name] = subprocess.run(
            [sys.executable, "-m", "cityos", "keys", "create", "--db", db, "--name", name, "--role", role],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    t0 = time.perf_counter()
    preload(bundle, db, PRELOAD)
    print(f"  preload {PRELOAD:,} requests: {time.perf_counter() - t0:.1f} s", flush=True)
    port = free_port()
    proc = start(bundle, db, port, "--workers", str(workers))
    if workers > 1:  # the first worker answers before the others have their bundle loaded
        time.sleep(3 * workers)
    try:
        return run_load(f"http://127.0.0.1:{port}", keys)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def floor(root: Path, workers: int = 1) -> dict[str, float]:
    app = root / "floor_app.py"
    app.write_text(FLOOR_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"],
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/floor", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        return run_load(f"http://127.0.0.1:{port}/floor", {})
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rates_million(root: Path) -> tuple[float, float]:
    """Seconds to read a month of 1,000,000 tickets and their callbacks from SQLite (which also
    holds their 4,000,000 audit rows), and to compute every rate of the month by subdistrict."""
    from cityos.ops.rates import load_rate_rule, month_bounds, rates, read_frames
    from cityos.ops.store import connect, upgrade

    n = 1_000_000
    rng = np.random.default_rng(3)
    start = dt.datetime(2026, 11, 1)
    req = start + pd.to_timedelta(rng.uniform(0, 29 * 86400, n), unit="s")
    due = req + pd.Timedelta(hours=24)
    tickets = pd.DataFrame({
        "id": np.arange(1, n + 1), "service_code": "streetlight", "state": "closed_resolved",
        "description": None, "lat": 39.9, "lon": 116.4, "address": None, "address_id": None,
        "community_id": rng.integers(0, 3000, n).astype(str), "subdistrict_id": rng.integers(0, 343, n).astype(str),
        "city_id": "city", "outside_city": False, "department": rng.integers(0, 60, n).astype(str),
        "routing_rule": "r", "urgency": "general", "channel": "open311", "attributes": "{}",
        "media": None, "media_url": None, "duplicate_of": None, "likely_duplicate_of": None,
        "requested_at": req, "updated_at": req, "due_sign": due, "due_contact": due,
        "due_resolve": req + pd.Timedelta(days=7), "dispatched_at": req, "signed_at": req + pd.Timedelta(hours=2),
        "contacted_at": req + pd.Timedelta(hours=5),
        "handled_at": req + pd.Timedelta(days=2), "closed_at": req + pd.Timedelta(days=3), "status_notes": None,
    })  # fmt: skip
    steps = []
    for action, offset in (("dispatch", 0), ("sign", 2), ("start", 5), ("handle", 48)):
        steps.append(pd.DataFrame({"ticket_id": tickets["id"], "action": action, "from_state": None, "to_state": action,
                                   "actor": "x", "role": "admin", "at": req + pd.Timedelta(hours=offset),
                                   "reason": None, "attachment": None, "department": tickets["department"]}))  # fmt: skip
    calls = pd.DataFrame({"ticket_id": tickets["id"], "at": req + pd.Timedelta(days=3), "reached": True,
                          "resolved": rng.random(n) < 0.9, "satisfaction": np.where(rng.random(n) < 0.9, "满意", "不满意")})  # fmt: skip
    db = f"sqlite:///{root / 'million.sqlite'}"
    engine = connect(db)
    upgrade(engine)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        tickets.to_sql("tickets", conn, if_exists="append", index=False, chunksize=50_000)
        pd.concat(steps).to_sql(
            "transitions", conn, if_exists="append", index=False, chunksize=50_000
        )
        calls.to_sql("callbacks", conn, if_exists="append", index=False, chunksize=50_000)
    # the bulk load is one transaction, all of it in the WAL; a running service's WAL is
    # checkpointed as it goes (SQLite's auto-checkpoint), so checkpoint once before reading
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(
        f"  loaded 1,000,000 tickets, 4,000,000 transitions, 1,000,000 callbacks in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    t0 = time.perf_counter()
    a, b = month_bounds("2026-11")
    frames = read_frames(engine, a, b)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = rates(frames, "2026-11", "subdistrict", load_rate_rule())
    compute_s = time.perf_counter() - t0
    assert table["group"].nunique() == 343
    engine.dispose()
    return read_s, compute_s


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = toy_city(root)
        if "--rates" in sys.argv:
            read_s, compute_s = rates_million(root)
            print(
                f"\nrates of a month of 1,000,000 tickets: read {read_s:.1f} s + compute {compute_s:.1f} s = {read_s + compute_s:.1f} s"
            )
            return 0
        results: dict[tuple[str, int], dict[str, float]] = {}
        for workers in WORKERS:
            print(
                f"floor: bare FastAPI endpoint returning a constant, {workers} worker(s)",
                flush=True,
            )
            results["floor", workers] = floor(root, workers)
            print(f"SQLite, {workers} worker(s)", flush=True)
            results["sqlite", workers] = serve_backend(
                bundle, f"sqlite:///{root / f'ops{workers}.sqlite'}", workers
            )
        for workers in WORKERS:
            print(f"PostgreSQL, {workers} worker(s)", flush=True)
            with throwaway_cluster() as url:
                results["postgresql", workers] = serve_backend(
                    bundle, fresh_database(url, "bench"), workers
                )
        print(
            f"\nmixed load for {WRK_SECONDS} s per server, {CONCURRENCY} concurrent clients, "
            f"{PRELOAD:,} pre-loaded; the floor of the same number of workers"
        )
        print(
            f"{'server':<12}{'workers':>8}{'client':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'floor ÷ it':>12}"
        )
        for (name, workers), r in results.items():
            ratio = results["floor", workers]["rps"] / r["rps"]
            print(
                f"{name:<12}{workers:>8}{r['client']:>8}{r['rps']:>10,.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}{ratio:>12.2f}"
            )
        if "--quick" in sys.argv:
            return 0
        read_s, compute_s = rates_million(root)
        print(
            f"\nrates of a month of 1,000,000 tickets: read {read_s:.1f} s + compute {compute_s:.1f} s = {read_s + compute_s:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
