"""Signatures `v2` (design §4): method, path with query and body signed; required on GETs."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from intake.services import IssuedSecret
from intake.signing import SIGNATURE_HEADER, signature, signature_v2, signed_headers
from tests.intake.signed import HANDOFFS, Sender

ONCALL = "/api/v1/oncall?province=BS"


def test_v2_is_the_hmac_of_timestamp_method_target_and_body() -> None:
    expected = hmac.new(
        b"test-secret", b'1795514400.POST./api/v1/handoffs.{"external_id":"x"}', hashlib.sha256
    ).hexdigest()
    assert signature_v2("test-secret", 1795514400, "post", HANDOFFS, b'{"external_id":"x"}') == (
        f"v2={expected}"
    )


def test_a_handoff_signed_with_v2_opens_the_case(sender: Sender) -> None:
    raw = json.dumps({"external_id": "v2-1", "province": "BS"}).encode()
    headers = {"Content-Type": "application/json"} | sender.headers(
        raw, method="POST", target=HANDOFFS
    )
    assert headers[SIGNATURE_HEADER].startswith("v2=")
    response = sender.client.post(HANDOFFS, data=raw, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["case"] == "BS-2026-0001"


def test_a_handoff_signed_with_v1_still_opens_the_case(sender: Sender) -> None:
    raw = json.dumps({"external_id": "v1-1", "province": "BS"}).encode()
    headers = sender.headers(raw)
    assert headers[SIGNATURE_HEADER].startswith("v1=")
    response = sender.post(raw)
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/api/v1/handoffs/v2-get", ONCALL])
def test_gets_signed_with_v2_are_answered(sender: Sender, path: str) -> None:
    sender.post({"external_id": "v2-get", "province": "BS"})
    response = sender.get(path)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("path", ["/api/v1/handoffs/v2-get", ONCALL])
def test_a_get_signed_with_v1_is_refused(sender: Sender, path: str) -> None:
    sender.post({"external_id": "v2-get", "province": "BS"})
    # Before v2 this was the whole GET authentication: the v1 of an empty body.
    v1 = sender.headers(b"")
    assert v1[SIGNATURE_HEADER] == signature(sender.issued.secret, v1["X-Ali-Timestamp"], b"")
    response = sender.client.get(path, headers=v1)
    assert response.status_code == 401
    assert response.get_json() == {
        "error": "Authentication failed: check the key id, timestamp and signature."
    }


@pytest.mark.parametrize(
    ("method", "target", "sent"),
    [
        ("POST", ONCALL, ONCALL),  # another method
        ("GET", "/api/v1/handoffs/v2-get", ONCALL),  # another path
        ("GET", "/api/v1/oncall?province=MI", ONCALL),  # another query
        ("GET", "/api/v1/oncall", ONCALL),  # the query left out
        ("GET", ONCALL, "/api/v1/oncall?province=BS&x=1"),  # a query added
    ],
)
def test_a_v2_signature_of_another_request_is_refused(
    sender: Sender, method: str, target: str, sent: str
) -> None:
    headers = sender.headers(b"", method=method, target=target)
    assert sender.client.get(sent, headers=headers).status_code == 401


def test_a_v2_post_signature_does_not_cover_another_body(sender: Sender) -> None:
    signed = json.dumps({"external_id": "a"}).encode()
    headers = {"Content-Type": "application/json"} | sender.headers(
        signed, method="POST", target=HANDOFFS
    )
    other = json.dumps({"external_id": "b"}).encode()
    assert sender.client.post(HANDOFFS, data=other, headers=headers).status_code == 401


def test_v2_over_real_http_with_an_encoded_path_and_query(
    live_url: str, sender: Sender, source: IssuedSecret
) -> None:
    sender.post({"external_id": "NV/2026/9", "province": "BS"})
    at = sender.clock.now()
    for target in ("/api/v1/handoffs/NV%2F2026%2F9", "/api/v1/oncall?province=BS&lang=it"):
        headers = signed_headers(
            source.key_id, source.secret, b"", at=at, method="GET", target=target
        )
        response = requests.get(live_url + target, headers=headers, timeout=10)
        assert response.status_code == 200, (target, response.text)
