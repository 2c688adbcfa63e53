"""Exactly once under concurrency: real HTTP, many threads, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from intake.models import Handoff
from intake.services import IssuedSecret
from intake.signing import signed_headers
from routing.models import Case, CaseEvent

THREADS = 20


def _post(
    url: str, source: IssuedSecret, clock: FrozenClock, body: dict[str, object]
) -> requests.Response:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | signed_headers(
        source.key_id, source.secret, raw, at=clock.now()
    )
    return requests.post(f"{url}/api/v1/handoffs", data=raw, headers=headers, timeout=60)


def test_twenty_concurrent_duplicates_open_one_case(
    live_url: str, source: IssuedSecret, clock: FrozenClock, db: Session
) -> None:
    body = {"external_id": "NV-race", "province": "BS", "summary": "stessa segnalazione"}
    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(lambda _: _post(live_url, source, clock, body), range(THREADS)))

    assert Counter(r.status_code for r in responses) == {201: 1, 200: THREADS - 1}
    assert {r.json()["case"] for r in responses} == {"BS-2026-0001"}
    assert sum(bool(r.json().get("duplicate")) for r in responses) == THREADS - 1
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    assert db.scalar(select(func.count()).select_from(Handoff)) == 1
    created = select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "created")
    assert db.scalar(created) == 1
    # The attempts that lost the race rolled their case number back: no gap.
    after = _post(live_url, source, clock, {"external_id": "NV-next", "province": "BS"})
    assert after.json()["case"] == "BS-2026-0002"


def test_concurrent_cases_of_one_province_get_distinct_numbers(
    live_url: str, source: IssuedSecret, clock: FrozenClock, db: Session
) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(
            pool.map(
                lambda n: _post(
                    live_url, source, clock, {"external_id": f"c-{n}", "province": "BG"}
                ),
                range(THREADS),
            )
        )
    assert [r.status_code for r in responses] == [201] * THREADS
    assert sorted(r.json()["case"] for r in responses) == [
        f"BG-2026-{n:04d}" for n in range(1, THREADS + 1)
    ]
    assert db.scalar(select(func.count()).select_from(Case)) == THREADS


def _chunks(size: int) -> Iterator[bytes]:
    yield b'{"external_id": "chunked", "padding": "'
    for _ in range(size // 1024):
        yield b"x" * 1024
    yield b'"}'


def test_a_chunked_body_over_64_kib_is_413_whatever_the_headers_say(
    live_url: str, source: IssuedSecret, clock: FrozenClock, db: Session
) -> None:
    raw = b"".join(_chunks(70 * 1024))
    headers = {"Content-Type": "application/json"} | signed_headers(
        source.key_id, source.secret, raw, at=clock.now()
    )
    # A generator body goes out with Transfer-Encoding: chunked and no Content-Length.
    response = requests.post(
        f"{live_url}/api/v1/handoffs", data=_chunks(70 * 1024), headers=headers, timeout=30
    )
    assert response.status_code == 413
    assert db.scalar(select(func.count()).select_from(Handoff)) == 0

    small = b"".join(_chunks(2 * 1024))
    headers = {"Content-Type": "application/json"} | signed_headers(
        source.key_id, source.secret, small, at=clock.now()
    )
    response = requests.post(
        f"{live_url}/api/v1/handoffs", data=_chunks(2 * 1024), headers=headers, timeout=30
    )
    assert response.status_code == 201
