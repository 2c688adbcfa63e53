"""Shelters (strutture): the registry coordinators keep, `ali shelters import`, the secret
address shown only to coordinators (each view audited), and the free beds derived from the
placement log.

Services speak English and never commit; the page and the CLI translate and commit.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.models import Role, User
from core.provinces import lookup_province
from intake.models import Shelter, ShelterKind, TargetGroup
from intake.placements import beds_taken
from oncall.csv_import import ImportReport, read_csv, split_list

SHELTER_COLUMNS = ("code", "name", "province", "kind", "target_groups", "capacity", "address")
MAX_CODE = 40
MAX_NAME = 200
MAX_ADDRESS = 300
MAX_CAPACITY = 500
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ShelterError(ValueError):
    """A registry change that cannot be made; `code` says which (the page translates it)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def can_see_address(user: User) -> bool:
    """Shelter addresses are secret by law: coordinators (and admins) only (design §6)."""
    return user.has_role(Role.COORDINATOR)


@dataclass(frozen=True)
class ShelterFields:
    code: str
    name: str
    province: str
    kind: ShelterKind
    target_groups: Sequence[str]
    capacity: int
    address: str | None


def _one_line(text: str, *, limit: int, what: str, code: str, required: bool = True) -> str:
    value = " ".join(text.split())
    if required and not value:
        raise ShelterError(f"the {what} is empty", code=f"{code}_empty")
    if len(value) > limit or _CONTROL.search(text.replace("\n", " ").replace("\t", " ")):
        raise ShelterError(f"the {what} must be at most {limit} printable characters", code=code)
    return value


def read_fields(
    *,
    code: str,
    name: str,
    province: str,
    kind: str,
    target_groups: str | Iterable[str],
    capacity: str,
    address: str,
    served: Collection[str],
) -> ShelterFields:
    """The fields of a shelter from text (a form or a CSV row); raises ShelterError."""
    clean_code = code.strip()
    if not clean_code:
        raise ShelterError("the code is empty", code="code_empty")
    if len(clean_code) > MAX_CODE or not _CODE.fullmatch(clean_code):
        raise ShelterError(
            f"the code must be letters, digits, '-', '_' or '.', at most {MAX_CODE}", code="code"
        )
    found = lookup_province(province) if province.strip() else None
    if found is None:
        raise ShelterError(f"{province.strip()!r} is not a province", code="province")
    if found.sigla not in served:
        raise ShelterError(
            f"{found.sigla} is not a province served by this project", code="province_served"
        )
    kinds = {k.value: k for k in ShelterKind}
    if kind.strip().lower() not in kinds:
        raise ShelterError(f"kind {kind.strip()!r} is not one of {', '.join(kinds)}", code="kind")
    items = split_list(target_groups) if isinstance(target_groups, str) else list(target_groups)
    groups: list[str] = []
    for item in items:
        value = item.strip().lower()
        if value not in {g.value for g in TargetGroup}:
            raise ShelterError(
                f"target group {item.strip()!r} is not one of "
                f"{', '.join(g.value for g in TargetGroup)}",
                code="target_groups",
            )
        if value not in groups:
            groups.append(value)
    if not groups:
        raise ShelterError("name at least one target group", code="target_groups_empty")
    try:
        beds = int(capacity.strip())
    except ValueError:
        beds = -1
    if not 0 <= beds <= MAX_CAPACITY:
        raise ShelterError(
            f"the capacity must be a whole number from 0 to {MAX_CAPACITY}", code="capacity"
        )
    return ShelterFields(
        code=clean_code,
        name=_one_line(name, limit=MAX_NAME, what="name", code="name"),
        province=found.sigla,
        kind=kinds[kind.strip().lower()],
        target_groups=[g.value for g in TargetGroup if g.value in groups],
        capacity=beds,
        address=_one_line(
            address, limit=MAX_ADDRESS, what="address", code="address", required=False
        )
        or None,
    )


def list_shelters(session: Session, provinces: Collection[str] | None = None) -> list[Shelter]:
    query = select(Shelter).order_by(Shelter.province, Shelter.kind, Shelter.name)
    if provinces is not None:
        query = query.where(Shelter.province.in_(provinces))
    return list(session.scalars(query))


def _changed(shelter: Shelter, fields: ShelterFields) -> list[str]:
    changed = []
    for name in ("code", "name", "province", "kind", "capacity", "address"):
        if getattr(shelter, name) != getattr(fields, name):
            setattr(shelter, name, getattr(fields, name))
            changed.append(name)
    if list(shelter.target_groups) != list(fields.target_groups):
        shelter.target_groups = list(fields.target_groups)
        changed.append("target_groups")
    return changed


def _check_code_free(session: Session, code: str, shelter: Shelter | None) -> None:
    query = select(Shelter.id).where(Shelter.code == code)
    if shelter is not None:
        query = query.where(Shelter.id != shelter.id)
    if session.scalar(query) is not None:
        raise ShelterError(f"a shelter with code {code!r} already exists", code="code_taken")


def create_shelter(
    session: Session, fields: ShelterFields, *, now: datetime, actor: User | str | None
) -> Shelter:
    _check_code_free(session, fields.code, None)
    shelter = Shelter(open=True, created_at=now, target_groups=[], capacity=0)
    _changed(shelter, fields)
    session.add(shelter)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type="shelter",
        object_id=shelter.id,
        actor=actor,
        fields=list(SHELTER_COLUMNS),
    )
    return shelter


def update_shelter(
    session: Session,
    shelter: Shelter,
    fields: ShelterFields,
    *,
    now: datetime,
    actor: User | str | None,
    keep_address: bool = False,
) -> list[str]:
    """Replace a shelter's fields; `keep_address` leaves the stored address when none is
    given (the form never shows it back). Returns the names of what changed (audited)."""
    _check_code_free(session, fields.code, shelter)
    if keep_address and fields.address is None:
        fields = ShelterFields(**{**fields.__dict__, "address": shelter.address})
    changed = _changed(shelter, fields)
    if changed:
        audit.record(
            session,
            now=now,
            action="update",
            object_type="shelter",
            object_id=shelter.id,
            actor=actor,
            fields=changed,
        )
    return changed


def set_shelter_open(
    session: Session, shelter: Shelter, is_open: bool, *, now: datetime, actor: User | str | None
) -> None:
    if shelter.open == is_open:
        return
    shelter.open = is_open
    audit.record(
        session,
        now=now,
        action="update",
        object_type="shelter",
        object_id=shelter.id,
        actor=actor,
        fields=["open"],
    )


def reveal_address(session: Session, shelter: Shelter, *, user: User, now: datetime) -> str | None:
    """The shelter's address for a coordinator, the view audited; PermissionError otherwise."""
    if not can_see_address(user):
        raise PermissionError("shelter addresses are for coordinators only")
    audit.record(
        session,
        now=now,
        action="read",
        object_type="shelter",
        object_id=shelter.id,
        actor=user,
        fields=["address"],
    )
    return shelter.address


# --- free beds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShelterBeds:
    shelter: Shelter
    taken: int

    @property
    def free(self) -> int:
        """Never below zero: an override may fill a shelter past its capacity."""
        return max(0, self.shelter.capacity - self.taken) if self.shelter.open else 0

    @property
    def over(self) -> int:
        return max(0, self.taken - self.shelter.capacity)


def shelter_beds(session: Session, shelters: Sequence[Shelter]) -> list[ShelterBeds]:
    taken = beds_taken(session, [shelter.id for shelter in shelters])
    return [ShelterBeds(shelter, taken.get(shelter.id, 0)) for shelter in shelters]


def free_beds_by_kind(session: Session, province: str) -> dict[str, int]:
    """Free beds of a province's open shelters per kind (every kind, zero included)."""
    found = {kind.value: 0 for kind in ShelterKind}
    for beds in shelter_beds(session, list_shelters(session, [province])):
        found[beds.shelter.kind.value] += beds.free
    return found


def free_beds_by_province(session: Session, provinces: Sequence[str]) -> dict[str, dict[str, int]]:
    """{province: {kind: free beds}} for the given provinces, in their order."""
    found = {sigla: {kind.value: 0 for kind in ShelterKind} for sigla in provinces}
    for beds in shelter_beds(session, list_shelters(session, provinces)):
        found[beds.shelter.province][beds.shelter.kind.value] += beds.free
    return found


# --- `ali shelters import` -----------------------------------------------------------------


def import_shelters(
    session: Session,
    data: bytes | str,
    *,
    now: datetime,
    actor: User | str | None,
    served: Collection[str],
) -> ImportReport:
    """Create or update shelters (matched by code) from a CSV with the columns
    code,name,province,kind,target_groups,capacity,address (target groups split by `;`).
    Flushes, never commits: the caller commits only when ``report.ok``."""
    report = ImportReport()
    table = read_csv(data, SHELTER_COLUMNS)
    report.errors.extend(table.errors)
    if table.ignored_columns:
        report.notes.append(f"ignored columns: {', '.join(table.ignored_columns)}")
    parsed: list[tuple[int, ShelterFields]] = []
    first: dict[str, int] = {}
    for line, row in table.rows:
        try:
            fields = read_fields(**row, served=served)
        except ShelterError as exc:
            report.errors.append(f"line {line}: {exc.message}")
            continue
        if fields.code in first:
            report.errors.append(
                f"line {line}: {fields.code} is already on line {first[fields.code]}"
            )
            continue
        first[fields.code] = line
        parsed.append((line, fields))
    if not table.rows and not report.errors:
        report.errors.append("the file has no shelters after its header line")
    if report.errors:
        return report
    existing = {
        shelter.code: shelter
        for shelter in session.scalars(select(Shelter).where(Shelter.code.in_(list(first))))
    }
    for _line, fields in parsed:
        shelter = existing.get(fields.code)
        if shelter is None:
            create_shelter(session, fields, now=now, actor=actor)
            report.created += 1
        elif update_shelter(session, shelter, fields, now=now, actor=actor):
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report
