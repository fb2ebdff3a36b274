"""Benchmark of lifeline ingest: 10,000 methane datastreams (rules on every one) against
``cityos serve --mqtt`` on SQLite and on PostgreSQL, with a real mosquitto.

* **HTTP batch burst**: a simulated hour in minutes — each minute's 10,000 readings as ten
  ``CreateObservations`` requests of 1,000, from 4 concurrent clients; observations per second
  (target ≥ 5,000 on SQLite). The floor: the same requests against a bare FastAPI endpoint that
  parses the JSON and returns 201, in the same run.
* **MQTT sustained**: one reading per datastream per simulated minute published at QoS 1 as
  fast as the broker takes them; observations stored per second.
* **Publish → alert**: 200 readings that cross the red threshold, published one at a time; the
  latency from publishing to the alert's ``detect`` step stored by the server (same clock).

    .venv/bin/python benchmarks/bench_lifelines.py            # about 6 minutes on 2 cores
    .venv/bin/python benchmarks/bench_lifelines.py --quick    # SQLite only, fewer minutes
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_ops import toy_city  # noqa: E402
from tests.mqtt import mosquitto_broker  # noqa: E402
from tests.pg import fresh_database, throwaway_cluster  # noqa: E402
from tests.web.conftest import free_port, start, toy_point  # noqa: E402

STREAMS = 10_000
BATCH = 1_000
CLIENTS = 4
#: the first simulated minute; set per store so its readings end at the clock (older ones would
#: be sensors silent for 3 intervals to the service's sweep, not live ingest)
T0 = dt.datetime(2026, 12, 1, 0, 0)

FLOOR_APP = """
import json
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
app = FastAPI()
@app.post("/sta/v1.1/CreateObservations")
async def floor(request: Request):
    body = json.loads(await request.body())
    return JSONResponse([f"Observations({i})" for g in body for i, _ in enumerate(g["dataArray"])], status_code=201)
"""


def register(db: str) -> None:
    """10,000 Things, each a well with a methane Datastream, written in bulk."""
    from sqlalchemy import insert

    from cityos.lifelines.models import (
        StaDatastream,
        StaLocation,
        StaObservedProperty,
        StaSensor,
        StaThing,
        thing_locations,
    )
    from cityos.ops.store import connect

    engine = connect(db)
    rng = np.random.default_rng(5)
    with engine.begin() as conn:
        conn.execute(
            insert(StaSensor).values(
                id=1, name="CH4", description="", encoding_type="text/plain", metadata="m"
            )
        )
        conn.execute(
            insert(StaObservedProperty).values(
                id=1, name="methane", definition="CH4", description=""
            )
        )
        things, locs, links, streams = [], [], [], []
        for i in range(1, STREAMS + 1):
            lon, lat = toy_point(float(rng.uniform(0, 1000)), float(rng.uniform(-100, 300)))
            geo = json.dumps({"type": "Point", "coordinates": [lon, lat]})
            things.append(
                {
                    "id": i,
                    "name": f"W-{i}",
                    "description": "",
                    "units": json.dumps({"community": "C1"}),
                }
            )
            locs.append(
                {
                    "id": i,
                    "name": f"well {i}",
                    "description": "",
                    "encoding_type": "application/geo+json",
                    "location": geo,
                    "minx": lon,
                    "miny": lat,
                    "maxx": lon,
                    "maxy": lat,
                }
            )
            links.append({"thing_id": i, "location_id": i})
            streams.append(
                {
                    "id": i,
                    "name": f"W-{i} CH4",
                    "description": "",
                    "observation_type": "OM_Measurement",
                    "unit_of_measurement": json.dumps(
                        {"name": "%LEL", "symbol": "%LEL", "definition": ""}
                    ),
                    "thing_id": i,
                    "sensor_id": 1,
                    "observed_property_id": 1,
                    "reporting_interval_s": 60.0,
                }
            )
        conn.execute(insert(StaThing), things)
        conn.execute(insert(StaLocation), locs)
        conn.execute(insert(thing_locations), links)
        conn.execute(insert(StaDatastream), streams)
    engine.dispose()


def minute_batches(minute: int) -> list[list[dict[str, object]]]:
    """A simulated minute: one low reading per datastream, in requests of BATCH readings."""
    when = (T0 + dt.timedelta(minutes=minute)).isoformat() + "Z"
    groups = [{"Datastream": {"@iot.id": i}, "components": ["phenomenonTime", "result"],
               "dataArray": [[when, 2.0 + (i % 7) * 0.1]]} for i in range(1, STREAMS + 1)]  # fmt: skip
    return [groups[k : k + BATCH] for k in range(0, len(groups), BATCH)]


async def burst(base: str, key: str, minutes: int) -> float:
    """Observations per second of ``minutes`` simulated minutes over HTTP batch."""
    requests = [b for m in range(minutes) for b in minute_batches(m)]
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)

    async def client(c: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            r = await c.post(
                f"{base}/sta/v1.1/CreateObservations", json=body, headers={"X-API-Key": key}
            )
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as c:
        await asyncio.gather(*(client(c) for _ in range(CLIENTS)))
    return len(requests) * BATCH / (time.perf_counter() - t0)


def mqtt_sustained(base: str, broker: str, minute0: int, minutes: int) -> float:
    """Observations stored per second when a minute of readings is published per step."""
    import paho.mqtt.client as mqtt

    host, port = broker.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    client.loop_start()
    before = httpx.get(f"{base}/api/v1/ingest").json()["mqtt"]["stored"]
    total = minutes * STREAMS
    t0 = time.perf_counter()
    for m in range(minute0, minute0 + minutes):
        when = (T0 + dt.timedelta(minutes=m)).isoformat() + "Z"
        for i in range(1, STREAMS + 1):
            client.publish(f"v1.1/Datastreams({i})/Observations",
                           json.dumps({"result": 2.0, "phenomenonTime": when}), qos=1)  # fmt: skip
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        stored = httpx.get(f"{base}/api/v1/ingest").json()["mqtt"]["stored"] - before
        if stored >= total:
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return total / seconds


def latency(base: str, broker: str, db: str, minute: int, n: int = 200) -> tuple[float, float]:
    """p50 and p99 seconds from publishing a red reading to its alert's detect step."""
    import paho.mqtt.client as mqtt
    from sqlalchemy import select

    from cityos.lifelines.models import Alert, AlertStep
    from cityos.ops.store import connect

    host, port = broker.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    client.loop_start()
    sent: dict[int, float] = {}
    when = (T0 + dt.timedelta(minutes=minute)).isoformat() + "Z"
    for k in range(n):
        ds = 1 + (k * 37) % STREAMS
        sent[ds] = time.time()
        client.publish(f"v1.1/Datastreams({ds})/Observations",
                       json.dumps({"result": 60.0, "phenomenonTime": when}), qos=1).wait_for_publish()  # fmt: skip
        time.sleep(0.02)
    time.sleep(3)
    client.loop_stop()
    client.disconnect()
    engine = connect(db)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Alert.datastream_id, AlertStep.at).join(AlertStep, AlertStep.alert_id == Alert.id)
            .where(AlertStep.action == "detect", Alert.datastream_id.in_(list(sent)))
        ).all()  # fmt: skip
    engine.dispose()
    lat = [r[1].replace(tzinfo=dt.UTC).timestamp() - sent[r[0]] for r in rows]
    if len(lat) < len(sent):
        raise RuntimeError(f"only {len(lat)} of {len(sent)} readings raised an alert")
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def floor(root: Path, minutes: int) -> float:
    (root / "floor_app.py").write_text(FLOOR_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return asyncio.run(burst(f"http://127.0.0.1:{port}", "", minutes))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def backend(bundle: Path, db: str, broker: str, minutes: int) -> dict[str, float]:
    from cityos.cli import main

    global T0
    T0 = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0) - dt.timedelta(
        minutes=minutes
    )

    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    key = subprocess.run(
        [sys.executable, "-m", "cityos", "keys", "create", "--db", db, "--name", "gw", "--role", "sensor"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    register(db)
    port = free_port()
    proc = start(bundle, db, port, "--mqtt", broker)
    base = f"http://127.0.0.1:{port}"
    try:
        http = asyncio.run(burst(base, key, minutes))
        print(f"  HTTP batch: {http:,.0f} observations/s", flush=True)
        sustained = mqtt_sustained(base, broker, minutes, 1)
        print(f"  MQTT: {sustained:,.0f} observations/s", flush=True)
        p50, p99 = latency(base, broker, db, minutes + 1)
        print(f"  publish → alert: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms", flush=True)
        return {"http": http, "mqtt": sustained, "p50": p50, "p99": p99}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> int:
    quick = "--quick" in sys.argv
    minutes = 3 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = toy_city(root)
        results: dict[str, dict[str, float]] = {}
        print("floor: a bare FastAPI endpoint that parses the batch", flush=True)
        floor_rate = floor(root, minutes)
        # the subscriber's queue at the broker holds a whole minute of readings
        with mosquitto_broker(max_queued=4 * STREAMS) as broker:
            print("SQLite", flush=True)
            results["sqlite"] = backend(bundle, f"sqlite:///{root / 'ops.sqlite'}", broker, minutes)
            if not quick:
                print("PostgreSQL", flush=True)
                with throwaway_cluster() as url:
                    results["postgresql"] = backend(
                        bundle, fresh_database(url, "bench"), broker, minutes
                    )
        print(f"\n{STREAMS:,} datastreams, {minutes} simulated minutes over HTTP batch "
              f"({BATCH:,} per request, {CLIENTS} clients), 1 minute over MQTT (QoS 1)")  # fmt: skip
        print(
            f"{'store':<12}{'HTTP obs/s':>12}{'floor ÷ it':>12}{'MQTT obs/s':>12}{'alert p50 ms':>14}{'p99 ms':>9}"
        )
        print(f"{'floor':<12}{floor_rate:>12,.0f}{1.0:>12.2f}")
        for name, r in results.items():
            print(f"{name:<12}{r['http']:>12,.0f}{floor_rate / r['http']:>12.2f}{r['mqtt']:>12,.0f}"
                  f"{r['p50'] * 1000:>14.0f}{r['p99'] * 1000:>9.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
