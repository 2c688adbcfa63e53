"""The body parser, the validator and the signature helpers, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.models import AgeBand, Exploitation, Gender, Minor, Need, ReporterType
from intake.signing import signature, signature_matches, signed_headers, timestamp_is_fresh
from intake.validation import (
    MAX_SUMMARY,
    ValidationFailed,
    nationality_codes,
    parse_body,
    validate_handoff,
)
from routing.models import Urgency
from routing.places import ProvinceSource

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
FIELDS = {
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
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# Bodies that name the contract's fields, with anything at all in them.
contract_shaped = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(FIELDS, json_values)
    | {
        "person": st.dictionaries(
            st.sampled_from(["gender", "age_band", "minor", "nationality", "languages", "x"]),
            json_values,
        )
    },
)


def codes(enum: type[Any]) -> st.SearchStrategy[str]:
    return st.sampled_from([member.value for member in enum])


valid_bodies = st.fixed_dictionaries(
    {
        "external_id": st.text(
            st.characters(
                min_codepoint=33,
                max_codepoint=0x10FFFF,
                exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
            ),
            min_size=1,
            max_size=128,
        )
    },
    optional={
        "received_at": st.datetimes(
            min_value=datetime(2000, 1, 1),  # noqa: DTZ001 -- hypothesis wants naive bounds
            max_value=datetime(2026, 11, 24, 10, 0),  # noqa: DTZ001 -- (zone given below)
            timezones=st.just(UTC),
        ).map(lambda at: at.isoformat()),
        "province": st.sampled_from(["BS", "bg", "Cremona", "LODI", "097", "Mantova", "pv"]),
        "municipality": st.sampled_from(["Chiari", "Sant'Angelo Lodigiano", "Castro"]),
        "caller_phone": st.sampled_from(["030 712 3456", "+39 035 123456", "3331234567"]),
        "callback_phone": st.sampled_from(["+44 20 7946 0958", "0372 123456"]),
        "urgency": codes(Urgency),
        "reporter_type": codes(ReporterType),
        "exploitation": st.lists(codes(Exploitation), max_size=7),
        "person": st.fixed_dictionaries(
            {},
            optional={
                "gender": codes(Gender),
                "age_band": codes(AgeBand),
                "minor": codes(Minor),
                "nationality": st.sampled_from([*sorted(nationality_codes()), "unknown"]),
                "languages": st.lists(st.sampled_from(["it", "EN", "pcm", "fr", "ti"]), max_size=5),
            },
        ),
        "needs": st.lists(codes(Need), max_size=6),
        "summary": st.text(max_size=MAX_SUMMARY).filter(
            lambda text: all(c in "\n\r\t" or (ord(c) >= 32 and ord(c) != 127) for c in text)
        ),
    },
)


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_body_returns_json_or_one_body_error(raw: bytes) -> None:
    errors = []
    try:
        parse_body(raw)
    except ValidationFailed as exc:
        errors = exc.errors
    assert [e.field for e in errors] in ([], ["body"])


@settings(max_examples=300)
@given(json_values | contract_shaped)
def test_validation_only_ever_accepts_or_lists_errors(data: Any) -> None:
    try:
        validate_handoff(data, now=NOW, served=SERVED)
    except ValidationFailed as exc:
        errors = exc.errors
    else:
        return
    assert errors
    for error in errors:
        assert error.field.split(".")[0].split("[")[0] in FIELDS | {"body"}
        assert error.message


@settings(max_examples=300)
@given(valid_bodies)
def test_every_valid_body_is_accepted(body: dict[str, Any]) -> None:
    handoff = validate_handoff(json.loads(json.dumps(body)), now=NOW, served=SERVED)
    assert handoff.external_id == body["external_id"]
    assert handoff.urgency == Urgency(body.get("urgency", "ordinary"))
    assert list(handoff.exploitation) == list(dict.fromkeys(body.get("exploitation", [])))
    for phone in (handoff.caller_phone, handoff.callback_phone):
        assert phone is None or phone.startswith("+")
    if "province" in body:
        assert handoff.resolution.source is ProvinceSource.EXPLICIT
    languages = body.get("person", {}).get("languages", [])
    assert list(handoff.person.languages) == list(dict.fromkeys(c.lower() for c in languages))


@pytest.mark.parametrize(
    ("province", "sigla"),
    [("bs", "BS"), ("Brescia", "BS"), ("BRÉSCIA", "BS"), ("017", "BS"), ("Milano", "MI")],
)
def test_explicit_province_forms(province: str, sigla: str) -> None:
    handoff = validate_handoff({"external_id": "x", "province": province}, now=NOW, served=SERVED)
    assert handoff.resolution.sigla == sigla


def test_received_at_within_the_clock_skew_is_fine_beyond_is_future() -> None:
    ok = (NOW + timedelta(minutes=5)).isoformat()
    late = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
    assert validate_handoff({"external_id": "x", "received_at": ok}, now=NOW, served=SERVED)
    with pytest.raises(ValidationFailed) as exc:
        validate_handoff({"external_id": "x", "received_at": late}, now=NOW, served=SERVED)
    assert exc.value.errors[0].message == "is in the future"


# --- signatures -------------------------------------------------------------------------------


def test_signature_matches_openssl() -> None:
    """The same value as the shell recipe in the OpenAPI document and the demo snippet:
    printf '%s.%s' 1795514400 '{"external_id":"demo-0001"}' | openssl dgst -sha256 -hmac test-secret
    """
    assert signature("test-secret", 1795514400, b'{"external_id":"demo-0001"}') == (
        "v1=df9e03cb34dbf0abb3255f9a65b812476cf46b4ea2ca62ce538f8e85b63d5ff8"
    )


def test_signed_headers_verify_with_any_active_secret() -> None:
    headers = signed_headers("ak_1", "new", b"{}", at=NOW)
    assert headers["X-Ali-Timestamp"] == str(int(NOW.timestamp()))
    ts, sig = headers["X-Ali-Timestamp"], headers["X-Ali-Signature"]
    assert signature_matches(sig, ["old", "new"], ts, b"{}")
    assert not signature_matches(sig, ["old"], ts, b"{}")
    assert not signature_matches(sig, [], ts, b"{}")
    assert not signature_matches(sig.upper(), ["new"], ts, b"{}")
    assert not signature_matches("v1=ü", ["new"], ts, b"{}")


@pytest.mark.parametrize(
    ("value", "fresh"),
    [
        (str(int(NOW.timestamp())), True),
        (str(int(NOW.timestamp()) - 300), True),
        (str(int(NOW.timestamp()) + 300), True),
        (str(int(NOW.timestamp()) - 301), False),
        (str(int(NOW.timestamp()) + 301), False),
        ("+" + str(int(NOW.timestamp())), False),
        (str(int(NOW.timestamp())) + ".0", False),
        ("١٧٩٥٥١٤٤٠٠", False),  # Arabic-Indic digits: isdigit() but not a header timestamp
        ("9" * 400, False),
        ("", False),
    ],
)
def test_timestamp_window(value: str, fresh: bool) -> None:
    assert timestamp_is_fresh(value, NOW) is fresh
