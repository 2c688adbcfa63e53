"""Tables of the shared infrastructure: users, audit log, worker heartbeat, outbox, claims."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    cast,
    false,
    select,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.crypto import EncryptedText
from core.db import Base, utc_now_default


class Role(StrEnum):
    OPERATOR = "operator"
    ROTA_MANAGER = "rota_manager"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


def _session_token() -> str:
    return secrets.token_urlsafe(32)


class User(Base):
    """A person who logs in: operators, rota managers, coordinators, admins."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20))
    phone_verified_at: Mapped[datetime | None]
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    provinces: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(5), default="it")
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Rotated on password change or lockout so every existing session cookie stops working.
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=_session_token)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now_default)
    # Twilio refused an SMS with 21610 (the number texted STOP): alerts reach them by call
    # until they text START or verify a phone again.
    sms_opted_out_at: Mapped[datetime | None]
    # Since when pages past ALI_PAGE_CAP_PER_HOUR go into bundles (None: under the cap).
    page_cap_since: Mapped[datetime | None]
    # Set by an admin's password reset: the next login must choose a new password first.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Two-factor login (core.twofactor): the TOTP secret, encrypted like every other secret;
    # the last time step accepted, so a code seen over a shoulder cannot be replayed; the
    # SHA-256 of each unused recovery code (random, high entropy: a slow hash adds nothing).
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText)
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None]
    recovery_code_hashes: Mapped[list[str]] = mapped_column(JSON, default=list)

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return self.session_token

    def has_role(self, *roles: Role) -> bool:
        return any(role.value in self.roles for role in roles)

    @classmethod
    def role_clause(cls, role: Role) -> ColumnElement[bool]:
        """SQL for `has_role`: ``roles`` is a JSON list of role codes, so the stored text
        holds the code in double quotes (and no code is part of another)."""
        return cast(cls.roles, Text).contains(f'"{role.value}"', autoescape=True)

    @hybrid_property
    def can_be_paged(self) -> bool:
        """Ali may send this person alerts: active, with a phone number they verified."""
        return self.active and bool(self.phone) and self.phone_verified_at is not None

    @can_be_paged.inplace.expression
    @classmethod
    def _can_be_paged_clause(cls) -> ColumnElement[bool]:
        return and_(
            cls.active.is_(True),
            cls.phone.is_not(None),
            cls.phone != "",
            cls.phone_verified_at.is_not(None),
        )

    def new_session_token(self) -> None:
        self.session_token = _session_token()


# Built once: the router looks up the people on call at every escalation step.
_USERS_BY_ID = select(User).where(User.id.in_(bindparam("ids", expanding=True)))


def users_with_role(session: Session, role: Role, *, active: bool = True) -> list[User]:
    """The users with a role (only the active ones unless ``active=False``), by id."""
    query = select(User).where(User.role_clause(role)).order_by(User.id)
    if active:
        query = query.where(User.active.is_(True))
    return list(session.scalars(query))


def users_by_id(session: Session, ids: Iterable[int]) -> dict[int, User]:
    """The users with these ids (one query), by id; ids with no user are left out."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {user.id: user for user in session.scalars(_USERS_BY_ID, {"ids": wanted})}


class AuditEntry(Base):
    """Append-only record of who did what to which object; field names, never values."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_object", "object_type", "object_id"),
        Index("ix_audit_entries_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


class WorkerHeartbeat(Base):
    """Last sign of life of each scheduler, for /readyz."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    beat_at: Mapped[datetime]
    pid: Mapped[int]


class OutboxMessage(Base):
    """What the sandbox telephony would have sent: SMS and calls, shown on /sandbox."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    to: Mapped[str] = mapped_column(String(20))
    from_: Mapped[str] = mapped_column("from_number", String(20))
    body: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    status_callback: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class DeliveryStatus(Base):
    """Latest known provider status of each SMS or call we sent, keyed by provider id."""

    __tablename__ = "delivery_statuses"

    sid: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[int | None]
    answered_by: Mapped[str | None] = mapped_column(String(30))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class SentNotification(Base):
    """One claimed "send this once" key (a reminder, a warning...): see core.claims."""

    __tablename__ = "sent_notifications"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    provider_id: Mapped[str | None] = mapped_column(String(40))
    sent_at: Mapped[datetime]
