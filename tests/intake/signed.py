"""Talking to the hand-off API as a source does: real HMAC signatures over the raw body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.clock import FrozenClock
from intake.services import IssuedSecret, create_source
from intake.signing import signed_headers

HANDOFFS = "/api/v1/handoffs"


def make_source(
    db: Session, clock: FrozenClock, name: str = "numero-verde", rate_limit: int = 120
) -> IssuedSecret:
    """A source with its first secret, committed, as `ali sources add` makes it."""
    issued = create_source(db, name=name, now=clock.now(), rate_limit=rate_limit)
    db.commit()
    return issued


def encode(body: dict[str, Any] | bytes | str) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


@dataclass
class Sender:
    """A source's side of the API through the Flask test client."""

    client: FlaskClient
    issued: IssuedSecret
    clock: FrozenClock

    def headers(
        self,
        body: bytes,
        at: datetime | None = None,
        *,
        method: str | None = None,
        target: str | None = None,
    ) -> dict[str, str]:
        """`v2` headers when method and target are given, `v1` (POST only) otherwise."""
        return signed_headers(
            self.issued.key_id,
            self.issued.secret,
            body,
            at=at or self.clock.now(),
            method=method,
            target=target,
        )

    def post(
        self,
        body: dict[str, Any] | bytes | str,
        *,
        at: datetime | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> TestResponse:
        raw = encode(body)
        sent = {"Content-Type": content_type, **self.headers(raw, at), **(headers or {})}
        response = self.client.post(HANDOFFS, data=raw, headers=sent)
        response.close()  # as a WSGI server does: what Ali does after its answer runs now
        return response

    def get(self, path: str, *, at: datetime | None = None) -> TestResponse:
        """A GET signed with `v2` over its method and path with query, as sources must."""
        return self.client.get(path, headers=self.headers(b"", at, method="GET", target=path))
