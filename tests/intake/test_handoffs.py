"""`POST /api/v1/handoffs` as the Numero Verde uses it: signed, exactly once, never refused for
what it says."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from core.app import create_app
from core.clock import FrozenClock
from core.config import Settings
from core.crypto import decrypt
from core.models import AuditEntry, User
from intake.models import Handoff, SourceRateWindow
from intake.services import IssuedSecret
from intake.signing import signature
from oncall.models import RotaShift
from routing.models import AppendOnlyError, Case, CaseEvent
from tests.alerting import Chain, Phone
from tests.conftest import UserFactory
from tests.intake.signed import HANDOFFS, Sender, encode, make_source

FULL_BODY: dict[str, Any] = {
    "external_id": "NV-2026-000123",
    "received_at": "2026-11-24T10:55:00+01:00",
    "municipality": "Chiari",
    "caller_phone": "030 712 3456",
    "callback_phone": "+39 333 765 4321",
    "urgency": "emergency",
    "reporter_type": "law_enforcement",
    "exploitation": ["sexual", "labour"],
    "person": {
        "gender": "female",
        "age_band": "18-24",
        "minor": "no",
        "nationality": "ng",
        "languages": ["en", "PCM"],
    },
    "needs": ["pronta_accoglienza", "interpreter"],
    "summary": "Maria Rossi, ospite di via Roma 12, chiede aiuto.",
}


def stored(db: Session) -> dict[str, int]:
    """How many rows the intake left behind (the audit counts case creations only)."""
    return {
        "handoffs": db.scalar(select(func.count()).select_from(Handoff)) or 0,
        "cases": db.scalar(select(func.count()).select_from(Case)) or 0,
        # The intake's own events; the dispatch adds its own (tested in tests/routing).
        "events": db.scalar(
            select(func.count())
            .select_from(CaseEvent)
            .where(CaseEvent.kind.in_(["created", "routed"]))
        )
        or 0,
        "audit": db.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.object_type == "case", AuditEntry.action == "create")
        )
        or 0,
    }


NOTHING = {"handoffs": 0, "cases": 0, "events": 0, "audit": 0}


def on_call(db: Session, user: User, province: str, now: datetime) -> None:
    """An explicit primary shift around `now` (the rota's own table, as an import makes it)."""
    db.add(
        RotaShift(
            province=province,
            tier="primary",
            user_id=user.id,
            start_at=now - timedelta(hours=2),
            end_at=now + timedelta(hours=6),
            created_at=now,
        )
    )
    db.commit()


# --- the happy path --------------------------------------------------------------------------


def test_signed_handoff_opens_a_case_in_the_right_province(
    sender: Sender, db: Session, make_user: UserFactory, clock: FrozenClock
) -> None:
    operator = make_user(provinces=("BS",), name="Operatrice BS", phone="+393331112223")
    on_call(db, operator, "BS", clock.now())

    response = sender.post(FULL_BODY)

    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {
        "case": "BS-2026-0001",
        "province": "BS",
        "province_source": "municipality",
        "status": "dispatched",
        "on_call": {"name": "Operatrice BS", "phone": "+393331112223", "phone_verified": True},
        "warnings": [],
    }
    assert response.headers["Location"] == "/api/v1/handoffs/NV-2026-000123"
    case = db.scalars(select(Case)).one()
    assert (case.channel, case.urgency, case.reporter_type) == (
        "webhook",
        "emergency",
        "law_enforcement",
    )
    assert case.exploitation == ["sexual", "labour"]
    assert case.needs == ["pronta_accoglienza", "interpreter"]
    assert (case.person_gender, case.person_age_band, case.person_minor) == (
        "female",
        "18-24",
        "no",
    )
    assert case.person_nationality == "NG"
    assert case.person_languages == ["en", "pcm"]
    assert case.caller_phone == "+390307123456"
    assert case.callback_phone == "+393337654321"
    assert case.summary == FULL_BODY["summary"]
    assert case.municipality == "Chiari"
    assert case.received_at == datetime(2026, 11, 24, 9, 55, tzinfo=UTC)
    assert case.routed_to_id == operator.id
    handoff = db.scalars(select(Handoff)).one()
    assert handoff.case_id == case.id
    assert json.loads(handoff.payload) == FULL_BODY
    events = db.scalars(select(CaseEvent).order_by(CaseEvent.id)).all()
    assert [e.kind for e in events][:4] == ["created", "routed", "dispatched", "step"]
    assert events[0].actor == "source:numero-verde"
    assert events[1].data == {
        "province": "BS",
        "province_source": "municipality",
        "operator_id": operator.id,
        "tier": "primary",
    }
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "case")).one()
    assert (entry.action, entry.actor, entry.object_id) == (
        "create",
        "source:numero-verde",
        str(case.id),
    )
    assert {"summary", "caller_phone", "callback_phone", "person"} <= set(entry.fields)


def test_only_external_id_is_required(sender: Sender, db: Session) -> None:
    response = sender.post({"external_id": "x-1"})
    assert response.status_code == 201
    assert response.get_json() == {
        "case": "XX-2026-0001",
        "province": None,
        "province_source": "unresolved",
        "status": "dispatched",
        "on_call": None,
        "warnings": [],
    }
    case = db.scalars(select(Case)).one()
    assert case.urgency == "ordinary"
    assert case.received_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    routed = db.scalars(select(CaseEvent).where(CaseEvent.kind == "routed")).one()
    assert routed.data["to"] == "coordinators"


def test_nobody_on_call_is_recorded_on_the_timeline(sender: Sender, db: Session) -> None:
    response = sender.post({"external_id": "x-2", "province": "Brescia"})
    assert response.get_json()["on_call"] is None
    routed = db.scalars(select(CaseEvent).where(CaseEvent.kind == "routed")).one()
    assert routed.data == {
        "province": "BS",
        "province_source": "explicit",
        "operator_id": None,
        "note": "nobody on call",
    }


def test_null_means_absent_and_unknown_fields_are_ignored(sender: Sender, db: Session) -> None:
    body = {
        "external_id": "x-3",
        "province": None,
        "person": {"gender": None, "favourite_colour": "blue"},
        "exploitation": None,
        "sender_internal_score": 7,
        "nested": {"anything": [1, 2, 3]},
    }
    assert sender.post(body).status_code == 201
    case = db.scalars(select(Case)).one()
    assert (case.person_gender, case.exploitation) == (None, [])


# --- exactly once ---------------------------------------------------------------------------


def test_replay_returns_the_same_case_with_duplicate(sender: Sender, db: Session) -> None:
    first = sender.post(FULL_BODY)
    again = sender.post(FULL_BODY)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.get_json() == first.get_json() | {"duplicate": True}
    assert stored(db) == {"handoffs": 1, "cases": 1, "events": 2, "audit": 1}


def test_a_replay_audits_its_read_of_the_case(sender: Sender, db: Session) -> None:
    sender.post(FULL_BODY)
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "read")).all() == []

    assert sender.post(FULL_BODY).status_code == 200

    read = db.scalars(select(AuditEntry).where(AuditEntry.action == "read")).one()
    case = db.scalars(select(Case)).one()
    assert (read.actor, read.object_type, read.object_id) == (
        "source:numero-verde",
        "case",
        str(case.id),
    )
    # Field names only: nothing of the case itself is in the entry.
    assert set(read.fields) == {"reference", "province", "province_source", "status", "routed_to"}
    assert case.reference not in json.dumps([read.fields, read.detail])


def test_replay_with_another_body_keeps_the_first(sender: Sender, db: Session) -> None:
    sender.post({"external_id": "same", "province": "BG"})
    again = sender.post({"external_id": "same", "province": "MN", "summary": "changed"})
    assert again.status_code == 200
    assert again.get_json()["province"] == "BG"
    case = db.scalars(select(Case)).one()
    assert (case.province, case.summary) == ("BG", None)


def test_replay_answers_the_current_status(sender: Sender, db: Session) -> None:
    sender.post({"external_id": "s-1", "province": "BG"})
    case = db.scalars(select(Case)).one()
    case.status = "accepted"
    db.commit()
    assert sender.post({"external_id": "s-1", "province": "BG"}).get_json()["status"] == "accepted"


def test_the_same_external_id_from_two_sources_is_two_cases(
    client: FlaskClient, sender: Sender, db: Session, clock: FrozenClock
) -> None:
    other = Sender(client, make_source(db, clock, name="altro-numero"), clock)
    assert sender.post({"external_id": "shared"}).status_code == 201
    assert other.post({"external_id": "shared"}).status_code == 201
    assert stored(db)["cases"] == 2


# --- references -----------------------------------------------------------------------------


def test_references_count_per_province_and_year(sender: Sender, clock: FrozenClock) -> None:
    refs = [
        sender.post({"external_id": f"r-{n}", "province": province}).get_json()["case"]
        for n, province in enumerate(["BS", "BS", "BG", None, "MI", "BS"])
    ]
    assert refs == [
        "BS-2026-0001",
        "BS-2026-0002",
        "BG-2026-0001",
        "XX-2026-0001",
        "MI-2026-0001",  # out of area keeps its real sigla
        "BS-2026-0003",
    ]
    # 23:30 UTC on 31 December is already 2027 in Rome.
    clock.set(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    assert sender.post({"external_id": "r-new-year", "province": "BS"}).get_json()["case"] == (
        "BS-2027-0001"
    )


def test_out_of_area_case_goes_to_the_coordinators(sender: Sender, db: Session) -> None:
    response = sender.post({"external_id": "o-1", "municipality": "Lecce"})
    assert response.get_json() | {"case": ""} == {
        "case": "",
        "province": "LE",
        "province_source": "out_of_area",
        "status": "dispatched",
        "on_call": None,
        "warnings": [],
    }
    routed = db.scalars(select(CaseEvent).where(CaseEvent.kind == "routed")).one()
    assert routed.data["to"] == "coordinators"


# --- refusals that store nothing ------------------------------------------------------------


def test_wrong_signature_is_refused(sender: Sender, db: Session) -> None:
    raw = encode(FULL_BODY)
    bad = sender.headers(raw) | {"X-Ali-Signature": signature("not-the-secret", "1", raw)}
    response = sender.client.post(HANDOFFS, data=raw, headers=bad, content_type="application/json")
    assert response.status_code == 401
    assert response.get_json() == {
        "error": "Authentication failed: check the key id, timestamp and signature."
    }
    assert stored(db) == NOTHING


def test_signature_over_another_body_is_refused(sender: Sender, db: Session) -> None:
    headers = sender.headers(encode({"external_id": "a"}))
    response = sender.client.post(
        HANDOFFS,
        data=encode({"external_id": "b"}),
        headers=headers,
        content_type="application/json",
    )
    assert response.status_code == 401
    assert stored(db) == NOTHING


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamp_outside_the_window_is_refused(
    sender: Sender, db: Session, clock: FrozenClock, skew: int
) -> None:
    response = sender.post(FULL_BODY, at=clock.now() + timedelta(seconds=skew))
    assert response.status_code == 401
    assert stored(db) == NOTHING


@pytest.mark.parametrize("skew", [-300, 300])
def test_timestamp_at_the_edge_of_the_window_is_accepted(
    sender: Sender, clock: FrozenClock, skew: int
) -> None:
    response = sender.post(FULL_BODY, at=clock.now() + timedelta(seconds=skew))
    assert response.status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ali-Key": "ak_0000000000000000"},
        {"X-Ali-Key": ""},
        {"X-Ali-Timestamp": "not-a-number"},
        {"X-Ali-Timestamp": "-1"},
        {"X-Ali-Timestamp": "1e9"},
        {"X-Ali-Signature": "v2=abc"},
        {"X-Ali-Signature": ""},
    ],
    ids=["unknown-key", "no-key", "text-ts", "negative-ts", "float-ts", "v2", "no-sig"],
)
def test_wrong_key_or_headers_are_refused(
    sender: Sender, db: Session, headers: dict[str, str]
) -> None:
    response = sender.post(FULL_BODY, headers=headers)
    assert response.status_code == 401
    assert stored(db) == NOTHING


def test_unsigned_request_is_refused(
    client: FlaskClient, source: IssuedSecret, db: Session
) -> None:
    response = client.post(HANDOFFS, json=FULL_BODY)
    assert response.status_code == 401
    assert stored(db) == NOTHING


def test_inactive_source_is_refused(sender: Sender, db: Session) -> None:
    db.execute(text("UPDATE sources SET active = false"))
    assert sender.post(FULL_BODY).status_code == 401
    assert stored(db) == NOTHING


def test_malformed_body_is_422_on_body(sender: Sender, db: Session) -> None:
    response = sender.post(b'{"external_id": "x", ')
    assert response.status_code == 422
    assert response.get_json() == {
        "errors": [{"field": "body", "message": "is not a JSON document"}]
    }
    assert stored(db) == NOTHING


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'"text"',
        b"null",
        b'{"external_id": NaN}',
        b"\xff\xfe{}",
        b"[" * 30_000 + b"]" * 30_000,
        b'{"external_id": "x", "n": ' + b"9" * 5000 + b"}",
    ],
    ids=["array", "string", "null", "nan", "not-utf8", "deep", "huge-int"],
)
def test_bodies_that_are_not_an_object_are_422(sender: Sender, db: Session, raw: bytes) -> None:
    response = sender.post(raw)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["body"]
    assert stored(db) == NOTHING


def test_oversize_body_is_413(sender: Sender, db: Session) -> None:
    body = {"external_id": "big", "padding": "x" * 64 * 1024}
    response = sender.post(body)
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert stored(db) == NOTHING


def test_body_of_exactly_64_kib_is_read(sender: Sender) -> None:
    head = b'{"external_id": "edge", "padding": "'
    raw = head + b"x" * (64 * 1024 - len(head) - 2) + b'"}'
    assert len(raw) == 64 * 1024
    assert sender.post(raw).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
def test_non_json_body_is_415(sender: Sender, db: Session, content_type: str) -> None:
    response = sender.post(FULL_BODY, content_type=content_type)
    assert response.status_code == 415
    assert stored(db) == NOTHING


def test_json_with_utf8_charset_is_accepted(sender: Sender) -> None:
    response = sender.post(FULL_BODY, content_type="application/json; charset=UTF-8")
    assert response.status_code == 201


# --- what the body says: warnings, never a refusal (design §4) -------------------------------


def test_every_problem_is_a_warning_and_the_case_is_opened_and_paged(
    sender: Sender, db: Session, chain: Chain, phone: Phone
) -> None:
    body = {
        "external_id": "v-1",
        "received_at": "2026-11-24T12:00:00+01:00",  # 10:06 UTC: after Ali's 10:00 + 5 min
        "province": "Atlantide",
        "caller_phone": "not a number",
        "callback_phone": "12",
        "urgency": "very",
        "reporter_type": "neighbour",
        "exploitation": ["sexual", "piracy", 3],
        "person": {
            "gender": "f",
            "age_band": "18-25",
            "minor": "maybe",
            "nationality": "XY",
            "languages": ["en", "english", "zz"],
        },
        "needs": {"shelter": True},
        "summary": "x" * 2001,
        "contact_safe": "perhaps",
    }
    response = sender.post(body)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    messages = {w["field"]: w["message"] for w in answer["warnings"]}
    assert messages == {
        "received_at": "is in the future: the time Ali received the hand-off is used",
        "province": "is not an Italian province (a sigla, a name or an ISTAT code): "
        "not used to route the case",
        "caller_phone": "has letters: not usable as a phone number, left out",
        "callback_phone": "is not a phone number (an Italian number, or + and the country "
        "code): left out",
        "urgency": "is not one of emergency, urgent, ordinary: treated as emergency",
        "reporter_type": "is not one of the codes: stored as other",
        "exploitation[1]": "is not one of the codes: stored as other",
        "exploitation[2]": "is not a string: ignored",
        "person.gender": "is not one of the codes: stored as unknown",
        "person.age_band": "is not one of the codes: stored as unknown",
        "person.minor": "is not one of the codes: left out",
        "person.nationality": "is not one of the codes: stored as unknown",
        "person.languages[1]": "is not one of the codes: left out",
        "person.languages[2]": "is not one of the codes: left out",
        "needs": "is not a list: ignored",
        "contact_safe": "is not one of the codes: stored as unknown",
    }
    # Nothing understood of the place: the coordinators triage it, as an emergency.
    assert (answer["province"], answer["province_source"]) == (None, "unresolved")
    case = db.scalars(select(Case)).one()
    assert (case.urgency, case.reporter_type, case.exploitation) == (
        "emergency",
        "other",
        ["sexual", "other"],
    )
    assert (case.person_gender, case.person_age_band, case.person_minor) == (
        "unknown",
        "unknown",
        None,
    )
    assert (case.person_nationality, case.person_languages) == ("unknown", ["en"])
    assert (case.caller_phone, case.callback_phone, case.contact_safe) == (None, None, "unknown")
    assert case.summary == "x" * 2001
    assert case.received_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert len(phone.sms_to(chain.coordinator)) == 1
    assert len(phone.calls_to(chain.coordinator)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "is required"),
        ({"external_id": None}, "is required"),
        ({"external_id": ""}, "must not be blank"),
        ({"external_id": "   "}, "must not be blank"),
        ({"external_id": 42}, "must be a string"),
        ({"external_id": ["a"]}, "must be a string"),
        ({"external_id": "a\nb"}, "must not contain control characters"),
        ({"external_id": "a\x00b"}, "must not contain control characters"),
        ({"external_id": "a\x85b"}, "must not contain control characters"),
        ({"external_id": "\ud800"}, "must not contain control characters"),
        ({"external_id": "x" * 129}, "must be at most 128 characters long"),
    ],
)
def test_an_unusable_external_id_is_the_only_422(
    sender: Sender, db: Session, body: dict[str, Any], message: str
) -> None:
    response = sender.post(body | {"urgency": "emergency", "summary": "ok"})
    assert response.status_code == 422
    assert response.get_json() == {"errors": [{"field": "external_id", "message": message}]}
    assert stored(db) == NOTHING


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"received_at": "2026-11-24T10:00:00"}, "received_at"),
        ({"received_at": "yesterday"}, "received_at"),
        ({"received_at": "0001-01-01T00:00:00+01:00"}, "received_at"),
        ({"received_at": 1795514400}, "received_at"),
        ({"province": 17}, "province"),
        ({"province": "N/D"}, "province"),
        ({"province": "Bresica"}, "province"),
        ({"province": "B" * 101}, "province"),
        ({"municipality": "Atlantide"}, "municipality"),
        ({"municipality": "Castro"}, "municipality"),
        ({"person": "adult"}, "person"),
        ({"person": ["female"]}, "person"),
        ({"needs": [None, 7]}, "needs[1]"),  # null is absent, even in a list
        ({"needs": "Pronta Accoglienza"}, "needs"),
        ({"summary": "\ud800"}, "summary"),
        ({"summary": 42}, "summary"),
        ({"exploitation": {"sexual": True}}, "exploitation"),
        ({"caller_phone": "+39 333 CALL ME"}, "caller_phone"),
        ({"callback_phone": "+39 333 123 4567 " + "9" * 30}, "callback_phone"),
        ({"urgency": "EMERGENZA!!"}, "urgency"),
        ({"urgency": 1}, "urgency"),
        ({"contact_safe": True}, "contact_safe"),
    ],
)
def test_a_single_problem_is_a_warning_on_its_field(
    sender: Sender, db: Session, body: dict[str, Any], field: str
) -> None:
    response = sender.post({"external_id": "a"} | body)
    assert response.status_code == 201
    assert [w["field"] for w in response.get_json()["warnings"]] == [field]
    assert stored(db) == {"handoffs": 1, "cases": 1, "events": 2, "audit": 1}
    warning = db.scalars(select(CaseEvent).where(CaseEvent.kind == "warning")).one()
    assert [w["field"] for w in warning.data["warnings"]] == [field]


def test_a_long_summary_and_a_little_clock_skew_are_fine(sender: Sender, db: Session) -> None:
    body = {
        "external_id": "ok-1",
        "summary": "è" * 8_000,
        "received_at": "2026-11-24T10:04:00Z",
        "person": {"nationality": "unknown", "languages": ["it", "pcm"]},
    }
    response = sender.post(body)
    assert response.status_code == 201
    assert response.get_json()["warnings"] == []
    assert db.scalars(select(Case)).one().summary == "è" * 8_000


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_per_source_answers_429_with_retry_after(
    client: FlaskClient, db: Session, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 11, 24, 10, 0, 45, tzinfo=UTC))
    limited = Sender(client, make_source(db, clock, name="limited", rate_limit=2), clock)
    other = Sender(client, make_source(db, clock, name="other"), clock)
    assert limited.post({"external_id": "1"}).status_code == 201
    assert limited.post({"external_id": 42}).status_code == 422
    refused = limited.post({"external_id": "3"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "15"
    assert limited.get("/api/v1/handoffs/1").status_code == 429
    assert other.post({"external_id": "1"}).status_code == 201  # per source
    assert stored(db)["cases"] == 2

    clock.advance(timedelta(seconds=15))
    assert limited.post({"external_id": "3"}).status_code == 201


def test_rate_limit_is_shared_by_every_worker(
    settings: Settings, engine: Engine, db: Session, clock: FrozenClock, app: Flask
) -> None:
    """Two apps on one database stand for two gunicorn workers: the window is in the DB."""
    issued = make_source(db, clock, name="shared", rate_limit=3)
    second = create_app(settings, clock=clock, engine=engine)
    workers = [
        Sender(app.test_client(), issued, clock),
        Sender(second.test_client(), issued, clock),
    ]
    codes = [workers[n % 2].post({"external_id": f"w-{n}"}).status_code for n in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    window = db.scalars(select(SourceRateWindow)).one()
    assert window.count == 3


# --- privacy ----------------------------------------------------------------------------------


def test_personal_data_is_encrypted_at_rest(
    sender: Sender, db: Session, source: IssuedSecret
) -> None:
    sender.post(FULL_BODY)
    row = db.execute(
        text("SELECT summary, caller_phone, callback_phone, municipality FROM cases")
    ).one()
    payload = db.execute(text("SELECT payload FROM handoffs")).scalar_one()
    secret = db.execute(text("SELECT secret FROM source_secrets")).scalar_one()
    for stored_value, plain in [
        (row.summary, FULL_BODY["summary"]),
        (row.caller_phone, "+390307123456"),
        (row.callback_phone, "+393337654321"),
        (row.municipality, "Chiari"),
        (payload, encode(FULL_BODY).decode()),
        (secret, source.secret),
    ]:
        assert plain not in stored_value
        assert "Maria" not in stored_value
        assert decrypt(stored_value) == plain


def test_logs_carry_no_personal_data(sender: Sender, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sender.post(FULL_BODY)
    sender.post(FULL_BODY)
    sender.post(FULL_BODY | {"external_id": "bad", "urgency": "Maria Rossi"})
    sender.post(FULL_BODY, headers={"X-Ali-Signature": "v1=00"})
    assert "BS-2026-0001" in caplog.text
    for secret in ("Maria", "Rossi", "712", "765", "Chiari", sender.issued.secret):
        assert secret not in caplog.text


def test_case_events_are_append_only(sender: Sender, db: Session) -> None:
    sender.post(FULL_BODY)
    event = db.scalars(select(CaseEvent)).first()
    assert event is not None
    event.kind = "rewritten"
    with pytest.raises(AppendOnlyError):
        db.flush()
    db.rollback()
    db.delete(event)
    with pytest.raises(AppendOnlyError):
        db.flush()
