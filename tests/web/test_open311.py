"""Open311 GeoReport v2 against a live ``cityos serve``, through the unmodified PyPI clients
``georeport`` (reads, JSON and XML), ``civicbot`` (POST) and ``chicagorequests`` (paging with
``extensions=true``), plus the wire rules of ../shared/OPEN311.md and the error shape."""

from __future__ import annotations

import datetime as dt
import io
import math
import xml.etree.ElementTree as ET

import httpx
import pytest
from chicagorequests import Downloader
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport
from PIL import Image

from tests.conftest import TOY_ORIGIN
from tests.web.conftest import Server, toy_point

C1 = toy_point(250, 100)  # inside 东社区 (C1)
C2 = toy_point(750, 100)  # inside 西社区 (C2)
FAR = toy_point(50_000, 50_000)  # 70 km away: outside the city


def test_discovery_lists_two_endpoints(server: Server) -> None:
    doc = httpx.get(f"{server.open311}/discovery.json").json()
    assert [e["type"] for e in doc["endpoints"]] == ["production", "test"]
    assert doc["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    xml = httpx.get(f"{server.open311}/discovery.xml")
    assert xml.headers["content-type"] == "text/xml"  # bare, for one old validator
    assert ET.fromstring(xml.content).tag == "discovery"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_reads_services_and_definitions(server: Server, fmt: str) -> None:
    client = GeoReport(server.open311, output_format=fmt)
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert codes[:3] == ["road_damage", "streetlight", "illegal_parking"] and "gas_leak" in codes
    road = next(s for s in services if s["service_code"] == "road_damage")
    assert road["service_name"] == "道路破损"
    definition = client.get_service_definition("noise")
    attrs = definition["attributes"] if fmt == "json" else definition["attributes"]["attribute"]
    attr = attrs[0] if isinstance(attrs, list) else attrs
    assert attr["code"] == "time_of_day" and str(attr["required"]).lower() == "true"


def test_civicbot_posts_and_georeport_reads_it_back(server: Server) -> None:
    bot = Open311Client(Endpoint(id="cityos", name="toy city", base_url=server.open311, write=True))
    sent = bot.create_request(
        "noise", dry_run=False, confirm="SEND", api_key=server.keys["intake"], lat=C2[1], lng=C2[0],
        description="夜间施工噪音", attributes={"time_of_day": "night"}, first_name="张",
        phone="13800000000", email="z@example.cn",
    )  # fmt: skip
    rid = sent.response[0]["service_request_id"]
    assert rid.isdigit()
    for fmt in ("json", "xml"):
        got = GeoReport(server.open311, output_format=fmt).get_service_request(rid)
        assert got["service_code"] == "noise" and got["status"] == "open"
        assert got["agency_responsible"] == "environment"
        assert got["description"] == "夜间施工噪音"
        text = str(got)
        assert "13800000000" not in text and "z@example.cn" not in text and "张" not in text
    listed = GeoReport(server.open311).get_service_requests(service_request_id=rid)
    assert [r["service_request_id"] for r in listed] == [rid]


def test_chicagorequests_pages_with_extensions(server: Server) -> None:
    for i in range(205):  # more than the client's page of 200
        x = 20 + (i % 40) * 10
        r = server.post(
            service_code="streetlight", lat=toy_point(x, -50 - i)[1], long=toy_point(x, -50 - i)[0]
        )
        assert r.status_code == 200, r.text
    Downloader.BASE_URL = f"{server.open311}/requests.json"
    today = dt.datetime.now(dt.UTC)
    got = Downloader(request_type=["streetlight"])(
        (today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    )
    assert len(got) >= 205 and len({r["service_request_id"] for r in got}) == len(got)
    ext = got[0]["extended_attributes"]
    assert ext["detailed_status"] == "IN_PROCESS" and ext["state"] == "dispatched"
    assert got[0]["notes"][0]["description"].startswith("receive: received")


def test_duplicate_is_flagged_at_intake(server: Server) -> None:
    first = server.post(service_code="road_damage", lat=C1[1], long=C1[0]).json()[0]
    near = toy_point(250 + 30, 100)  # 30 m away: within the 50 m radius
    second = server.post(service_code="road_damage", lat=near[1], long=near[0]).json()[0]
    assert (
        f"possible duplicate of request {first['service_request_id']}" in second["service_notice"]
    )
    far = toy_point(250 + 120, 100)
    assert (
        "service_notice"
        not in server.post(service_code="road_damage", lat=far[1], long=far[0]).json()[0]
    )
    one = httpx.get(
        f"{server.open311}/requests/{second['service_request_id']}.json?extensions=true"
    ).json()[0]
    assert one["extended_attributes"]["duplicate"] == first["service_request_id"]


def test_duplicate_across_the_edge_of_a_lookup_square(server: Server) -> None:
    # the lookup reads the 3 × 3 squares (side 50 m, the radius) around a new request: two
    # requests 10 m apart on either side of a square's edge still find each other
    edge = 50 * math.ceil((TOY_ORIGIN[0] + 250) / 50) - TOY_ORIGIN[0]
    west, east = toy_point(edge - 5, 250), toy_point(edge + 5, 250)
    first = server.post(service_code="road_damage", lat=west[1], long=west[0]).json()[0]
    second = server.post(service_code="road_damage", lat=east[1], long=east[0]).json()[0]
    assert f"duplicate of request {first['service_request_id']}" in second["service_notice"]


def test_outside_the_city_is_flagged_and_falls_back(server: Server) -> None:
    r = server.post(service_code="garbage", lat=FAR[1], long=FAR[0]).json()[0]
    assert "outside the city" in r["service_notice"]
    view = httpx.get(f"{server.base}/api/v1/requests/{r['service_request_id']}",
                     headers={"X-API-Key": server.keys["dispatcher"]}).json()  # fmt: skip
    assert view["outside_city"] is True and view["department"] == "district"
    assert view["routing_rule"] == "fallback"


def test_inside_routes_to_the_subdistrict(server: Server) -> None:
    r = server.post(service_code="garbage", lat=C1[1], long=C1[0]).json()[0]
    view = httpx.get(f"{server.base}/api/v1/requests/{r['service_request_id']}",
                     headers={"X-API-Key": server.keys["dispatcher"]}).json()  # fmt: skip
    assert view["units"]["community"] == "C1"
    assert view["department"] == f"subdistrict:{view['units']['subdistrict']}"
    assert view["routing_rule"] == "service-default"


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"service_code": "road_damage", "lat": "95", "long": "116.4"}, 400, "lat 95.0 is outside -90..90"),
        ({"service_code": "spaceport", "lat": "39.9", "long": "116.4"}, 400, "'spaceport' is not a service"),
        ({"service_code": "road_damage"}, 400, "a location is required"),
        ({"service_code": "road_damage", "address_string": "x", "description": "长" * 4001}, 400, "at most 4000"),
        ({"service_code": "noise", "address_string": "x"}, 400, "attribute[time_of_day] is required"),
        ({"service_code": "noise", "address_string": "x", "attribute[time_of_day]": "noon"}, 400, "must be one of day, night"),
        ({"service_code": "road_damage", "lat": "abc", "long": "1"}, 400, "lat 'abc' is not a number"),
    ],
)  # fmt: skip
def test_bad_posts_are_open311_errors(
    server: Server, form: dict[str, str], status: int, message: str
) -> None:
    before = httpx.get(f"{server.open311}/requests.json").json()
    r = server.post(**form)
    assert r.status_code == status
    errors = r.json()
    assert (
        isinstance(errors, list)
        and errors[0]["code"] == status
        and message in errors[0]["description"]
    )
    assert httpx.get(f"{server.open311}/requests.json").json() == before  # nothing half-written


def test_errors_in_xml_and_for_reads(server: Server) -> None:
    r = httpx.post(f"{server.open311}/requests.xml", data={"service_code": "road_damage"})
    assert r.status_code == 403
    error = ET.fromstring(r.content).find("error")
    assert error is not None and error.findtext("code") == "403"
    assert httpx.get(f"{server.open311}/requests/999999.json").status_code == 404
    assert httpx.get(f"{server.open311}/services/nope.xml").status_code == 404
    bad = httpx.get(f"{server.open311}/requests.json", params={"start_date": "yesterday"})
    assert bad.status_code == 400 and "not an ISO 8601" in bad.json()[0]["description"]
    wide = httpx.get(f"{server.open311}/requests.json",
                     params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"})  # fmt: skip
    assert wide.status_code == 400 and "90 days" in wide.json()[0]["description"]


def test_api_key_in_the_query_string_works(server: Server) -> None:
    r = httpx.post(f"{server.open311}/requests.json", params={"api_key": server.keys["intake"]},
                   data={"service_code": "road_damage", "address_string": "王府井大街 1 号"})  # fmt: skip
    assert r.status_code == 200 and r.json()[0]["service_request_id"].isdigit()


def test_photo_exif_is_stripped(server: Server) -> None:
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (39.0, 54.0, 0.0)}  # GPSInfo: latitude
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    assert Image.open(io.BytesIO(buf.getvalue())).getexif()  # the upload carries EXIF
    r = httpx.post(f"{server.open311}/requests.json",
                   data={"api_key": server.keys["intake"], "service_code": "road_damage", "lat": C1[1], "long": C1[0]},
                   files={"media": ("p.jpg", buf.getvalue(), "image/jpeg")})  # fmt: skip
    rid = r.json()[0]["service_request_id"]
    url = httpx.get(f"{server.open311}/requests/{rid}.json").json()[0]["media_url"]
    stored = Image.open(io.BytesIO(httpx.get(url).content))
    assert stored.size == (8, 8) and not stored.getexif() and "exif" not in stored.info
