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


def new_store(store: str) -> str:
    """Migrate ``store`` and create an intake key on it (through the CLI); returns the key."""
    assert main(["db", "upgrade", "--db", store, "-q"]) == 0
    return subprocess.run(
        [sys.executable, "-m", "cityos", "keys", "create", "--db", store, "--name", "desk", "--role", "intake"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_acknowledged_requests_survive_sigkill(toy_bundle: Path, store: str) -> None:
    key = new_store(store)
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


def test_two_worker_processes_share_one_sqlite_store(toy_bundle: Path) -> None:
    # `cityos serve --workers 2`: two processes, each with its writer; on SQLite their groups
    # take turns on the store's lock file. Four clients at once: every request stored once.
    store = f"sqlite:///{toy_bundle.parent / 'two_workers.sqlite'}"
    key = new_store(store)
    port = free_port()
    proc = start(toy_bundle, store, port, "--workers", "2")
    got: list[list[str]] = [[] for _ in range(4)]

    def post(n: int) -> None:
        lon, lat = toy_point(250, 100)
        with httpx.Client(timeout=30) as client:
            for i in range(25):
                r = client.post(f"http://127.0.0.1:{port}/open311/v2/requests.json", data={
                    "api_key": key, "service_code": "streetlight", "lat": lat,
                    "long": lon + (n * 25 + i) * 1e-6, "description": f"lamp {n}.{i}"})  # fmt: skip
                assert r.status_code == 200, r.text
                got[n].append(r.json()[0]["service_request_id"])

    try:
        children = [
            Path(f"/proc/{c}/cmdline").read_bytes()
            for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        ]
        clients = [threading.Thread(target=post, args=(n,)) for n in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=120)
        ids = [i for g in got for i in g]
        assert len(ids) == 100 and len(set(ids)) == 100
        rows = httpx.get(f"http://127.0.0.1:{port}/open311/v2/requests.json",
                         params={"service_request_id": ",".join(ids)}).json()  # fmt: skip
        assert sorted(r["description"] for r in rows) == sorted(
            f"lamp {n}.{i}" for n in range(4) for i in range(25)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the supervisor's two workers (spawned before it answered), beside its resource tracker
    assert sum(b"spawn_main" in c for c in children) == 2
    assert (toy_bundle.parent / "two_workers.sqlite.writelock").exists()
