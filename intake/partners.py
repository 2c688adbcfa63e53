"""The partner registry: which organisation a number belongs to."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.models import Partner, PartnerPhone


def partner_for_phone(session: Session, phone: str | None) -> Partner | None:
    """The active partner owning this E.164 number, or None (unknown, withheld or inactive)."""
    if not phone:
        return None
    return session.scalar(
        select(Partner)
        .join(PartnerPhone)
        .where(PartnerPhone.phone == phone, Partner.active.is_(True))
    )
