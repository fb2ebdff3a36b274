"""A live ``cityos serve`` on loopback over a toy city (two communities of known shape), with
one key per role: the third-party clients talk to it as to any city's Open311 server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyproj
import pytest
from playwright.sync_api import Browser, sync_playwright

from cityos.cli import main
from tests.conftest import (
    CHROMIUM,
    MISSING_CATEGORIES,
    TOY_CRS,
    TOY_ORIGIN,
    ToyOsm,
    import_expecting,
    toy_communities,
)

_TO_WGS = pyproj.Transformer.from_crs(TOY_CRS, "EPSG:4326", always_xy=True)


def toy_point(x: float, y: float) -> tuple[float, float]:
    """(lon, lat) of the toy city's (x, y) in metres: C1 is x 0..500, C2 x 500..1000, y −100..300."""
    lon, lat = _TO_WGS.transform(TOY_ORIGIN[0] + x, TOY_ORIGIN[1] + y)
    return float(lon), float(lat)


@dataclass
class Server:
    base: str
    db: str
    keys: dict[str, str]
    proc: subprocess.Popen[bytes]
    bundle: Path

    @property
    def open311(self) -> str:
        return f"{self.base}/open311/v2"

    def post(self, key: str = "intake", **form: object) -> httpx.Response:
        data = {"api_key": self.keys[key], **{k: str(v) for k, v in form.items()}}
        return httpx.post(f"{self.open311}/requests.json", data=data)

    def act(self, ticket: str, action: str, key: str, **body: object) -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/v1/requests/{ticket}/actions/{action}",
            json=body, headers={"X-API-Key": self.keys[key]},
        )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(bundle: Path, db: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """``cityos serve`` in its own process, its log in ``BUNDLE.serve.log``; returns once it
    answers."""
    log = bundle.with_name(bundle.name + ".serve.log")
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cityos", "serve", str(bundle), "--db", db, "--port", str(port), "-q", *extra],
            stdout=sink, stderr=sink, env={**os.environ, "PYTHONWARNINGS": ""},
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cityos serve exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/open311/v2/discovery.json", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("cityos serve did not start within 60 s")


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hotline")
    t = ToyOsm()
    t.street_with_blocks(name="东华门大街")
    osm = t.write(root / "toy.osm")
    units = toy_communities(root / "communities.geojson")
    import_expecting(root / "city", osm=osm, measure_crs=TOY_CRS, units=[("community", units)],
                     expect=[MISSING_CATEGORIES])  # fmt: skip
    return root / "city"


def store_url(request: pytest.FixtureRequest, toy_bundle: Path, name: str) -> str:
    """A fresh store of the backend the test is parametrized with."""
    if request.param == "sqlite":
        return f"sqlite:///{toy_bundle.parent / (name + '.sqlite')}"
    from tests.pg import fresh_database

    return fresh_database(request.getfixturevalue("pg_cluster"), name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, toy_bundle: Path) -> Iterator[Server]:
    db = store_url(request, toy_bundle, f"ops_{request.module.__name__.rsplit('.', 1)[-1]}")
    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    keys = {}
    for name, role in [("intake", "intake"), ("dispatcher", "dispatcher"),
                       ("roads", "department:municipal"), ("water", "department:water"),
                       ("sensor", "sensor"), ("inspector", "inspector"), ("admin", "admin")]:  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "cityos", "keys", "create", "--db", db, "--name", name, "--role", role],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        keys[name] = out
    port = free_port()
    proc = start(toy_bundle, db, port)
    yield Server(f"http://127.0.0.1:{port}", db, keys, proc, toy_bundle)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def webgl() -> Iterator[Browser]:
    """Debian's Chromium with WebGL 2 in software (SwiftShader through ANGLE), as MapLibre needs."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-sync"])  # fmt: skip
        yield b
        b.close()
