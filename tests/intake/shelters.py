"""Shelters and placements for the tests, made through intake's own services."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from intake.models import Shelter
from intake.shelters import create_shelter, read_fields
from tests.intake.cases import SERVED


def new_shelter(
    db: Session,
    *,
    now: datetime,
    code: str = "BS-PA-1",
    name: str = "Casa Aurora",
    province: str = "BS",
    kind: str = "pronta_accoglienza",
    groups: str = "women;mothers_with_children",
    capacity: int = 2,
    address: str = "Via Segreta 1, Brescia",
) -> Shelter:
    fields = read_fields(
        code=code,
        name=name,
        province=province,
        kind=kind,
        target_groups=groups,
        capacity=str(capacity),
        address=address,
        served=SERVED,
    )
    shelter = create_shelter(db, fields, now=now, actor="test")
    db.commit()
    return shelter
