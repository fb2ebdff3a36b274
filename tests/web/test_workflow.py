"""The 12345 workflow over the JSON API of a live server: every step an audit row, actions only
from the states and by the roles the table allows (409 and 403 otherwise), extensions move the
deadline, returns re-dispatch, merged duplicates close with their primary, and the reporter's
contact data reach only admin and the handling department."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from cityos.errors import ConfigError
from cityos.ops.store import connect
from cityos.web.app import create_app
from tests.web.conftest import Server, toy_point

C1 = toy_point(250, 100)


def new(server: Server, code: str = "road_damage", **extra: object) -> str:
    r = server.post(service_code=code, lat=C1[1], long=C1[0], **extra)
    assert r.status_code == 200, r.text
    return str(r.json()[0]["service_request_id"])


def test_full_life_of_a_ticket(server: Server) -> None:
    rid = new(server, description="人行道砖松动", first_name="王", phone="13900000000")
    steps = [
        ("sign", "roads", {}), ("start", "roads", {"reason": "called the citizen"}),
        ("request_extension", "roads", {"reason": "needs a contractor"}),
    ]  # fmt: skip
    for action, who, body in steps:
        r = server.act(rid, action, who, **body)
        assert r.status_code == 200, r.text
    due_before = dt.datetime.fromisoformat(r.json()["due"]["resolve"].replace("Z", "+00:00"))
    until = (due_before + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = server.act(rid, "approve_extension", "dispatcher", until=until, reason="contractor booked")
    assert r.json()["due"]["resolve"] == until and r.json()["state"] == "in_progress"
    assert server.act(rid, "handle", "roads", reason="paved again").json()["state"] == "handled"
    r = server.act(rid, "call_back", "intake", reached=True, resolved=True, satisfaction="满意")
    assert r.json()["state"] == "callback"
    view = server.act(rid, "close_resolved", "intake").json()
    assert view["state"] == "closed_resolved" and view["public"]["status"] == "closed"
    assert [t["action"] for t in view["transitions"]] == [
        "receive", "dispatch", "sign", "start", "request_extension", "approve_extension", "handle",
        "call_back", "close_resolved",
    ]  # fmt: skip
    assert [t["actor"] for t in view["transitions"]][2:4] == ["roads", "roads"]
    assert view["transitions"][5]["reason"] == "contractor booked"
    assert set(view["seconds_in_state"]) >= {"dispatched", "signed", "in_progress", "handled"}
    assert view["allowed_actions"] == []
    assert view["public"]["status_notes"] == "paved again"


def test_not_allowed_from_the_state_is_409_with_the_allowed(server: Server) -> None:
    rid = new(server)
    r = server.act(rid, "handle", "roads")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["type"] == "ConflictError" and err["allowed"] == [
        "sign",
        "request_return",
        "merge",
        "cancel",
    ]
    assert "is dispatched: handle is not allowed" in err["message"]


@pytest.mark.parametrize(
    ("action", "who", "needs"),
    [("sign", "water", "department for municipal"), ("sign", "intake", "department"),
     ("dispatch", "roads", "dispatcher")],
)  # fmt: skip
def test_wrong_role_is_403(server: Server, action: str, who: str, needs: str) -> None:
    rid = new(server)
    r = server.act(rid, action, who)
    assert r.status_code == 403 and needs in r.json()["error"]["message"]
    view = httpx.get(
        f"{server.base}/api/v1/requests/{rid}", headers={"X-API-Key": server.keys["admin"]}
    ).json()
    assert view["state"] == "dispatched" and len(view["transitions"]) == 2  # nothing recorded


def test_no_or_revoked_key_is_403(server: Server, tmp_path: Path) -> None:
    rid = new(server)
    assert (
        httpx.post(f"{server.base}/api/v1/requests/{rid}/actions/sign", json={}).status_code == 403
    )
    bad = httpx.post(
        f"{server.base}/api/v1/requests/{rid}/actions/sign",
        json={},
        headers={"X-API-Key": "cos_wrong"},
    )
    assert bad.status_code == 403 and bad.json()["error"]["type"] == "ForbiddenError"


def test_return_re_dispatches_to_another_department(server: Server) -> None:
    rid = new(server)
    signed = server.act(rid, "sign", "roads").json()["times"]
    assert signed["signed"] is not None and signed["dispatched"] is not None
    assert (
        server.act(rid, "request_return", "roads", reason="属地不符: a water main").status_code
        == 200
    )
    r = server.act(rid, "approve_return", "dispatcher")
    assert r.status_code == 400 and "give the new department" in r.json()["error"]["message"]
    view = server.act(rid, "approve_return", "dispatcher", department="water").json()
    assert (
        view["state"] == "dispatched"
        and view["department"] == "water"
        and view["routing_rule"] == "manual"
    )
    # the new dispatch starts its own clock: roads' sign-off no longer counts for its response
    assert view["times"]["signed"] is None and view["times"]["dispatched"] >= signed["signed"]
    assert server.act(rid, "sign", "roads").status_code == 403
    assert server.act(rid, "sign", "water").json()["times"]["signed"] is not None


def test_merged_duplicates_close_with_their_primary(server: Server) -> None:
    primary, dup = new(server, code="streetlight"), new(server, code="streetlight")
    merged = server.act(dup, "merge", "dispatcher", into=int(primary)).json()
    assert merged["state"] == "merged_duplicate" and merged["public"]["status"] == "open"
    for action, who, body in [("sign", "roads", {}), ("handle", "roads", {}),
                              ("call_back", "intake", {"reached": True, "resolved": True}),
                              ("close_resolved", "intake", {})]:  # fmt: skip
        assert server.act(primary, action, who, **body).status_code == 200
    after = httpx.get(f"{server.open311}/requests/{dup}.json?extensions=true").json()[0]
    assert (
        after["status"] == "closed"
        and after["extended_attributes"]["parent_service_request_id"] == primary
    )
    assert "closed with request" in after["status_notes"]


def test_reporter_data_only_for_admin_and_the_department(server: Server) -> None:
    rid = new(server, first_name="李", phone="13700000000", email="li@example.cn")
    url = f"{server.base}/api/v1/requests/{rid}/reporter"
    for who in ("admin", "roads"):
        got = httpx.get(url, headers={"X-API-Key": server.keys[who]}).json()
        assert got["phone"] == "13700000000" and got["first_name"] == "李"
    for who in ("intake", "dispatcher", "water"):
        assert httpx.get(url, headers={"X-API-Key": server.keys[who]}).status_code == 403
    public = httpx.get(f"{server.open311}/requests/{rid}.xml?extensions=true").text
    view = httpx.get(
        f"{server.base}/api/v1/requests/{rid}", headers={"X-API-Key": server.keys["admin"]}
    ).text
    for text in (public, view):
        assert "13700000000" not in text and "li@example.cn" not in text and "李" not in text


def test_the_server_refuses_an_out_of_date_store(server: Server, tmp_path: Path) -> None:
    from alembic import command

    from cityos.ops.store import _config, head_revision, upgrade

    empty = f"sqlite:///{tmp_path / 'new.sqlite'}"
    with pytest.raises(
        ConfigError, match=r"is empty, this cityos needs \d+; run `cityos db upgrade --db "
    ):
        create_app(server.bundle, empty)
    old = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = connect(old)
    cfg = _config(engine)
    with engine.begin() as conn:  # a store left at the first revision by an older cityos
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with pytest.raises(
        ConfigError, match=f"at schema revision 0001, this cityos needs {head_revision()}"
    ):
        create_app(server.bundle, old)
    assert upgrade(engine) == ("0001", head_revision())
    create_app(server.bundle, old)  # now it starts
    engine.dispose()


def test_actions_table_is_published(server: Server) -> None:
    table = {a["action"]: a for a in httpx.get(f"{server.base}/api/v1/actions").json()}
    assert table["sign"]["from"] == ["dispatched"] and table["sign"]["roles"] == ["department"]
    assert table["reissue"]["to"] == "reissued"


def test_rates_of_this_month_list_their_tickets(server: Server) -> None:
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    rid = new(server)
    for action, who, body in [("sign", "roads", {}), ("start", "roads", {}), ("handle", "roads", {}),
                              ("call_back", "intake", {"reached": True, "resolved": True, "satisfaction": "满意"})]:  # fmt: skip
        assert server.act(rid, action, who, **body).status_code == 200
    rows = httpx.get(
        f"{server.base}/api/v1/rates", params={"month": month, "level": "department"}
    ).json()
    roads = {r["rate"]: r for r in rows if r["group"] == "municipal"}
    assert rid in roads["resolution"]["tickets"].split(",")
    assert (
        roads["satisfaction"]["percent"] is not None
        and 0 <= roads["satisfaction"]["percent"] <= 100
    )
    assert rid in roads["on_time"]["tickets"].split(",")
    bad = httpx.get(f"{server.base}/api/v1/rates", params={"month": "November"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InputError"


def test_hotline_rates_command_writes_the_table(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    from cityos.cli import main

    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    rid = new(server)
    assert server.act(rid, "sign", "roads").status_code == 200
    out = tmp_path / "rates.xlsx"
    args = [
        "hotline",
        "rates",
        "--db",
        server.db,
        "--month",
        month,
        "--level",
        "department",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "municipal" in printed and "response" in printed
    assert "% by rule cityos-2026.12 (built-in rates.toml)" in printed
    table = pd.read_excel(out)
    assert set(table["rate"]) >= {"response", "resolution", "satisfaction", "on_time", "composite"}
    assert table["percent"].dropna().between(0, 100).all()
    assert main(args) == 2 and "pass --force" in capsys.readouterr().err
