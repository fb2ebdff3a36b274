"""SensorThings under /sta/v1.1/ against a live server, driven by the unmodified PyPI client
``frost-sta-client``: deep inserts, links, observations, filters (comparison, logical, through
links, spatial), ordering, paging by ``@iot.nextLink``, counts, expansion; keys of role sensor
for writes; Things placed in the city's units; bad input refused with the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import geojson
import httpx
import pytest
from frost_sta_client import (
    Datastream,
    Location,
    Observation,
    ObservedProperty,
    Sensor,
    SensorThingsService,
    Thing,
)
from frost_sta_client.model.ext.unitofmeasurement import UnitOfMeasurement
from frost_sta_client.service.auth_handler import AuthHandler

from tests.conftest import expect_warnings
from tests.web.conftest import Server, toy_point

C1 = toy_point(250, 100)  # inside community C1
C2 = toy_point(750, 100)  # inside community C2


def listing(query: Any) -> Any:
    """``query.list()``: frost-sta-client 1.1.53 builds list URLs with furl's deprecated
    ``pathstr``, a warning asserted here."""
    with expect_warnings(r"DeprecationWarning: furl.pathstr is deprecated"):
        return query.list()


def service(server: Server, key: str = "sensor") -> SensorThingsService:
    return SensorThingsService(f"{server.base}/sta/v1.1",
                               auth_handler=AuthHandler("gateway", server.keys[key]))  # fmt: skip


def gas_thing(sta: SensorThingsService, name: str, where: tuple[float, float]) -> Datastream:
    """A manhole gas detector with its Location, Sensor, ObservedProperty and Datastream."""
    thing = Thing(name=name, description="可燃气体监测 in a manhole", properties={"kind": "manhole"},
                  locations=[Location(name=f"{name} well", description="", encoding_type="application/geo+json",
                                      location=geojson.Point(where))])  # fmt: skip
    sta.create(thing)
    sensor = Sensor(name="CH4 detector", description="catalytic", encoding_type="text/plain",
                    metadata="model X")  # fmt: skip
    sta.create(sensor)
    methane = ObservedProperty(name="methane", definition="http://vocab.nerc.ac.uk/collection/P01/current/MTHAZZ01/",
                               description="methane concentration")  # fmt: skip
    sta.create(methane)
    stream = Datastream(name=f"{name} CH4", description="", observation_type="http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                        unit_of_measurement=UnitOfMeasurement("percent LEL", "%LEL", "ucum:%"),
                        thing=thing, sensor=sensor, observed_property=methane,
                        properties={"reportingInterval": "PT1M"})  # fmt: skip
    sta.create(stream)
    return stream


def test_frost_client_creates_and_reads_back(server: Server) -> None:
    sta = service(server)
    stream = gas_thing(sta, "W-17", C1)
    t0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    for i, value in enumerate([3.0, 12.5, 27.0]):
        sta.create(Observation(result=value, phenomenon_time=(t0 + dt.timedelta(minutes=i)).isoformat(),
                               datastream=stream))  # fmt: skip
    got = listing(sta.observations().query().filter(f"Datastream/id eq {stream.id} and result gt 10")
                  .orderby("phenomenonTime", "DESC"))  # fmt: skip
    assert [o.result for o in got] == [27.0, 12.5]
    assert got.entities[0].phenomenon_time.startswith("2026-12-01T08:02:00")
    one = sta.datastreams().find(stream.id)
    assert one.name == "W-17 CH4" and one.unit_of_measurement.symbol == "%LEL"
    things = listing(sta.things().query().filter("name eq 'W-17'").expand("Datastreams"))
    assert len(things.entities) == 1
    assert [d.name for d in things.entities[0].datastreams] == ["W-17 CH4"]
    # the Thing is placed in the city's units; the observations got the well as their feature
    raw = httpx.get(f"{server.base}/sta/v1.1/Things({things.entities[0].id})").json()
    assert raw["cityos:units"]["community"] == "C1"
    feat = httpx.get(f"{server.base}/sta/v1.1/Observations", params={
        "$filter": f"Datastream/id eq {stream.id}", "$expand": "FeatureOfInterest", "$top": "1"}).json()  # fmt: skip
    assert feat["value"][0]["FeatureOfInterest"]["feature"]["coordinates"] == pytest.approx(
        list(C1)
    )


def test_paging_counting_and_paths(server: Server) -> None:
    sta = service(server)
    stream = gas_thing(sta, "W-18", C2)
    for value in range(5):
        sta.create(
            Observation(
                result=float(value), phenomenon_time="2026-12-01T09:00:00Z", datastream=stream
            )
        )
    first = httpx.get(f"{server.base}/sta/v1.1/Datastreams({stream.id})/Observations",
                      params={"$top": "2", "$count": "true", "$orderby": "result asc"}).json()  # fmt: skip
    assert first["@iot.count"] == 5 and [o["result"] for o in first["value"]] == [0.0, 1.0]
    second = httpx.get(first["@iot.nextLink"]).json()
    assert [o["result"] for o in second["value"]] == [2.0, 3.0]
    last = httpx.get(second["@iot.nextLink"]).json()
    assert [o["result"] for o in last["value"]] == [4.0] and "@iot.nextLink" not in last
    thing = httpx.get(f"{server.base}/sta/v1.1/Datastreams({stream.id})/Thing").json()
    assert thing["name"] == "W-18"
    sel = httpx.get(
        f"{server.base}/sta/v1.1/Things({thing['@iot.id']})", params={"$select": "name"}
    ).json()
    assert sel == {"name": "W-18"}


def test_spatial_filter_is_exact(server: Server) -> None:
    sta = service(server)
    gas_thing(sta, "W-19", C1)
    gas_thing(sta, "W-20", C2)
    west = [toy_point(x, y) for x, y in [(0, -100), (500, -100), (500, 300), (0, 300), (0, -100)]]
    wkt = "POLYGON((" + ", ".join(f"{lon} {lat}" for lon, lat in west) + "))"
    query = {
        "$filter": f"st_within(Locations/location, geography'{wkt}') and startswith(name, 'W-')"
    }
    found = httpx.get(f"{server.base}/sta/v1.1/Things", params=query).json()["value"]
    names = {t["name"] for t in found}
    assert "W-19" in names and "W-20" not in names and "W-17" in names


def test_writes_need_a_sensor_key_and_bad_input_is_refused(server: Server) -> None:
    things = f"{server.base}/sta/v1.1/Things"
    body = {"name": "x", "description": "y"}
    assert httpx.post(things, json=body).status_code == 403
    assert (
        httpx.post(things, json=body, headers={"X-API-Key": server.keys["intake"]}).status_code
        == 403
    )
    headers = {"X-API-Key": server.keys["sensor"]}
    r = httpx.post(f"{server.base}/sta/v1.1/Datastreams", json={"name": "d", "description": "",
                   "observationType": "x", "unitOfMeasurement": {}}, headers=headers)  # fmt: skip
    assert r.status_code == 400 and "Datastream.Thing is required" in r.json()["message"]
    r = httpx.get(things, params={"$filter": "name eq"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert httpx.get(f"{server.base}/sta/v1.1/Widgets").status_code == 404
    r = httpx.post(f"{server.base}/sta/v1.1/Observations", json={"result": 1, "Datastream": {"@iot.id": 999999}},
                   headers=headers)  # fmt: skip
    assert r.status_code == 400 and "no Datastream with @iot.id 999999" in r.json()["message"]


def test_delete_takes_the_datastreams_along(server: Server) -> None:
    sta = service(server)
    stream = gas_thing(sta, "W-21", C1)
    sta.create(Observation(result=1.0, phenomenon_time="2026-12-01T10:00:00Z", datastream=stream))
    thing = httpx.get(f"{server.base}/sta/v1.1/Datastreams({stream.id})/Thing").json()
    sta.delete(sta.things().find(thing["@iot.id"]))
    assert httpx.get(f"{server.base}/sta/v1.1/Datastreams({stream.id})").status_code == 404
    gone = httpx.get(
        f"{server.base}/sta/v1.1/Observations", params={"$filter": f"Datastream/id eq {stream.id}"}
    )
    assert gone.json()["value"] == []
