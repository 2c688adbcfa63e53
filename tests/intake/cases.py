"""Cases for the workspace tests, opened through intake's one `open_case` and worked through
routing's own functions (no rows written by hand but a page, which only Twilio could make)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from intake.manual import manual_case_fields
from intake.services import BroughtBy, open_case
from routing.dispatch import answer_alert
from routing.models import Case, Channel, Dispatch, Page, PageChannel, PagePurpose

SERVED = ("BG", "BS", "CR", "LC", "LO", "MN", "PV")


def new_case(
    db: Session, *, now: datetime, by: User, channel: Channel = Channel.MANUAL, **body: Any
) -> Case:
    """A case as manual entry opens it, from the fields of a hand-off body."""
    fields = manual_case_fields(body, now=now, served=SERVED).fields
    opened = open_case(db, channel=channel, brought_by=BroughtBy.user(by), fields=fields, now=now)
    db.commit()
    return db.scalars(select(Case).where(Case.id == opened.case_id)).one()


def dispatch_of(db: Session, case: Case) -> Dispatch:
    return db.scalars(select(Dispatch).where(Dispatch.case_id == case.id)).one()


def accept(db: Session, case: Case, user: User, *, now: datetime) -> None:
    answer_alert(db, dispatch_of(db, case), user, accepting=True, via="web", now=now)
    db.commit()


def page(db: Session, case: Case, user: User, *, now: datetime) -> None:
    """`user` was sent an alert SMS for the case (what a step of the escalation leaves)."""
    dispatch = dispatch_of(db, case)
    db.add(
        Page(
            dispatch_id=dispatch.id,
            step=dispatch.steps_fired,
            purpose=PagePurpose.ALERT,
            tier="backup",
            operator_id=user.id,
            channel=PageChannel.SMS,
            to=user.phone or "",
            status="delivered",
            created_at=now,
            updated_at=now,
        )
    )
    db.commit()
