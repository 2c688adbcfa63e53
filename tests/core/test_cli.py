"""The `ali` command: its groups, `ali db upgrade`, `ali demo`, and `ali worker` for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskCliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.cli import main
from core.models import User, WorkerHeartbeat
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
