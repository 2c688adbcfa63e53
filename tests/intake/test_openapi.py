"""The OpenAPI document: served, valid 3.1, and every response it documents is really produced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from intake.models import Exploitation
from intake.openapi import HANDOFF_EXAMPLE, MISTAKEN_ANSWER, MISTAKEN_EXAMPLE
from routing.models import Case, CaseStatus, Urgency
from tests.intake.signed import HANDOFFS, Sender, encode, make_source

Producer = Callable[[Sender, Session, FrozenClock], TestResponse]
OPENAPI = "/api/v1/openapi.json"


@pytest.fixture
def api_schema(app: Flask) -> OpenApiSchema:
    return schemathesis.openapi.from_wsgi(OPENAPI, app)


def test_document_is_openapi_3_1_with_the_contract_names(client: FlaskClient) -> None:
    response = client.get(OPENAPI)
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    handoff = document["components"]["schemas"]["Handoff"]
    assert handoff["required"] == ["external_id"]
    assert set(handoff["properties"]) == {
        "external_id",
        "received_at",
        "province",
        "municipality",
        "caller_phone",
        "callback_phone",
        "urgency",
        "reporter_type",
        "exploitation",
        "person",
        "needs",
        "summary",
        "contact_safe",
    }
    assert handoff["properties"]["urgency"]["enum"] == [*(u.value for u in Urgency), None]
    assert handoff["properties"]["exploitation"]["items"]["enum"] == [e.value for e in Exploitation]
    # Kept whole: only the body's size limit bounds it.
    assert "maxLength" not in handoff["properties"]["summary"]
    assert handoff["properties"]["contact_safe"]["enum"] == ["yes", "no", "unknown", None]
    created = document["components"]["schemas"]["CaseCreated"]
    assert "warnings" in created["required"]
    schemes = document["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {
        "X-Ali-Key",
        "X-Ali-Timestamp",
        "X-Ali-Signature",
    }
    assert document["servers"] == [{"url": "https://ali.example.org", "description": "This Ali"}]


def test_the_documented_example_is_accepted(sender: Sender) -> None:
    response = sender.post(HANDOFF_EXAMPLE)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["province"] == "BS"
    assert response.get_json()["warnings"] == []


def test_the_documented_mistakes_get_the_documented_answer(sender: Sender) -> None:
    response = sender.post(MISTAKEN_EXAMPLE)
    assert response.status_code == 201
    assert response.get_json() | {"case": ""} == MISTAKEN_ANSWER | {"case": ""}


def _new(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.post({"external_id": "doc-1", "province": "BS"})


def _replay(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    _new(sender, db, clock)
    return _new(sender, db, clock)


def _unsigned(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.client.post(HANDOFFS, json={"external_id": "doc-1"})


def _too_large(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.post({"external_id": "doc-1", "padding": "x" * 70_000})


def _not_json(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.post(b"external_id=doc-1", content_type="application/x-www-form-urlencoded")


def _invalid(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.post({"external_id": 1, "urgency": "asap", "summary": "x" * 2001})


def _limited(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    tight = Sender(sender.client, make_source(db, clock, name="tight", rate_limit=1), clock)
    tight.post({"external_id": "doc-1"})
    return tight.post({"external_id": "doc-2"})


def _status(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    _new(sender, db, clock)
    case = db.query(Case).one()
    case.status = CaseStatus.ACCEPTED.value
    db.commit()
    return sender.get("/api/v1/handoffs/doc-1")


def _status_unsigned(sender: Sender, _db: Session, clock: FrozenClock) -> TestResponse:
    late = sender.headers(b"", clock.now() - timedelta(hours=1))
    return sender.client.get("/api/v1/handoffs/doc-1", headers=late)


def _status_unknown(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.get("/api/v1/handoffs/nothing-here")


def _status_limited(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    tight = Sender(sender.client, make_source(db, clock, name="tight", rate_limit=1), clock)
    tight.get("/api/v1/handoffs/doc-1")
    return tight.get("/api/v1/handoffs/doc-1")


def _on_call(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.get("/api/v1/oncall?province=BS")


def _on_call_unsigned(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.client.get("/api/v1/oncall?province=BS")


def _on_call_invalid(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.get("/api/v1/oncall?province=Roma")


def _on_call_limited(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    tight = Sender(sender.client, make_source(db, clock, name="tight", rate_limit=1), clock)
    tight.get("/api/v1/oncall?province=BS")
    return tight.get("/api/v1/oncall?province=BS")


def _beds(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    from tests.intake.shelters import new_shelter  # noqa: PLC0415 -- this producer's alone

    new_shelter(db, now=clock.now())
    return sender.get("/api/v1/beds?province=BS")


def _beds_unsigned(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.client.get("/api/v1/beds?province=BS")


def _beds_invalid(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.get("/api/v1/beds?province=Roma")


def _beds_limited(sender: Sender, db: Session, clock: FrozenClock) -> TestResponse:
    tight = Sender(sender.client, make_source(db, clock, name="tight", rate_limit=1), clock)
    tight.get("/api/v1/beds?province=BS")
    return tight.get("/api/v1/beds?province=BS")


def _document(sender: Sender, _db: Session, _clock: FrozenClock) -> TestResponse:
    return sender.client.get(OPENAPI)


PRODUCERS: dict[tuple[str, str, str], Producer] = {
    ("POST", "/api/v1/handoffs", "201"): _new,
    ("POST", "/api/v1/handoffs", "200"): _replay,
    ("POST", "/api/v1/handoffs", "401"): _unsigned,
    ("POST", "/api/v1/handoffs", "413"): _too_large,
    ("POST", "/api/v1/handoffs", "415"): _not_json,
    ("POST", "/api/v1/handoffs", "422"): _invalid,
    ("POST", "/api/v1/handoffs", "429"): _limited,
    ("GET", "/api/v1/handoffs/{external_id}", "200"): _status,
    ("GET", "/api/v1/handoffs/{external_id}", "401"): _status_unsigned,
    ("GET", "/api/v1/handoffs/{external_id}", "404"): _status_unknown,
    ("GET", "/api/v1/handoffs/{external_id}", "429"): _status_limited,
    ("GET", "/api/v1/oncall", "200"): _on_call,
    ("GET", "/api/v1/oncall", "401"): _on_call_unsigned,
    ("GET", "/api/v1/oncall", "422"): _on_call_invalid,
    ("GET", "/api/v1/oncall", "429"): _on_call_limited,
    ("GET", "/api/v1/beds", "200"): _beds,
    ("GET", "/api/v1/beds", "401"): _beds_unsigned,
    ("GET", "/api/v1/beds", "422"): _beds_invalid,
    ("GET", "/api/v1/beds", "429"): _beds_limited,
    ("GET", OPENAPI, "200"): _document,
}


def test_every_documented_response_has_a_producer(client: FlaskClient) -> None:
    document = client.get(OPENAPI).get_json()
    documented = {
        (method.upper(), path, code)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for code in operation["responses"]
    }
    assert documented == set(PRODUCERS)


@pytest.mark.parametrize("key", list(PRODUCERS), ids=" ".join)
def test_each_documented_response_is_produced_and_conforms(
    key: tuple[str, str, str],
    api_schema: OpenApiSchema,
    sender: Sender,
    db: Session,
    clock: FrozenClock,
) -> None:
    method, path, code = key
    response = PRODUCERS[key](sender, db, clock)
    assert response.status_code == int(code), response.get_data(as_text=True)
    conforms(api_schema, method, path, response)


def conforms(api_schema: OpenApiSchema, method: str, path: str, response: TestResponse) -> None:
    """Raises with the differences when the status, headers or body break the document."""
    operation = api_schema[path][method]
    if "{external_id}" in path:
        case = operation.Case(path_parameters={"external_id": "doc-1"})
    else:
        case = operation.Case()
    case.validate_response(response, checks=CONFORMANCE)


CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_conformance_catches_a_wrong_body(api_schema: OpenApiSchema, sender: Sender) -> None:
    """The check above has teeth: a body missing a required field fails it..."""
    response = sender.post({"external_id": "doc-x"})
    response.set_data(encode({"case": "BS-2026-0001"}))
    with pytest.raises(FailureGroup, match="province"):
        conforms(api_schema, "POST", HANDOFFS, response)


def test_conformance_catches_a_missing_header(
    api_schema: OpenApiSchema, sender: Sender, db: Session, clock: FrozenClock
) -> None:
    """...and so does a 429 without its Retry-After."""
    response = _limited(sender, db, clock)
    del response.headers["Retry-After"]
    with pytest.raises(FailureGroup, match="Retry-After"):
        conforms(api_schema, "POST", HANDOFFS, response)
