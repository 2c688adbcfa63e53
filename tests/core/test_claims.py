"""The "send this once" claims: a key is sent once, a retryable failure frees it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.claims import Outcome, send_once
from core.models import SentNotification
from core.telephony import TelephonyError

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def claims(session: Session) -> list[tuple[str, str | None]]:
    rows = session.scalars(select(SentNotification).order_by(SentNotification.id))
    return [(row.key, row.provider_id) for row in rows]


def test_a_key_is_sent_once(session: Session) -> None:
    sent: list[str] = []

    def send() -> str:
        sent.append("call")
        return f"CA{len(sent)}"

    first = send_once(session, key="alert:1", kind="alert", user_id=None, now=NOW, send=send)
    again = send_once(session, key="alert:1", kind="alert", user_id=None, now=NOW, send=send)

    assert (first, again) == (Outcome.SENT, Outcome.ALREADY)
    assert sent == ["call"]
    assert claims(session) == [("alert:1", "CA1")]


@pytest.mark.parametrize(
    ("status", "outcome", "kept"),
    [(503, Outcome.RETRY, []), (400, Outcome.REFUSED, [("alert:2", None)])],
)
def test_a_failure_frees_the_key_only_when_worth_retrying(
    session: Session, status: int, outcome: Outcome, kept: list[tuple[str, None]]
) -> None:
    def send() -> str:
        raise TelephonyError("no", status=status)

    result = send_once(session, key="alert:2", kind="alert", user_id=None, now=NOW, send=send)

    assert result is outcome
    assert claims(session) == kept
