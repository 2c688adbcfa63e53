"""Issue 14: an emergency is never lost to a typo. A hand-off is refused only when it is unusable;
whatever else is wrong is a warning, in the answer and on the case's timeline. On both databases,
with NUL bytes and other control characters anywhere in the body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.crypto import decrypt
from intake.models import Handoff
from routing.models import Case, CaseEvent
from tests.alerting import Chain, Phone, events
from tests.conftest import csrf_token, login
from tests.intake.signed import Sender

TYPO = {"external_id": "NV-typo", "urgency": "EMERGENZA!!", "province": "Bresica"}
TYPO_WARNINGS = [
    {
        "field": "urgency",
        "message": "is not one of emergency, urgent, ordinary: treated as emergency",
    },
    {
        "field": "province",
        "message": "is not an Italian province (a sigla, a name or an ISTAT code): "
        "not used to route the case",
    },
]
# NUL, other C0 controls, an escape sequence's ESC, DEL and a C1 control (NEL).
CONTROLS = "\x00\x01\x1b\x7f\x85"


def warning_event(db: Session) -> CaseEvent:
    return db.scalars(select(CaseEvent).where(CaseEvent.kind == "warning")).one()


def test_an_emergency_with_a_typo_is_stored_and_pages_the_coordinators(
    sender: Sender, db: Session, chain: Chain, phone: Phone
) -> None:
    response = sender.post(TYPO)

    assert response.status_code == 201
    assert response.get_json() == {
        "case": "XX-2026-0001",
        "province": None,
        "province_source": "unresolved",
        "status": "dispatched",
        "on_call": None,
        "warnings": TYPO_WARNINGS,
    }
    case = db.scalars(select(Case)).one()
    assert (case.urgency, case.province_source) == ("emergency", "unresolved")
    # Paged at once, through the real twilio client and the stand-in, as an emergency.
    [sms] = phone.sms_to(chain.coordinator)
    assert sms.startswith("ALI XX-2026-0001 EMERGENZA")
    assert len(phone.calls_to(chain.coordinator)) == 1
    assert phone.sms_to(chain.primary) == []
    assert events(db, case)[:3] == ["created", "routed", "warning"]
    assert warning_event(db).data == {
        "warnings": [
            {"field": "urgency", "code": "urgency_unknown", "message": TYPO_WARNINGS[0]["message"]},
            {
                "field": "province",
                "code": "province_unknown",
                "message": TYPO_WARNINGS[1]["message"],
            },
        ]
    }


def test_a_retry_of_a_mistaken_handoff_gets_the_same_case_and_warnings(
    sender: Sender, db: Session, chain: Chain, phone: Phone
) -> None:
    first = sender.post(TYPO)
    again = sender.post(TYPO)
    assert again.status_code == 200
    assert again.get_json() == first.get_json() | {"duplicate": True}
    assert again.get_json()["warnings"] == TYPO_WARNINGS
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    assert len(phone.sms_to(chain.coordinator)) == 1  # not paged twice


@pytest.mark.parametrize(
    ("fields", "province", "province_source", "warned"),
    [
        ({"province": "Bresica"}, None, "unresolved", ["province"]),
        ({"province": "N/D"}, None, "unresolved", ["province"]),
        ({"province": "Provincia di Brescia"}, "BS", "explicit", []),
        ({"province": "\u200b"}, None, "unresolved", []),
        ({"province": "BS\u200b"}, "BS", "explicit", []),
        ({"province": "N/D", "municipality": "Chiari"}, "BS", "municipality", ["province"]),
        ({"urgency": "EMERGENCY", "province": "bs"}, "BS", "explicit", []),
        ({"municipality": "Castro"}, None, "unresolved", ["municipality"]),
        ({"caller_phone": "+39 030 CALL ME"}, None, "unresolved", ["caller_phone"]),
    ],
)
def test_the_inputs_that_used_to_lose_a_case(
    sender: Sender,
    db: Session,
    fields: dict[str, Any],
    province: str | None,
    province_source: str,
    warned: list[str],
) -> None:
    response = sender.post({"external_id": "NV-x"} | fields)
    assert response.status_code == 201
    answer = response.get_json()
    assert (answer["province"], answer["province_source"]) == (province, province_source)
    assert [w["field"] for w in answer["warnings"]] == warned
    assert events(db).count("warning") == (1 if warned else 0)


def test_control_characters_anywhere_are_removed_and_never_reach_the_database(
    sender: Sender, db: Session, chain: Chain, phone: Phone
) -> None:
    """PostgreSQL refuses NUL in text: nothing the sender put in a field may carry one there."""
    c = CONTROLS
    body = {
        "external_id": "NV-nul",
        "received_at": f"2026-11-24T10:55:00+01:00{c}",
        "province": f"B{c}S",
        "municipality": f"Chi{c}ari",
        "caller_phone": f"030{c} 712 3456",
        "callback_phone": f"+39 333{c} 765 4321",
        "urgency": f"emer{c}gency",
        "reporter_type": f"ngo{c}",
        "exploitation": [f"sexual{c}", c],
        "needs": [f"health{c}"],
        "person": {
            "gender": f"female{c}",
            "age_band": f"18-24{c}",
            "minor": f"no{c}",
            "nationality": f"N{c}G",
            "languages": [f"e{c}n"],
        },
        "summary": f"Prima riga{c}\nseconda\triga \x1b[31mrossa{c}",
        "contact_safe": f"no{c}",
        f"unknown{c}": f"ignored{c}",
    }
    response = sender.post(body)

    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert (answer["province"], answer["province_source"]) == ("BS", "explicit")
    warned = {w["field"]: w["message"] for w in answer["warnings"]}
    assert set(warned) == {
        "received_at",
        "province",
        "municipality",
        "caller_phone",
        "callback_phone",
        "urgency",
        "reporter_type",
        "exploitation[0]",
        "exploitation[1]",
        "needs[0]",
        "person.gender",
        "person.age_band",
        "person.minor",
        "person.nationality",
        "person.languages[0]",
        "summary",
        "contact_safe",
    }
    assert set(warned.values()) == {"had control characters or broken characters: removed"}
    case = db.scalars(select(Case)).one()
    assert (case.urgency, case.reporter_type, case.contact_safe) == ("emergency", "ngo", "no")
    assert (case.exploitation, case.needs) == (["sexual"], ["health"])
    assert (case.person_gender, case.person_age_band, case.person_minor) == (
        "female",
        "18-24",
        "no",
    )
    assert (case.person_nationality, case.person_languages) == ("NG", ["en"])
    assert (case.municipality, case.caller_phone, case.callback_phone) == (
        "Chiari",
        "+390307123456",
        "+393337654321",
    )
    assert case.summary == "Prima riga\nseconda\triga [31mrossa"
    # Read back as the database has them: no control character in any stored text.
    row = db.execute(text("SELECT * FROM cases")).mappings().one()
    stored = [str(value) for value in row.values() if value is not None]
    stored += [decrypt(row[name]) for name in ("summary", "municipality", "callback_phone")]
    stored += [json.dumps(e.data) + e.kind for e in db.scalars(select(CaseEvent))]
    assert not any(ch in value for value in stored for ch in "\x00\x01\x1b\x7f\x85")
    assert len(phone.sms_to(chain.primary)) == 1


@pytest.mark.parametrize("external_id", ["NV\x00nul", "\x00", "NV\x1b", "NV\x85"])
def test_an_external_id_with_control_characters_is_refused_on_every_database(
    sender: Sender, db: Session, external_id: str
) -> None:
    response = sender.post({"external_id": external_id, "urgency": "emergency"})
    assert response.status_code == 422
    assert response.get_json() == {
        "errors": [{"field": "external_id", "message": "must not contain control characters"}]
    }
    assert db.scalar(select(func.count()).select_from(Handoff)) == 0


def test_only_control_characters_in_free_text_is_no_text(sender: Sender, db: Session) -> None:
    response = sender.post(
        {"external_id": "NV-blank", "summary": "\x00\x00", "municipality": "\x00"}
    )
    assert response.status_code == 201
    assert [w["field"] for w in response.get_json()["warnings"]] == ["municipality", "summary"]
    case = db.scalars(select(Case)).one()
    assert (case.summary, case.municipality) == (None, None)


def test_warnings_never_repeat_what_was_sent(sender: Sender, db: Session) -> None:
    """The values may be personal data: the answer and the timeline say what was wrong only."""
    body = {
        "external_id": "NV-private",
        "urgency": "Maria Rossi",
        "province": "Via Roma 12",
        "municipality": "Casa di Maria",
        "caller_phone": "Maria 333 1234567",
        "reporter_type": "la zia Rossi",
        "person": {"nationality": "Maria", "languages": ["Rossi"], "gender": "Maria"},
        "exploitation": ["Rossi"],
        "contact_safe": "chiedere a Maria",
        "received_at": "il giorno di Maria",
    }
    response = sender.post(body)
    assert response.status_code == 201
    told = response.get_data(as_text=True) + json.dumps(warning_event(db).data)
    assert len(warning_event(db).data["warnings"]) == 11
    for private in ("Maria", "Rossi", "Roma", "1234567", "zia", "chiedere"):
        assert private not in told


def test_contact_safe_is_stored_and_unknown_by_default(sender: Sender, db: Session) -> None:
    for external_id, value in (
        ("cs-1", " NO "),
        ("cs-2", None),
        ("cs-3", "forse"),
        ("cs-4", "yes"),
    ):
        body = {"external_id": external_id} | ({"contact_safe": value} if value else {})
        assert sender.post(body).status_code == 201
    stored = db.execute(select(Case.reference, Case.contact_safe).order_by(Case.id)).all()
    assert [safe for _reference, safe in stored] == ["no", "unknown", "unknown", "yes"]


def test_the_case_page_shows_the_warnings_and_a_phone_extension(
    client: FlaskClient, sender: Sender, chain: Chain
) -> None:
    sender.post(TYPO | {"callback_phone": "+39 030 712 3456 int. 12"})
    login(client, chain.coordinator.email)
    html = client.get("/cases/XX-2026-0001").get_data(as_text=True)
    assert "Segnalazione non del tutto compresa" in html
    assert "<code>urgency</code>: urgenza non compresa: trattata come emergenza" in html
    assert "<code>province</code>: non è una provincia italiana" in html
    assert "+39 030 712 3456 ext. 12" in html
    assert "Bresica" not in html
    assert "EMERGENZA!!" not in html
    token = csrf_token(html)
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": token}).close()
    english = client.get("/cases/XX-2026-0001").get_data(as_text=True)
    assert "Hand-off not fully understood" in english
    assert "urgency not understood: treated as an emergency" in english
