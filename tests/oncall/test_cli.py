"""`ali operators import`, `ali rota import`, `ali rota who`, `ali rota gaps` through the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry, User
from oncall.editing import create_rotation
from oncall.models import RotaShift
from oncall.schedule import ROME, Tier
from tests.conftest import UserFactory

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")


def write(tmp_path: Path, text: str, *, encoding: str = "utf-8", name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def count(db: Session, model: type[object]) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def rotation(
    db: Session,
    users: list[User],
    *,
    province: str | None = "BS",
    tier: Tier = Tier.PRIMARY,
    handover: time = time(8),
    start: date = date(2026, 10, 1),
) -> None:
    create_rotation(
        db,
        actor=None,
        now=datetime(2026, 9, 1, tzinfo=UTC),
        province=province,
        tier=tier,
        operator_ids=[u.id for u in users],
        handover=handover,
        period_days=1,
        start_date=start,
        served=SERVED,
    )


# ---------------------------------------------------------------------------------------
# ali operators import


def test_operators_import_reads_an_italian_excel_export(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    # BOM, ";" between fields, a quoted list, Italian-style numbers, trailing empty rows.
    csv_text = (
        "\ufeffName;Email;Phone;Provinces;Roles;Languages\r\n"
        'Anna Rossi;Anna.Rossi@Example.org;333 123 4567;"BS;BG";operator;"it;en"\r\n'
        "Bruno Neri;bruno@example.org;+39 030 1234567;Cremona;operator,rota_manager;it\r\n"
        "Carla Bianchi;carla@example.org;;;coordinator;it\r\n"
        ";;;;;\r\n"
        "\r\n"
    )
    result = runner.invoke(args=["operators", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated" in result.output
    assert "ali operators set-password" in result.output
    assert "1 operator(s) have no phone number" in result.output
    anna = db.scalar(select(User).where(User.email == "anna.rossi@example.org"))
    assert anna is not None
    assert (anna.display_name, anna.phone, anna.provinces, anna.roles, anna.languages) == (
        "Anna Rossi",
        "+393331234567",
        ["BS", "BG"],
        ["operator"],
        ["it", "en"],
    )
    assert anna.password_hash is None
    assert anna.phone_verified_at is None
    bruno = db.scalar(select(User).where(User.email == "bruno@example.org"))
    assert bruno is not None
    assert (bruno.provinces, bruno.roles) == (["CR"], ["operator", "rota_manager"])
    entries = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "user")).all()
    assert len(entries) == 3
    assert all("333" not in repr(e.detail) for e in entries)


def test_operators_import_updates_and_resets_a_changed_phone(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    admin = make_user(roles=("admin", "operator"), email="anna@example.org", phone="+393330000001")
    same = make_user(email="bruno@example.org", phone="+393330000002", name="Bruno")
    csv_text = (
        "name,email,phone,provinces,roles,languages\n"
        "Anna R.,ANNA@example.org,+393339999999,BS,operator,it\n"
        "Bruno,bruno@example.org,+393330000002,BS,operator,it\n"
    )
    result = runner.invoke(args=["operators", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 0, result.output
    assert "0 created, 1 updated, 1 already up to date" in result.output
    db.refresh(admin)
    db.refresh(same)
    assert (admin.display_name, admin.phone, admin.phone_verified_at) == (
        "Anna R.",
        "+393339999999",
        None,
    )
    # The import never takes the admin role away (nor gives it).
    assert sorted(admin.roles) == ["admin", "operator"]
    assert same.phone_verified_at is not None
    (entry,) = db.scalars(
        select(AuditEntry).where(AuditEntry.object_type == "user", AuditEntry.action == "update")
    )
    assert entry.fields == ["display_name", "phone", "phone_verified_at"]


def test_operators_import_with_bad_lines_imports_nothing(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    csv_text = (
        "name,email,phone,provinces,roles,languages\n"
        "Anna Rossi,anna@example.org,3331234567,BS,operator,it\n"
        "Bruno Neri,bruno@example.org,12,BS,operator,it\n"
        "\n"
        "Carla Bianchi,carla@example.org,3331234568,MI,operator,it\n"
        "Dario,anna@example.org,3331234569,BS,admin,it\n"
        "Elena,not-an-address,3331234570,BS,operator,italiano\n"
    )
    before = count(db, User)
    result = runner.invoke(args=["operators", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert lines[0].startswith("line 3: phone:")
    assert "line 5: MI is not a province served by this project" in lines
    assert "line 6: anna@example.org is already on line 2" in lines
    assert any(line.startswith("line 6: the admin role") for line in lines)
    assert "line 7: 'not-an-address' is not an e-mail address" in lines
    assert any(line.startswith("line 7: italiano") for line in lines)
    assert "nothing imported" in result.output
    assert count(db, User) == before


def test_operators_import_names_a_wrong_header(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "nome,email,telefono\nAnna,anna@example.org,333\n")
    result = runner.invoke(args=["operators", "import", str(path)])
    assert result.exit_code == 1
    assert "line 1: the first line must name the columns" in result.output
    assert "missing: name, phone, provinces, roles, languages" in result.output


def test_operators_import_reads_windows_1252(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    csv_text = (
        "name;email;phone;provinces;roles;languages\r\n"
        "Niccolò Forlì;niccolo@example.org;3331234567;Lodi;operator;it\r\n"
    )
    path = write(tmp_path, csv_text, encoding="cp1252")
    result = runner.invoke(args=["operators", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert db.scalar(select(User.display_name).where(User.provinces.is_not(None))) is not None
    names = set(db.scalars(select(User.display_name)))
    assert "Niccolò Forlì" in names


def test_set_password_lets_an_imported_operator_log_in(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory
) -> None:
    user = make_user(email="anna@example.org")
    token = user.session_token
    result = runner.invoke(
        args=["operators", "set-password", "Anna@example.org", "--generate-password"]
    )
    assert result.exit_code == 0, result.output
    assert "password: " in result.output
    db.refresh(user)
    assert user.session_token != token


# ---------------------------------------------------------------------------------------
# ali rota import


def test_rota_import_creates_shifts_and_is_safe_to_repeat(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    anna = make_user(email="anna@example.org")
    bruno = make_user(email="bruno@example.org")
    csv_text = (
        "province;tier;operator_email;start;end\r\n"
        "BS;primary;anna@example.org;2026-10-24 20:00;2026-10-25T02:30+02:00\r\n"
        "BS;primary;bruno@example.org;2026-10-25T02:30+02:00;25/10/2026 24:00\r\n"
        "bs;Backup;Anna@Example.org;2026-10-24T20:00;2026-10-25T08:00\r\n"
        ";;;;\r\n"
    )
    path = write(tmp_path, csv_text)
    result = runner.invoke(args=["rota", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "shifts: 3 created" in result.output
    rows = db.scalars(select(RotaShift).order_by(RotaShift.id)).all()
    assert [(r.user_id, r.tier, r.start_at, r.end_at) for r in rows] == [
        (
            anna.id,
            "primary",
            datetime(2026, 10, 24, 18, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
        (
            bruno.id,
            "primary",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 23, 0, tzinfo=UTC),
        ),
        (
            anna.id,
            "backup",
            datetime(2026, 10, 24, 18, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 7, 0, tzinfo=UTC),
        ),
    ]
    again = runner.invoke(args=["rota", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 3 already up to date" in again.output
    assert count(db, RotaShift) == 3
    assert count(db, AuditEntry) == 3


def test_rota_import_refuses_to_guess_a_daylight_saving_time(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    make_user(email="anna@example.org")
    csv_text = (
        "province,tier,operator_email,start,end\n"
        "BS,primary,anna@example.org,2026-10-24T20:00,2026-10-25T02:30\n"
        "BS,primary,anna@example.org,2026-03-28T20:00,2026-03-29T02:30\n"
        "BS,backup,anna@example.org,2026-07-01T08:00+01:00,2026-07-02T08:00\n"
        "BS,backup,anna@example.org,2026-10-25T02:30+01:00,2026-10-25T08:00\n"
    )
    result = runner.invoke(args=["rota", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 1
    output = result.output
    assert (
        "line 2: end: '2026-10-25T02:30' happens twice in Europe/Rome (the clocks go back "
        "that night): write 2026-10-25T02:30+02:00 for the first time or "
        "2026-10-25T02:30+01:00 for the second"
    ) in output
    assert "line 3: end: '2026-03-29T02:30' does not exist in Europe/Rome" in output
    assert "line 4: start: '2026-07-01T08:00+01:00': +01:00 is not the offset" in output
    assert "line 5" not in output
    assert count(db, RotaShift) == 0


def test_rota_import_with_a_bad_line_imports_nothing(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    make_user(email="anna@example.org")
    make_user(email="bruno@example.org", provinces=("BG",))
    csv_text = (
        "province,tier,operator_email,start,end,note\n"
        "BS,primary,anna@example.org,2026-12-01 08:00,2026-12-02 08:00,ok\n"
        "BS,primary,nobody@example.org,2026-12-02 08:00,2026-12-03 08:00,\n"
        "BS,primary,anna@example.org,2026-12-01 20:00,2026-12-01 22:00,overlap\n"
        "BS,primary,bruno@example.org,2026-12-04 08:00,2026-12-05 08:00,not BS\n"
        "BS,chief,anna@example.org,2026-12-05 08:00,2026-12-04 08:00,\n"
        "BS,primary,anna@example.org,yesterday,2026-12-09 08:00,\n"
        "BS,primary,anna@example.org,2026-12-10 08:00,2026-12-11 08:00,x,y\n"
    )
    result = runner.invoke(args=["rota", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 3: no user has the e-mail nobody@example.org "
        "(import it with `ali operators import` first)",
        "line 4: overlaps line 2 (BS primary until 2026-12-02 08:00 CET)",
        "line 5: Utente 2 does not cover the province BS.",
        "line 6: tier 'chief' is not primary, backup or coordinator",
        "line 6: end is not after start",
        "line 7: start: 'yesterday' is not a date and time; write it as 2026-10-25 14:30 "
        "(or 25/10/2026 14:30)",
        "line 8: 7 fields where the header has 6 (is a value containing ',' missing its quotes?)",
    ]
    assert "note: ignored columns: note" in result.output
    assert count(db, RotaShift) == 0
    assert count(db, AuditEntry) == 0


def test_an_unclosed_quote_in_a_long_file_names_its_line_instead_of_crashing(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    """The quote opened on line 3 swallows the rest of the file into one cell, until the csv
    module gives up (128 KiB): that is a line's error, not a traceback."""
    make_user(email="anna@example.org")
    good = "BS,primary,anna@example.org,2026-12-01 08:00,2026-12-02 08:00\n"
    csv_text = (
        "province,tier,operator_email,start,end\n"
        + good
        + 'BS,primary,"anna@example.org,2026-12-02 08:00,2026-12-03 08:00\n'
        + good * 3000
    )
    result = runner.invoke(args=["rota", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert len(errors) == 1
    assert errors[0].startswith("line 3: the file cannot be read from here")
    assert "nothing imported" in result.output
    assert count(db, RotaShift) == 0


def test_rota_import_names_the_line_of_a_year_out_of_range(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    """Year 1 cannot be turned into UTC at all: it must be a line's error, not a traceback."""
    make_user(email="anna@example.org")
    csv_text = (
        "province,tier,operator_email,start,end\n"
        "BS,primary,anna@example.org,2026-12-01 08:00,2026-12-02 08:00\n"
        "BS,primary,anna@example.org,0001-01-01 00:30,0001-01-02 00:30\n"
        "BS,primary,anna@example.org,31/12/9999 08:00,31/12/9999 24:00\n"
    )
    result = runner.invoke(args=["rota", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 3: start: '0001-01-01 00:30': the year must be between 2000 and 2100",
        "line 3: end: '0001-01-02 00:30': the year must be between 2000 and 2100",
        "line 4: start: '31/12/9999 08:00': the year must be between 2000 and 2100",
        "line 4: end: '31/12/9999 24:00': the year must be between 2000 and 2100",
    ]
    assert count(db, RotaShift) == 0


# ---------------------------------------------------------------------------------------
# ali rota who


def test_who_names_both_people_of_the_repeated_hour(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory
) -> None:
    """Daily hand-over at 02:45: on 2026-10-25 it happens at the first 02:45 (CEST), so the
    first 02:30 is still Saturday's operator and the second 02:30 is Sunday's."""
    anna = make_user(name="Anna Rossi", phone="+393331110001")
    bruno = make_user(name="Bruno Neri", phone="+393331110002", verified=False)
    carla = make_user(name="Carla Bianchi", roles=("coordinator",), provinces=())
    rotation(db, [anna, bruno], handover=time(2, 45), start=date(2026, 10, 24))
    rotation(db, [bruno], tier=Tier.BACKUP, start=date(2026, 10, 1))
    rotation(db, [carla], province=None, tier=Tier.COORDINATOR, start=date(2026, 10, 1))

    result = runner.invoke(args=["rota", "who", "--province", "bs", "--at", "2026-10-25T02:30"])
    assert result.exit_code == 0, result.output
    first, second = result.output.split("\n\n")
    assert "02:30 occurs twice on 2026-10-25" in first
    assert "BS on call at 2026-10-25 02:30 CEST:" in first
    assert "primary:     Anna Rossi  +393331110001" in first
    assert "backup:      Bruno Neri  +393331110002 (not verified)" in first
    assert f"coordinator: Carla Bianchi  {carla.phone}" in first
    assert "BS on call at 2026-10-25 02:30 CET:" in second
    assert "primary:     Bruno Neri" in second

    second_only = runner.invoke(
        args=["rota", "who", "--province", "BS", "--at", "2026-10-25T02:30+01:00"]
    )
    assert second_only.exit_code == 0, second_only.output
    assert "occurs twice" not in second_only.output
    assert "primary:     Bruno Neri" in second_only.output
    assert "Anna" not in second_only.output

    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "read")).all()
    assert [(r.object_type, r.object_id, r.fields) for r in reads] == [
        ("on_call_chain", "BS", ["display_name", "phone"]),
        ("on_call_chain", "BS", ["display_name", "phone"]),
    ]


def test_who_defaults_to_now_and_reports_nobody(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    anna = make_user(name="Anna Rossi")
    rotation(db, [anna], province="BS", start=date(2026, 11, 1))
    result = runner.invoke(args=["rota", "who", "--province", "BS"])
    assert result.exit_code == 0, result.output
    assert f"BS on call at {clock.now().astimezone(ROME):%Y-%m-%d %H:%M} CET:" in result.output
    assert "primary:     Anna Rossi" in result.output
    assert "backup:      nobody" in result.output
    assert "coordinator: nobody" in result.output


def test_who_rejects_a_missing_hour_a_year_out_of_range_and_an_unserved_province(
    runner: FlaskCliRunner,
) -> None:
    missing = runner.invoke(args=["rota", "who", "--province", "BS", "--at", "2026-03-29 02:30"])
    assert missing.exit_code == 2
    assert "does not exist in Europe/Rome" in missing.output
    unserved = runner.invoke(args=["rota", "who", "--province", "MI"])
    assert unserved.exit_code == 2
    assert "MI is not a served province" in unserved.output
    ancient = runner.invoke(args=["rota", "who", "--province", "BS", "--at", "0001-01-01T00:30"])
    assert ancient.exit_code == 2, ancient.output
    assert "the year must be between 2000 and 2100" in ancient.output


# ---------------------------------------------------------------------------------------
# ali rota gaps


def test_gaps_exit_status_is_for_monitoring(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    # Now is 2026-11-24 11:00 CET; BS is covered until 2026-12-01 08:00.
    anna = make_user(provinces=tuple(SERVED))
    create_rotation(
        db,
        actor=None,
        now=clock.now(),
        province="BS",
        tier=Tier.PRIMARY,
        operator_ids=[anna.id],
        handover=time(8),
        period_days=1,
        start_date=date(2026, 11, 1),
        end_date=date(2026, 12, 1),
        served=SERVED,
    )
    covered = runner.invoke(args=["rota", "gaps", "--days", "6", "--province", "BS"])
    assert covered.exit_code == 0, covered.output
    assert "BS: no gaps until 2026-11-30 11:00 CET" in covered.output

    gap = runner.invoke(args=["rota", "gaps", "--days", "8", "--province", "BS"])
    assert gap.exit_code == 1
    assert "BS: 1 gap(s)" in gap.output
    assert "2026-12-01 08:00 CET -> 2026-12-02 11:00 CET  (27 h)" in gap.output

    for province in SERVED:
        if province != "BS":
            rotation(db, [anna], province=province, start=date(2026, 11, 1))
    everything = runner.invoke(args=["rota", "gaps", "--days", "6"])
    assert everything.exit_code == 0, everything.output
    assert everything.output.count("no gaps") == len(SERVED)
    assert runner.invoke(args=["rota", "gaps"]).exit_code == 1


def test_operators_import_refuses_to_leave_someone_on_a_rota_their_roles_no_longer_allow(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    carla = make_user(
        email="carla@example.org", name="Carla Coordinatrice", roles=("coordinator",), provinces=()
    )
    paolo = make_user(email="paolo@example.org", name="Paolo Primario", provinces=("BS",))
    rotation(db, [carla], province=None, tier=Tier.COORDINATOR)
    rotation(db, [paolo])
    db.commit()
    csv_text = (
        "name,email,phone,provinces,roles,languages\n"
        "Carla Coordinatrice,carla@example.org,,BS,operator,it\n"
        "Paolo Primario,paolo@example.org,,BG,operator,it\n"
    )
    result = runner.invoke(args=["operators", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 1
    assert "line 2: Carla Coordinatrice <carla@example.org> is on the coordinators' rota" in (
        result.output
    )
    assert "coordinator role" in result.output
    assert "line 3: Paolo Primario <paolo@example.org> is on the primary rota of BS" in (
        result.output
    )
    assert "nothing imported" in result.output
    db.expire_all()
    assert db.get(User, carla.id).roles == ["coordinator"]  # type: ignore[union-attr]
    assert db.get(User, paolo.id).provinces == ["BS"]  # type: ignore[union-attr]


def test_operators_import_lists_what_changed_for_each_person(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    make_user(email="anna@example.org", name="Anna", provinces=("BS",), phone="+393330000001")
    make_user(email="bruno@example.org", name="Bruno", provinces=("BS",), phone="+393330000002")
    csv_text = (
        "name,email,phone,provinces,roles,languages\n"
        "Anna,anna@example.org,+393339999999,BS;CR,operator;rota_manager,it\n"
        "Bruno,bruno@example.org,+393330000002,BS,operator,it\n"
        "Dora,dora@example.org,,BG,operator,it\n"
    )
    result = runner.invoke(args=["operators", "import", str(write(tmp_path, csv_text))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "anna@example.org: phone changed (to be verified again); provinces BS -> BS,CR; "
        "roles operator -> operator,rota_manager"
    ) in lines
    assert "dora@example.org: created, roles operator, provinces BG" in lines
    assert not any(line.startswith("bruno@") for line in lines)
    assert "+39333" not in result.output
