"""The OpenAPI 3.1 description of the hand-off API, built from the same codes the API checks."""

from __future__ import annotations

import copy
import functools
from enum import StrEnum
from typing import Any

from intake.models import (
    AgeBand,
    Exploitation,
    Gender,
    Minor,
    Need,
    ReporterType,
    ShelterKind,
)
from intake.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from intake.validation import (
    MAX_BODY_BYTES,
    MAX_EXTERNAL_ID,
    MAX_ITEMS,
    MAX_PHONE,
    MAX_PLACE,
    MAX_WARNINGS,
    WARNING_MESSAGES,
    WarningCode,
)
from routing.models import CaseStatus, ContactSafe, Urgency
from routing.places import ProvinceSource

API_VERSION = "1.0.0"
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _codes(enum: type[StrEnum], description: str) -> dict[str, Any]:
    return {
        "type": ["string", "null"],
        "enum": [member.value for member in enum] + [None],
        "description": description,
    }


def _list_of(enum: type[StrEnum], description: str) -> dict[str, Any]:
    return {
        "type": ["array", "null"],
        "items": {"type": "string", "enum": [member.value for member in enum]},
        "maxItems": MAX_ITEMS,
        "description": description + " Repeated codes count once.",
    }


def _text(max_length: int | None, description: str, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"], "description": description}
    return schema | ({"maxLength": max_length} if max_length else {}) | extra


WARNING = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {
            "type": "string",
            "description": "Dotted path (`person.age_band`, `needs[1]`), or `body`.",
        },
        "message": {
            "type": "string",
            "description": "What was wrong and what Ali did instead (it never repeats the value "
            "sent).",
        },
    },
}


SIGNING = f"""\
Every request except this document is signed by its source with a secret issued by
`ali sources add NAME` (shown once):

* `{KEY_HEADER}`: the key id that came with the secret;
* `{TIMESTAMP_HEADER}`: the current time in whole unix seconds; Ali refuses a timestamp more
  than 300 seconds away from its own clock;
* `{SIGNATURE_HEADER}`: `v2=` and the lower-case hex HMAC-SHA256, keyed with the secret, of
  the timestamp, a `.`, the method in capitals, a `.`, the path with its query string as
  sent (`/api/v1/oncall?province=BS`), a `.` and the raw request body exactly as sent (empty
  for a GET). `v2` is accepted on every request and **required on GETs**. The older `v1=`,
  the HMAC of the timestamp, a `.` and the raw body only, stays valid for
  `POST /api/v1/handoffs` alone.

While a secret is being rotated (`ali sources rotate NAME`), every active secret of the
source is accepted, with either key id. A failure answers 401 without saying which part was
wrong. Shell example:

```sh
TS=$(date +%s)
# v2 (every request): timestamp.METHOD.path-with-query.body
SIG=$(printf '%s.POST.%s.%s' "$TS" /api/v1/handoffs "$BODY" \\
      | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
curl -H "Content-Type: application/json" -H "{KEY_HEADER}: $KEY" \\
     -H "{TIMESTAMP_HEADER}: $TS" -H "{SIGNATURE_HEADER}: v2=$SIG" \\
     --data-binary "$BODY" https://ali.example.org/api/v1/handoffs
# v1 (the POST only): timestamp.body
SIG=$(printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
# a GET: v2 over an empty body
SIG=$(printf '%s.GET.%s.' "$TS" '/api/v1/oncall?province=BS' \\
      | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
```

Each source may make a limited number of requests a minute (120 unless configured); past
it Ali answers 429 with `Retry-After`."""

HANDOFF_EXAMPLE = {
    "external_id": "NV-2026-118734",
    "received_at": "2026-11-24T10:58:00+01:00",
    "municipality": "Chiari",
    "caller_phone": "+39 030 712 3456",
    "callback_phone": "+39 333 123 4567",
    "urgency": "emergency",
    "reporter_type": "law_enforcement",
    "exploitation": ["sexual"],
    "person": {
        "gender": "female",
        "age_band": "18-24",
        "minor": "no",
        "nationality": "NG",
        "languages": ["en", "pcm"],
    },
    "needs": ["pronta_accoglienza", "interpreter"],
    "summary": "Giovane donna accompagnata dai Carabinieri, necessita di accoglienza stanotte.",
    "contact_safe": "no",
}
# Mistakes that open a case all the same: an emergency is never lost to a typo.
MISTAKEN_EXAMPLE = {
    "external_id": "NV-2026-118736",
    "urgency": "EMERGENZA!!",
    "province": "Bresica",
}
ACCEPTED_EXAMPLE = {
    "case": "BS-2026-0042",
    "province": "BS",
    "province_source": "municipality",
    "status": "dispatched",
    "on_call": {"name": "Operatore 1 BS", "phone": "+393330000011", "phone_verified": True},
    "warnings": [],
}
MISTAKEN_ANSWER = {
    "case": "XX-2026-0007",
    "province": None,
    "province_source": "unresolved",
    "status": "dispatched",
    "on_call": None,
    "warnings": [
        {"field": "urgency", "message": WARNING_MESSAGES[WarningCode.URGENCY_UNKNOWN]},
        {"field": "province", "message": WARNING_MESSAGES[WarningCode.PROVINCE_UNKNOWN]},
    ],
}
TOLERANCE = f"""\
The schema says what to send. Ali refuses (422) only a body it cannot use: one that is not a
JSON object, or whose `external_id` is missing, not a string, blank, longer than
{MAX_EXTERNAL_ID} characters or holding control characters. **A hand-off is never refused for
what it says about the case**: anything else that breaks the schema opens the case all the
same (201), as far as it is understood, and the answer's `warnings` lists each field that was
not understood (`{{field, message}}`, at most {MAX_WARNINGS} and one saying there were more);
the same warnings are on the case's timeline for whoever works it.

* Codes match in any case, ignoring spaces around them and invisible characters (a zero-width
  space); `_` may be written as a space or a hyphen.
* An `urgency` that is there but not understood counts as `emergency`: over-alerting is the
  safe side.
* Other codes not understood are stored as `other` or `unknown` where the field has them
  (`minor`, `needs` and languages have neither: left out).
* A `province`, `municipality` or `caller_phone` Ali cannot read is left out of routing, never
  guessed: the other rules still run, and with none left the case is `unresolved` and goes to
  the coordinators.
* A phone number with letters is not used (`+39 333 CALL ME`); an extension is kept
  (`+39 030 712 3456 int. 12`).
* Control characters are removed from free text (line breaks and tabs stay in `summary`).
* A value of the wrong type (a number for a string, an object for a list) is ignored; a single
  code where a list was expected is read as a list of one."""


def _schemas() -> dict[str, Any]:
    on_call_person = {
        "type": "object",
        "required": ["name", "phone", "phone_verified"],
        "properties": {
            "name": {"type": "string"},
            "phone": {"type": ["string", "null"], "description": "E.164"},
            "phone_verified": {
                "type": "boolean",
                "description": "Whether the person proved the phone is theirs. Ali pages only "
                "verified phones: an unverified one is skipped and the next tier is paged.",
            },
        },
    }
    accepted_properties: dict[str, Any] = {
        "case": {"type": "string", "description": "The case reference: province, year, number."},
        "province": {
            "type": ["string", "null"],
            "description": "Sigla of the case's province; null when unresolved.",
        },
        "province_source": {
            "type": "string",
            "enum": [source.value for source in ProvinceSource],
            "description": "How the province was found; `out_of_area` is a province this "
            "instance does not serve (the coordinators take it), `unresolved` none at all.",
        },
        "status": {"type": "string", "enum": [status.value for status in CaseStatus]},
        "on_call": _nullable(_ref("OnCallPerson"))
        | {
            "description": "The primary on call for the province when the case was opened "
            "(the one it was routed to); null when nobody was, or the province has no rota here."
        },
        "warnings": {
            "type": "array",
            "items": _ref("FieldWarning"),
            "description": "The fields of this body that were not understood, and what Ali "
            "did instead; empty when all was understood.",
        },
    }
    return {
        "Handoff": {
            "type": "object",
            "description": "One report. Only `external_id` is required; `null` counts as absent. "
            "Fields not listed here are accepted and ignored, so a sender may add its own.\n\n"
            + TOLERANCE,
            "required": ["external_id"],
            "additionalProperties": True,
            "properties": {
                "external_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_EXTERNAL_ID,
                    "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
                    "description": "The sender's id of the report, unique per source: sending "
                    "it again answers 200 with the case it opened (the first body wins). "
                    "Not blank, no control characters: the one field whose mistakes are refused.",
                },
                "received_at": _text(
                    40,
                    "When the sender received the report: ISO 8601 with a UTC offset, not in "
                    "the future (5 minutes of clock difference are tolerated). Default, and "
                    "when not understood (a warning): now.",
                    format="date-time",
                ),
                "province": _text(
                    MAX_PLACE,
                    "Sigla (BS), name in any case, with or without accents (Brescia, Provincia "
                    "di Brescia), or ISTAT code (017). When given it decides; one Ali cannot "
                    "read is left out of routing with a warning (never guessed).",
                ),
                "municipality": _text(
                    MAX_PLACE,
                    "The comune; used when `province` is absent. A name two comuni share "
                    "in different provinces (Castro) decides nothing unless qualified: "
                    "`Castro (BG)`.",
                ),
                "caller_phone": _text(
                    MAX_PHONE,
                    "The number that called the sender. An Italian landline's area code "
                    "places the case when nothing else does; mobiles carry no place. Italian "
                    "numbers may omit +39.",
                ),
                "callback_phone": _text(
                    MAX_PHONE,
                    "Where the operator can call back; an extension is kept "
                    "(`+39 030 712 3456 int. 12`).",
                ),
                "urgency": _codes(
                    Urgency,
                    "`emergency`: immediate danger or shelter needed now. Default `ordinary`; "
                    "a value not understood counts as `emergency` (with a warning).",
                ),
                "reporter_type": _codes(ReporterType, "Who reported to the sender."),
                "exploitation": _list_of(Exploitation, "Forms of exploitation."),
                "person": _nullable(_ref("Person")),
                "needs": _list_of(Need, "What the person needs."),
                "summary": _text(
                    None,
                    "Free text, stored encrypted and kept whole (the body's size limit "
                    "bounds it); line breaks allowed.",
                ),
                "contact_safe": _codes(
                    ContactSafe,
                    "Whether the person may be called or texted back (an exploiter may hold "
                    "the phone). Default, and when not understood: `unknown`.",
                ),
            },
            "examples": [
                HANDOFF_EXAMPLE,
                {"external_id": "NV-2026-118735", "province": "BG"},
                MISTAKEN_EXAMPLE,
            ],
        },
        "Person": {
            "type": "object",
            "additionalProperties": True,
            "properties": {
                "gender": _codes(Gender, "Gender."),
                "age_band": _codes(AgeBand, "Age band."),
                "minor": _codes(Minor, "Whether the person is a minor."),
                "nationality": _text(
                    7,
                    "ISO 3166-1 alpha-2 country code (either case), or `unknown`.",
                    examples=["NG", "unknown"],
                ),
                "languages": {
                    "type": ["array", "null"],
                    "maxItems": MAX_ITEMS,
                    "items": {"type": "string", "pattern": "^[A-Za-z]{2,3}$"},
                    "description": "ISO 639-1 (checked against the standard's list) or "
                    "ISO 639-3 codes (checked for shape), e.g. `it`, `en`, `pcm`.",
                },
            },
        },
        "OnCallPerson": on_call_person,
        "FieldWarning": WARNING,
        "CaseCreated": {
            "type": "object",
            "required": list(accepted_properties),
            "properties": accepted_properties,
            "examples": [ACCEPTED_EXAMPLE, MISTAKEN_ANSWER],
        },
        "CaseReplayed": {
            "type": "object",
            "required": [*accepted_properties, "duplicate"],
            "properties": accepted_properties | {"duplicate": {"const": True}},
            "description": "The case the first hand-off with this external_id opened; "
            "`status` is its status now.",
            "examples": [ACCEPTED_EXAMPLE | {"status": "accepted", "duplicate": True}],
        },
        "HandoffStatus": {
            "type": "object",
            "required": ["case", "status", "accepted", "province", "accepted_by", "accepted_at"],
            "properties": {
                "case": {"type": "string"},
                "status": {"type": "string", "enum": [status.value for status in CaseStatus]},
                "accepted": {
                    "type": "boolean",
                    "description": "Whether an operator took the case (by key, SMS or web).",
                },
                "province": {"type": ["string", "null"]},
                "accepted_by": {
                    "type": ["string", "null"],
                    "description": "Name of the operator who took the case.",
                },
                "accepted_at": {"type": ["string", "null"], "format": "date-time"},
            },
            "examples": [
                {
                    "case": "BS-2026-0042",
                    "status": "accepted",
                    "accepted": True,
                    "province": "BS",
                    "accepted_by": "Operatore 1 BS",
                    "accepted_at": "2026-11-24T10:02:13+00:00",
                }
            ],
        },
        "OnCallChain": {
            "type": "object",
            "required": ["province", "at", "primary", "backup", "coordinators"],
            "properties": {
                "province": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "primary": _nullable(_ref("OnCallPerson")),
                "backup": _nullable(_ref("OnCallPerson")),
                "coordinators": {"type": "array", "items": _ref("OnCallPerson")},
            },
        },
        "FreeBeds": {
            "type": "object",
            "required": ["province", "at", "free_beds"],
            "properties": {
                "province": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "free_beds": {
                    "type": "object",
                    "description": "Free beds now per shelter kind, from the placement log "
                    "(confirmed and checked-in placements take beds); counts only, not "
                    "suppressed. Closed shelters count zero.",
                    "required": [kind.value for kind in ShelterKind],
                    "properties": {
                        kind.value: {"type": "integer", "minimum": 0} for kind in ShelterKind
                    },
                    "additionalProperties": False,
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "ValidationErrors": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {
                                "type": "string",
                                "description": "Dotted path (`person.age_band`, "
                                "`needs[1]`), or `body` for the body as a whole.",
                            },
                            "message": {"type": "string"},
                        },
                    },
                }
            },
            "examples": [
                {"errors": [{"field": "external_id", "message": "is required"}]},
                {"errors": [{"field": "body", "message": "is not a JSON document"}]},
            ],
        },
    }


def _error(description: str, schema: str = "Error", **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}} | extra


def _responses() -> dict[str, Any]:
    return {
        "Unauthorised": _error("Missing or wrong key, timestamp or signature."),
        "RateLimited": _error(
            "Too many requests from this source; retry after the given seconds.",
            headers={
                "Retry-After": {
                    "required": True,
                    "description": "Seconds until the source's window starts again.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        ),
    }


def _paths() -> dict[str, Any]:
    handoff_result = {
        "201": {
            "description": "A case was opened (with `warnings` for what was not understood).",
            "headers": {
                "Location": {
                    "description": "Where to ask for the hand-off's status.",
                    "schema": {"type": "string"},
                }
            },
            "content": {JSON: {"schema": _ref("CaseCreated")}},
        },
        "200": {
            "description": "This external_id was received before: the case it opened, "
            "with its status now; nothing new is stored.",
            "content": {JSON: {"schema": _ref("CaseReplayed")}},
        },
    }
    return {
        "/api/v1/handoffs": {
            "post": {
                "operationId": "postHandoff",
                "summary": "Hand a report over to Ali; it opens a case, once.",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("Handoff")}},
                },
                "responses": handoff_result
                | {
                    "401": {"$ref": "#/components/responses/Unauthorised"},
                    "413": _error(f"The body is larger than {MAX_BODY_BYTES} bytes."),
                    "415": _error("The body is not `application/json` (UTF-8)."),
                    "422": _error(
                        "The hand-off is unusable: the body is not a JSON object, or "
                        "`external_id` is missing, not a string, blank, too long or holds "
                        "control characters. Nothing else is refused.",
                        "ValidationErrors",
                    ),
                    "429": {"$ref": "#/components/responses/RateLimited"},
                },
            }
        },
        "/api/v1/handoffs/{external_id}": {
            "get": {
                "operationId": "getHandoff",
                "summary": "The status of the case a hand-off of this source opened.",
                "parameters": [
                    {
                        "name": "external_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The case and who accepted it, when.",
                        "content": {JSON: {"schema": _ref("HandoffStatus")}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorised"},
                    "404": _error("This source sent no hand-off with this external_id."),
                    "429": {"$ref": "#/components/responses/RateLimited"},
                },
            }
        },
        "/api/v1/oncall": {
            "get": {
                "operationId": "getOnCall",
                "summary": "Who is on call in a province now.",
                "parameters": [
                    {
                        "name": "province",
                        "in": "query",
                        "required": True,
                        "description": "Sigla, name or ISTAT code of a served province.",
                        "schema": {"type": "string", "examples": ["BS"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Primary, backup (each may be null) and coordinators.",
                        "content": {JSON: {"schema": _ref("OnCallChain")}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorised"},
                    "422": _error(
                        "The province is missing, unknown or not served here.",
                        "ValidationErrors",
                    ),
                    "429": {"$ref": "#/components/responses/RateLimited"},
                },
            }
        },
        "/api/v1/beds": {
            "get": {
                "operationId": "getBeds",
                "summary": "Free beds per shelter kind in a province now (counts only).",
                "parameters": [
                    {
                        "name": "province",
                        "in": "query",
                        "required": True,
                        "description": "Sigla, name or ISTAT code of a served province.",
                        "schema": {"type": "string", "examples": ["BS"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Free beds per kind: no shelter names or addresses.",
                        "content": {JSON: {"schema": _ref("FreeBeds")}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorised"},
                    "422": _error(
                        "The province is missing, unknown or not served here.",
                        "ValidationErrors",
                    ),
                    "429": {"$ref": "#/components/responses/RateLimited"},
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


@functools.cache
def _document() -> dict[str, Any]:
    def header_scheme(name: str, description: str) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": name, "description": description}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ali hand-off API",
            "version": API_VERSION,
            "description": "How the Numero Verde contro la tratta (and any other registered "
            "source) hands reports over to Ali, asks who is on call and follows a case.\n\n"
            + SIGNING,
        },
        "servers": [{"url": "/"}],
        "security": [{"aliKey": [], "aliTimestamp": [], "aliSignature": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "securitySchemes": {
                "aliKey": header_scheme(KEY_HEADER, "The source's key id."),
                "aliTimestamp": header_scheme(TIMESTAMP_HEADER, "Unix seconds, ±300 s."),
                "aliSignature": header_scheme(
                    SIGNATURE_HEADER,
                    "`v2=` + hex HMAC-SHA256(secret, timestamp.METHOD.path?query.body), on "
                    "every request and required on GETs; `v1=` + hex HMAC-SHA256(secret, "
                    "timestamp.body) on the POST only.",
                ),
            },
        },
    }


def openapi_document(public_url: str) -> dict[str, Any]:
    """The document, with this instance's public URL as its server."""
    document = copy.deepcopy(_document())
    document["servers"] = [{"url": public_url, "description": "This Ali"}]
    return document
