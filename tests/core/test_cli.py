"""The `ali` command: its groups, `ali db upgrade`, `ali demo`, and `ali worker` for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskCliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.app import create_app
from core.cli import main
from core.clock import FrozenClock
from core.config import Settings
from core.models import AuditEntry, User, WorkerHeartbeat
from tests.conftest import ali_environ


def test_help_lists_the_command_groups(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--help"], env={"ALI_INSTANCE_PATH": str(tmp_path)}, catch_exceptions=False
    )
    assert result.exit_code == 0
    for group in ("db", "demo", "run", "users", "worker"):
        assert f"  {group} " in result.output


def test_demo_is_safe_to_run_twice(runner: FlaskCliRunner, db: Session) -> None:
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "admin@ali.example" in first.output
    count = db.scalar(select(func.count(User.id)))
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert db.scalar(select(func.count(User.id))) == count
    # 1 admin + 1 coordinator + 2 operators in each of the 7 provinces
    assert count == 16


def test_worker_process_beats_and_readyz_sees_it(
    database_url: str, engine: Engine, db: Session, tmp_path: Path
) -> None:
    env = {**os.environ, **ali_environ(database_url, tmp_path)}
    for name in ("ALI_TWILIO_ACCOUNT_SID", "ALI_TWILIO_AUTH_TOKEN"):
        env.pop(name)
    worker = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Waiting for a separate process to boot, not for a timer: poll with a deadline.
        deadline = time.monotonic() + 30
        beat = None
        while beat is None and time.monotonic() < deadline and worker.poll() is None:
            beat = db.scalar(select(WorkerHeartbeat))
            if beat is None:
                time.sleep(0.1)
        assert beat is not None, worker.stderr.read().decode() if worker.stderr else ""
        assert beat.pid == worker.pid
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        if worker.stderr:
            worker.stderr.close()


def test_production_without_secrets_is_one_clear_error_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["db", "upgrade"], env={"ALI_ENV": "production", "ALI_INSTANCE_PATH": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Error: Ali cannot start in production" in result.output
    assert "ALI_SECRET_KEY" in result.output


def test_demo_refuses_to_seed_a_production_database(
    settings: Settings, engine: Engine, clock: FrozenClock, db: Session
) -> None:
    app = create_app(replace(settings, production=True), clock=clock, engine=engine)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0
    assert "ALI_ENV=production" in result.output
    assert db.scalar(select(func.count(User.id))) == 0


def test_users_create_is_audited_with_field_names_only(runner: FlaskCliRunner, db: Session) -> None:
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "e@ali.example",
            "--name",
            "Elena",
            "--generate-password",
        ]
    )
    assert result.exit_code == 0, result.output
    entry = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "user")).one()
    assert (entry.action, entry.actor) == ("create", "cli")
    assert "email" in entry.fields
    assert "Elena" not in str(entry.detail) + str(entry.fields)
