"""Tables of routing: cases and their timeline, escalation policies, dispatches and pages.

A case lives here rather than in intake because routing changes it (dispatch, acceptance)
and nothing may import upward; intake opens cases, routing carries them to a human.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from core.crypto import EncryptedText
from core.db import Base, StrEnumText
from core.models import User


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
    UNREACHABLE = "unreachable"  # the person could not be reached after acceptance
    CLOSED = "closed"


class CaseEventKind(StrEnum):
    """Entries of the append-only timeline."""

    CREATED = "created"
    ROUTED = "routed"
    STATUS_CHANGED = "status_changed"
    NOTE = "note"
    DISPATCHED = "dispatched"  # a dispatch started with its policy snapshot
    STEP = "step"  # an escalation step fired: who was paged on which channels
    NOBODY_ON_CALL = "nobody_on_call"  # a step's tier had nobody reachable: skipped at once
    PAGE_SENT = "page_sent"
    PAGE_FAILED = "page_failed"  # the provider refused it or it could not be delivered
    PAGE_STATUS = "page_status"  # a delivery or call status reported by the provider
    MACHINE_ANSWERED = "machine_answered"  # voicemail or fax: not reached
    NOT_REACHED = "not_reached"  # the call ended without a keypress
    KEY_PRESSED = "key_pressed"
    SMS_REPLY = "sms_reply"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    UNANSWERED = "unanswered"  # every step used up: coordinators alerted
    PARTNER_CALL = "partner_call"  # a call to the partner line: connected, ended, message left
    CALLBACK_STARTED = "callback_started"  # an operator asked Ali to call the person back
    CALLBACK = "callback"  # a call back ended: its status and talk time
    WARNING = "warning"  # fields of the hand-off not understood: field names and codes only
    PLACEMENT = "placement"  # an entry of the placement log: its action and codes only


class ContactSafe(StrEnum):
    """Whether the person may be called or texted back: an exploiter may hold the phone."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class Urgency(StrEnum):
    EMERGENCY = "emergency"  # immediate danger, or needs shelter now
    URGENT = "urgent"
    ORDINARY = "ordinary"


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
    channel: Mapped[Channel] = mapped_column(StrEnumText(Channel, 12))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    status: Mapped[CaseStatus] = mapped_column(StrEnumText(CaseStatus, 20), default=CaseStatus.NEW)
    province: Mapped[str | None] = mapped_column(String(2))
    province_source: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[Urgency] = mapped_column(StrEnumText(Urgency, 12))
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
    contact_safe: Mapped[ContactSafe] = mapped_column(
        StrEnumText(ContactSafe, 8), default=ContactSafe.UNKNOWN, server_default="unknown"
    )
    summary: Mapped[str | None] = mapped_column(EncryptedText)
    received_at: Mapped[datetime]  # when the reporter reached the sender (or Ali, if not given)
    created_at: Mapped[datetime]
    # The primary on call when the case was routed; the dispatch pages the chain from there.
    routed_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None]
    # Set by the retention job: free text, phones and identities are gone, statistics stay.
    pseudonymised_at: Mapped[datetime | None]

    routed_to: Mapped[User | None] = relationship(foreign_keys=[routed_to_id])
    accepted_by: Mapped[User | None] = relationship(foreign_keys=[accepted_by_id])


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
    # The text of a note an operator wrote (kind `note`), encrypted at rest.
    note: Mapped[str | None] = mapped_column(EncryptedText)


class AppendOnlyError(RuntimeError):
    """Something tried to change or delete a case event."""


@event.listens_for(CaseEvent, "before_update")
@event.listens_for(CaseEvent, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _connection: Any, target: CaseEvent) -> None:
    raise AppendOnlyError(f"case event {target.id} is append-only")


class PolicyTarget(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"
    COORDINATORS = "coordinators"


class PageChannel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


class EscalationPolicy(Base):
    """The escalation steps for one urgency (design §4 JSON), editable by admins; every
    dispatch keeps a copy of the policy it started with."""

    __tablename__ = "escalation_policies"

    urgency: Mapped[Urgency] = mapped_column(StrEnumText(Urgency, 12), primary_key=True)
    # [{"targets": ["primary"], "channels": ["sms", "voice"], "wait_minutes": 3}, ...]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    repeat_last: Mapped[int]
    updated_at: Mapped[datetime]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class DispatchState(StrEnum):
    OPEN = "open"  # escalating: the next step fires at due_at
    ACCEPTED = "accepted"
    EXHAUSTED = "exhausted"  # every step used up, nobody accepted: unanswered


class Dispatch(Base):
    """One case's escalation: the policy it follows, how many steps have fired, when the next
    one is due. The durable timer is `due_at`; a worker claims due rows, so a restart loses
    nothing and two workers never fire the same step."""

    __tablename__ = "dispatches"
    __table_args__ = (Index("ix_dispatches_state_due_at", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    # Plain copies of the case's routing facts, so escalation reads no case columns.
    reference: Mapped[str] = mapped_column(String(20))
    province: Mapped[str | None] = mapped_column(String(2))  # None: coordinators only
    urgency: Mapped[Urgency] = mapped_column(StrEnumText(Urgency, 12))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"steps": [...], "repeat_last": n}
    steps_fired: Mapped[int] = mapped_column(default=0)
    state: Mapped[DispatchState] = mapped_column(StrEnumText(DispatchState, 12))
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None]
    exhausted_at: Mapped[datetime | None]

    accepted_by: Mapped[User | None] = relationship(foreign_keys=[accepted_by_id])


class PagePurpose(StrEnum):
    ALERT = "alert"  # a step's SMS or call asking to accept
    TAKEN = "taken"  # "case taken by …" to the others paged
    UNANSWERED = "unanswered"  # the final alert to every coordinator


class PageOutcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_REACHED = "not_reached"  # no answer, busy, failed, a machine, no keypress


class Page(Base):
    """One SMS or call to one operator. At most one per (dispatch, step, operator, channel,
    purpose): a page is created pending, claimed by one sender, then carries the provider's
    id and its monotonic status."""

    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("dispatch_id", "step", "operator_id", "channel", "purpose"),
        Index("ix_pages_status", "status"),
        Index("ix_pages_to_created_at", "to", "created_at"),
        Index("ix_pages_operator_id_sent_at", "operator_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(ForeignKey("dispatches.id"), index=True)
    step: Mapped[int]  # the step (0-based, repeats counted) that sent it
    purpose: Mapped[PagePurpose] = mapped_column(StrEnumText(PagePurpose, 12))
    tier: Mapped[str] = mapped_column(String(12))  # primary, backup, coordinators
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[PageChannel] = mapped_column(StrEnumText(PageChannel, 8))
    to: Mapped[str] = mapped_column(String(20))
    # pending → sending → the provider's statuses (queued, sent, delivered, ringing, …);
    # canceled when it was never sent because the case was taken first.
    status: Mapped[str] = mapped_column(String(20))
    provider_sid: Mapped[str | None] = mapped_column(String(40), unique=True)
    error_code: Mapped[int | None]
    answered_by: Mapped[str | None] = mapped_column(String(30))
    outcome: Mapped[PageOutcome | None] = mapped_column(StrEnumText(PageOutcome, 12))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    # Twilio down, throttling, no connection: the page waits, pending, until retry_at.
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    # Past the operator's hourly cap: status `bundled`, listed in this bundle's SMS instead.
    bundle_id: Mapped[int | None] = mapped_column(ForeignKey("page_bundles.id"), index=True)

    dispatch: Mapped[Dispatch] = relationship()
    operator: Mapped[User] = relationship()


class PageBundle(Base):
    """One SMS listing the references of the pages an operator got past the hourly cap
    (ALI_PAGE_CAP_PER_HOUR): at most one every 5 minutes. A durable timer like a dispatch:
    pending until `due_at`, claimed by one sender (pending → sending), then the provider's id."""

    __tablename__ = "page_bundles"
    __table_args__ = (Index("ix_page_bundles_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    to: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))  # pending, sending, sent, failed, canceled
    due_at: Mapped[datetime]
    provider_sid: Mapped[str | None] = mapped_column(String(40), unique=True)
    error_code: Mapped[int | None]
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    operator: Mapped[User] = relationship()
