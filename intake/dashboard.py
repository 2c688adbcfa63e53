"""The dashboard's panels from the features below core: unaccepted cases (amber and red as in
the case list), who is on call now and next per province, the rota's gaps in the next 14
days, the free beds per province and kind, and the cases opened this week. Scoped like the
pages they summarise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from core import audit
from core.auth import visible_provinces
from core.config import get_settings
from core.dashboard import Panel, register_panel
from core.formatting import local_date, local_midnight
from core.models import User, users_by_id
from intake.models import ShelterKind
from intake.shelters import free_beds_by_province
from intake.workspace import can_enter_cases, unaccepted_cases
from oncall.chain import Gap, all_gaps, province_schedule
from oncall.notifications import gap_window
from oncall.rota_page import RESOLVED_AHEAD, on_call_now
from oncall.schedule import Tier
from routing.models import Case
from routing.services import visible_cases

LISTED = 10  # unaccepted cases listed by reference; the count says if there are more


def _sees_cases(user: User) -> bool:
    # Those who work cases (admins and rota managers as such see none: routing's rule).
    return can_enter_cases(user)


def unaccepted_panel(session: Session, user: User, now: datetime) -> dict[str, Any] | None:
    if not _sees_cases(user):
        return None
    found = unaccepted_cases(session, user, LISTED)
    listed = found.cases
    if listed:  # a read of cases, audited like the case list's (nothing shown: nothing read)
        audit.record(
            session,
            now=now,
            action="read",
            object_type="dashboard",
            actor=user,
            fields=["reference", "urgency", "lateness"],
            detail={"case_ids": [item.case.id for item in listed]},
        )
    return {
        "total": found.total,
        "red": found.red,
        "amber": found.amber,
        "cases": listed,
    }


@dataclass(frozen=True)
class ProvinceCover:
    province: str
    primary: User | None
    primary_until: datetime | None
    backup: User | None
    next_primary: User | None
    next_from: datetime | None
    gaps: list[Gap]


def on_call_panel(session: Session, user: User, now: datetime) -> dict[str, Any] | None:
    provinces = visible_provinces(user, get_settings().provinces)
    if not provinces:
        return None
    start, end = gap_window(now)
    holes = all_gaps(session, provinces=provinces, start=start, end=end)
    rows = on_call_now(session, provinces=provinces, now=now)
    nexts: dict[str, tuple[int, datetime] | None] = {}
    for row in rows:
        schedule = province_schedule(
            session, province=row.province, tier=Tier.PRIMARY, start=now, end=now + RESOLVED_AHEAD
        )
        holder = row.primary.id if row.primary else None
        following = [s for s in schedule if s.start > now and s.operator_id != holder]
        nexts[row.province] = (following[0].operator_id, following[0].start) if following else None
    names = users_by_id(session, [n[0] for n in nexts.values() if n])
    covers = []
    for row in rows:
        upcoming = nexts[row.province]
        covers.append(
            ProvinceCover(
                province=row.province,
                primary=row.primary,
                primary_until=row.primary_until,
                backup=row.backup,
                next_primary=names.get(upcoming[0]) if upcoming else None,
                next_from=upcoming[1] if upcoming else None,
                gaps=holes[row.province],
            )
        )
    return {"covers": covers, "days": (end - start).days}


def week_panel(session: Session, user: User, now: datetime) -> dict[str, Any] | None:
    if not _sees_cases(user):
        return None
    today = local_date(now)
    monday = local_midnight(today - timedelta(days=today.weekday()))
    rows = session.execute(
        select(Case.province, func.count(Case.id))
        .where(and_(visible_cases(user), Case.created_at >= monday, Case.created_at <= now))
        .group_by(Case.province)
    ).all()
    by_province = {province or "": count for province, count in rows}
    return {
        "since": monday,
        "total": sum(by_province.values()),
        "by_province": sorted(by_province.items()),
    }


def free_beds_panel(session: Session, user: User, now: datetime) -> dict[str, Any] | None:
    """Free beds tonight per province and shelter kind in the user's scope: counts only (no
    shelter names or addresses), not suppressed (design §4), live from the placement log."""
    provinces = visible_provinces(user, get_settings().provinces)
    if not provinces:
        return None
    by_province = free_beds_by_province(session, provinces)
    return {"kinds": [kind.value for kind in ShelterKind], "by_province": by_province}


def init_app(app: Flask) -> None:
    register_panel(app, Panel("unaccepted", "intake/_panel_unaccepted.html", unaccepted_panel, 10))
    register_panel(app, Panel("on-call", "intake/_panel_on_call.html", on_call_panel, 20))
    register_panel(app, Panel("free-beds", "intake/_panel_free_beds.html", free_beds_panel, 30))
    register_panel(app, Panel("this-week", "intake/_panel_week.html", week_panel, 40))
