"""Schemathesis against the OpenAPI document, every request validly signed: no 5xx, every
answer (status, headers, body) as documented, and a hand-off refused (422) only when it is
unusable: whatever else the fuzzer puts in a body opens a case.

Driven through `operation.as_strategy()` and hypothesis directly: schemathesis' pytest
integration (`schemathesis.pytest.from_fixture`) reads a pytest node attribute that pytest 9
removed, and the app under test comes from function-scoped fixtures anyway.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder

from core.clock import FrozenClock
from intake.signing import signed_headers
from intake.validation import MAX_EXTERNAL_ID
from tests.intake.signed import make_source

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    ("/api/v1/handoffs", "POST"),
    ("/api/v1/handoffs/{external_id}", "GET"),
    ("/api/v1/oncall", "GET"),
]
# Modest and fixed, so the suite stays fast and a failure replays identically.
EXAMPLES = 60


def usable(raw: bytes) -> bool:
    """Whether a body is a JSON object with an `external_id` Ali can store (design §4)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    external_id = body.get("external_id") if isinstance(body, dict) else None
    return (
        isinstance(external_id, str)
        and bool(external_id.strip())
        and len(external_id) <= MAX_EXTERNAL_ID
        and not any(
            ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000 for c in external_id
        )
    )


@pytest.mark.parametrize("mode", list(GenerationMode))
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_api_never_fails_and_keeps_its_contract(
    app: Flask,
    db: Session,
    clock: FrozenClock,
    path: str,
    method: str,
    mode: GenerationMode,
) -> None:
    # A limit the fuzzer cannot reach, so it explores the API rather than the 429.
    source = make_source(db, clock, name="fuzzer", rate_limit=1_000_000)
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def signed_call(case: schemathesis.Case) -> None:
        extra = {}
        raw = b""
        if not isinstance(case.body, NotSet):
            raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
            extra["data"] = raw
        # v2, over the method and the path with query exactly as the test client sends them
        # (a GET signed with v1 is refused).
        sent = case.as_transport_kwargs()
        environ = EnvironBuilder(path=sent["path"], query_string=sent["query_string"]).get_environ()
        query = environ["QUERY_STRING"]
        target = environ["REQUEST_URI"].split("?")[0] + (f"?{query}" if query else "")
        headers = signed_headers(
            source.key_id, source.secret, raw, at=clock.now(), method=case.method, target=target
        )
        response = case.call(headers=headers, **extra)
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        if path == "/api/v1/handoffs" and response.status_code == 422:
            errors = response.json()["errors"]
            assert {error["field"] for error in errors} <= {"body", "external_id"}, errors
            assert not usable(raw), raw

    seen: Counter[int] = Counter()
    signed_call()
    if mode is GenerationMode.POSITIVE:
        # Every request was signed right: none may be refused as unauthenticated, or the fuzzer
        # only ever met the signature check. (Negative mode also drops the signature headers
        # on purpose, to check that they are required.)
        assert 401 not in seen, seen
