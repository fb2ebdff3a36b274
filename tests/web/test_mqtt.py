"""Observations published to a real broker (Debian's mosquitto) with paho-mqtt reach the store
through `cityos serve --mqtt` and fire the rules; malformed messages are counted by reason and
logged, and the subscriber goes on — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from paho.mqtt import publish

from cityos.cli import main
from tests.mqtt import mosquitto_broker
from tests.web.conftest import free_port, start, store_url
from tests.web.test_alerts import C1


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, toy_bundle: Path) -> Iterator[tuple[str, str, str]]:
    db = store_url(request, toy_bundle, f"mqtt_{request.param}")
    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    key = subprocess.run(
        [sys.executable, "-m", "cityos", "keys", "create", "--db", db, "--name", "gw", "--role", "sensor"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with mosquitto_broker() as broker:
        port = free_port()
        proc = start(toy_bundle, db, port, "--mqtt", broker)
        try:
            yield f"http://127.0.0.1:{port}", broker, key
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def wait_for(base: str, messages: int) -> dict[str, object]:
    """The subscriber's counts once it is connected and has handled ``messages`` messages."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = httpx.get(f"{base}/api/v1/ingest").json()["mqtt"]
        handled = stats["stored_messages"] + stats["dropped_total"]
        if stats["connected"] and stats["received"] >= messages and handled >= messages:
            return dict(stats)
        time.sleep(0.1)
    raise AssertionError(f"the subscriber got {stats}")


def test_published_readings_are_stored_and_raise_alerts(served: tuple[str, str, str]) -> None:
    base, broker, key = served
    body = {"name": "W-41", "description": "",
            "Locations": [{"name": "w", "description": "", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": list(C1)}}],
            "Datastreams": [{"name": "CH4", "description": "", "observationType": "OM_Measurement",
                             "unitOfMeasurement": {"name": "%LEL", "symbol": "%LEL", "definition": ""},
                             "Sensor": {"name": "s", "description": "", "encodingType": "text/plain", "metadata": "m"},
                             "ObservedProperty": {"name": "methane", "definition": "CH4", "description": ""}}]}  # fmt: skip
    thing = httpx.post(f"{base}/sta/v1.1/Things", json=body, headers={"X-API-Key": key})
    ds = httpx.get(f"{thing.headers['location']}/Datastreams").json()["value"][0]["@iot.id"]
    wait_for(base, 0)
    host, port = broker.removeprefix("mqtt://").split(":")
    topic = f"v1.1/Datastreams({ds})/Observations"

    def send(t: str, payload: str | bytes) -> None:
        publish.single(t, payload, qos=1, hostname=host, port=int(port))

    send(topic, json.dumps({"result": 30.0, "phenomenonTime": "2026-12-01T08:00:00Z"}))
    send(topic, b"{not json")
    send(topic, json.dumps([{"result": 40.0, "phenomenonTime": "2026-12-01T08:01:00Z"},
                            {"result": 60.0, "phenomenonTime": "2026-12-01T08:02:00Z"}]))  # fmt: skip
    send("v1.1/Datastreams(999999)/Observations", json.dumps({"result": 1.0}))
    stats = wait_for(base, 4)
    assert stats["stored"] == 3 and stats["dropped_total"] == 2
    assert set(stats["dropped"]) == {"payload is not JSON", "no Datastream with @iot.id 999999"}  # type: ignore[arg-type]
    got = httpx.get(
        f"{base}/sta/v1.1/Datastreams({ds})/Observations", params={"$orderby": "phenomenonTime asc"}
    ).json()
    assert [o["result"] for o in got["value"]] == [30.0, 40.0, 60.0]
    (alert,) = [a for a in httpx.get(f"{base}/api/v1/alerts").json() if a["datastream"] == ds]
    assert (alert["max_level"], alert["raised_at"]) == ("red", "2026-12-01T08:00:00Z")
