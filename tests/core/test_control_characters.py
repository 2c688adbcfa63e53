"""Issue 14, bad input on PostgreSQL: a control character in a form field, a query parameter or
a CSV cell is refused with a clear message, never a 500; and an error page still renders, with
its security headers, after a failed statement has broken the request's transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.db import get_session
from core.models import AuditEntry, User
from oncall.models import RotaShift
from tests.conftest import PASSWORD, UserFactory, csrf_token, login

FORM_REFUSED = "Il modulo contiene caratteri di controllo"


def assert_refused_page(response: object, message: str) -> None:
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert message in response.get_data(as_text=True)  # type: ignore[attr-defined]
    # The full page went out, with its headers: not a bare error.
    assert "Content-Security-Policy" in response.headers  # type: ignore[attr-defined]
    assert response.headers["X-Frame-Options"] == "DENY"  # type: ignore[attr-defined]


@pytest.mark.parametrize("email", ["anna\x00@ali.example", "\x00", "anna@ali.example\x1b"])
def test_a_control_character_in_the_login_form_is_refused_with_a_message(
    client: FlaskClient, db: Session, make_user: UserFactory, email: str
) -> None:
    make_user(email="anna@ali.example")
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert_refused_page(response, FORM_REFUSED)
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_line_breaks_and_tabs_are_text_not_control_characters(
    client: FlaskClient, make_user: UserFactory
) -> None:
    make_user(email="anna@ali.example", password="tab\tand\nnewline password")
    login(client, "anna@ali.example", "tab\tand\nnewline password")


def test_a_control_character_in_a_swap_reason_is_refused(
    client: FlaskClient, db: Session, make_user: UserFactory
) -> None:
    manager = make_user(roles=("rota_manager",), email="rm@ali.example")
    operator = make_user()
    login(client, manager.email)
    form = client.get("/rota/BS/overrides/new").get_data(as_text=True)
    response = client.post(
        "/rota/BS/overrides/new",
        data={
            "csrf_token": csrf_token(form),
            "tier": "primary",
            "user_id": str(operator.id),
            "start": "2026-11-25T08:00",
            "end": "2026-11-25T20:00",
            "reason": "cambio\x00turno",
        },
    )
    assert_refused_page(response, FORM_REFUSED)
    assert db.scalar(select(func.count()).select_from(RotaShift)) == 0


def test_a_control_character_in_a_query_parameter_is_refused(
    client: FlaskClient, make_user: UserFactory
) -> None:
    login(client, make_user(roles=("coordinator",), provinces=()).email)
    response = client.get("/rota/BS?month=2026-11%00")
    assert_refused_page(response, "indirizzo contiene caratteri di controllo")


def test_the_api_and_twilio_read_their_own_input(client: FlaskClient) -> None:
    """Not refused here: the hand-off API strips free text with warnings, and a partner's SMS
    is kept whatever it holds (tests/intake)."""
    response = client.post("/twilio/sms", data={"Body": "aiuto\x00", "From": "+393331234567"})
    assert response.status_code == 403  # unsigned: Twilio's check, not this one


def test_an_error_page_after_a_failed_statement_still_renders(
    app: Flask, client: FlaskClient, make_user: UserFactory
) -> None:
    """On PostgreSQL a failed statement aborts the transaction: the error page (which reads
    the signed-in user) must not fail in turn and send a bare page without security headers."""

    def broken() -> str:
        session = get_session()
        # The page below reads the signed-in user from the database again, as any page does
        # whose user is not loaded yet when the failure happens.
        session.expire_all()
        session.execute(text("SELECT * FROM no_such_table"))
        return "unreachable"

    app.add_url_rule("/test-broken", view_func=broken)
    user = make_user(name="Anna Errore")
    login(client, user.email)
    response = client.get("/test-broken")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Anna Errore" in html  # the page's own query of the user worked
    assert "Content-Security-Policy" in response.headers
    assert "no_such_table" not in html


def test_a_control_character_in_a_csv_cell_is_an_error_naming_line_and_column(
    runner: FlaskCliRunner, db: Session, make_user: UserFactory, tmp_path: Path
) -> None:
    make_user(email="anna@example.org")
    operators = tmp_path / "operators.csv"
    operators.write_bytes(
        b"name,email,phone,provinces,roles,languages\n"
        b"Anna\x00 Rossi,anna@example.org,3331234567,BS,operator,it\n"
        b"Bruno Neri,bruno@example.org,3331234568,B\x01S,operator,\x7fit\n"
    )
    before = db.scalar(select(func.count()).select_from(User))
    result = runner.invoke(args=["operators", "import", str(operators)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert lines == [
        "line 2: name contains control characters (invisible characters that are not text); "
        "remove them",
        "line 3: provinces, languages contains control characters (invisible characters that "
        "are not text); remove them",
    ]
    assert db.scalar(select(func.count()).select_from(User)) == before

    rota = tmp_path / "rota.csv"
    rota.write_bytes(
        b"province,tier,operator_email,start,end\n"
        b"BS,primary,anna@example.org,2026-12-01 08:00\x00,2026-12-02 08:00\n"
    )
    result = runner.invoke(args=["rota", "import", str(rota)])
    assert result.exit_code == 1
    assert "line 2: start contains control characters" in result.output
    assert db.scalar(select(func.count()).select_from(RotaShift)) == 0
