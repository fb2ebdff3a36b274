"""House inspections in the field through the service, on SQLite and PostgreSQL: an inspector
records events (checked like a filled register, every bad cell named), attaches a photo whose
EXIF is stripped, reads a building's history and the inspections due; other roles may not
write; `cityos register export` writes the events back as a housing_safety register the health
check reads."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pandas as pd
from PIL import Image

import cityos
from cityos.cli import main
from tests.web.conftest import Server


def post(server: Server, key: str, building: str, **fields: object) -> httpx.Response:
    return httpx.post(f"{server.base}/api/v1/housing/inspections", json={"building_id": building, "fields": fields},
                      headers={"X-API-Key": server.keys[key]})  # fmt: skip


def test_inspections_in_the_field(server: Server, tmp_path: Path) -> None:
    ids = cityos.read_bundle(server.bundle).buildings.set_index("name")["building_id"]
    b1, b2 = str(ids["B1"]), str(ids["B2"])
    r = post(server, "inspector", b1, inspection_kind="定期体检", inspection_date="2019-05-10",
             use="住宅", multi_owner=True, year_built=1990, superstructure="隐患", gas_hazard="是")  # fmt: skip
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["event"]["multi_owner"] == "是" and first["event"]["year_built"] == "1990"
    assert post(server, "inspector", b1, inspection_kind="安全鉴定", inspection_date="2023-06-01",
                appraisal_grade="B", gas_hazard=False).status_code == 201  # fmt: skip
    assert post(server, "inspector", b2, inspection_kind="日常巡查", inspection_date="2026-03-01",
                use="住宅", year_built=1980, envelope="隐患").status_code == 201  # fmt: skip
    # every bad cell at once; other roles may not record
    bad = post(
        server,
        "inspector",
        "osm:nowhere",
        inspection_kind="体检",
        appraisal_grade="E",
        colour="red",
    )
    assert bad.status_code == 400
    message = bad.json()["error"]["message"]
    assert "unknown fields colour" in message and "no building_id 'osm:nowhere'" in message
    assert "检查类型 '体检': not one of the allowed values" in message and "检查日期" in message
    assert (
        post(
            server, "intake", b1, inspection_kind="日常巡查", inspection_date="2026-01-01"
        ).status_code
        == 403
    )
    # a photo: stored re-encoded, without EXIF
    image = Image.new("RGB", (8, 8), (10, 200, 10))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    r = httpx.post(f"{server.base}/api/v1/housing/inspections/{first['id']}/photos",
                   files={"photo": ("wall.jpg", buf.getvalue(), "image/jpeg")},
                   headers={"X-API-Key": server.keys["inspector"]})  # fmt: skip
    assert r.status_code == 201, r.text
    (url,) = r.json()["photos"]
    stored = Image.open(io.BytesIO(httpx.get(url).content))
    assert stored.size == (8, 8) and not stored.getexif()
    # a building's history, oldest first; the dispatcher may read it
    got = httpx.get(f"{server.base}/api/v1/housing/buildings/{b1}/inspections",
                    headers={"X-API-Key": server.keys["dispatcher"]}).json()  # fmt: skip
    assert [e["event"]["inspection_kind"] for e in got] == ["定期体检", "安全鉴定"]
    assert got[0]["photos"] == [url] and got[0]["recorded_by"] == "inspector"
    # due on 2026-12-01: B1 multi-owner housing over 25, 10 years from the 2023 appraisal; B2
    # housing over 30 never inspected periodically: due since 2010-01-01
    due = httpx.get(f"{server.base}/api/v1/housing/due", params={"as_of": "2026-12-01"},
                    headers={"X-API-Key": server.keys["inspector"]}).json()  # fmt: skip
    by = {d["building_id"]: d for d in due}
    assert (by[b1]["rule"], by[b1]["next_due"], by[b1]["overdue"]) == (
        "multi-owner-old",
        "2033-06-01",
        False,
    )
    assert (by[b2]["rule"], by[b2]["next_due"], by[b2]["overdue"]) == (
        "housing-30",
        "2010-01-01",
        True,
    )
    assert due[0]["building_id"] == b2  # overdue first
    # back as the register: it passes the check and the health check reads the flags from it
    out = tmp_path / "housing_safety.csv"
    assert main(["register", "export", "--db", server.db, "--out", str(out), "-q"]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert len(table) == 3 and list(table.columns[:2]) == ["building_id", "building_code"]
    assert main(["register", "check", str(server.bundle), f"housing_safety={out}", "-q"]) == 0
    check = tmp_path / "check"
    assert main(["checkup", str(server.bundle), "--system", "mohurd-2024", "--register",
                 f"housing_safety={out}", "--out", str(check), "-q"]) == 0  # fmt: skip
    ind = pd.read_parquet(check / "indicators.parquet")
    city = ind[ind["level"] == "city"].set_index("indicator_id")
    # B2's façade hazard fails the count (B1's envelope unknown: at least 1); B1 says no
    # structural or gas hazard, B2 nothing: at least 0, which decides nothing (no_data)
    env = city.loc["housing_envelope_hazard"]
    assert (env["value"], env["status"]) == (1.0, "fail")
    for name in ("housing_structural_hazard", "housing_gas_hazard"):
        row = city.loc[name]
        assert row["status"] == "no_data" and "at least 0 栋: 1 register rows blank" in row["note"]
