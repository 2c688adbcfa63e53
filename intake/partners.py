"""The partner registry: organisations that call or text the project's number, their phones,
which organisation a number belongs to, and the `ali partners import` CSV.

Services speak English and never commit; the page and the CLI translate and commit.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.models import User
from core.phones import InvalidPhone, normalise_phone
from core.provinces import lookup_province
from intake.models import Partner, PartnerPhone, ReporterType
from oncall.csv_import import ImportReport, read_csv, split_list

PARTNER_COLUMNS = ("name", "kind", "province", "phones")
# The reporter types an organisation can be (design §4); a person is never a partner.
PARTNER_KINDS = (
    ReporterType.LAW_ENFORCEMENT,
    ReporterType.SOCIAL_SERVICES,
    ReporterType.HEALTH_SERVICES,
    ReporterType.NGO,
    ReporterType.COMMISSIONE_TERRITORIALE,
    ReporterType.RECEPTION_CENTRE,
    ReporterType.OTHER,
)
MAX_NAME = 200
MAX_PHONES = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PartnerError(ValueError):
    """A registry change that cannot be made; `code` says which (the page translates it)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def partner_for_phone(session: Session, phone: str | None) -> Partner | None:
    """The active partner owning this E.164 number, or None (unknown, withheld or inactive)."""
    if not phone:
        return None
    return session.scalar(
        select(Partner)
        .join(PartnerPhone)
        .where(PartnerPhone.phone == phone, Partner.active.is_(True))
    )


def list_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.active.desc(), Partner.name)))


# --- parsing what a person typed -------------------------------------------------------------


def parse_name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise PartnerError("the name is empty", code="name_empty")
    if len(name) > MAX_NAME or _CONTROL.search(name):
        raise PartnerError(f"the name must be at most {MAX_NAME} printable characters", code="name")
    return name


def parse_kind(text: str) -> ReporterType:
    code = text.strip().lower()
    for kind in PARTNER_KINDS:
        if kind.value == code:
            return kind
    raise PartnerError(
        f"kind {text.strip()!r} is not one of {', '.join(k.value for k in PARTNER_KINDS)}",
        code="kind",
    )


def parse_province(text: str, served: Collection[str]) -> str | None:
    """A served province's sigla (a name or ISTAT code is read too), or None when blank."""
    if not text.strip():
        return None
    found = lookup_province(text)
    if found is None:
        raise PartnerError(f"{text.strip()!r} is not a province", code="province")
    if found.sigla not in served:
        raise PartnerError(
            f"{found.sigla} is not a province served by this project", code="province_served"
        )
    return found.sigla


def parse_phones(items: Iterable[str]) -> list[str]:
    """E.164 numbers, in the order given, without repeats."""
    phones: list[str] = []
    for item in items:
        if not item.strip():
            continue
        try:
            phone = normalise_phone(item)
        except InvalidPhone:
            raise PartnerError(
                f"{item.strip()!r} is not a valid phone number", code="phone_invalid"
            ) from None
        if phone not in phones:
            phones.append(phone)
    if len(phones) > MAX_PHONES:
        raise PartnerError(f"at most {MAX_PHONES} phones per partner", code="phones_many")
    return phones


def split_phones(text: str) -> list[str]:
    """Phones as typed in a form or a CSV cell: split by `;`, `,` or new lines."""
    return [part for line in text.splitlines() for part in split_list(line)]


# --- changing the registry -------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerFields:
    name: str
    kind: ReporterType
    province: str | None
    phones: Sequence[str]  # E.164


def read_fields(
    *, name: str, kind: str, province: str, phones: str, served: Collection[str]
) -> PartnerFields:
    """The fields of a partner from text (a form or a CSV row); raises PartnerError."""
    return PartnerFields(
        name=parse_name(name),
        kind=parse_kind(kind),
        province=parse_province(province, served),
        phones=parse_phones(split_phones(phones)),
    )


def _check_free(session: Session, fields: PartnerFields, partner: Partner | None) -> None:
    """A name and each number belong to one partner; an operator's number is never a partner's
    (a text from it is only ever read as a reply to an alert)."""
    same_name = select(Partner.id).where(func.lower(Partner.name) == fields.name.lower())
    if partner is not None:
        same_name = same_name.where(Partner.id != partner.id)
    if session.scalar(same_name) is not None:
        raise PartnerError(f"a partner named {fields.name!r} already exists", code="name_taken")
    if not fields.phones:
        return
    taken = select(PartnerPhone.phone).where(PartnerPhone.phone.in_(fields.phones))
    if partner is not None:
        taken = taken.where(PartnerPhone.partner_id != partner.id)
    owned = session.scalars(taken).first()
    if owned is not None:
        raise PartnerError(
            f"the number ending {owned[-3:]} belongs to another partner", code="phone_taken"
        )
    operator = session.scalars(select(User.phone).where(User.phone.in_(fields.phones))).first()
    if operator is not None:
        raise PartnerError(
            f"the number ending {operator[-3:]} is an operator's", code="phone_operator"
        )


def create_partner(
    session: Session, fields: PartnerFields, *, now: datetime, actor: User | str | None
) -> Partner:
    _check_free(session, fields, None)
    partner = Partner(
        name=fields.name, kind=fields.kind, province=fields.province, active=True, created_at=now
    )
    partner.phones = [PartnerPhone(phone=phone) for phone in fields.phones]
    session.add(partner)
    session.flush()
    audit.record(
        session,
        now=now,
        action="create",
        object_type="partner",
        object_id=partner.id,
        actor=actor,
        fields=["name", "kind", "province", "phones"],
    )
    return partner


def update_partner(
    session: Session,
    partner: Partner,
    fields: PartnerFields,
    *,
    now: datetime,
    actor: User | str | None,
) -> list[str]:
    """Replace a partner's fields and phones; returns the names of what changed (audited)."""
    _check_free(session, fields, partner)
    changed: list[str] = []
    if partner.name != fields.name:
        partner.name = fields.name
        changed.append("name")
    if partner.kind != fields.kind:
        partner.kind = fields.kind
        changed.append("kind")
    if partner.province != fields.province:
        partner.province = fields.province
        changed.append("province")
    if {phone.phone for phone in partner.phones} != set(fields.phones):
        kept = {phone.phone: phone for phone in partner.phones}
        # Rows of numbers it keeps stay; a number it drops is free for another partner.
        partner.phones = [kept.get(phone) or PartnerPhone(phone=phone) for phone in fields.phones]
        changed.append("phones")
    if changed:
        audit.record(
            session,
            now=now,
            action="update",
            object_type="partner",
            object_id=partner.id,
            actor=actor,
            fields=changed,
        )
    return changed


def set_partner_active(
    session: Session, partner: Partner, active: bool, *, now: datetime, actor: User | str | None
) -> bool:
    """Deactivate (its numbers are then strangers' again) or reactivate; True if it changed."""
    if partner.active == active:
        return False
    partner.active = active
    audit.record(
        session,
        now=now,
        action="update",
        object_type="partner",
        object_id=partner.id,
        actor=actor,
        fields=["active"],
        detail={"active": active},
    )
    return True


# --- ali partners import ---------------------------------------------------------------------


def _parse_rows(
    rows: Sequence[tuple[int, dict[str, str]]], served: Collection[str], report: ImportReport
) -> list[tuple[int, PartnerFields]]:
    """The file's partners; each bad line, a name or a number given twice, is in the report."""
    parsed: list[tuple[int, PartnerFields]] = []
    first_name: dict[str, int] = {}
    first_phone: dict[str, int] = {}
    for line, row in rows:
        try:
            fields = read_fields(
                name=row["name"],
                kind=row["kind"],
                province=row["province"],
                phones=row["phones"],
                served=served,
            )
        except PartnerError as exc:
            report.errors.append(f"line {line}: {exc.message}")
            continue
        key = fields.name.lower()
        if key in first_name:
            report.errors.append(f"line {line}: {fields.name} is already on line {first_name[key]}")
            continue
        first_name[key] = line
        for phone in fields.phones:
            if phone in first_phone:
                report.errors.append(
                    f"line {line}: the number ending {phone[-3:]} is already on line "
                    f"{first_phone[phone]}"
                )
            else:
                first_phone[phone] = line
        parsed.append((line, fields))
    return parsed


def import_partners(
    session: Session,
    data: bytes | str,
    *,
    now: datetime,
    actor: User | str | None,
    served: Collection[str],
) -> ImportReport:
    """Create or update partners (matched by name, ignoring case) from a CSV with the columns
    name,kind,province,phones (phones split by `;`). Flushes, never commits: the caller
    commits only when ``report.ok`` — a bad line means nothing is imported. The phones of a
    partner in the file replace its stored ones."""
    report = ImportReport()
    table = read_csv(data, PARTNER_COLUMNS)
    report.errors.extend(table.errors)
    if table.ignored_columns:
        report.notes.append(f"ignored columns: {', '.join(table.ignored_columns)}")
    parsed = _parse_rows(table.rows, served, report)
    if not table.rows and not report.errors:
        report.errors.append("the file has no partners after its header line")
    if report.errors:
        return report
    names = [fields.name.lower() for _line, fields in parsed]
    existing = {
        partner.name.lower(): partner
        for partner in session.scalars(select(Partner).where(func.lower(Partner.name).in_(names)))
    }
    for line, fields in parsed:
        partner = existing.get(fields.name.lower())
        try:
            if partner is None:
                create_partner(session, fields, now=now, actor=actor)
                report.created += 1
            elif update_partner(session, partner, fields, now=now, actor=actor):
                report.updated += 1
            else:
                report.unchanged += 1
        except PartnerError as exc:
            report.errors.append(f"line {line}: {exc.message}")
            continue
        if partner is not None and not partner.active:
            report.notes.append(f"line {line}: {partner.name} is deactivated and stays so")
    return report
