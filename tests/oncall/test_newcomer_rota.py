# ruff: noqa: F811 -- the fixtures of test_views are imported by name, then requested
"""What a newcomer tripped over on the rota pages and `ali rota gaps` (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import User
from oncall import editing
from tests.conftest import UserFactory, csrf_token, login
from tests.oncall.test_views import (  # noqa: F401 -- fixtures, used by name
    get,
    make_rotation,
    manager,
    post_form,
    rotation_data,
    team,
    text,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def switch_language(client: FlaskClient, lang: str) -> None:
    token = csrf_token(client.get("/").get_data(as_text=True))
    client.post("/language", data={"lang": lang, "next": "/", "csrf_token": token})


def test_my_shifts_show_whole_shifts_and_decimal_hours_in_each_language(
    client: FlaskClient, db: Session, team: list[User], clock: FrozenClock
) -> None:
    anna = team[0]
    # A 123.9-hour cover that began yesterday (now is 24 November, 11:00 in Rome).
    start = utc(2026, 11, 23, 7)
    editing.add_override(
        db,
        actor="test",
        now=clock.now(),
        province="BS",
        tier="primary",
        user_id=anna.id,
        start=start,
        end=start + timedelta(hours=123.9),
        served=("BS",),
    )
    db.commit()
    login(client, "anna@ali.example")
    _, html = get(client, "/rota/mine")
    table = text(html[html.index('class="my-shifts"') :])
    # Its real start (not "now") and its real length, with the Italian decimal comma.
    assert "lun 23 nov 08:00" in table
    assert "123,9 h" in table
    switch_language(client, "en")
    _, html = get(client, "/rota/mine")
    table = text(html[html.index('class="my-shifts"') :])
    assert "Mon 23 Nov 08:00" in table
    assert "123.9 h" in table


def test_my_shifts_show_a_ten_week_shift_whole(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    chiara = make_user(roles=("coordinator",), provinces=(), email="chiara@ali.example")
    editing.create_rotation(
        db,
        actor="test",
        now=utc(2026, 1, 1),
        province=None,
        tier="coordinator",
        operator_ids=[chiara.id],
        handover=time(9, 0),
        period_days=7,
        start_date=date(2026, 11, 16),
        end_date=date(2027, 1, 25),
    )
    db.commit()
    login(client, "chiara@ali.example")
    _, html = get(client, "/rota/mine")
    rows = text(html[html.index('class="my-shifts"') :])
    assert "lun 16 nov 09:00 lun 25 gen 09:00 1680 h" in rows.replace(".", "")


def test_the_same_person_primary_and_backup_is_warned_in_month_and_preview(
    client: FlaskClient, db: Session, manager: User, team: list[User]
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1))
    make_rotation(db, [team[0]], tier="backup", start_date=date(2026, 11, 1))
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-11")
    warning = text(html[html.index('id="conflicts"') :].split("</section>")[0])
    assert "La stessa persona è principale e di riserva insieme" in warning
    assert "Anna Rossi: dom 1 nov 08:00 → lun 2 nov 08:00" in warning

    # A backup rotation of Bruno alone, previewed: where Bruno is also primary.
    url = "/rota/BS/rotations/new"
    data = rotation_data(team, tier="backup", start_date="2026-12-07", **{"operators-1": ""})
    data["operators-0"] = str(team[1].id)
    response = post_form(client, url, {**data, "action": "preview"})
    assert response.status_code == 200
    page = text(response.get_data(as_text=True))
    assert "Con questa rotazione la stessa persona è principale e di riserva insieme" in page
    assert "Bruno Bianchi:" in page


def test_rota_gaps_reports_a_conflict_and_exits_1(
    runner: FlaskCliRunner, db: Session, team: list[User]
) -> None:
    make_rotation(db, [team[0]], start_date=date(2026, 11, 1))
    make_rotation(db, [team[1]], tier="backup", start_date=date(2026, 11, 1))
    clean = runner.invoke(args=["rota", "gaps", "--days", "7", "--province", "BS"])
    assert clean.exit_code == 0, clean.output
    make_rotation(
        db,
        [team[0]],
        province="BS",
        tier="backup",
        start_date=date(2026, 11, 26),
        end_date=date(2026, 11, 27),
    )
    result = runner.invoke(args=["rota", "gaps", "--days", "7", "--province", "BS"])
    assert result.exit_code == 1
    assert "BS: no gaps until" in result.output
    assert "BS: 1 conflict(s): primary and backup at once" in result.output
    assert "2026-11-26 08:00 CET -> 2026-11-27 08:00 CET  Anna Rossi" in result.output


def test_editing_a_rotation_previews_the_gap_it_leaves(
    client: FlaskClient, db: Session, manager: User, team: list[User]
) -> None:
    rotation = make_rotation(db, team[:2], start_date=date(2026, 11, 1), handover=time(9, 0))
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation.id}"
    data = rotation_data(team, start_date="2026-11-01", end_date="2026-11-28", period_days="1")
    response = post_form(client, url, {**data, "action": "preview"})
    html = text(response.get_data(as_text=True))
    # Ended on the 28th: from the 28th at 09:00 nobody is primary, as a new one would show.
    assert "Con questa rotazione la provincia resta senza reperibile" in html
    assert "sab 28 nov 09:00 →" in html


def test_a_new_rotation_wholly_in_the_past_is_refused_an_old_one_edited_is_warned(
    client: FlaskClient, db: Session, manager: User, team: list[User]
) -> None:
    login(client, manager.email)
    data = rotation_data(team, start_date="2025-11-01", end_date="2025-12-01")
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "preview"})
    assert response.status_code == 400
    assert "Questa rotazione finirebbe prima di oggi" in response.get_data(as_text=True)
    old = make_rotation(db, team[:2], start_date=date(2025, 11, 1), end_date=date(2025, 12, 1))
    url = f"/rota/BS/rotations/{old.id}"
    response = post_form(client, url, {**data, "action": "preview"})
    assert response.status_code == 200
    assert "Questa rotazione finisce prima di oggi" in response.get_data(as_text=True)


def test_the_swap_form_from_a_gap_day_prefills_the_gap(
    client: FlaskClient, db: Session, manager: User, team: list[User]
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), end_date=date(2026, 12, 7))
    make_rotation(db, team[:2], start_date=date(2026, 12, 9))
    login(client, manager.email)
    # The gap: 7 December 08:00 (the last turn's hand-over) to 9 December 08:00.
    _, html = get(client, "/rota/BS/overrides/new?day=2026-12-08&tier=primary")
    assert 'value="2026-12-07T08:00"' in html
    assert 'value="2026-12-09T08:00"' in html


def test_plurals_of_gaps(
    client: FlaskClient, db: Session, make_user: UserFactory, team: list[User]
) -> None:
    make_user(roles=("coordinator",), provinces=(), email="c@ali.example")
    bergamo = [make_user(provinces=("BG",)), make_user(provinces=("BG",))]
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), end_date=date(2026, 11, 30))
    make_rotation(db, team[:2], start_date=date(2026, 12, 1))
    make_rotation(
        db, bergamo, province="BG", start_date=date(2026, 11, 1), end_date=date(2026, 11, 30)
    )
    make_rotation(
        db, bergamo, province="BG", start_date=date(2026, 12, 1), end_date=date(2026, 12, 2)
    )
    make_rotation(db, bergamo, province="BG", start_date=date(2026, 12, 3))
    login(client, "c@ali.example")
    _, html = get(client, "/rota/")
    page = text(html)
    assert "1 scopertura in 14 giorni" in page
    assert "2 scoperture in 14 giorni" in page
    _, html = get(client, "/rota/BS?month=2026-10")
    assert "1 periodo senza reperibile questo mese (in rosso)" in text(html)
    _, html = get(client, "/rota/BS?month=2026-11")  # before the 1st's 08:00, and the 30th
    assert "2 periodi senza reperibile questo mese (in rosso)" in text(html)


def test_no_phone_says_so(
    client: FlaskClient, db: Session, manager: User, team: list[User]
) -> None:
    team[1].phone = None
    team[1].phone_verified_at = None
    db.commit()
    make_rotation(db, team[:3], start_date=date(2026, 11, 1))
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-11")
    assert text(html).count("nessun telefono") >= 1
    bruno_cell = text(html[html.index("Bruno Bianchi") :][:300])
    assert "nessun telefono" in bruno_cell
    carla_cell = text(html[html.index("Carla Verdi") :][:300])
    assert "nessun telefono" not in carla_cell
    assert "telefono non verificato" not in carla_cell


def test_on_call_now_shows_who_is_next_and_the_viewers_own_row(
    client: FlaskClient, db: Session, team: list[User]
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), handover=time(8, 0))
    make_rotation(db, [team[2], team[0]], tier="backup", start_date=date(2026, 11, 1))
    login(client, "anna@ali.example")
    _, html = get(client, "/rota/now")
    card = html[html.rindex("<section", 0, html.index('id="province-BS"')) :].split("</section>")[0]
    # Now (24 November, day 23 of the rotation): Bruno primary, Anna next at 08:00 tomorrow.
    assert "mine" in card[: card.index(">")]
    assert 'class="next next-primary me"' in card
    assert "Poi: Anna Rossi da mer 25 nov 08:00" in text(card)
    assert "Poi: Carla Verdi da mer 25 nov 08:00" in text(card)
    assert text(card).count("tu") >= 1
