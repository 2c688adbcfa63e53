"""`ali demo` creates the numero-verde source and a curl snippet that really works."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.config import Settings
from intake.demo import DEMO_SOURCE, SNIPPET_FILE
from intake.models import Handoff, Source
from routing.models import Case, CaseStatus
from tests.conftest import PUBLIC_URL


def _run(snippet: str) -> dict[str, object]:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_demo_snippet_posts_a_signed_handoff_with_curl(
    runner: FlaskCliRunner, live_url: str, settings: Settings, db: Session, clock: FrozenClock
) -> None:
    # The snippet signs with the shell's `date +%s`: Ali's clock must agree with the machine's.
    clock.set(datetime.now(UTC))
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    output = result.output
    assert f"Demo source {DEMO_SOURCE}" in output
    assert "openssl dgst -sha256 -hmac" in output
    snippet = output[output.index("KEY=") : output.index("; echo") + len("; echo")]
    snippet = snippet.replace(PUBLIC_URL, live_url)

    first = _run(snippet)
    assert str(first["case"]).startswith("BS-")
    assert first["province_source"] == "municipality"
    again = _run(snippet)  # pasted again: the same case, a duplicate
    assert again["duplicate"] is True
    assert db.scalar(select(func.count()).select_from(Handoff)) == 1

    saved = (settings.instance_path / SNIPPET_FILE).read_text()
    assert snippet.replace(live_url, PUBLIC_URL) in saved

    rerun = runner.invoke(args=["demo"])
    assert rerun.exit_code == 0, rerun.output
    assert "already exists" in rerun.output
    assert "ali sources rotate numero-verde" in rerun.output
    assert db.scalar(select(func.count()).select_from(Source)) == 1


def test_demo_snippet_file_is_private_from_its_creation(
    runner: FlaskCliRunner, settings: Settings
) -> None:
    path = settings.instance_path / SNIPPET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stale snippet of a wiped database\n")
    path.chmod(0o644)
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    assert "KEY=" in path.read_text()


def test_demo_adds_weeks_of_cases_in_every_state_once(
    runner: FlaskCliRunner, db: Session, clock: FrozenClock
) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    statuses = set(db.scalars(select(Case.status)))
    assert {status.value for status in CaseStatus} - statuses == {"new"}  # born dispatched
    provinces = set(db.scalars(select(Case.province)))
    assert provinces == {"BG", "BS", "CR", "LC", "LO", "MN", "PV"}
    received = list(db.scalars(select(Case.received_at)))
    assert clock.now() - min(received) >= timedelta(days=14)
    count = db.scalar(select(func.count()).select_from(Case))
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0, again.output
    assert db.scalar(select(func.count()).select_from(Case)) == count


def test_demo_adds_shelters_and_months_of_placements_once(
    runner: FlaskCliRunner, db: Session, settings: Settings
) -> None:
    from intake.models import Placement, Shelter  # noqa: PLC0415 -- this test's own tables
    from intake.shelters import free_beds_by_kind  # noqa: PLC0415

    assert runner.invoke(args=["demo"]).exit_code == 0
    shelters = db.scalar(select(func.count()).select_from(Shelter))
    placements = db.scalar(select(func.count()).select_from(Placement))
    assert {s.province for s in db.scalars(select(Shelter))} == set(settings.provinces)
    assert placements is not None
    assert placements >= 9 * len(settings.provinces)
    # Two stays are still there tonight: 3 of the 6 pronta accoglienza beds for women taken.
    assert free_beds_by_kind(db, "BS")["pronta_accoglienza"] == 3 + 4
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert db.scalar(select(func.count()).select_from(Shelter)) == shelters
    assert db.scalar(select(func.count()).select_from(Placement)) == placements
