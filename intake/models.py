"""Tables of intake: sources and their secrets, the hand-offs they sent; enumerations of §4."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.crypto import EncryptedText
from core.db import Base, StrEnumText, utc_now_default
from routing.models import Case

DEFAULT_RATE_LIMIT = 120  # authenticated requests per source per minute


# Enumerations of design §4: stable codes other systems send; the UI translates the labels.


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


class Handoff(Base):
    """One inbound report, stored once per (source, external_id) with its raw payload.

    After retention it is a tombstone: no payload, and the external id replaced by its keyed
    digest (`intake.services.tombstone_id`), so a replay is still answered as a duplicate."""

    __tablename__ = "handoffs"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    # The body exactly as received; None once the retention job removed it.
    payload: Mapped[str | None] = mapped_column(EncryptedText)
    received_at: Mapped[datetime]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)

    case: Mapped[Case | None] = relationship()


class Partner(Base):
    """An organisation that calls or texts the project's number (police, social services, ...).

    Its phones are switchboards and office lines, not victims' numbers: they are stored in clear
    so an inbound call or text can be matched with one indexed lookup.
    """

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[ReporterType] = mapped_column(StrEnumText(ReporterType, 40))
    province: Mapped[str | None] = mapped_column(String(2))  # default province, a sigla
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)

    phones: Mapped[list[PartnerPhone]] = relationship(
        back_populates="partner", order_by="PartnerPhone.phone", cascade="all, delete-orphan"
    )


class PartnerPhone(Base):
    """One known number of a partner, in E.164; a number belongs to one partner only."""

    __tablename__ = "partner_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    phone: Mapped[str] = mapped_column(String(20), unique=True)

    partner: Mapped[Partner] = relationship(back_populates="phones")


class CallOutcome(StrEnum):
    """Where a call to the partner line stands, or how it ended."""

    MENU = "menu"  # greeting or province menu: nobody rung yet
    FORWARDING = "forwarding"  # ringing the on-call chain, one person at a time
    CONNECTED = "connected"  # an operator pressed 1 on the whisper: talking
    RECORDING = "recording"  # nobody accepted: the caller is asked to leave a message
    RECORDED = "recorded"  # a message was left: an urgent case
    MISSED = "missed"  # hung up after the menu, before anyone took it: an urgent case
    ENDED_IN_MENU = "ended_in_menu"  # hung up in the menu: logged, no case


class PartnerCall(Base):
    """One call to the project's number, from the greeting to its end.

    Calls that end in the menu stay here without a case; every other call has one. The
    caller's number is encrypted; the recording stays at Twilio, played only through Ali,
    until the retention job deletes it there.
    """

    __tablename__ = "partner_calls"
    __table_args__ = (Index("ix_partner_calls_recording_deleted_at", "recording_deleted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(40), unique=True)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    caller_phone: Mapped[str | None] = mapped_column(EncryptedText)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(2), default="it")
    province: Mapped[str | None] = mapped_column(String(2))
    province_source: Mapped[str | None] = mapped_column(String(20))
    menu_attempts: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[CallOutcome] = mapped_column(StrEnumText(CallOutcome, 16))
    # The people rung, in order (user ids), and which of them is ringing now.
    chain: Mapped[list[int]] = mapped_column(JSON, default=list)
    attempt: Mapped[int] = mapped_column(default=0)
    # Set only by the operator's keypress 1 on the whisper: a voicemail never sets it.
    connected_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    recording_sid: Mapped[str | None] = mapped_column(String(40), unique=True)
    recording_url: Mapped[str | None] = mapped_column(String(300))
    recording_seconds: Mapped[int | None]
    recording_deleted_at: Mapped[datetime | None]

    case: Mapped[Case | None] = relationship()


class InboundText(Base):
    """One SMS from someone who is not an operator, as received, and the case it opened or
    joined. The sender is a keyed hash (texts of one number thread into one case without the
    number in clear); the body is the raw text, encrypted, emptied after
    ALI_RAW_TEXT_RETENTION_DAYS (the case keeps its own summary)."""

    __tablename__ = "inbound_texts"
    __table_args__ = (Index("ix_inbound_texts_sender_received_at", "sender", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    sender: Mapped[str] = mapped_column(String(40))  # keyed hash, or "anonymous"
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="SET NULL"))
    body: Mapped[str | None] = mapped_column(EncryptedText)
    received_at: Mapped[datetime] = mapped_column(index=True)
    replied: Mapped[bool] = mapped_column(default=False)
    purged_at: Mapped[datetime | None]


class CaseCallback(Base):
    """One call back through Ali: the operator's phone is called first, then bridged to the
    case's number with the project's number as caller ID. Twilio's URLs name this row's id,
    never a phone number."""

    __tablename__ = "case_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    contact_safe: Mapped[str] = mapped_column(String(8))  # as shown to the operator
    confirmed: Mapped[bool]  # the operator confirmed calling although it was not "yes"
    call_sid: Mapped[str | None] = mapped_column(String(40), unique=True)
    # started → dialling → the Dial's status (completed, busy, no-answer, failed, canceled)
    status: Mapped[str] = mapped_column(String(20))
    duration_seconds: Mapped[int | None]
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


# --- shelters and the pronta accoglienza log (design §3, §5) ----------------------------------


class ShelterKind(StrEnum):
    PRONTA_ACCOGLIENZA = "pronta_accoglienza"
    RESIDENTIAL = "residential"
    SEMI_AUTONOMY = "semi_autonomy"


class TargetGroup(StrEnum):
    WOMEN = "women"
    MEN = "men"
    TRANS = "trans"
    MOTHERS_WITH_CHILDREN = "mothers_with_children"
    MINORS = "minors"  # only structures suitable for minors list it


class ExitReason(StrEnum):
    MOVED_RESIDENTIAL = "moved_residential"
    MOVED_SEMI_AUTONOMY = "moved_semi_autonomy"
    TRANSFERRED_OTHER_PROJECT = "transferred_other_project"
    LEFT_VOLUNTARILY = "left_voluntarily"
    RETURNED_HOME = "returned_home"
    ASYLUM_SYSTEM = "asylum_system"
    OTHER = "other"


class PlacementAction(StrEnum):
    """What one entry of the placement log records."""

    REQUESTED = "requested"  # takes no bed
    CONFIRMED = "confirmed"  # takes its beds
    CHECKED_IN = "checked_in"  # takes its beds until check-out
    PLANNED_END = "planned_end"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    CORRECTION = "correction"  # replaces the values of the entry it points at


class Shelter(Base):
    """A struttura. Its address is secret by law: encrypted, shown to coordinators only, every
    view audited. Free beds are never stored: they are derived from the placement log."""

    __tablename__ = "shelters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(2), index=True)
    kind: Mapped[ShelterKind] = mapped_column(StrEnumText(ShelterKind, 24))
    target_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int]
    address: Mapped[str | None] = mapped_column(EncryptedText)
    open: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)

    @property
    def takes_minors(self) -> bool:
        return TargetGroup.MINORS.value in self.target_groups


class Placement(Base):
    """One placement of a case's person in a shelter. Insert-only (a database trigger refuses
    UPDATE and DELETE): where it stands is read from its entries."""

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    shelter_id: Mapped[int] = mapped_column(ForeignKey("shelters.id"), index=True)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    case: Mapped[Case] = relationship()
    shelter: Mapped[Shelter] = relationship()
    entries: Mapped[list[PlacementEntry]] = relationship(
        back_populates="placement", order_by="PlacementEntry.id", viewonly=True
    )


class PlacementEntry(Base):
    """One entry of the append-only placement log (a database trigger refuses UPDATE and
    DELETE). `at` is when it happened (e.g. the check-in), `recorded_at` when it was written.
    A correction is a new entry pointing at the one it corrects, with a reason."""

    __tablename__ = "placement_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("placements.id"), index=True)
    action: Mapped[PlacementAction] = mapped_column(StrEnumText(PlacementAction, 16))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    beds: Mapped[int | None]
    planned_end_on: Mapped[date | None]
    exit_reason: Mapped[ExitReason | None] = mapped_column(StrEnumText(ExitReason, 32))
    # Taken past a full shelter or a minor placed where minors are not taken: flagged here,
    # its reason in placement_reasons.
    override: Mapped[str | None] = mapped_column(String(16))
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("placement_entries.id"))

    placement: Mapped[Placement] = relationship(back_populates="entries")
    reason: Mapped[PlacementReason | None] = relationship(viewonly=True)


class PlacementReason(Base):
    """The free-text reason of an override or a correction, kept apart from the log: it is
    encrypted (re-keyed by `ali keys reencrypt`) and removed when the case is pseudonymised,
    while the log entry and its override flag stay."""

    __tablename__ = "placement_reasons"

    entry_id: Mapped[int] = mapped_column(ForeignKey("placement_entries.id"), primary_key=True)
    text: Mapped[str | None] = mapped_column(EncryptedText)
