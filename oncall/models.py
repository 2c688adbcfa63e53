"""Tables of the rota: rotations, explicit shifts, overrides, calendar tokens, phone codes."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import ForeignKey, Index, String, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utc_now_default
from core.models import User

# Ids are INTEGER columns. URLs carrying an id are bounded by this (`<int(max=...)>`):
# PostgreSQL refuses to compare an integer column with a larger number, which would be a 500
# where a 404 is the answer.
MAX_ID = 2**31 - 1


class Rotation(Base):
    """Operators taking turns at a local hand-over time, daily or weekly, from a start date.

    `province` is NULL for the project-wide coordinator tier.
    """

    __tablename__ = "rotations"
    __table_args__ = (Index("ix_rotations_province_tier", "province", "tier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province: Mapped[str | None] = mapped_column(String(2))
    tier: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(120), default="")
    handover: Mapped[time] = mapped_column(Time)
    period_days: Mapped[int]
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    members: Mapped[list[RotationMember]] = relationship(
        order_by="RotationMember.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    @property
    def operator_ids(self) -> tuple[int, ...]:
        return tuple(m.user_id for m in self.members)


class RotationMember(Base):
    __tablename__ = "rotation_members"

    rotation_id: Mapped[int] = mapped_column(
        ForeignKey("rotations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)

    user: Mapped[User] = relationship(lazy="joined")


class RotaShift(Base):
    """An explicit shift (e.g. a row of an imported rota CSV); wins over rotations."""

    __tablename__ = "rota_shifts"
    __table_args__ = (Index("ix_rota_shifts_lookup", "province", "tier", "start_at", "end_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province: Mapped[str | None] = mapped_column(String(2))
    tier: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class Override(Base):
    """Cover or a swap: one operator for an interval; wins over everything."""

    __tablename__ = "overrides"
    __table_args__ = (Index("ix_overrides_lookup", "province", "tier", "start_at", "end_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province: Mapped[str | None] = mapped_column(String(2))
    tier: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class CalendarToken(Base):
    """A secret, revocable token behind an iCal feed (per operator or per province)."""

    __tablename__ = "calendar_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Only a hash is stored: a database leak must not hand out working feed URLs.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # "operator" | "province"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    province: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]


class PhoneVerification(Base):
    """An SMS code an operator types in their profile to prove the phone is theirs."""

    __tablename__ = "phone_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    verified_at: Mapped[datetime | None]
