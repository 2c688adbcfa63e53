"""`ali sources`: keys shown once, stored encrypted, rotated without downtime, retired."""

from __future__ import annotations

import json

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from intake.models import Source
from intake.services import IssuedSecret
from tests.intake.signed import Sender


def issued_by(runner: FlaskCliRunner, *args: str) -> IssuedSecret:
    result = runner.invoke(args=["sources", *args, "--json"])
    assert result.exit_code == 0, result.output
    return IssuedSecret(**json.loads(result.output))


def test_add_prints_a_working_key_once(
    runner: FlaskCliRunner, client: FlaskClient, clock: FrozenClock, db: Session
) -> None:
    issued = issued_by(runner, "add", "numero-verde")
    assert issued.source == "numero-verde"
    assert issued.key_id.startswith("ak_")
    assert len(issued.secret) >= 40
    response = Sender(client, issued, clock).post({"external_id": "cli-1"})
    assert response.status_code == 201

    listed = runner.invoke(args=["sources", "list"])
    assert listed.exit_code == 0
    assert "numero-verde (active, 120/min)" in listed.output
    assert issued.key_id in listed.output
    assert issued.secret not in listed.output
    stored = db.execute(text("SELECT secret FROM source_secrets")).scalar_one()
    assert issued.secret not in stored


def test_add_in_text_form_and_with_a_rate_limit(runner: FlaskCliRunner, db: Session) -> None:
    result = runner.invoke(args=["sources", "add", "Partner-1", "--rate-limit", "10"])
    assert result.exit_code == 0, result.output
    assert "key id: ak_" in result.output
    assert "secret: " in result.output
    source = db.scalars(select(Source)).one()
    assert (source.name, source.rate_limit) == ("partner-1", 10)
    listed = json.loads(runner.invoke(args=["sources", "list", "--json"]).output)
    assert listed[0]["name"] == "partner-1"
    assert "secret" not in json.dumps(listed)


def test_add_refuses_bad_or_duplicate_names(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["sources", "add", "numero-verde"]).exit_code == 0
    again = runner.invoke(args=["sources", "add", "numero-verde"])
    assert again.exit_code != 0
    assert "already exists" in again.output
    bad = runner.invoke(args=["sources", "add", "numero verde!"])
    assert bad.exit_code != 0
    assert "lower-case letters" in bad.output


def test_rotation_keeps_both_secrets_valid_until_the_old_one_is_retired(
    runner: FlaskCliRunner, client: FlaskClient, clock: FrozenClock
) -> None:
    old = issued_by(runner, "add", "numero-verde")
    new = issued_by(runner, "rotate", "numero-verde")
    assert new.key_id != old.key_id
    assert Sender(client, old, clock).post({"external_id": "r-1"}).status_code == 201
    assert Sender(client, new, clock).post({"external_id": "r-2"}).status_code == 201
    # A sender that switched the secret but not yet the key id keeps working during rotation.
    mixed = IssuedSecret(old.source, old.key_id, new.secret)
    assert Sender(client, mixed, clock).post({"external_id": "r-3"}).status_code == 201

    retired = runner.invoke(args=["sources", "retire-secret", "numero-verde"])
    assert retired.exit_code == 0, retired.output
    assert old.key_id in retired.output
    assert Sender(client, old, clock).post({"external_id": "r-4"}).status_code == 401
    assert Sender(client, mixed, clock).post({"external_id": "r-5"}).status_code == 401
    assert Sender(client, new, clock).post({"external_id": "r-6"}).status_code == 201
    listed = runner.invoke(args=["sources", "list"]).output
    assert f"{old.key_id} created" in listed
    assert "retired" in listed


def test_retire_by_key_id_and_never_the_last(runner: FlaskCliRunner) -> None:
    old = issued_by(runner, "add", "numero-verde")
    last = runner.invoke(args=["sources", "retire-secret", "numero-verde"])
    assert last.exit_code != 0
    assert "rotate before retiring" in last.output
    new = issued_by(runner, "rotate", "numero-verde")
    unknown = runner.invoke(args=["sources", "retire-secret", "numero-verde", "ak_nope"])
    assert unknown.exit_code != 0
    by_id = runner.invoke(args=["sources", "retire-secret", "numero-verde", new.key_id])
    assert by_id.exit_code == 0
    assert new.key_id in by_id.output
    only = runner.invoke(args=["sources", "retire-secret", "numero-verde", old.key_id])
    assert only.exit_code != 0
    assert "last active secret" in only.output
    missing = runner.invoke(args=["sources", "rotate", "nessuno"])
    assert missing.exit_code != 0
    assert "no source named nessuno" in missing.output
