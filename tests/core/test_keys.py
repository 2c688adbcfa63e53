"""`ali keys reencrypt`: every encrypted column rewritten under the first key, resumable and
audited; and a PostgreSQL backup restored into a fresh database, readable with the keys only."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.app import create_app
from core.clock import FrozenClock
from core.config import load_settings
from core.crypto import DecryptionError
from core.db import make_engine
from core.keys import encrypted_columns, reencrypt_all
from core.models import AuditEntry
from routing.models import Case
from tests.conftest import DATABASES, ENCRYPTION_KEY, T0, ali_environ, migrate
from tests.intake.signed import Sender, make_source
from tests.pg import Cluster
from tests.twilio_standin import TwilioStandIn

OLD = ENCRYPTION_KEY
NEW = "bmV3LWtleS1mb3ItYWxpLXRlc3RzLTMyLWJ5dGVzISE="
SUMMARY = "Maria Rossi, ospite di via Roma 12, chiede aiuto."


def handoff(external_id: str) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "municipality": "Chiari",
        "callback_phone": "+39 333 765 4321",
        "urgency": "urgent",
        "summary": SUMMARY,
    }


def app_with_keys(
    keys: str, database_url: str, tmp_path: Path, engine: Engine, clock: FrozenClock, base: str
) -> Flask:
    settings = load_settings(
        ali_environ(database_url, tmp_path, ALI_ENCRYPTION_KEYS=keys, ALI_TWILIO_API_BASE=base)
    )
    application = create_app(settings, clock=clock, engine=engine)
    application.config["TESTING"] = True
    return application


def raw_tokens(db: Session) -> list[str]:
    """Every ciphertext the database holds, as stored."""
    tokens = []
    for table, columns in encrypted_columns():
        for column in columns:
            tokens += [
                value
                for (value,) in db.execute(
                    text(f"SELECT {column.name} FROM {table.name}")  # noqa: S608 -- metadata names
                )
                if value
            ]
    return tokens


def test_reencrypt_moves_every_value_to_the_new_key_resumably(
    app: Flask,
    client: Any,
    db: Session,
    clock: FrozenClock,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    twilio: TwilioStandIn,
) -> None:
    # Written under OLD: three cases (hand-off payloads, phones, summaries) and a source secret.
    sender = Sender(client, make_source(db, clock), clock)
    for n in range(3):
        assert sender.post(handoff(f"K-{n}")).status_code == 201
    written = raw_tokens(db)
    assert len(written) == 13  # 3 × (payload, municipality, callback, summary) + the secret
    assert all(Fernet(OLD.encode()).decrypt(t.encode()) for t in written)

    rotating = app_with_keys(f"{NEW},{OLD}", database_url, tmp_path, engine, clock, twilio.base_url)

    # Stopped after its first batch: what was done is committed, the rest still under OLD.
    class Stopped(Exception):
        pass

    def stop(_line: str) -> None:
        raise Stopped

    with rotating.app_context(), Session(engine) as session, pytest.raises(Stopped):
        reencrypt_all(session, progress=stop, batch=1)
    new_key = Fernet(NEW.encode())
    moved = [t for t in raw_tokens(db) if _reads(new_key, t)]
    assert 0 < len(moved) < len(written)

    result = rotating.test_cli_runner().invoke(args=["keys", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "cases: " in result.output  # progress, table by table
    assert f"{len(written) - len(moved)} values rewritten" in result.output
    assert all(_reads(new_key, t) for t in raw_tokens(db))

    again = rotating.test_cli_runner().invoke(args=["keys", "reencrypt"])
    assert "done: 0 values rewritten" in again.output  # harmless to run again
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "reencrypt")).all()
    assert [sum(e.detail["rewritten"].values()) for e in entries] == [
        len(written) - len(moved),
        0,
    ]
    assert SUMMARY not in str([e.detail for e in entries])

    # Only the new key now: everything reads, the API's signed requests included.
    app_with_keys(NEW, database_url, tmp_path, engine, clock, twilio.base_url)
    db.expire_all()
    assert [c.summary for c in db.scalars(select(Case).order_by(Case.id))] == [SUMMARY] * 3
    assert sender.get("/api/v1/handoffs/K-1").status_code == 200
    # And the old key alone reads nothing any more.
    assert not any(_reads(Fernet(OLD.encode()), t) for t in raw_tokens(db))


def _reads(key: Fernet, token: str) -> bool:
    try:
        key.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def test_a_value_no_key_reads_stops_the_run_with_a_clear_message(
    app: Flask, client: Any, db: Session, clock: FrozenClock, runner: Any
) -> None:
    sender = Sender(client, make_source(db, clock), clock)
    assert sender.post(handoff("K-9")).status_code == 201
    foreign = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    db.execute(text("UPDATE cases SET summary = :t"), {"t": foreign})
    result = runner.invoke(args=["keys", "reencrypt"])
    assert result.exit_code == 1
    assert "cannot be read with ALI_ENCRYPTION_KEYS" in result.output


# --- backup and restore ----------------------------------------------------------------------


@pytest.mark.skipif("postgresql" not in DATABASES, reason="PostgreSQL runs are narrowed out")
def test_a_pg_dump_restored_into_a_fresh_database_reads_with_the_keys_and_not_without(
    pg_cluster: Cluster, tmp_path: Path, standin: TwilioStandIn
) -> None:
    clock = FrozenClock(T0)
    source_url = pg_cluster.create_database("ali_backup_source")
    migrate(source_url)
    engines = [make_engine(source_url)]
    try:
        app = app_with_keys(OLD, source_url, tmp_path, engines[0], clock, standin.base_url)
        with Session(engines[0]) as session:
            issued = make_source(session, clock)
        sender = Sender(app.test_client(), issued, clock)
        reference = sender.post(handoff("B-1")).get_json()["case"]

        dump = tmp_path / "ali.dump"
        connection = ["-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "ali"]
        dump_args = ["--format=custom", "--no-owner", "-f", str(dump), "ali_backup_source"]
        subprocess.run(
            ["pg_dump", *connection, *dump_args],
            check=True,
            capture_output=True,
        )
        restored_url = pg_cluster.create_database("ali_backup_restored")
        subprocess.run(
            ["pg_restore", "--no-owner", *connection, "-d", "ali_backup_restored", str(dump)],
            check=True,
            capture_output=True,
        )
        assert SUMMARY.encode() not in dump.read_bytes()  # the backup holds ciphertext only

        engines.append(make_engine(restored_url))
        restored = app_with_keys(OLD, restored_url, tmp_path, engines[1], clock, standin.base_url)
        answer = Sender(restored.test_client(), issued, clock).get("/api/v1/handoffs/B-1")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["case"] == reference
        with Session(engines[1]) as session:
            case = session.scalars(select(Case)).one()
            assert (case.reference, case.summary) == (reference, SUMMARY)

        app_with_keys(NEW, restored_url, tmp_path, engines[1], clock, standin.base_url)
        with Session(engines[1]) as session, pytest.raises(DecryptionError):
            session.scalars(select(Case)).one()
    finally:
        for engine in engines:
            engine.dispose()
