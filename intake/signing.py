"""HMAC signatures of API requests: `v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.

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
# How far a request's timestamp may be from Ali's clock, either way.
TOLERANCE = timedelta(seconds=300)
# Unix seconds now and for the next few centuries; anything longer is not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Ali-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(key_id: str, secret: str, body: bytes, *, at: datetime) -> dict[str, str]:
    """The three headers that authenticate a request with `body` (b"" for a GET) at `at`."""
    timestamp = str(int(at.timestamp()))
    return {
        KEY_HEADER: key_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def timestamp_is_fresh(value: str, now: datetime) -> bool:
    """Whether a timestamp header is whole unix seconds within TOLERANCE of `now`."""
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_TIMESTAMP_DIGITS:
        return False
    return abs(int(value) - now.timestamp()) <= TOLERANCE.total_seconds()


def signature_matches(value: str, secrets: Iterable[str], timestamp: str, body: bytes) -> bool:
    """Whether the signature header was made with one of `secrets` (constant-time compare).

    Every secret is tried, so the time taken does not tell which one (or whether any) matched.
    """
    given = value.strip().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        expected = signature(secret, timestamp, body).encode("ascii")
        matched |= hmac.compare_digest(given, expected)
    return matched
