"""HMAC signatures of API requests (design §4).

`v2=<hex HMAC-SHA256(secret, timestamp + "." + METHOD + "." + path with query + "." + body)>`
is accepted on every request and required on GETs: a `v1=<hex HMAC-SHA256(secret, timestamp
+ "." + body)>` of an empty body would otherwise authenticate any GET of that source. `v1`
stays valid for the POST, whose body names what it is.

Pure functions, used by the API to verify and by tests, benchmarks and the demo to sign.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

KEY_HEADER = "X-Ali-Key"
TIMESTAMP_HEADER = "X-Ali-Timestamp"
SIGNATURE_HEADER = "X-Ali-Signature"
SCHEME = "v1"
SCHEME_V2 = "v2"
# How far a request's timestamp may be from Ali's clock, either way.
TOLERANCE = timedelta(seconds=300)
# Unix seconds now and for the next few centuries; anything longer is not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Ali-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signature_v2(secret: str, timestamp: str | int, method: str, target: str, body: bytes) -> str:
    """The `v2` value for `METHOD target` with `body` at `timestamp`; `target` is the path
    with its query string as sent (`/api/v1/oncall?province=BS`)."""
    message = b".".join(
        (str(timestamp).encode("ascii"), method.upper().encode("ascii"), target.encode(), body)
    )
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SCHEME_V2}={digest}"


def signed_headers(
    key_id: str,
    secret: str,
    body: bytes,
    *,
    at: datetime,
    method: str | None = None,
    target: str | None = None,
) -> dict[str, str]:
    """The three headers that authenticate a request with `body` (b"" for a GET) at `at`:
    `v2` when the method and target are given, else `v1` (valid for the POST only)."""
    timestamp = str(int(at.timestamp()))
    if method is not None and target is not None:
        value = signature_v2(secret, timestamp, method, target, body)
    else:
        value = signature(secret, timestamp, body)
    return {KEY_HEADER: key_id, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: value}


def timestamp_is_fresh(value: str, now: datetime) -> bool:
    """Whether a timestamp header is whole unix seconds within TOLERANCE of `now`."""
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_TIMESTAMP_DIGITS:
        return False
    return abs(int(value) - now.timestamp()) <= TOLERANCE.total_seconds()


def signature_matches(
    value: str,
    secrets: Iterable[str],
    timestamp: str,
    body: bytes,
    *,
    method: str = "POST",
    targets: Iterable[str] = (),
    allow_v1: bool = True,
) -> bool:
    """Whether the signature header was made with one of `secrets` (constant-time compare).

    A `v2` value is checked against each of `targets` (the path with query as received, in
    the forms a client may have signed); a `v1` value only when `allow_v1`. Every secret is
    tried, so the time taken does not tell which one (or whether any) matched.
    """
    given = value.strip().encode("ascii", "replace")
    candidates = list(dict.fromkeys(targets))
    matched = False
    for secret in secrets:
        if given.startswith(f"{SCHEME_V2}=".encode()):
            for target in candidates:
                expected = signature_v2(secret, timestamp, method, target, body).encode("ascii")
                matched |= hmac.compare_digest(given, expected)
        elif allow_v1:
            expected = signature(secret, timestamp, body).encode("ascii")
            matched |= hmac.compare_digest(given, expected)
    return matched
