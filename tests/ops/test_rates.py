"""The three rates, on-time resolution and the composite, worked out by hand on four tickets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityos.errors import ConfigError, InputError
from cityos.ops.rates import load_rate_rule, month_bounds, rates

D = dt.datetime


def frames() -> dict[str, pd.DataFrame]:
    h = dt.timedelta(hours=1)
    tickets = pd.DataFrame({
        "id": [1, 2, 3, 4], "state": ["closed_resolved", "callback", "dispatched", "signed"],
        "department": ["roads", "roads", "water", "roads"], "subdistrict_id": ["S1"] * 4,
        "community_id": ["C1", "C1", "C2", "C2"],
        "requested_at": [D(2026, 11, 2, 10), D(2026, 11, 3, 10), D(2026, 11, 29, 23), D(2026, 10, 30, 9)],
        "due_sign": [D(2026, 11, 3, 10), D(2026, 11, 4, 10), D(2026, 11, 30, 23), D(2026, 10, 31, 9)],
        "due_contact": [D(2026, 11, 3, 10), D(2026, 11, 4, 10), D(2026, 11, 30, 23), D(2026, 10, 31, 9)],
        "due_resolve": [D(2026, 11, 9, 10), D(2026, 11, 10, 10), D(2026, 12, 6, 23), D(2026, 11, 6, 9)],
        "handled_at": [D(2026, 11, 5), D(2026, 11, 12), None, None],
        "closed_at": [D(2026, 11, 7), None, None, None],
        # T1 signed 2 h and contacted 5 h after dispatch; T2 signed 30 h after it; T3 only
        # dispatched; T4 signed in October
        "dispatched_at": [D(2026, 11, 2, 10), D(2026, 11, 3, 10), D(2026, 11, 29, 23), D(2026, 10, 30, 9)],
        "signed_at": [D(2026, 11, 2, 12), D(2026, 11, 3, 10) + 30 * h, None, D(2026, 10, 30, 10)],
        "contacted_at": [D(2026, 11, 2, 15), D(2026, 11, 4, 20), None, None],
        "withdrawn_at": [None] * 4,
    })  # fmt: skip
    calls = pd.DataFrame([
        (1, D(2026, 11, 6), True, True, "满意"), (2, D(2026, 11, 13), True, False, "基本满意"),
        (3, D(2026, 11, 30), False, None, None),
    ], columns=["ticket_id", "at", "reached", "resolved", "satisfaction"])  # fmt: skip
    return {"tickets": tickets, "callbacks": calls}


def test_subdistrict_rates_by_hand() -> None:
    table = rates(frames(), "2026-11", "subdistrict", load_rate_rule())
    got = table.set_index("rate")
    # response: T1 signed and contacted in time; T2 signed 30 h after dispatch (limit 24 h);
    # T3's contact limit (30 Nov) is in November but it is not signed; T4's limit was in October
    assert got.loc["response", ["numerator", "denominator"]].tolist() == [1, 3]
    assert (
        got.loc["response", "tickets"] == "1"
        and got.loc["response", "denominator_tickets"] == "1,2,3"
    )
    assert got.loc["resolution", "percent"] == pytest.approx(
        50.0
    )  # T1 resolved, T2 not; T3 unreached
    assert got.loc["satisfaction", "percent"] == pytest.approx(75.0)  # (1 + 0.5 × 基本满意) ÷ 2
    assert got.loc["callbacks_unreached", ["numerator", "denominator"]].tolist() == [1, 3]
    # on time: T1 handled before its deadline, T2 after; T4 open and overdue; T3 not yet due
    assert got.loc["on_time", ["numerator", "denominator"]].tolist() == [1, 3]
    assert got.loc["on_time", "denominator_tickets"] == "1,2,4"
    assert got.loc["composite", "percent"] == pytest.approx(0.30 * 100 / 3 + 0.35 * 50 + 0.35 * 75)
    assert set(table["group"]) == {"S1"} and set(table["month"]) == {"2026-11"}


def test_department_rates_and_no_data() -> None:
    table = rates(frames(), "2026-11", "department", load_rate_rule())
    water = table[table["group"] == "water"].set_index("rate")
    assert water.loc["response", ["numerator", "denominator"]].tolist() == [0, 1]
    # no callback reached the citizen: no data with the reason, not 0
    assert (
        np.isnan(water.loc["resolution", "percent"]) and water.loc["resolution", "denominator"] == 0
    )
    assert water.loc["resolution", "note"].startswith("no data")
    assert np.isnan(water.loc["composite", "percent"])


def test_read_before_the_months_end_a_limit_still_to_come_does_not_count() -> None:
    # read on 15 November 12:00: T3's contact limit (30 Nov) has not fallen yet, so it is not in
    # the response rate (it may still be answered in time); T1 and T2 are; T4 is open and past
    # its deadline (6 Nov) already, T2 handled late
    table = rates(frames(), "2026-11", "subdistrict", load_rate_rule(), as_of=D(2026, 11, 15, 12))
    got = table.set_index("rate")
    assert got.loc["response", "denominator_tickets"] == "1,2"
    assert got.loc["response", ["numerator", "denominator"]].tolist() == [1, 2]
    assert got.loc["on_time", "denominator_tickets"] == "1,2,4"
    # read on 5 November: T4's deadline (6 Nov) is still to come, so it is not open-overdue
    # (T1 and T2 are handled: in the frames a store read then would not hold T2's handling yet)
    early = rates(frames(), "2026-11", "subdistrict", load_rate_rule(), as_of=D(2026, 11, 5, 12))
    assert early.set_index("rate").loc["on_time", "denominator_tickets"] == "1,2"
    # read on 1 November at 01:00, before any limit fell and any callback: every rate of S1 is no
    # data, and so is its composite — listed, not dropped
    first = rates(frames(), "2026-11", "subdistrict", load_rate_rule(), as_of=D(2026, 11, 1, 1))
    blank = first[first["rate"].isin(["response", "composite"])].set_index("rate")
    assert list(blank.index) == ["composite", "response"] and blank["percent"].isna().all()


def test_a_ticket_merged_or_withdrawn_before_a_limit_was_missed_leaves_the_response_rate(
    tmp_path: Path,
) -> None:
    d0, h = D(2026, 11, 10, 8), dt.timedelta(hours=1)
    sign, contact = d0 + 24 * h, d0 + 48 * h  # limits: sign 24 h, contact 48 h after dispatch
    t = pd.DataFrame({
        "id": [5, 6, 7, 8],
        "state": ["merged_duplicate", "merged_duplicate", "cancelled", "merged_duplicate"],
        "department": ["roads"] * 4, "subdistrict_id": ["S1"] * 4, "community_id": ["C1"] * 4,
        "requested_at": [d0] * 4, "dispatched_at": [d0] * 4, "due_sign": [sign] * 4,
        "due_contact": [contact] * 4, "due_resolve": [d0 + 168 * h] * 4, "handled_at": [None] * 4,
        # T5 merged 3 h in, unsigned; T6 merged 30 h in, never signed (the sign limit passed);
        # T7 signed at 2 h, cancelled at 10 h, not contacted; T8 signed and contacted, merged
        # (a merged ticket closes when its twin does: withdrawn_at is when it was merged)
        "withdrawn_at": [d0 + 3 * h, d0 + 30 * h, d0 + 10 * h, d0 + 20 * h],
        "closed_at": [None, d0 + 50 * h, d0 + 10 * h, None],
        "signed_at": [None, None, d0 + 2 * h, d0 + 2 * h],
        "contacted_at": [None, None, None, d0 + 5 * h],
    })  # fmt: skip
    calls = pd.DataFrame(columns=["ticket_id", "at", "reached", "resolved", "satisfaction"])
    frames_ = {"tickets": t, "callbacks": calls}
    got = rates(frames_, "2026-11", "subdistrict", load_rate_rule()).set_index("rate")
    # T5 and T7 had nothing left to answer; T6 had already missed its sign-off: a failure
    assert got.loc["response", "denominator_tickets"] == "6,8"
    assert got.loc["response", ["numerator", "denominator"]].tolist() == [1, 2]
    # a city that counts every dispatched ticket: no withdrawn states
    every = dataclasses.replace(load_rate_rule(), withdrawn=frozenset())
    got = rates(frames_, "2026-11", "subdistrict", every).set_index("rate")
    assert got.loc["response", "denominator_tickets"] == "5,6,7,8"
    bad = tmp_path / "rates.toml"
    bad.write_text('[response]\nwithdrawn_states = ["dispatched"]\n')
    with pytest.raises(
        ConfigError, match=r"withdrawn_states must be states that end a ticket unhandled"
    ):
        load_rate_rule(bad)


def test_month_format() -> None:
    assert month_bounds("2026-12") == (D(2026, 12, 1), D(2027, 1, 1))
    with pytest.raises(InputError, match="use YYYY-MM"):
        month_bounds("Nov 2026")


def test_reading_a_month_beside_the_service_sees_its_writes(tmp_path: Path) -> None:
    """The rates read the SQLite store in the service's own process, between its writes: each
    read sees the tickets committed before it, and the service's connection still works after
    (a second copy of SQLite in the process, as ADBC's driver bundles, lost the WAL and then
    failed with "disk I/O error")."""
    from sqlalchemy.orm import Session

    from cityos.ops.models import Ticket
    from cityos.ops.rates import read_frames
    from cityos.ops.store import connect, upgrade

    engine = connect(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    upgrade(engine)
    start, end = month_bounds("2026-12")
    t = dt.datetime(2026, 12, 2, 9, 0)

    def add() -> None:
        with Session(engine) as s, s.begin():
            s.add(Ticket(service_code="streetlight", state="received", department="municipal",
                         routing_rule="r", urgency="normal", requested_at=t, updated_at=t,
                         due_sign=t, due_contact=t, due_resolve=t))  # fmt: skip

    with engine.connect() as held:  # the service's pooled connection stays open throughout
        assert len(read_frames(engine, start, end)["tickets"]) == 0
        add()
        assert len(read_frames(engine, start, end)["tickets"]) == 1
        add()
        assert len(read_frames(engine, start, end)["tickets"]) == 2
        assert held.exec_driver_sql("select count(*) from tickets").scalar() == 2
    engine.dispose()
