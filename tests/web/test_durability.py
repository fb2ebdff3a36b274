"""Nothing acknowledged is lost: the server is killed with SIGKILL while a client posts; after a
restart on the same store every request that got a ``service_request_id`` back is there, on
SQLite (WAL, synchronous=FULL) and on PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from cityos.cli import main
from tests.web.conftest import free_port, start, store_url, toy_point


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, toy_bundle: Path) -> str:
    return store_url(
        request, toy_bundle, f"durable_{request.node.name.rsplit('[', 1)[-1].rstrip(']')}"
    )


def test_acknowledged_requests_survive_sigkill(toy_bundle: Path, store: str) -> None:
    assert main(["db", "upgrade", "--db", store, "-q"]) == 0
    key = subprocess.run(
        [sys.executable, "-m", "cityos", "keys", "create", "--db", store, "--name", "desk", "--role", "intake"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    proc = start(toy_bundle, store, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def post() -> None:
        lon, lat = toy_point(250, 100)
        with httpx.Client(timeout=5) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = client.post(f"http://127.0.0.1:{port}/open311/v2/requests.json", data={
                        "api_key": key, "service_code": "streetlight", "lat": lat, "long": lon + i * 1e-6,
                        "description": f"lamp {i}"})  # fmt: skip
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    acknowledged.append(r.json()[0]["service_request_id"])

    worker = threading.Thread(target=post)
    worker.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-stream: a POST may be in flight
    proc.wait(timeout=30)
    stop.set()
    worker.join(timeout=30)
    assert len(acknowledged) >= 50
    port2 = free_port()
    again = start(toy_bundle, store, port2)
    try:
        ids = ",".join(acknowledged)
        got = httpx.get(f"http://127.0.0.1:{port2}/open311/v2/requests.json",
                        params={"service_request_id": ids}).json()  # fmt: skip
        assert {r["service_request_id"] for r in got} == set(acknowledged)
        assert all(r["description"].startswith("lamp ") for r in got)
    finally:
        again.terminate()
        again.wait(timeout=30)
