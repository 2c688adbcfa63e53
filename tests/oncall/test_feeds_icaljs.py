"""iCal feeds as a calendar client reads them (ical.js via node): long shifts across the
edges of the feed window keep their real start, end and UID from one fetch to the next."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import User
from oncall import editing
from oncall.schedule import Tier
from tests.conftest import PUBLIC_URL, UserFactory, login
from tests.oncall.test_feeds import new_feed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ical_events.mjs")

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules/ical.js/package.json").exists(),
    reason="node and ical.js (make npm) are needed",
)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def ical_js(body: bytes) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", str(SCRIPT)], input=body, capture_output=True, check=True, timeout=60, cwd=ROOT
    )
    events: list[dict[str, Any]] = json.loads(done.stdout)
    return events


def fetch(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    response = client.get(url.removeprefix(PUBLIC_URL))
    assert response.status_code == 200
    return ical_js(response.get_data())


def one_person_rotation(
    db: Session, user: User, tier: Tier, province: str | None, start: date, weeks: int
) -> None:
    # As the demo's coordinator rota: one person, weekly shifts, ten weeks: one long duty.
    editing.create_rotation(
        db,
        actor="test",
        now=utc(2026, 1, 1),
        province=province,
        tier=tier,
        operator_ids=[user.id],
        handover=time(9, 0),
        period_days=7,
        start_date=start,
        end_date=start + timedelta(weeks=weeks),
        served=("BS",),
    )
    db.commit()


def test_a_ten_week_shift_across_the_window_start_keeps_its_start_end_and_uid(
    client: FlaskClient, db: Session, clock: FrozenClock, make_user: UserFactory
) -> None:
    chiara = make_user(email="chiara@ali.example", roles=("coordinator",))
    one_person_rotation(db, chiara, Tier.COORDINATOR, None, date(2026, 9, 7), 10)
    clock.set(utc(2026, 10, 20, 12) + timedelta(seconds=17))
    login(client, "chiara@ali.example")
    url = new_feed(client)

    first = fetch(client, url)
    clock.advance(timedelta(days=3, minutes=7, seconds=41))
    second = fetch(client, url)
    # 09:00 in Rome (summer time) on Monday 7 September to 09:00 (winter time) ten weeks on,
    # although the window starts on 20 September and the margin would cut at 12 September.
    expected = [
        {
            "start": "2026-09-07T07:00:00.000Z",
            "end": "2026-11-16T08:00:00.000Z",
            "summary": "Reperibilità: coordinamento",
        }
    ]
    for found in (first, second):
        assert [{k: e[k] for k in ("start", "end", "summary")} for e in found] == expected
    assert first[0]["uid"] == second[0]["uid"]
    assert "20260907T070000Z" in first[0]["uid"]


def test_a_long_shift_across_the_window_end_keeps_its_end_and_uid(
    client: FlaskClient, db: Session, clock: FrozenClock, make_user: UserFactory
) -> None:
    anna = make_user(email="anna@ali.example")
    clock.set(utc(2026, 10, 20, 12))
    # Starts 170 days ahead; the window ends at 180 and the margin at 188 days: 70 days long.
    one_person_rotation(db, anna, Tier.PRIMARY, "BS", date(2027, 4, 5), 10)
    login(client, "anna@ali.example")
    url = new_feed(client)
    first = fetch(client, url)
    clock.advance(timedelta(hours=5, seconds=3))
    second = fetch(client, url)
    assert first == second
    assert [(e["start"], e["end"]) for e in first] == [
        ("2027-04-05T07:00:00.000Z", "2027-06-14T07:00:00.000Z")
    ]


def test_a_long_override_across_the_window_start_in_a_province_feed(
    client: FlaskClient, db: Session, clock: FrozenClock, make_user: UserFactory
) -> None:
    make_user(email="manager@ali.example", roles=("operator", "rota_manager"), name="Maria Rossi")
    anna = make_user(name="Anna Bianchi")
    bruno = make_user(name="Bruno Verdi")
    editing.create_rotation(
        db,
        actor="test",
        now=utc(2026, 1, 1),
        province="BS",
        tier=Tier.PRIMARY,
        operator_ids=[anna.id, bruno.id],
        handover=time(9, 0),
        period_days=1,
        start_date=date(2026, 8, 1),
        served=("BS",),
    )
    db.commit()
    editing.add_override(
        db,
        actor="test",
        now=utc(2026, 1, 1),
        province="BS",
        tier=Tier.PRIMARY,
        user_id=bruno.id,
        start=utc(2026, 9, 1, 7),
        end=utc(2026, 10, 1, 7),
        served=("BS",),
    )
    db.commit()
    clock.set(utc(2026, 10, 15, 12))
    login(client, "manager@ali.example")
    url = new_feed(client, "/profile/calendar/province", province="BS")
    first = fetch(client, url)
    clock.advance(timedelta(days=2, seconds=9))
    second = fetch(client, url)
    long_one = [e for e in first if e["start"] == "2026-09-01T07:00:00.000Z"]
    # A month of override, then his own rotation day (1 October) follows on: one duty.
    assert [(e["end"], e["summary"]) for e in long_one] == [
        ("2026-10-02T07:00:00.000Z", "Reperibilità BS (principale): Bruno Verdi")
    ]
    assert long_one[0]["uid"] in {e["uid"] for e in second}
    assert long_one[0] in second
