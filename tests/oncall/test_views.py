"""The rota pages through the Flask client: access, forms, DST days, holidays, gaps, audit."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from html import unescape

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from core.models import AuditEntry, User
from oncall import editing
from oncall.models import Override, Rotation
from tests.conftest import UserFactory, csrf_token, login
from tests.twilio_standin import TwilioStandIn

SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")


def make_rotation(
    db: Session,
    operators: list[User],
    *,
    province: str = "BS",
    tier: str = "primary",
    handover: time = time(8, 0),
    period_days: int = 1,
    start_date: date = date(2026, 11, 1),
    end_date: date | None = None,
) -> Rotation:
    rotation = editing.create_rotation(
        db,
        actor="test",
        now=datetime(2026, 11, 1, tzinfo=UTC),
        province=province or None,
        tier=tier,
        operator_ids=[user.id for user in operators],
        handover=handover,
        period_days=period_days,
        start_date=start_date,
        end_date=end_date,
        served=SERVED,
    )
    db.commit()
    return rotation


def row(html: str, day: str) -> str:
    """The <tr> of one day of the month table."""
    start = html.index(f'id="day-{day}"')
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def cell(html: str, day: str, tier: str) -> str:
    day_row = row(html, day)
    start = day_row.index(f'class="tier-{tier}')
    return day_row[day_row.rindex("<td", 0, start) : day_row.index("</td>", start)]


def text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


@pytest.fixture
def manager(make_user: UserFactory) -> User:
    return make_user(
        roles=("rota_manager", "operator"), provinces=("BS",), email="manager@ali.example"
    )


@pytest.fixture
def team(make_user: UserFactory) -> list[User]:
    return [
        make_user(provinces=("BS",), name="Anna Rossi", email="anna@ali.example"),
        make_user(provinces=("BS",), name="Bruno Bianchi", email="bruno@ali.example"),
        make_user(provinces=("BS",), name="Carla Verdi", email="carla@ali.example"),
    ]


def get(client: FlaskClient, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


def post_form(
    client: FlaskClient, url: str, data: dict[str, str], page: str | None = None
) -> TestResponse:
    """Post like the browser does: with the CSRF token of the page the form is on."""
    token = csrf_token(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


# ---------------------------------------------------------------------------------------
# Access


def test_anonymous_visitors_are_sent_to_the_login_page(client: FlaskClient) -> None:
    for url in ("/rota/", "/rota/BS", "/rota/now", "/rota/mine", "/rota/BS/rotations/new"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_an_operator_sees_the_month_of_their_province_but_cannot_edit_it(
    client: FlaskClient, make_user: UserFactory, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2])
    login(client, "anna@ali.example")
    status, html = get(client, "/rota/BS?month=2026-11")
    assert status == 200
    assert "Anna Rossi" in html
    assert "/rota/BS/rotations/new" not in html
    assert "/rota/BS/overrides/new" not in html
    assert client.get("/rota/BS/rotations/new").status_code == 403
    assert client.get("/rota/BS/overrides/new?day=2026-11-30").status_code == 403
    response = post_form(
        client,
        "/rota/BS/overrides/new",
        {"tier": "primary", "user_id": str(team[0].id)},
        page="/rota/BS",
    )
    assert response.status_code == 403
    assert db.scalars(select(Override)).all() == []


def test_an_operator_of_another_province_gets_403(
    client: FlaskClient, make_user: UserFactory, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2])
    make_user(provinces=("BG",), email="bg@ali.example")
    login(client, "bg@ali.example")
    for url in (
        "/rota/BS",
        "/rota/BS?month=2026-12",
        "/rota/BS/rotations/new",
        f"/rota/BS/rotations/{rotation.id}",
        "/rota/BS/overrides/new",
    ):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client.get("/rota/BG").get_data(as_text=True))
    response = client.post(f"/rota/BS/rotations/{rotation.id}/delete", data={"csrf_token": token})
    assert response.status_code == 403
    assert db.get(Rotation, rotation.id) is not None


def test_a_rota_manager_of_another_province_cannot_edit(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(roles=("rota_manager", "operator"), provinces=("BG",), email="m@ali.example")
    login(client, "m@ali.example")
    assert client.get("/rota/BG/rotations/new").status_code == 200
    assert client.get("/rota/BS/rotations/new").status_code == 403


def test_a_rota_manager_role_without_the_province_in_their_list_cannot_edit(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(roles=("rota_manager",), provinces=(), email="m@ali.example")
    login(client, "m@ali.example")
    assert client.get("/rota/BS/rotations/new").status_code == 403


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_coordinators_and_admins_may_edit_every_province(
    client: FlaskClient, make_user: UserFactory, role: str
) -> None:
    make_user(roles=(role,), provinces=(), email="c@ali.example")
    login(client, "c@ali.example")
    for sigla in ("BS", "PV"):
        status, html = get(client, f"/rota/{sigla}")
        assert status == 200
        assert f"/rota/{sigla}/rotations/new" in html
        assert client.get(f"/rota/{sigla}/rotations/new").status_code == 200


def test_a_province_not_served_is_404(client: FlaskClient, make_user: UserFactory) -> None:
    make_user(roles=("admin",), email="admin@ali.example")
    login(client, "admin@ali.example")
    for url in ("/rota/MI", "/rota/bs", "/rota/ZZZ", "/rota/MI/rotations/new"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("month", ["2026-13", "abc", "2026", "9999-12", "1999-12", "2026-1x"])
def test_a_bad_month_is_a_400_not_a_500(client: FlaskClient, manager: User, month: str) -> None:
    login(client, manager.email)
    assert client.get(f"/rota/BS?month={month}").status_code == 400


def test_the_rota_index_sends_a_single_province_user_to_their_month(
    client: FlaskClient, manager: User
) -> None:
    login(client, manager.email)
    response = client.get("/rota/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rota/BS")


def test_the_rota_index_lists_every_province_to_a_coordinator_with_gap_counts(
    client: FlaskClient, make_user: UserFactory, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2])
    make_user(roles=("coordinator",), provinces=(), email="c@ali.example")
    login(client, "c@ali.example")
    status, html = get(client, "/rota/")
    assert status == 200
    for sigla in SERVED:
        assert f'href="/rota/{sigla}"' in html
    # BS is covered from November on; every other province is one long gap.
    assert text(html).count("1 scopertura in 14 giorni") == len(SERVED) - 1


def test_the_navigation_offers_the_rota_pages(client: FlaskClient, manager: User) -> None:
    login(client, manager.email)
    html = client.get("/").get_data(as_text=True)
    for href in ('href="/rota/"', 'href="/rota/now"', 'href="/rota/mine"'):
        assert href in html


# ---------------------------------------------------------------------------------------
# Month view


def test_the_month_lists_days_as_rows_with_operators_per_tier(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), handover=time(0, 0))
    make_rotation(db, [team[2]], tier="backup", start_date=date(2026, 11, 1))
    login(client, manager.email)
    status, html = get(client, "/rota/BS?month=2026-11")
    assert status == 200
    assert html.count('id="day-2026-11-') == 30
    # Midnight hand-overs: one operator per day, alternating, no times shown.
    assert text(cell(html, "2026-11-01", "primary")).startswith("Anna Rossi")
    assert text(cell(html, "2026-11-02", "primary")).startswith("Bruno Bianchi")
    assert "–" not in text(cell(html, "2026-11-02", "primary"))
    assert "Carla Verdi" in cell(html, "2026-11-15", "backup")
    assert 'href="/rota/BS?month=2026-10"' in html
    assert 'href="/rota/BS?month=2026-12"' in html
    assert "novembre 2026" in html


def test_a_day_with_a_hand_over_shows_both_operators_with_local_times(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), handover=time(8, 0))
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-11")
    shown = text(cell(html, "2026-11-10", "primary"))
    assert re.search(r"00:00–08:00 Anna Rossi .*08:00–24:00 Bruno Bianchi", shown), shown


def test_today_is_highlighted(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    login(client, manager.email)
    _, html = get(client, "/rota/BS")  # the clock says 2026-11-24
    today = row(html, "2026-11-24")
    assert 'class="today' in today
    assert 'aria-current="date"' in today
    assert 'class="today' not in row(html, "2026-11-23")


def test_the_25_hour_day_of_october_2026_is_shown_as_it_is(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 10, 1), handover=time(8, 0))
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-10")
    change = row(html, "2026-10-25")
    assert "25 h" in text(change.split("</th>")[0])
    shown = text(cell(html, "2026-10-25", "primary"))
    # Bruno's turn began on the 24th at 08:00 and ends on the 25th at 08:00: 25 real hours.
    assert re.search(r"00:00–08:00 Bruno Bianchi \(25 h\) 08:00–24:00 Anna Rossi", shown), shown
    assert "gap" not in cell(html, "2026-10-25", "primary")
    for ordinary in ("2026-10-24", "2026-10-26"):
        assert "badge-dst" not in row(html, ordinary)


def test_a_hand_over_in_the_repeated_hour_is_labelled_with_its_zone(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 10, 1), handover=time(2, 30))
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-10")
    shown = text(cell(html, "2026-10-25", "primary"))
    # 02:30 happens twice that night; rotations hand over at the first one (CEST).
    assert "00:00–02:30 CEST" in shown
    assert "02:30 CEST–24:00" in shown
    assert "(25 h)" in shown


def test_the_23_hour_day_of_march_2027_is_shown_as_it_is(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2027, 3, 1), handover=time(8, 0))
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2027-03")
    assert "23 h" in text(row(html, "2027-03-28").split("</th>")[0])
    assert "(23 h)" in text(cell(html, "2027-03-28", "primary"))
    assert "gap" not in cell(html, "2027-03-28", "primary")


def test_italian_public_holidays_are_marked(client: FlaskClient, manager: User) -> None:
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-12")
    for day, name in (("2026-12-08", "Immacolata Concezione"), ("2026-12-25", "Natale")):
        assert "holiday" in row(html, day).split(">")[0]
        assert name in row(html, day)
    assert "holiday" not in row(html, "2026-12-09").split(">")[0]


def test_holiday_names_follow_the_users_language(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(roles=("rota_manager", "operator"), email="en@ali.example", locale="en")
    login(client, "en@ali.example")
    _, html = get(client, "/rota/BS?month=2026-12")
    assert "Immaculate Conception" in row(html, "2026-12-08")
    assert "Christmas Day" in row(html, "2026-12-25")
    assert "December 2026" in html


def test_gaps_are_red_where_nobody_is_primary(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 12, 7), handover=time(9, 0), period_days=7)
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-12")
    for day in range(1, 7):
        assert 'class="tier-primary gap"' in cell(html, f"2026-12-{day:02d}", "primary")
    partial = cell(html, "2026-12-07", "primary")
    assert "has-gap" in partial
    assert 'class="piece gap"' in partial
    assert re.search(r"00:00–09:00 Nessun reperibile 09:00–24:00 Anna Rossi", text(partial))
    assert "gap" not in cell(html, "2026-12-08", "primary")
    assert "gap-summary" in html


def test_the_month_page_warns_of_a_gap_in_the_next_14_days_even_in_the_next_month(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    """Now is Tuesday 24 November 2026: a rota ending on 1 December leaves a gap that the
    November page (where a single-province manager lands) must show, days ahead."""
    make_rotation(db, team[:2], start_date=date(2026, 10, 1), end_date=date(2026, 12, 1))
    login(client, manager.email)
    _, html = get(client, "/rota/BS")
    assert "gap-summary" not in html  # nothing red in November itself
    warning = html[html.index('id="upcoming-gaps"') : html.index("</section>")]
    assert "Nessun reperibile nei prossimi 14 giorni" in text(warning)
    assert "mar 1 dic 08:00 → mar 8 dic 11:00" in text(warning)
    assert 'href="/rota/BS?month=2026-12#day-2026-12-01"' in warning

    # Covered for the next 14 days: no warning, even though a gap comes later.
    make_rotation(db, [team[2]], start_date=date(2026, 12, 1), end_date=date(2026, 12, 20))
    _, html = get(client, "/rota/BS")
    assert 'id="upcoming-gaps"' not in html


def test_the_coordinator_rota_has_its_own_column(
    client: FlaskClient, manager: User, make_user: UserFactory, db: Session
) -> None:
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-11")
    assert 'class="tier-coordinator' not in html
    assert "nessuno ha il ruolo di coordinatore" in html
    coordinator = make_user(roles=("coordinator",), provinces=(), name="Zoe Coordinatrice")
    make_rotation(db, [coordinator], province="", tier="coordinator", start_date=date(2026, 11, 15))
    _, html = get(client, "/rota/BS?month=2026-11")
    assert "Zoe Coordinatrice" in cell(html, "2026-11-20", "coordinator")
    assert "tutti i coordinatori" in cell(html, "2026-11-10", "coordinator")
    assert "gap" not in cell(html, "2026-11-10", "coordinator")


def test_an_operator_without_a_verified_phone_is_flagged(
    client: FlaskClient, manager: User, make_user: UserFactory, db: Session
) -> None:
    unverified = make_user(provinces=("BS",), name="Dario Neri", verified=False)
    make_rotation(db, [unverified])
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-11")
    assert "telefono non verificato" in cell(html, "2026-11-10", "primary")


def test_an_inactive_operator_leaves_a_gap(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, [team[0]])
    team[0].active = False
    db.commit()
    login(client, manager.email)
    _, html = get(client, "/rota/BS?month=2026-11")
    assert "gap" in cell(html, "2026-11-10", "primary")


# ---------------------------------------------------------------------------------------
# Rotations


def rotation_data(team: list[User], **changes: str) -> dict[str, str]:
    data = {
        "tier": "primary",
        "operators-0": str(team[0].id),
        "operators-1": str(team[1].id),
        "handover": "09:00",
        "period_days": "7",
        "start_date": "2026-12-07",
        "end_date": "",
        "name": "Inverno",
    }
    data.update(changes)
    return data


def previewed(client: FlaskClient, url: str, data: dict[str, str]) -> dict[str, str]:
    """Post a preview and return the data with the fingerprint that saving needs."""
    response = post_form(client, url, {**data, "action": "preview"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    match = re.search(r'name="previewed" value="([^"]*)"', html)
    assert match is not None
    return {**data, "previewed": match.group(1).replace("&#34;", '"'), "action": "save"}


def test_a_rotation_is_previewed_before_it_is_saved(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    login(client, manager.email)
    url = "/rota/BS/rotations/new"
    response = post_form(client, url, {**rotation_data(team), "action": "preview"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    preview = html[html.index('id="preview"') :]
    rows = re.findall(r"<tr[^>]*>\s*<td>(.*?)</tr>", preview, re.S)
    assert len(rows) == 10
    assert "Anna Rossi" in rows[0]
    assert "Bruno Bianchi" in rows[1]
    assert "lun 7 dic 09:00" in text(rows[0])
    assert "lun 14 dic 09:00" in text(rows[0])
    assert "168 h" in text(rows[0])
    # Until the rotation starts the province has nobody: the preview says so.
    assert "mar 24 nov 11:00 → lun 7 dic 09:00" in text(preview.split("preview-gaps")[2])
    assert db.scalars(select(Rotation)).all() == []

    response = post_form(client, url, previewed(client, url, rotation_data(team)))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rota/BS?month=2026-12")
    rotation = db.scalars(select(Rotation)).one()
    assert rotation.operator_ids == (team[0].id, team[1].id)
    assert (rotation.handover, rotation.period_days) == (time(9, 0), 7)
    assert (rotation.start_date, rotation.end_date) == (date(2026, 12, 7), None)
    assert (rotation.province, rotation.tier, rotation.name) == ("BS", "primary", "Inverno")
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "rotation")).one()
    assert (entry.action, entry.actor_id) == ("create", manager.id)


def test_the_preview_shows_a_25_hour_turn_across_the_autumn_change(
    client: FlaskClient, manager: User, team: list[User], clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 10, 1, 10, tzinfo=UTC))
    login(client, manager.email)
    data = rotation_data(team, period_days="1", handover="08:00", start_date="2026-10-22")
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "preview"})
    preview = response.get_data(as_text=True).split('id="preview"')[1]
    lengths = re.findall(r"<td>(\d+) h</td>", preview)
    assert lengths[:5] == ["24", "24", "25", "24", "24"]  # 24 Oct 08:00 -> 25 Oct 08:00
    assert 'class="clock-change"' in preview


def test_the_preview_counts_the_provinces_other_rotations(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, [team[2]], start_date=date(2026, 11, 1), end_date=date(2026, 12, 10))
    login(client, manager.email)
    data = rotation_data(team, start_date="2026-12-10", period_days="1", handover="08:00")
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "preview"})
    preview = response.get_data(as_text=True).split('id="preview"')[1]
    assert "preview-gaps" not in preview
    assert "Nessuna scopertura" in preview
    data = rotation_data(team, start_date="2026-12-12", period_days="1", handover="08:00")
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "preview"})
    preview = response.get_data(as_text=True).split('id="preview"')[1]
    assert "gio 10 dic 08:00 → sab 12 dic 08:00" in text(preview.split("preview-gaps")[2])


def test_saving_values_other_than_those_previewed_asks_for_a_new_preview(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    login(client, manager.email)
    url = "/rota/BS/rotations/new"
    data = previewed(client, url, rotation_data(team))
    response = post_form(client, url, {**data, "handover": "10:00"})
    assert response.status_code == 400
    html = unescape(response.get_data(as_text=True))
    assert "Controlla l'anteprima" in html
    assert 'id="preview"' in html
    assert db.scalars(select(Rotation)).all() == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start_date": "2026-13-45"}, "Inserisci una data valida."),
        ({"start_date": ""}, "Inserisci il primo giorno della rotazione."),
        ({"start_date": "0001-01-01"}, "Scegli una data tra il 2000 e il 2100."),
        ({"end_date": "2026-12-01"}, "La fine deve essere dopo il primo giorno."),
        ({"end_date": "2026-12-07"}, "La fine deve essere dopo il primo giorno."),
        ({"operators-0": "", "operators-1": ""}, "Scegli almeno un operatore."),
        ({"operators-0": "999999"}, "Non è una opzione valida"),
        ({"operators-0": "abc"}, "Non è una opzione valida"),
        ({"handover": "25:99"}, "Inserisci l'ora del cambio in ore e minuti"),
        ({"handover": ""}, "Inserisci l'ora del cambio, per esempio 08:00."),
        ({"period_days": "3"}, "Non è una opzione valida"),
        ({"tier": "coordinator"}, "Non è una opzione valida"),
        ({"name": "x" * 500}, "120"),
    ],
)
def test_bad_rotation_input_is_a_form_message_in_italian(
    *,
    client: FlaskClient,
    manager: User,
    team: list[User],
    db: Session,
    changes: dict[str, str],
    message: str,
) -> None:
    login(client, manager.email)
    for action in ("preview", "save"):
        response = post_form(
            client, "/rota/BS/rotations/new", {**rotation_data(team, **changes), "action": action}
        )
        html = response.get_data(as_text=True)
        assert response.status_code == 400, html
        assert message in html or _wtforms_italian(message) in html, html
    assert db.scalars(select(Rotation)).all() == []


def _wtforms_italian(message: str) -> str:
    return {"Non è una opzione valida": "Non è una opzione valida"}.get(message, message)


def test_an_operator_of_another_province_cannot_be_slipped_into_a_rotation(
    client: FlaskClient, manager: User, team: list[User], make_user: UserFactory, db: Session
) -> None:
    outsider = make_user(provinces=("BG",), name="Elena Gialli")
    login(client, manager.email)
    data = rotation_data(team, **{"operators-2": str(outsider.id)})
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "preview"})
    assert response.status_code == 400
    assert "Elena Gialli" not in response.get_data(as_text=True)
    assert db.scalars(select(Rotation)).all() == []


def test_form_errors_are_in_english_for_an_english_user(
    client: FlaskClient, make_user: UserFactory, team: list[User]
) -> None:
    make_user(roles=("rota_manager", "operator"), email="en@ali.example", locale="en")
    login(client, "en@ali.example")
    data = rotation_data(team, end_date="2026-12-01")
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "preview"})
    assert "The end must be after the first day." in response.get_data(as_text=True)


def test_one_more_operator_slot_can_be_asked_for_without_javascript(
    client: FlaskClient, manager: User, team: list[User]
) -> None:
    login(client, manager.email)
    data = rotation_data(team, **{"operators-2": ""})
    response = post_form(client, "/rota/BS/rotations/new", {**data, "action": "more"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="operators-3"' in html


def test_a_rotation_is_edited_with_a_preview_and_the_change_is_audited(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2], start_date=date(2026, 11, 1))
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation.id}"
    status, html = get(client, url)
    assert status == 200
    assert 'value="08:00"' in html
    assert f'<option selected value="{team[1].id}">' in html
    data = {
        "tier": "primary",
        "operators-0": str(team[2].id),
        "operators-1": str(team[0].id),
        "handover": "07:30",
        "period_days": "1",
        "start_date": "2026-11-01",
        "end_date": "",
        "name": "",
    }
    response = post_form(client, url, previewed(client, url, data))
    assert response.status_code == 302
    db.refresh(rotation)
    assert rotation.operator_ids == (team[2].id, team[0].id)
    assert rotation.handover == time(7, 30)
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.object_type == "rotation", AuditEntry.action == "update"
        )
    ).one()
    assert entry.actor_id == manager.id
    assert entry.detail["before"]["handover"] == "08:00"
    assert entry.detail["after"]["handover"] == "07:30"


def test_a_member_who_left_the_province_is_shown_and_must_be_replaced(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2], start_date=date(2026, 11, 1))
    team[1].provinces = ["BG"]
    db.commit()
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation.id}"
    _, html = get(client, url)
    assert (
        f'<option selected value="{team[1].id}">Bruno Bianchi (non può essere reperibile qui)'
        in html
    )
    data = {
        "tier": "primary",
        "operators-0": str(team[0].id),
        "operators-1": str(team[1].id),
        "handover": "08:00",
        "period_days": "1",
        "start_date": "2026-11-01",
    }
    response = post_form(client, url, {**data, "action": "preview"})
    assert response.status_code == 400
    assert "Sostituisci gli operatori" in unescape(response.get_data(as_text=True))
    data["operators-1"] = str(team[2].id)
    response = post_form(client, url, previewed(client, url, data))
    assert response.status_code == 302
    db.refresh(rotation)
    assert rotation.operator_ids == (team[0].id, team[2].id)


def test_a_rotation_is_ended_on_a_date(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2], start_date=date(2026, 11, 1))
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation.id}"
    response = post_form(client, f"{url}/end", {"end_date": "2026-12-15"}, page=url)
    assert response.status_code == 302
    db.refresh(rotation)
    assert rotation.end_date == date(2026, 12, 15)
    _, html = get(client, "/rota/BS?month=2026-12")
    assert "gap" not in cell(html, "2026-12-14", "primary")
    assert 'class="tier-primary gap"' in cell(html, "2026-12-16", "primary")


@pytest.mark.parametrize("leaves", ["deactivated", "moved to BG"])
def test_a_rotation_whose_operator_left_can_still_be_ended(
    client: FlaskClient, manager: User, team: list[User], db: Session, leaves: str
) -> None:
    """The night an operator quits, the manager ends the old rotation: its past turns stay
    as they were, and the members are not checked again since they do not change."""
    rotation = make_rotation(db, team[:2], start_date=date(2026, 11, 1))
    if leaves == "deactivated":
        team[1].active = False
    else:
        team[1].provinces = ["BG"]
    db.commit()
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation.id}"
    response = post_form(client, f"{url}/end", {"end_date": "2026-11-30"}, page=url)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rota/BS")
    db.refresh(rotation)
    assert rotation.end_date == date(2026, 11, 30)
    assert rotation.operator_ids == (team[0].id, team[1].id)
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.object_type == "rotation", AuditEntry.action == "update"
        )
    ).one()
    assert entry.fields == ["end_date"]


@pytest.mark.parametrize("end_date", ["", "garbage", "2026-10-01"])
def test_a_bad_end_date_is_reported_and_changes_nothing(
    client: FlaskClient, manager: User, team: list[User], db: Session, end_date: str
) -> None:
    rotation = make_rotation(db, team[:2], start_date=date(2026, 11, 1))
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation.id}"
    response = post_form(client, f"{url}/end", {"end_date": end_date}, page=url)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(url)
    assert 'class="flash flash-error"' in client.get(url).get_data(as_text=True)
    db.refresh(rotation)
    assert rotation.end_date is None


def test_a_rotation_is_deleted_and_the_deletion_audited(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2])
    rotation_id = rotation.id
    login(client, manager.email)
    url = f"/rota/BS/rotations/{rotation_id}"
    response = post_form(client, f"{url}/delete", {}, page=url)
    assert response.status_code == 302
    db.expunge_all()
    assert db.get(Rotation, rotation_id) is None
    assert (
        db.scalars(
            select(AuditEntry).where(
                AuditEntry.object_type == "rotation", AuditEntry.action == "delete"
            )
        )
        .one()
        .actor_id
        == manager.id
    )


def test_a_rotation_of_another_province_is_404_even_to_a_coordinator(
    client: FlaskClient, make_user: UserFactory, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2])
    make_user(roles=("coordinator",), provinces=(), email="c@ali.example")
    login(client, "c@ali.example")
    assert client.get(f"/rota/BG/rotations/{rotation.id}").status_code == 404
    assert client.get("/rota/BS/rotations/999999").status_code == 404
    token = csrf_token(client.get("/rota/BG").get_data(as_text=True))
    response = client.post(f"/rota/BG/rotations/{rotation.id}/delete", data={"csrf_token": token})
    assert response.status_code == 404
    assert db.get(Rotation, rotation.id) is not None


@pytest.mark.parametrize("number", ["2147483648", "99999999999999999999999"])
def test_an_id_too_large_for_the_database_is_404_not_500(
    client: FlaskClient, make_user: UserFactory, number: str
) -> None:
    """PostgreSQL refuses an integer column compared with 2**31 (and SQLite with 2**63)."""
    make_user(roles=("coordinator",), provinces=(), email="c@ali.example")
    login(client, "c@ali.example")
    assert client.get(f"/rota/BS/rotations/{number}").status_code == 404
    token = csrf_token(client.get("/rota/BS").get_data(as_text=True))
    for url in (
        f"/rota/BS/rotations/{number}",
        f"/rota/BS/rotations/{number}/end",
        f"/rota/BS/rotations/{number}/delete",
        f"/rota/BS/overrides/{number}/delete",
        f"/profile/calendar/{number}/revoke",
    ):
        response = client.post(url, data={"csrf_token": token, "end_date": "2026-12-01"})
        assert response.status_code == 404, url


def test_a_change_without_the_csrf_token_is_refused(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    rotation = make_rotation(db, team[:2])
    login(client, manager.email)
    response = client.post(f"/rota/BS/rotations/{rotation.id}/delete")
    assert response.status_code == 400
    assert db.get(Rotation, rotation.id) is not None


# ---------------------------------------------------------------------------------------
# Overrides


def test_the_swap_link_of_a_day_prefills_that_days_hand_overs(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 12, 7), handover=time(9, 0))
    login(client, manager.email)
    _, month = get(client, "/rota/BS?month=2026-12")
    link = "/rota/BS/overrides/new?day=2026-12-10&amp;tier=primary"
    assert link in cell(month, "2026-12-10", "primary")
    _, html = get(client, link.replace("&amp;", "&"))
    assert 'value="2026-12-10T09:00"' in html
    assert 'value="2026-12-11T09:00"' in html
    # Before the rotation starts there is no hand-over: the whole day.
    _, html = get(client, "/rota/BS/overrides/new?day=2026-12-03&tier=backup")
    assert 'value="2026-12-03T00:00"' in html
    assert 'value="2026-12-04T00:00"' in html
    assert '<option selected value="backup">' in html


@pytest.mark.parametrize("day", ["", "garbage", "9999-12-31", "2026-02-30"])
def test_a_bad_day_in_the_swap_link_falls_back_to_today(
    client: FlaskClient, manager: User, day: str
) -> None:
    login(client, manager.email)
    status, html = get(client, f"/rota/BS/overrides/new?day={day}&tier=nonsense")
    assert status == 200
    assert 'value="2026-11-24T00:00"' in html


def test_an_override_closes_a_gap_and_is_audited(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 12, 7), handover=time(9, 0))
    login(client, manager.email)
    response = post_form(
        client,
        "/rota/BS/overrides/new",
        {
            "tier": "primary",
            "user_id": str(team[2].id),
            "start": "2026-12-03T00:00",
            "end": "2026-12-04T00:00",
            "reason": "copertura",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rota/BS?month=2026-12")
    override = db.scalars(select(Override)).one()
    assert (override.province, override.tier, override.user_id) == ("BS", "primary", team[2].id)
    assert override.start_at == datetime(2026, 12, 2, 23, tzinfo=UTC)
    assert override.end_at == datetime(2026, 12, 3, 23, tzinfo=UTC)
    _, html = get(client, "/rota/BS?month=2026-12")
    assert "gap" not in cell(html, "2026-12-03", "primary")
    assert "Carla Verdi" in cell(html, "2026-12-03", "primary")
    assert "gap" in cell(html, "2026-12-02", "primary")
    assert f'id="override-{override.id}"' in html
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "override")).one()
    assert (entry.action, entry.actor_id) == ("create", manager.id)


def test_an_override_in_the_repeated_hour_starts_at_its_first_occurrence(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    login(client, manager.email)
    response = post_form(
        client,
        "/rota/BS/overrides/new",
        {
            "tier": "primary",
            "user_id": str(team[0].id),
            "start": "2026-10-25T02:30",
            "end": "2026-10-25T12:00",
        },
    )
    assert response.status_code == 302
    override = db.scalars(select(Override)).one()
    assert override.start_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert override.end_at == datetime(2026, 10, 25, 11, tzinfo=UTC)  # 12:00 CET
    _, html = get(client, "/rota/BS?month=2026-10")
    assert "02:30 CEST–12:00 Anna Rossi" in text(cell(html, "2026-10-25", "primary"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"end": "2026-12-02T00:00"}, "La fine deve essere dopo l'inizio"),
        ({"end": "2026-12-03T00:00"}, "La fine deve essere dopo l'inizio"),
        ({"end": "2027-06-01T00:00"}, "92 giorni"),
        ({"start": "2027-03-28T02:30"}, "Quest'ora non esiste"),
        ({"start": "garbage"}, "Inserisci una data e un'ora"),
        ({"start": ""}, "Inserisci quando inizia il cambio."),
        ({"start": "0001-01-01T00:00"}, "Scegli una data tra il 2000 e il 2100."),
        ({"user_id": ""}, "Scegli chi è reperibile."),
        ({"user_id": "999999"}, "Non è una opzione valida"),
        ({"user_id": "1 OR 1=1"}, "Non è una opzione valida"),
        ({"tier": "coordinator"}, "Non è una opzione valida"),
        ({"reason": "x" * 300}, "200"),
    ],
)
def test_bad_override_input_is_a_form_message(
    *,
    client: FlaskClient,
    manager: User,
    team: list[User],
    db: Session,
    changes: dict[str, str],
    message: str,
) -> None:
    login(client, manager.email)
    data = {
        "tier": "primary",
        "user_id": str(team[0].id),
        "start": "2026-12-03T00:00",
        "end": "2026-12-04T00:00",
        **changes,
    }
    response = post_form(client, "/rota/BS/overrides/new", data)
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 400, page
    assert message in page, page
    assert db.scalars(select(Override)).all() == []


def test_an_override_is_deleted_and_the_deletion_audited(
    client: FlaskClient, manager: User, team: list[User], db: Session
) -> None:
    override = editing.add_override(
        db,
        actor="test",
        now=datetime(2026, 11, 1, tzinfo=UTC),
        province="BS",
        tier="primary",
        user_id=team[0].id,
        start=datetime(2026, 11, 25, 8, tzinfo=UTC),
        end=datetime(2026, 11, 26, 8, tzinfo=UTC),
        served=SERVED,
    )
    db.commit()
    override_id = override.id
    login(client, manager.email)
    response = post_form(client, f"/rota/BS/overrides/{override_id}/delete", {}, page="/rota/BS")
    assert response.status_code == 302
    db.expunge_all()
    assert db.get(Override, override_id) is None
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.object_type == "override", AuditEntry.action == "delete"
        )
    ).one()
    assert entry.actor_id == manager.id


def test_an_override_of_another_province_cannot_be_deleted_through_this_one(
    client: FlaskClient, make_user: UserFactory, db: Session
) -> None:
    bergamo = make_user(provinces=("BG",))
    override = editing.add_override(
        db,
        actor="test",
        now=datetime(2026, 11, 1, tzinfo=UTC),
        province="BG",
        tier="primary",
        user_id=bergamo.id,
        start=datetime(2026, 11, 25, 8, tzinfo=UTC),
        end=datetime(2026, 11, 26, 8, tzinfo=UTC),
        served=SERVED,
    )
    db.commit()
    make_user(roles=("rota_manager", "operator"), provinces=("BS",), email="m@ali.example")
    login(client, "m@ali.example")
    token = csrf_token(client.get("/rota/BS").get_data(as_text=True))
    assert (
        client.post(
            f"/rota/BS/overrides/{override.id}/delete", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/rota/BG/overrides/{override.id}/delete", data={"csrf_token": token}
        ).status_code
        == 403
    )
    assert (
        client.post("/rota/BS/overrides/999999/delete", data={"csrf_token": token}).status_code
        == 404
    )
    assert db.get(Override, override.id) is not None


# ---------------------------------------------------------------------------------------
# On call now, my shifts


def test_who_is_on_call_now_shows_each_province_with_phone_links(
    client: FlaskClient, make_user: UserFactory, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), handover=time(8, 0))
    make_rotation(
        db, [team[2]], tier="backup", start_date=date(2026, 11, 20), end_date=date(2026, 11, 27)
    )
    coordinator = make_user(roles=("coordinator",), provinces=(), name="Zoe Coordinatrice")
    login(client, coordinator.email)
    status, html = get(client, "/rota/now")
    assert status == 200
    card = html[
        html.index('id="province-BS"') : html.index("</section>", html.index('id="province-BS"'))
    ]
    # 2026-11-24 10:00Z is 11:00 in Rome: the turn that began on the 24th at 08:00 is Bruno's
    # (turns alternate daily from Anna on 1 November).
    assert "Bruno Bianchi" in card
    assert f'href="tel:{team[1].phone}"' in card
    assert "fino a mer 25 nov 08:00" in text(card)
    assert "Carla Verdi" in card
    assert "ven 27 nov 08:00" in text(card)
    other = html[
        html.index('id="province-BG"') : html.index("</section>", html.index('id="province-BG"'))
    ]
    assert "Nessun reperibile" in other
    assert "Zoe Coordinatrice" in html[html.index('id="coordinators"') :]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "on_call_now")).one()
    assert (entry.action, entry.actor_id) == ("read", coordinator.id)
    assert entry.fields == ["display_name", "phone"]


def test_an_operator_sees_only_their_provinces_on_call_now(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(provinces=("BG",), email="bg@ali.example")
    login(client, "bg@ali.example")
    _, html = get(client, "/rota/now")
    assert 'id="province-BG"' in html
    assert 'id="province-BS"' not in html


def test_my_shifts_lists_the_next_30_days(
    client: FlaskClient, team: list[User], db: Session
) -> None:
    make_rotation(db, team[:2], start_date=date(2026, 11, 1), handover=time(8, 0))
    login(client, "anna@ali.example")
    status, html = get(client, "/rota/mine")
    assert status == 200
    table = html[html.index('class="my-shifts"') :]
    rows = re.findall(r"<tr[^>]*>\s*<td>", table)
    # Anna holds every other day: 15 turns in 30 days.
    assert len(rows) == 15
    assert "mer 25 nov 08:00" in text(table)
    assert 'id="calendar-feeds"' in html


def test_my_shifts_sends_an_operator_without_a_verified_phone_to_their_profile(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(provinces=("BS",), email="new@ali.example", verified=False)
    login(client, "new@ali.example")
    _, html = get(client, "/rota/mine")
    assert "Il tuo telefono non è verificato" in html
    assert 'href="/profile/"' in html
    assert "Non hai turni nei prossimi 30 giorni." in html


def test_deleting_cover_warns_the_other_rota_managers_of_the_gap_it_opens(
    client: FlaskClient,
    manager: User,
    team: list[User],
    make_user: UserFactory,
    db: Session,
    twilio: TwilioStandIn,
) -> None:
    colleague = make_user(
        roles=("rota_manager",), provinces=("BS",), email="other@ali.example", phone="+393339990001"
    )
    override = editing.add_override(
        db,
        actor="test",
        now=datetime(2026, 11, 1, tzinfo=UTC),
        province="BS",
        tier="primary",
        user_id=team[0].id,
        start=datetime(2026, 11, 20, 8, tzinfo=UTC),
        end=datetime(2027, 1, 20, 8, tzinfo=UTC),
        served=SERVED,
    )
    db.commit()
    login(client, manager.email)
    response = post_form(client, f"/rota/BS/overrides/{override.id}/delete", {}, page="/rota/BS")
    assert response.status_code == 302
    recipients = [m.to for m in twilio.messages]
    # The editor sees the gap on the page; the other rota manager gets the SMS.
    assert recipients == [colleague.phone]
    assert "BS" in twilio.messages[0].body
    assert "Anna" not in twilio.messages[0].body
