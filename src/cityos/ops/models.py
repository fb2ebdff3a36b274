"""The operations store's tables (SQLAlchemy 2 declarative models).

A ticket (工单) is one citizen request; its reporter's personal data live in their own table and
never in public output; every workflow step is an audit row in ``transitions``; API keys are
stored as SHA-256 hashes only. Times are UTC, stored naive as SQLite keeps them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["ApiKey", "Base", "Callback", "Reporter", "Ticket", "Transition"]


class Base(DeclarativeBase):
    """The declarative base of every operations table."""


class Ticket(Base):
    """One citizen request: what, where (point, units at each level, building), who handles it
    (department and the routing rule that chose it), when it is due, and its workflow state."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_code: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(Text)
    address_id: Mapped[str | None] = mapped_column(String(128))
    community_id: Mapped[str | None] = mapped_column(String(128), index=True)
    subdistrict_id: Mapped[str | None] = mapped_column(String(128), index=True)
    city_id: Mapped[str | None] = mapped_column(String(128))
    outside_city: Mapped[bool] = mapped_column(default=False)
    department: Mapped[str] = mapped_column(String(64), index=True)
    routing_rule: Mapped[str] = mapped_column(String(128))
    urgency: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), default="open311")
    attributes: Mapped[str] = mapped_column(Text, default="{}")  # JSON of attribute[CODE] values
    media: Mapped[str | None] = mapped_column(Text)  # stored media file name, EXIF stripped
    media_url: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    likely_duplicate_of: Mapped[int | None] = mapped_column(Integer)
    #: the square (side: the service's duplicate radius, in the city's metres) it lies in
    near_x: Mapped[int | None]
    near_y: Mapped[int | None]
    requested_at: Mapped[dt.datetime] = mapped_column(index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(index=True)
    due_sign: Mapped[dt.datetime]
    due_contact: Mapped[dt.datetime]
    due_resolve: Mapped[dt.datetime]
    #: the current dispatch (the deadlines run from it), its sign-off (签收) and the first
    #: contact with the citizen after it (先行联系); a re-dispatch clears the last two
    dispatched_at: Mapped[dt.datetime | None]
    signed_at: Mapped[dt.datetime | None]
    contacted_at: Mapped[dt.datetime | None]
    handled_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    status_notes: Mapped[str | None] = mapped_column(Text)

    reporter: Mapped[Reporter | None] = relationship(back_populates="ticket", uselist=False)
    transitions: Mapped[list[Transition]] = relationship(
        back_populates="ticket", order_by="Transition.id"
    )

    __table_args__ = (
        Index("ix_tickets_service_state", "service_code", "state"),
        # the duplicate lookup: same service and square, newest first, the filter covered
        Index(
            "ix_tickets_duplicate_lookup",
            "service_code",
            "near_x",
            "near_y",
            "id",
            "state",
            "requested_at",
            "lat",
            "lon",
        ),
    )


class Reporter(Base):
    """The reporter's personal data, apart from the ticket: readable by ``admin`` and the
    handling department only, never in public output."""

    __tablename__ = "reporters"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(200))

    ticket: Mapped[Ticket] = relationship(back_populates="reporter")


class Transition(Base):
    """One workflow step of a ticket: from and to state, the action, who (key name and role),
    when, why, and an optional attachment."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    attachment: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(64))

    ticket: Mapped[Ticket] = relationship(back_populates="transitions")


class Callback(Base):
    """A return call (回访) to the citizen after handling: reached or not, resolved or not, and
    the satisfaction given."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[dt.datetime]
    reached: Mapped[bool]
    resolved: Mapped[bool | None]
    satisfaction: Mapped[str | None] = mapped_column(String(32))


class ApiKey(Base):
    """An API key: its name, role (``intake``, ``dispatcher``, ``department:CODE``, ``admin``),
    the SHA-256 of the key (the key itself is shown once, never stored) and a short prefix to
    recognise it in lists."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class Inspection(Base):
    """One house inspection recorded in the field (the housing-safety register's columns as
    JSON, checked against its schema), who recorded it and when, and its photos."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    building_id: Mapped[str] = mapped_column(String(200))
    inspection_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    event: Mapped[str] = mapped_column(Text)  # JSON: column → value
    photos: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of media names
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_inspections_building_date", "building_id", "inspection_date"),)
