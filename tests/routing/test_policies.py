"""Escalation policies: `ali policies show/set/preview`, validation by example, and open
dispatches keeping the policy they started with."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.models import AuditEntry
from routing.models import EscalationPolicy
from routing.policies import DEFAULT_POLICIES, PoliciesInvalid, validate_policies
from tests.alerting import Chain, Phone, dispatch_of
from tests.intake.signed import Sender

EMERGENCY = {"external_id": "NV-1", "province": "BS", "urgency": "emergency"}


def policies(**changes: Any) -> dict[str, Any]:
    """The defaults, with `emergency` steps or repeat replaced."""
    document = copy.deepcopy(DEFAULT_POLICIES)
    document["emergency"].update(changes)
    return document


def write(tmp_path: Path, document: object, name: str = "policies.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def stored(db: Session) -> dict[str, object]:
    """What the policy rows hold (the migration seeds the defaults; tests empty the tables)."""
    db.expire_all()
    rows = db.scalars(select(EscalationPolicy))
    return {row.urgency.value: (row.steps, row.repeat_last) for row in rows}


def shown(runner: FlaskCliRunner) -> dict[str, Any]:
    result = runner.invoke(args=["policies", "show"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_show_prints_the_defaults_in_the_shape_set_takes(runner: FlaskCliRunner) -> None:
    document = shown(runner)
    assert list(document) == ["emergency", "urgent", "ordinary"]
    assert document["emergency"] == {
        "steps": [
            {"targets": ["primary"], "channels": ["sms", "voice"], "wait_minutes": 3},
            {"targets": ["primary", "backup"], "channels": ["sms", "voice"], "wait_minutes": 3},
            {"targets": ["coordinators"], "channels": ["sms", "voice"], "wait_minutes": 5},
        ],
        "repeat_last": 3,
    }
    assert validate_policies(document) == document


def test_set_replaces_every_policy_audited_and_show_gives_it_back(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    wanted = policies(
        steps=[
            {"targets": ["primary", "backup"], "channels": ["voice"], "wait_minutes": 2},
            {"targets": ["coordinators"], "channels": ["sms", "voice"], "wait_minutes": 4},
        ],
        repeat_last=1,
    )
    result = runner.invoke(args=["policies", "set", str(write(tmp_path, wanted))])
    assert result.exit_code == 0, result.output
    assert shown(runner) == wanted
    assert len(db.scalars(select(EscalationPolicy)).all()) == 3
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "escalation_policies"))
    assert (entry.action, entry.actor, entry.object_id) == ("update", "cli", "emergency")
    assert entry.detail["after"]["emergency"] == wanted["emergency"]
    # The same file again: still valid, nothing to tell apart.
    assert runner.invoke(args=["policies", "set", str(write(tmp_path, wanted))]).exit_code == 0


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            policies(
                steps=[
                    {"targets": ["primary"], "channels": ["sms"], "wait_minutes": 3},
                    {"targets": ["coordinators"], "channels": ["fax"], "wait_minutes": 3},
                ]
            ),
            "emergency.steps[1].channels[0]: must be one of sms, voice",
        ),
        (
            policies(steps=[{"targets": ["boss"], "channels": ["sms"], "wait_minutes": 3}]),
            "emergency.steps[0].targets[0]: must be one of primary, backup, coordinators",
        ),
        (
            policies(steps=[{"targets": ["coordinators"], "channels": ["sms"], "wait_minutes": 0}]),
            "emergency.steps[0].wait_minutes: must be a whole number of minutes from 1 to 240",
        ),
        (
            policies(
                steps=[{"targets": ["coordinators"], "channels": ["sms"], "wait_minutes": 2.5}]
            ),
            "emergency.steps[0].wait_minutes: must be a whole number of minutes from 1 to 240",
        ),
        (
            policies(
                steps=[{"targets": ["coordinators"], "channels": ["sms"], "wait_minutes": 9999}]
            ),
            "emergency.steps[0].wait_minutes: must be a whole number of minutes from 1 to 240",
        ),
        (
            policies(
                steps=[{"targets": ["coordinators"], "channels": ["sms"], "wait_minutes": True}]
            ),
            "emergency.steps[0].wait_minutes: must be a whole number of minutes from 1 to 240",
        ),
        (policies(repeat_last=-1), "emergency.repeat_last: must be a whole number from 0 to 10"),
        (policies(steps=[]), "emergency.steps: must be a non-empty list of steps"),
        (
            policies(steps=[{"targets": ["primary"], "channels": ["sms"], "wait_minutes": 3}]),
            "emergency.steps[0].targets: the last step must include coordinators",
        ),
        (
            policies(
                steps=[{"targets": ["coordinators"], "channels": ["sms", "sms"], "wait_minutes": 3}]
            ),
            "emergency.steps[0].channels[1]: is listed twice",
        ),
        (
            policies(steps=[{"targets": ["coordinators"], "channels": ["sms"]}]),
            "emergency.steps[0].wait_minutes: is missing",
        ),
        (
            {k: v for k, v in DEFAULT_POLICIES.items() if k != "urgent"},
            "urgent: is missing",
        ),
        ({**DEFAULT_POLICIES, "critical": DEFAULT_POLICIES["urgent"]}, "critical: unknown field"),
        ([1, 2], "must be an object with emergency, urgent and ordinary"),
    ],
)
def test_a_bad_file_changes_nothing_and_names_the_problem(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, document: object, problem: str
) -> None:
    before, rows = shown(runner), stored(db)
    result = runner.invoke(args=["policies", "set", str(write(tmp_path, document))])
    assert result.exit_code == 1
    assert problem in result.output
    assert "nothing changed" in result.output
    assert shown(runner) == before
    assert stored(db) == rows
    assert db.scalars(select(AuditEntry)).all() == []


def test_a_file_that_is_not_json_says_where(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["policies", "set", str(write(tmp_path, '{"emergency": '))])
    assert result.exit_code == 1
    assert "not JSON (line 1" in result.output


def test_validation_lists_every_problem_at_once() -> None:
    document = policies(
        steps=[{"targets": [], "channels": ["pigeon"], "wait_minutes": -1}], repeat_last="3"
    )
    with pytest.raises(PoliciesInvalid) as caught:
        validate_policies(document)
    assert [p.path for p in caught.value.problems] == [
        "emergency.steps[0].targets",
        "emergency.steps[0].channels[0]",
        "emergency.steps[0].wait_minutes",
        "emergency.repeat_last",
    ]


def test_preview_lists_each_step_with_who_is_on_call(
    runner: FlaskCliRunner, chain: Chain, tmp_path: Path
) -> None:
    result = runner.invoke(args=["policies", "preview", "--province", "BS"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # 3 steps + 3 repeats + the end; T0 is 10:00 UTC, 11:00 in Rome.
    assert len(lines) == 7
    assert lines[0].startswith("2026-11-24 11:00 CET  step 1 (sms+voice)  primary: Paola Primaria")
    assert "primary: Paola Primaria; backup: Bruno Backup" in lines[1]
    assert lines[1].startswith("2026-11-24 11:03 CET  step 2")
    assert "coordinators: Carla Coordinatrice" in lines[2]
    assert lines[6] == "2026-11-24 11:26 CET  unanswered: coordinators alerted"
    # A file can be previewed before it is set; a bad one is refused the same way.
    good = write(tmp_path, policies(repeat_last=0))
    result = runner.invoke(args=["policies", "preview", "--province", "bs", "--file", str(good)])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == 4
    bad = write(tmp_path, policies(repeat_last=99), "bad.json")
    result = runner.invoke(args=["policies", "preview", "--province", "BS", "--file", str(bad)])
    assert result.exit_code == 1
    assert "emergency.repeat_last" in result.output
    assert runner.invoke(args=["policies", "preview", "--province", "MI"]).exit_code == 2


def test_open_dispatches_keep_the_policy_they_started_with(
    runner: FlaskCliRunner,
    sender: Sender,
    chain: Chain,
    phone: Phone,
    db: Session,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    sender.post(EMERGENCY)
    started = dispatch_of(db, "BS-2026-0001").policy
    assert started == DEFAULT_POLICIES["emergency"]
    # Coordinators first, at once, with waits of an hour: none of it applies to the open case.
    changed = policies(
        steps=[{"targets": ["coordinators"], "channels": ["sms"], "wait_minutes": 60}],
        repeat_last=0,
    )
    assert runner.invoke(args=["policies", "set", str(write(tmp_path, changed))]).exit_code == 0
    phone.tick(minutes=3)
    dispatch = dispatch_of(db, "BS-2026-0001")
    assert dispatch.policy == started
    assert dispatch.steps_fired == 2
    assert len(phone.sms_to(chain.backup)) == 1  # the old step 2: primary and backup
    assert phone.sms_to(chain.coordinator) == []
    # A case opened after the change follows the new policy.
    sender.post({**EMERGENCY, "external_id": "NV-2"})
    assert dispatch_of(db, "BS-2026-0002").policy == changed["emergency"]
    assert len(phone.sms_to(chain.coordinator)) == 1
