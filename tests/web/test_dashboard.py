"""The dashboard at ``/`` of ``cityos serve BUNDLE --results RESULTS``: its JSON (pinned shape,
values exactly as the results folder holds them), and the page in a real Chromium (Debian's,
WebGL in software) against a live server: the map draws its layers, switching the indicator
recolours the units as their statuses say, and no request leaves loopback. Screenshots are
kept in ``build/test-artifacts/``."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from paho.mqtt import publish
from playwright.sync_api import Browser, Page

import cityos
from cityos.cli import main
from cityos.healthcheck.results import write_results
from cityos.ops.workflow import CLOSED_STATES
from tests.conftest import TOY_CRS, ToyOsm, import_expecting, toy_communities
from tests.mqtt import mosquitto_broker
from tests.web.conftest import free_port, start, toy_point

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
#: the page's status colours and its value ramp's ends (dashboard.js STATUS_COLOUR, RAMP)
STATUSES = {"pass": (0x2E, 0x7D, 0x32), "fail": (0xC6, 0x28, 0x28), "no_data": (0xBD, 0xBD, 0xBD),
            "no_target": (0x90, 0xA4, 0xAE)}  # fmt: skip
RAMP = [(0xFF, 0xF5, 0xEB), (0x7F, 0x27, 0x04)]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy street with a supermarket and a market at x = 0: the walk to B1..B5 is within 500 m, to
    B6..B10 beyond (tests/cities/conftest.py works it out), so C1 passes and C2 fails
    pop_supermarket_500m."""
    root = tmp_path_factory.mktemp("dashboard")
    t = ToyOsm()
    t.street_with_blocks(name="大街")
    t.node(0, 10, shop="supermarket", name="超市")
    t.node(0, 12, amenity="marketplace", name="菜市场")
    import_expecting(root / "city", osm=t.write(root / "toy.osm"), measure_crs=TOY_CRS,
                     units=[("community", toy_communities(root / "c.geojson"))])  # fmt: skip
    return root / "city"


@pytest.fixture(scope="module")
def results(city: Path) -> Path:
    folder = write_results(cityos.checkup(cityos.read_bundle(city)), city.parent / "results")
    cityos.write_priorities(folder)
    return folder


@pytest.fixture(scope="module")
def indicators(results: Path) -> pd.DataFrame:
    return pd.read_parquet(results / "indicators.parquet")


@pytest.fixture(scope="module")
def live(city: Path, results: Path) -> Iterator[str]:
    db = f"sqlite:///{city.parent / 'ops.sqlite'}"
    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    port = free_port()
    proc = start(city, db, port, "--results", str(results))
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def intake(city: Path) -> str:
    """An intake key of the live server's store."""
    db = f"sqlite:///{city.parent / 'ops.sqlite'}"
    return subprocess.run(
        [sys.executable, "-m", "cityos", "keys", "create", "--db", db, "--name", "desk", "--role", "intake"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_map_config(live: str, results: Path) -> None:
    cfg = httpx.get(f"{live}/api/v1/map").json()
    assert cfg["levels"] == ["city", "subdistrict", "community"]  # the check made the upper two
    assert cfg["results"] == str(results)
    assert cfg["tiles"] == "/tiles/{z}/{x}/{y}.mvt" and cfg["maxzoom"] == 16
    assert [layer["id"] for layer in cfg["layers"]] == [
        "units",
        "streets",
        "buildings",
        "facilities",
    ]
    # the data, not the generated units around them: the street x 0..1000 m at y 0 and the
    # footway north from x 500 to y 200
    west, south, east, north = cfg["bounds"]
    assert (west, south) == pytest.approx(toy_point(0, 0), abs=2e-6)
    assert (east, north) == pytest.approx((toy_point(1000, 0)[0], toy_point(500, 200)[1]), abs=2e-6)


def test_indicator_listing_counts_the_results(live: str, indicators: pd.DataFrame, results: Path) -> None:  # fmt: skip
    every = httpx.get(f"{live}/api/v1/map/indicators").json()["indicators"]
    listing = [i for i in every if i["system"] != "renewal"]
    assert len(listing) == indicators.groupby(["system", "level", "indicator_id"]).ngroups
    # the renewal priorities: two scores at each level they rank
    ranked = set(
        pd.read_csv(results / "priorities" / "priorities.csv", encoding="utf-8-sig")["level"]
    )
    assert sorted(
        (i["level"], i["indicator_id"]) for i in every if i["system"] == "renewal"
    ) == sorted((lv, ind) for lv in ranked for ind in ("priority_per_1000", "priority_score"))
    for item in listing:
        rows = indicators[(indicators["system"] == item["system"])
                          & (indicators["indicator_id"] == item["indicator_id"])
                          & (indicators["level"] == item["level"])]  # fmt: skip
        assert item["units"] == len(rows) and item["measured"] == int(rows["value"].notna().sum())
        assert item["status"] == rows["status"].value_counts().to_dict()
        assert item["confirmed"] == bool(rows["confirmed"].all())


def test_indicator_values_as_stored(live: str, indicators: pd.DataFrame) -> None:
    community = indicators[indicators["level"] == "community"]
    measured = community[community["value"].notna()].iloc[0]
    path = f"{measured['system']}/{measured['level']}/{measured['indicator_id']}"
    body = httpx.get(f"{live}/api/v1/map/indicators/{path}").json()
    rows = indicators[(indicators["system"] == measured["system"])
                      & (indicators["indicator_id"] == measured["indicator_id"])
                      & (indicators["level"] == measured["level"])]  # fmt: skip
    assert [u["key"] for u in body["units"]] == [f"community:{i}" for i in rows["unit_id"]]
    # what all units share is said once: here the method, its radius, sources and target
    assert {"method", "radius_m", "sources", "target_source", "unit"} <= set(body["common"])
    assert not set(body["common"]) & {"unit_id", "unit_name", "value", "status"}
    for unit, (_, want) in zip(body["units"], rows.iterrows(), strict=True):
        assert not set(unit) & set(body["common"])
        got = {**body["common"], **unit}
        assert set(got) == {"key", "unit_id", "unit_name", "value", "unit", "target", "target_op",
                            "status", "confirmed", "method", "radius_m", "sources",
                            "target_source", "note", "numerator", "denominator"}  # fmt: skip
        for col in ("value", "target", "radius_m"):
            w = want[col]
            assert got[col] is None if pd.isna(w) else got[col] == float(w)  # full precision
        assert (got["status"], got["method"], got["sources"]) == (
            want["status"],
            want["method"],
            want["sources"],
        )
    values = rows["value"].dropna()
    assert body["range"] == [float(values.min()), float(values.max())]
    nodata = indicators[indicators["status"] == "no_data"].iloc[0]
    path = f"{nodata['system']}/{nodata['level']}/{nodata['indicator_id']}"
    body = httpx.get(f"{live}/api/v1/map/indicators/{path}").json()
    unit = {**body["common"], **next(u for u in body["units"] if u["unit_id"] == nodata["unit_id"])}
    assert unit["value"] is None and unit["status"] == "no_data" and unit["note"] == nodata["note"]


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/v1/map/indicators/mohurd-2024/community/nope", 404, "no indicator 'nope' at level 'community'"),
    ("/tiles/3/9/0.mvt", 400, "tile 3/9/0: x and y must be 0 to 7 at zoom 3"),
    ("/tiles/40/0/0.mvt", 400, "zoom must be 0 to 30"),
])  # fmt: skip
def test_errors_have_reasons(live: str, path: str, status: int, message: str) -> None:
    r = httpx.get(live + path)
    assert r.status_code == status
    assert message in r.json()["error"]["message"]


def test_without_results_the_map_still_draws(city: Path) -> None:
    db = f"sqlite:///{city.parent / 'plain.sqlite'}"
    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    port = free_port()
    proc = start(city, db, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(f"{base}/api/v1/map/indicators").json() == {
            "results": None,
            "indicators": [],
        }
        r = httpx.get(f"{base}/api/v1/map/indicators/a/b/c")
        assert r.status_code == 404 and "--results" in r.json()["error"]["message"]
        assert httpx.get(f"{base}/api/v1/map").json()["levels"] == ["community"]
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "/static/vendor/maplibre-gl/maplibre-gl.js" in page.text
        js = httpx.get(f"{base}/static/vendor/maplibre-gl/maplibre-gl.js")
        assert js.status_code == 200 and "MapLibre GL JS" in js.text[:200]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _colour_at(page: Page, lon: float, lat: float) -> tuple[int, int, int]:
    """The canvas's colour at (lon, lat), read back from WebGL after a render, once the map is
    idle (the tiles of a level just chosen may still be loading: the place would read as
    background)."""
    rgb: list[int] = page.evaluate(
        """([lon, lat]) => new Promise((done) => {
            const map = window.cityos.map;
            const read = () => {
                map.once("render", () => {
                    const p = map.project([lon, lat]);
                    const gl = map.painter.context.gl;
                    const px = new Uint8Array(4);
                    const r = window.devicePixelRatio;
                    gl.readPixels(Math.round(p.x * r), Math.round(gl.drawingBufferHeight - p.y * r),
                                  1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
                    done([px[0], px[1], px[2]]);
                });
                map.triggerRepaint();
            };
            if (map.isStyleLoaded() && map.areTilesLoaded()) read();
            else map.once("idle", read);
        })""",
        [lon, lat],
    )
    return (rgb[0], rgb[1], rgb[2])


def _nearest(rgb: tuple[int, int, int], colours: dict[str, tuple[int, int, int]]) -> str:
    """The name whose colour, at the fill's 60 % over the page's background, is nearest."""
    back = (0xF3, 0xF1, 0xEC)

    def blend(c: tuple[int, int, int]) -> tuple[float, ...]:
        return tuple(0.6 * a + 0.4 * b for a, b in zip(c, back, strict=True))

    return min(colours, key=lambda s: math.dist(blend(colours[s]), rgb))


def _views(indicators: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(system, indicator, status of the city unit) for the city's failing indicator and for
    one the city has no data for."""
    city = indicators[indicators["level"] == "city"]
    picks = [city[city["status"] == "fail"].iloc[0], city[city["status"] == "no_data"].iloc[0]]
    return [(str(r["system"]), str(r["indicator_id"]), str(r["status"])) for r in picks]


def _show(page: Page, system: str, level: str, indicator: str) -> None:
    page.select_option("#system", system)
    page.select_option("#level", level)
    page.select_option("#indicator", indicator)
    page.wait_for_function(
        f"document.body.dataset.choropleth === {f'{system}/{level}/{indicator}'!r}"
    )


def test_the_page_in_chromium(live: str, webgl: Browser, indicators: pd.DataFrame) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = webgl.new_page(viewport={"width": 1200, "height": 800})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live}/?lang=en")
    page.wait_for_function("document.body.dataset.choropleth && window.cityos.map.loaded()",
                           timeout=30_000)  # fmt: skip
    ids = page.evaluate("window.cityos.map.getStyle().layers.map((l) => l.id)")
    assert {"units-fill", "units-line", "units-unconfirmed", "unit-labels", "streets",
            "buildings", "facilities", "green_spaces"} <= set(ids)  # fmt: skip
    assert page.evaluate("window.cityos.map.getZoom()") > 14  # fitted to the 1 km street
    # the first view: the finest level's first indicator measured somewhere
    assert page.evaluate("document.body.dataset.choropleth") == (
        "complete-community/community/pop_supermarket_500m"
    )
    shot = page.screenshot(path=str(ARTIFACTS / "dashboard-first-view.png"))
    assert len(set(np.frombuffer(shot, dtype=np.uint8)[::97])) > 50  # not a blank canvas

    inside = toy_point(750, 250)  # inside C2 and the city, away from streets, blocks, labels
    for system, indicator, status in _views(indicators):
        _show(page, system, "city", indicator)
        state = page.evaluate(
            "window.cityos.map.getFeatureState({source: 'city', sourceLayer: 'units', id: 'city:city'})"
        )
        assert state["status"] == status
        assert _nearest(_colour_at(page, *inside), STATUSES) == status
        page.screenshot(path=str(ARTIFACTS / f"dashboard-city-{indicator}.png"))

    # by value: C1 100 % (the ramp's dark end), C2 0 % (its light end, not no data's grey)
    _show(page, "complete-community", "community", "pop_supermarket_500m")
    page.check('input[name="by"][value="value"]')
    state = page.evaluate(
        "window.cityos.map.getFeatureState({source: 'city', sourceLayer: 'units', id: 'community:C2'})"
    )
    assert state == {"value": 0, "status": "no_target", "confirmed": False, "trend": None}
    ramp = {"top": RAMP[-1], "bottom": RAMP[0], "no_data": STATUSES["no_data"]}
    page.screenshot(path=str(ARTIFACTS / "dashboard-by-value.png"))
    c1 = _colour_at(page, *toy_point(250, 250))
    assert _nearest(c1, ramp) == "top", (
        c1,
        page.evaluate(
            "JSON.stringify(window.cityos.map.getPaintProperty('units-fill', 'fill-color'))"
        ),
    )
    assert _nearest(_colour_at(page, *inside), ramp) == "bottom"

    page.mouse.move(*_screen(page, *inside))
    page.wait_for_selector(".maplibregl-popup-content")
    popup = page.inner_text(".maplibregl-popup-content")
    assert "西社区" in popup and "no target" in popup and "0 %" in popup
    page.mouse.click(*_screen(page, *inside))  # drill down: the unit side by side
    page.wait_for_function("document.body.dataset.detail === 'community:C2'")
    side = page.inner_text("#detail")
    assert "西社区" in side and "Renewal priority" in side and "Hotline tickets" in side
    assert "Housing safety grade C 0 · grade D 0 · inspection overdue 0" in " ".join(side.split())
    assert "Residents within 500 m walk of: supermarket" in side
    page.screenshot(path=str(ARTIFACTS / "dashboard-drill-down.png"))
    # every word follows the language, the selects' "all" options too
    first = "document.querySelector('#%s option').textContent"
    assert page.evaluate(first % "ticket-category") == "all categories"
    assert page.evaluate(first % "problems-system") == "all systems"
    page.click("#lang")
    assert page.evaluate(first % "ticket-category") == "全部类别"
    assert page.evaluate(first % "problems-system") == "全部体系"
    assert page.inner_text("#panel h1") == "一屏观全城"
    assert not errors, errors
    # the page's own server, and what the page made itself (MapLibre's worker as a blob: URL)
    outside = [u for u in requests if not u.startswith((f"{live}/", f"blob:{live}/", "data:"))]
    assert not outside, outside
    assert any("/tiles/" in u for u in requests)
    page.close()


def _screen(page: Page, lon: float, lat: float) -> tuple[float, float]:
    p = page.evaluate("([lon, lat]) => window.cityos.map.project([lon, lat])", [lon, lat])
    return float(p["x"]), float(p["y"])


def test_serve_refuses_a_folder_that_is_not_results(toy_bundle: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cityos", "serve", str(toy_bundle), "--db", f"sqlite:///{tmp_path / 's.sqlite'}",
         "--results", str(tmp_path)], capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"cityos: error: {tmp_path}: not a health-check results folder (no summary.json); run `cityos checkup`"
    ]


def test_a_ticket_comes_on_the_map_within_two_seconds(
    live: str, webgl: Browser, intake: str
) -> None:
    page = webgl.new_page(viewport={"width": 1200, "height": 800})
    page.goto(f"{live}/?lang=en")
    page.wait_for_function("document.body.dataset.tickets !== undefined", timeout=30_000)
    before = int(page.evaluate("document.body.dataset.tickets"))
    lon, lat = toy_point(250, 100)
    r = httpx.post(f"{live}/open311/v2/requests.json", data={
        "api_key": intake, "service_code": "streetlight", "lat": lat, "long": lon,
        "description": "路灯不亮", "first_name": "张", "email": "zhang@example.org"})  # fmt: skip
    assert r.status_code == 200, r.text
    ticket = int(r.json()[0]["service_request_id"])
    page.wait_for_function(f"Number(document.body.dataset.tickets) === {before + 1}", timeout=2000)
    assert "open" in page.inner_text("#live-tickets")
    assert int(page.inner_text("#live-today")) >= 1
    # the subdistricts on this month's three rates, as /api/v1/rates has them; no data as "—"
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    rows = httpx.get(f"{live}/api/v1/rates", params={"month": month, "level": "subdistrict"}).json()
    composite = {r["group"]: r["percent"] for r in rows if r["rate"] == "composite"}
    page.wait_for_function(f"document.body.dataset.rates === '{len(composite)}'")
    shown = page.locator("#rates-table tr[data-group]")
    assert shown.count() == len(composite) >= 1
    for i in range(shown.count()):
        group = shown.nth(i).get_attribute("data-group")
        last = shown.nth(i).locator("td").last.inner_text()
        assert last == ("—" if composite[group] is None else f"{composite[group]:.0f}%")
    page.screenshot(path=str(ARTIFACTS / "dashboard-live-ticket.png"))
    page.close()
    body = httpx.get(f"{live}/api/v1/map/tickets")
    feature = next(f for f in body.json()["features"] if f["id"] == ticket)
    assert feature["geometry"]["coordinates"] == pytest.approx([lon, lat])
    assert set(feature["properties"]) == {"id", "service_code", "state", "phase", "department",
                                          "requested_at"}  # fmt: skip
    assert feature["properties"]["phase"] == "open"
    assert "zhang" not in body.text and "张" not in body.text and "路灯不亮" not in body.text


def test_a_unit_side_by_side(live: str, city: Path, results: Path, indicators: pd.DataFrame,
                             intake: str) -> None:  # fmt: skip
    lon, lat = toy_point(750, 100)  # in C2
    r = httpx.post(f"{live}/open311/v2/requests.json", data={
        "api_key": intake, "service_code": "streetlight", "lat": lat, "long": lon})  # fmt: skip
    assert r.status_code == 200, r.text
    # housing safety: B7 and B8 (x = 650, 750 m: in C2) appraised D a year and a half ago
    # (watched quarterly: overdue) and C today (yearly: not yet); B2 (in C1) D, not C2's
    inspector = {"X-API-Key": _key(f"sqlite:///{city.parent / 'ops.sqlite'}", "inspector")}
    ids = cityos.read_bundle(city).buildings.set_index("name")["building_id"]
    today = dt.datetime.now(dt.UTC).date()
    for name, grade, day in [("B7", "D", today - dt.timedelta(days=550)), ("B8", "C", today),
                             ("B2", "D", today)]:  # fmt: skip
        fields = {
            "inspection_kind": "安全鉴定",
            "inspection_date": day.isoformat(),
            "appraisal_grade": grade,
        }
        r = httpx.post(f"{live}/api/v1/housing/inspections", headers=inspector,
                       json={"building_id": str(ids[name]), "fields": fields})  # fmt: skip
        assert r.status_code == 201, r.text
    body = httpx.get(f"{live}/api/v1/map/units/community/C2").json()
    assert body["name"] == "西社区"
    assert body["housing"] == {"C": 1, "D": 1, "overdue": 1}
    c1 = httpx.get(f"{live}/api/v1/map/units/community/C1").json()["housing"]
    assert c1 == {"C": 0, "D": 1, "overdue": 0}
    rows = indicators[(indicators["level"] == "community") & (indicators["unit_id"] == "C2")]
    assert [i["indicator_id"] for i in body["indicators"]] == rows["indicator_id"].tolist()
    shop = next(i for i in body["indicators"] if i["indicator_id"] == "pop_supermarket_500m")
    assert (shop["value"], shop["status"]) == (0.0, "no_target")
    with sqlite3.connect(city.parent / "ops.sqlite") as conn:  # the store, read independently
        marks = ",".join("?" * len(CLOSED_STATES))
        (open_c2,) = conn.execute(
            f"select count(*) from tickets where community_id = 'C2' and state not in ({marks})",
            sorted(CLOSED_STATES),
        ).fetchone()
    assert open_c2 >= 1 and body["tickets"]["open"] + body["tickets"]["overdue"] == open_c2
    assert body["alerts"] == {}
    ranks = pd.read_csv(results / "priorities" / "priorities.csv", encoding="utf-8-sig")
    community = ranks[ranks["level"] == "community"]
    mine = community[community["unit_id"] == "C2"].iloc[0]
    assert (body["priority"]["rank"], body["priority"]["of"]) == (int(mine["rank"]), len(community))
    missing = httpx.get(f"{live}/api/v1/map/units/community/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no unit 'nowhere' at level 'community'"


def _key(db: str, role: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "cityos", "keys", "create", "--db", db, "--name", role, "--role", role],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def _methane_at_c1(base: str, sensor: str) -> int:
    """A gas well at C1 with one methane Datastream (%LEL); its id."""
    body = {
        "name": "W-1", "description": "",
        "Locations": [{"name": "W-1", "description": "", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": list(toy_point(250, 100))}}],
        "Datastreams": [{"name": "W-1 methane", "description": "", "observationType": "OM_Measurement",
                         "unitOfMeasurement": {"name": "%LEL", "symbol": "%LEL", "definition": ""},
                         "Sensor": {"name": "s", "description": "", "encodingType": "text/plain", "metadata": "m"},
                         "ObservedProperty": {"name": "methane", "definition": "methane", "description": ""}}],
    }  # fmt: skip
    r = httpx.post(f"{base}/sta/v1.1/Things", json=body, headers={"X-API-Key": sensor})
    assert r.status_code == 201, r.text
    return int(httpx.get(f"{r.headers['location']}/Datastreams").json()["value"][0]["@iot.id"])


def test_an_mqtt_reading_raises_a_red_alert_the_page_acknowledges(
    city: Path, results: Path, webgl: Browser, tmp_path: Path
) -> None:
    store = tmp_path / "live.sqlite"
    db = f"sqlite:///{store}"
    assert main(["db", "upgrade", "--db", db, "-q"]) == 0
    sensor, dispatcher = _key(db, "sensor"), _key(db, "dispatcher")
    with mosquitto_broker() as broker:
        port = free_port()
        proc = start(city, db, port, "--results", str(results), "--mqtt", broker)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while not httpx.get(f"{base}/api/v1/ingest").json()["mqtt"]["connected"]:
                assert time.monotonic() < deadline, "the subscriber never connected"
                time.sleep(0.1)
            ds = _methane_at_c1(base, sensor)
            page = webgl.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{base}/?lang=en")
            page.wait_for_function("document.body.dataset.alerts === '0'", timeout=30_000)
            host, mqtt_port = broker.removeprefix("mqtt://").split(":")
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            publish.single(f"v1.1/Datastreams({ds})/Observations",
                           json.dumps({"result": 55.0, "phenomenonTime": now}), qos=1,
                           hostname=host, port=int(mqtt_port))  # fmt: skip
            page.wait_for_function("document.body.dataset.alerts === '1'", timeout=2000)
            item = page.locator("#ticker .alert")
            assert "red" in item.inner_text() and item.get_attribute("data-state") == "detected"
            assert "red 1" in page.inner_text("#live-alerts").replace("\n", " ")
            page.screenshot(path=str(ARTIFACTS / "dashboard-red-alert.png"))
            page.once("dialog", lambda d: d.accept(dispatcher))  # the key, asked for once
            item.locator("button").click()
            page.wait_for_function(
                "document.querySelector('#ticker .alert').dataset.state === 'confirmed'"
            )
            assert page.evaluate("sessionStorage.getItem('cityos-key')") == dispatcher
            page.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    with sqlite3.connect(store) as conn:  # the store, read independently
        assert conn.execute("select level, state from alerts").fetchall() == [("red", "confirmed")]
