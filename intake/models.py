"""Tables of intake: sources and their secrets, hand-offs, cases and the case timeline."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from core.crypto import EncryptedText
from core.db import Base, utc_now_default
from core.models import User

DEFAULT_RATE_LIMIT = 120  # authenticated requests per source per minute


# Enumerations of design §4: stable codes other systems send; the UI translates the labels.


class Channel(StrEnum):
    """How a case reached Ali."""

    WEBHOOK = "webhook"
    PHONE = "phone"
    SMS = "sms"
    MANUAL = "manual"


class CaseStatus(StrEnum):
    """Design §3: new → dispatched → accepted → in_contact → outcome → closed."""

    NEW = "new"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_CONTACT = "in_contact"
    PLACED = "placed"
    REFERRED = "referred"
    NOT_PERTINENT = "not_pertinent"
    OUT_OF_AREA = "out_of_area"
    CLOSED = "closed"


class CaseEventKind(StrEnum):
    """Entries of the append-only timeline; later features add their own kinds."""

    CREATED = "created"
    ROUTED = "routed"
    STATUS_CHANGED = "status_changed"
    NOTE = "note"


class Urgency(StrEnum):
    EMERGENCY = "emergency"  # immediate danger, or needs shelter now
    URGENT = "urgent"
    ORDINARY = "ordinary"


class ReporterType(StrEnum):
    PRESUMED_VICTIM = "presumed_victim"
    CITIZEN = "citizen"
    CLIENT = "client"
    LAW_ENFORCEMENT = "law_enforcement"
    SOCIAL_SERVICES = "social_services"
    HEALTH_SERVICES = "health_services"
    NGO = "ngo"
    COMMISSIONE_TERRITORIALE = "commissione_territoriale"
    RECEPTION_CENTRE = "reception_centre"
    OTHER = "other"


class Exploitation(StrEnum):
    SEXUAL = "sexual"
    LABOUR = "labour"
    BEGGING = "begging"
    ILLEGAL_ECONOMIES = "illegal_economies"
    FORCED_MARRIAGE = "forced_marriage"
    OTHER = "other"
    UNKNOWN = "unknown"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    TRANS = "trans"
    NON_BINARY = "non_binary"
    UNKNOWN = "unknown"


class AgeBand(StrEnum):
    CHILD = "0-13"
    ADOLESCENT = "14-17"
    FROM_18 = "18-24"
    FROM_25 = "25-34"
    FROM_35 = "35-49"
    FROM_50 = "50+"
    UNKNOWN = "unknown"


class Minor(StrEnum):
    YES = "yes"
    NO = "no"
    PRESUMED = "presumed"


class Need(StrEnum):
    PRONTA_ACCOGLIENZA = "pronta_accoglienza"
    HEALTH = "health"
    LEGAL = "legal"
    PSYCHOLOGICAL = "psychological"
    INTERPRETER = "interpreter"
    INFORMATION = "information"


class Source(Base):
    """A system allowed to call the hand-off webhook (e.g. `numero-verde`)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    rate_limit: Mapped[int] = mapped_column(default=DEFAULT_RATE_LIMIT)
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)

    secrets: Mapped[list[SourceSecret]] = relationship(
        back_populates="source", order_by="SourceSecret.id", cascade="all, delete-orphan"
    )

    @property
    def active_secrets(self) -> list[SourceSecret]:
        return [secret for secret in self.secrets if secret.retired_at is None]


class SourceSecret(Base):
    """One HMAC secret of a source, with its own key id.

    The secret is encrypted (Fernet), not hashed: verifying an HMAC needs the secret itself.
    A source has one active secret, two while it rotates; a retired one is kept for the record.
    """

    __tablename__ = "source_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]

    source: Mapped[Source] = relationship(back_populates="secrets")


class SourceRateWindow(Base):
    """Requests of a source in its current fixed one-minute window, shared by every worker."""

    __tablename__ = "source_rate_windows"

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    window_start: Mapped[datetime]
    count: Mapped[int]


class CaseSequence(Base):
    """The last case number given per province (or XX) and year; incremented in the case's
    own transaction, so numbers are unique and gapless under concurrency on both databases."""

    __tablename__ = "case_sequences"

    province: Mapped[str] = mapped_column(String(2), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int]


class Case(Base):
    """A person's situation reported to the project; reference `BS-2026-0042`.

    Free text and phone numbers are encrypted at rest; the reference carries no personal data.
    """

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_province_status", "province", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    channel: Mapped[str] = mapped_column(String(12))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    status: Mapped[str] = mapped_column(String(20), default=CaseStatus.NEW.value)
    province: Mapped[str | None] = mapped_column(String(2))
    province_source: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(12))
    reporter_type: Mapped[str | None] = mapped_column(String(30))
    exploitation: Mapped[list[str]] = mapped_column(JSON, default=list)
    person_gender: Mapped[str | None] = mapped_column(String(12))
    person_age_band: Mapped[str | None] = mapped_column(String(8))
    person_minor: Mapped[str | None] = mapped_column(String(8))
    person_nationality: Mapped[str | None] = mapped_column(String(7))
    person_languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    needs: Mapped[list[str]] = mapped_column(JSON, default=list)
    municipality: Mapped[str | None] = mapped_column(EncryptedText)
    caller_phone: Mapped[str | None] = mapped_column(EncryptedText)
    callback_phone: Mapped[str | None] = mapped_column(EncryptedText)
    summary: Mapped[str | None] = mapped_column(EncryptedText)
    received_at: Mapped[datetime]  # when the reporter reached the sender (or Ali, if not given)
    created_at: Mapped[datetime]
    # The primary on call when the case was routed; the dispatch pages them (and escalates).
    routed_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None]

    source: Mapped[Source | None] = relationship()
    routed_to: Mapped[User | None] = relationship(foreign_keys=[routed_to_id])
    accepted_by: Mapped[User | None] = relationship(foreign_keys=[accepted_by_id])


class Handoff(Base):
    """One inbound report, stored once per (source, external_id) with its raw payload."""

    __tablename__ = "handoffs"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(EncryptedText)  # the body exactly as received
    received_at: Mapped[datetime]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)

    case: Mapped[Case | None] = relationship()


class CaseEvent(Base):
    """The append-only timeline of a case: never updated, never deleted."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(80))
    # Ids and codes only; what a person said belongs in an encrypted column, not here.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppendOnlyError(RuntimeError):
    """Something tried to change or delete a case event."""


@event.listens_for(CaseEvent, "before_update")
@event.listens_for(CaseEvent, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _connection: Any, target: CaseEvent) -> None:
    raise AppendOnlyError(f"case event {target.id} is append-only")
