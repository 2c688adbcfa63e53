"""The body parser, the reading of a hand-off and the signature helpers, without a database."""

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
    MAX_WARNINGS,
    CaseFields,
    FieldError,
    Person,
    ValidationFailed,
    WarningCode,
    nationality_codes,
    parse_body,
    parse_case,
    parse_handoff,
)
from routing.models import ContactSafe, Urgency
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
    "contact_safe",
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
        "municipality": st.sampled_from(["Chiari", "Sant'Angelo Lodigiano", "Castro (BG)"]),
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
        "summary": st.text(
            st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\r\t"),
            max_size=MAX_SUMMARY,
        ),
        "contact_safe": codes(ContactSafe),
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


def _strings(value: object) -> list[str]:
    """Every string in a value, however deep (dataclasses, tuples)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, CaseFields | Person):
        return _strings(list(vars(value).values()))
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


# No deadline: the first phone or comune read loads phonenumbers' and ISTAT's data (~0.4 s).
@settings(max_examples=300, deadline=None)
@given(json_values | contract_shaped)
def test_only_an_unusable_body_is_refused_and_nothing_stored_holds_a_control(data: Any) -> None:
    errors: list[FieldError] = []
    try:
        parsed = parse_handoff(data, now=NOW, served=SERVED)
    except ValidationFailed as exc:
        errors = exc.errors
    if errors:
        assert [e.field for e in errors] in (["body"], ["external_id"])
        return
    assert isinstance(data, dict)
    assert parsed.fields.external_id == data["external_id"]
    assert len(parsed.warnings) <= MAX_WARNINGS + 1
    for warning in parsed.warnings:
        assert warning.field.split(".")[0].split("[")[0] in FIELDS | {"body"}
        assert warning.message
    for text in _strings(parsed.fields):
        assert all((ord(c) >= 32 and not 127 <= ord(c) < 160) or c in "\n\r\t" for c in text)
        text.encode("utf-8")  # no lone surrogate: the database can store it


# No deadline: the first phone or comune read loads phonenumbers' and ISTAT's data (~0.4 s).
@settings(max_examples=300, deadline=None)
@given(valid_bodies)
def test_every_valid_body_is_read_without_a_warning(body: dict[str, Any]) -> None:
    parsed = parse_handoff(json.loads(json.dumps(body)), now=NOW, served=SERVED)
    handoff = parsed.fields
    assert parsed.warnings == ()
    assert handoff.external_id == body["external_id"]
    assert handoff.urgency == Urgency(body.get("urgency", "ordinary"))
    assert handoff.contact_safe == ContactSafe(body.get("contact_safe", "unknown"))
    assert list(handoff.exploitation) == list(dict.fromkeys(body.get("exploitation", [])))
    for phone in (handoff.caller_phone, handoff.callback_phone):
        assert phone is None or phone.startswith("+")
    if "province" in body:
        assert handoff.resolution.source is ProvinceSource.EXPLICIT
    languages = body.get("person", {}).get("languages", [])
    assert list(handoff.person.languages) == list(dict.fromkeys(c.lower() for c in languages))
    assert handoff.summary == (body.get("summary", "").strip() or None)


@pytest.mark.parametrize(
    ("province", "sigla"),
    [
        ("bs", "BS"),
        ("Brescia", "BS"),
        ("BRÉSCIA", "BS"),
        ("017", "BS"),
        ("Milano", "MI"),
        ("Provincia di Brescia", "BS"),
        ("provincia di bs", "BS"),
        ("\u200bBS\ufeff", "BS"),
        ("\u00a0 Brescia \u2003", "BS"),
    ],
)
def test_explicit_province_forms(province: str, sigla: str) -> None:
    parsed = parse_handoff({"external_id": "x", "province": province}, now=NOW, served=SERVED)
    assert (parsed.fields.resolution.sigla, parsed.warnings) == (sigla, ())


@pytest.mark.parametrize(
    ("value", "urgency", "warned"),
    [
        ("EMERGENCY", Urgency.EMERGENCY, False),
        (" Urgent\u200b", Urgency.URGENT, False),
        ("\u00a0ordinary\t", Urgency.ORDINARY, False),
        ("EMERGENZA!!", Urgency.EMERGENCY, True),
        ("ordinaria", Urgency.EMERGENCY, True),  # over-alerting is the safe side
        (3, Urgency.EMERGENCY, True),
        ({"level": 1}, Urgency.EMERGENCY, True),
        ("", Urgency.ORDINARY, False),
        ("\u200b", Urgency.ORDINARY, False),
        (None, Urgency.ORDINARY, False),
    ],
)
def test_urgency_is_read_leniently_and_unknown_is_emergency(
    value: object, urgency: Urgency, warned: bool
) -> None:
    parsed = parse_case({"urgency": value}, now=NOW, served=SERVED)
    assert parsed.fields.urgency is urgency
    assert [w.code for w in parsed.warnings] == ([WarningCode.URGENCY_UNKNOWN] if warned else [])


def test_codes_match_in_any_case_with_spaces_or_hyphens_for_underscores() -> None:
    parsed = parse_case(
        {
            "reporter_type": "Law Enforcement",
            "exploitation": ["FORCED-MARRIAGE", " sexual "],
            "needs": ["Pronta_Accoglienza"],
            "person": {"gender": "Non-Binary", "age_band": "50+", "minor": "PRESUMED"},
            "contact_safe": "No\u200b",
        },
        now=NOW,
        served=SERVED,
    )
    fields = parsed.fields
    assert parsed.warnings == ()
    assert fields.reporter_type == "law_enforcement"
    assert fields.exploitation == ("forced_marriage", "sexual")
    assert fields.needs == ("pronta_accoglienza",)
    assert (fields.person.gender, fields.person.age_band, fields.person.minor) == (
        "non_binary",
        "50+",
        "presumed",
    )
    assert fields.contact_safe is ContactSafe.NO


def test_received_at_within_the_clock_skew_is_used_beyond_it_is_a_warning() -> None:
    ok = (NOW + timedelta(minutes=5)).isoformat()
    late = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
    assert parse_handoff({"external_id": "x", "received_at": ok}, now=NOW, served=SERVED).fields
    parsed = parse_handoff({"external_id": "x", "received_at": late}, now=NOW, served=SERVED)
    assert parsed.fields.received_at is None
    assert [(w.field, w.code) for w in parsed.warnings] == [
        ("received_at", WarningCode.TIME_IN_FUTURE)
    ]


def test_many_mistakes_are_capped_with_one_saying_there_were_more() -> None:
    parsed = parse_case({"exploitation": list(range(500))}, now=NOW, served=SERVED)
    assert len(parsed.warnings) == MAX_WARNINGS + 1
    assert (parsed.warnings[-1].field, parsed.warnings[-1].code) == (
        "body",
        WarningCode.MORE_WARNINGS,
    )


def test_manual_entry_reads_a_body_without_external_id() -> None:
    """`parse_case` is for channels with no sender id (manual entry builds a body from a form)."""
    parsed = parse_case({"province": "BS", "urgency": "urgent"}, now=NOW, served=SERVED)
    assert (parsed.fields.resolution.sigla, parsed.fields.urgency) == ("BS", Urgency.URGENT)
    with pytest.raises(ValidationFailed):
        parse_case(["not", "an", "object"], now=NOW, served=SERVED)


@pytest.mark.parametrize(
    ("raw", "stored", "code"),
    [
        ("030 712 3456", "+390307123456", None),
        ("+39 030 712 3456 int. 12", "+390307123456;ext=12", None),
        ("+39 030 712 3456 ext. 7", "+390307123456;ext=7", None),
        ("030 7123456;ext=12", "+390307123456;ext=12", None),
        ("+39 333 CALL ME", None, WarningCode.PHONE_LETTERS),
        ("+39 333 123 456 7 Maria", None, WarningCode.PHONE_LETTERS),
        ("12", None, WarningCode.PHONE_INVALID),
        ("\u200b+39 333 123 4567\u00a0", "+393331234567", None),
    ],
)
def test_phone_letters_make_it_unusable_an_extension_is_kept(
    raw: str, stored: str | None, code: WarningCode | None
) -> None:
    parsed = parse_case({"callback_phone": raw}, now=NOW, served=SERVED)
    assert parsed.fields.callback_phone == stored
    assert [w.code for w in parsed.warnings] == ([code] if code else [])


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


def test_free_text_keeps_its_words_and_loses_its_controls() -> None:
    parsed = parse_case(
        {"municipality": "Sant'Angelo\tLodigiano\n", "summary": " a\tb\r\nc\x00 "},
        now=NOW,
        served=SERVED,
    )
    assert parsed.fields.municipality == "Sant'Angelo Lodigiano"
    assert parsed.fields.resolution.sigla == "LO"
    assert parsed.fields.summary == "a\tb\r\nc"
    assert [(w.field, w.code) for w in parsed.warnings] == [
        ("summary", WarningCode.CONTROL_CHARACTERS)
    ]
