"""What deactivating a person does to the rota: the gaps it opens in the next 14 days, told
to the admin on the users page before they confirm."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from core.formatting import format_when
from core.models import User
from core.users import register_deactivation_check
from oncall.chain import Gap, upcoming_shifts
from oncall.notifications import gap_window
from oncall.schedule import Shift, Tier


def held_shifts(session: Session, user: User, now: datetime) -> list[tuple[str | None, Shift]]:
    """Every shift the user holds in the next 14 days (province None: coordinators')."""
    start, end = gap_window(now)
    return upcoming_shifts(session, user_id=user.id, start=start, end=end)


def gaps_opened(held: list[tuple[str | None, Shift]]) -> list[tuple[str, Gap]]:
    """The primary shifts among ``held``: a deactivated holder is dropped from every resolved
    schedule (oncall.chain), so each becomes a gap with nobody on call."""
    return [
        (province, (segment.start, segment.end))
        for province, segment in held
        if segment.tier is Tier.PRIMARY and province is not None
    ]


def describe_consequences(session: Session, user: User, now: datetime) -> list[str]:
    if not user.active:
        return []
    held = held_shifts(session, user, now)
    lines = [
        _(
            "Gap in %(province)s: no primary on call from %(start)s to %(end)s.",
            province=province,
            start=format_when(gap_start),
            end=format_when(gap_end),
        )
        for province, (gap_start, gap_end) in gaps_opened(held)
    ]
    backups = sum(1 for _p, segment in held if segment.tier is Tier.BACKUP)
    if backups:
        lines.append(_("%(num)d backup shifts in the next 14 days lose their holder.", num=backups))
    coordinator = sum(1 for _p, segment in held if segment.tier is Tier.COORDINATOR)
    if coordinator:
        lines.append(
            _("%(num)d coordinator shifts in the next 14 days lose their holder.", num=coordinator)
        )
    return lines


def init_app(app: Flask) -> None:
    register_deactivation_check(app, describe_consequences)
