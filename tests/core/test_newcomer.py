"""What a newcomer tripped over: the version, the demo users' roles, another port."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.cli import main
from core.models import User
from oncall.models import Rotation

ROOT = Path(__file__).resolve().parents[2]


def test_ali_version_prints_alis_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--version"], env={"ALI_INSTANCE_PATH": str(tmp_path)}, catch_exceptions=False
    )
    assert result.exit_code == 0
    assert result.output == f"Ali {version('ali')}\n"


def test_ali_version_from_the_shell(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "ALI_INSTANCE_PATH": str(tmp_path)},
        timeout=60,
    )
    assert done.stdout.strip() == f"Ali {version('ali')}"


def test_demo_credentials_name_each_users_roles(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    path = app.extensions["ali.settings"].instance_path / "demo-credentials.txt"
    lines = {line.split()[0]: line.split()[2] for line in path.read_text().splitlines()}
    assert lines["admin@ali.example"] == "admin,coordinator"
    assert lines["coordinatrice@ali.example"] == "coordinator"
    assert lines["operatore1.bs@ali.example"] == "operator,rota_manager"
    assert lines["operatore2.bs@ali.example"] == "operator"
    assert "operatore1.bs@ali.example" in result.output
    assert "operator,rota_manager" in result.output


def test_make_run_honours_port() -> None:
    # A dry run of the recipe (nothing is executed): the port reaches `ali run` and the echo.
    done = subprocess.run(
        ["make", "--dry-run", "run", "PORT=5001"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "ali run --port 5001" in done.stdout
    assert "http://127.0.0.1:5001" in done.stdout


def test_demo_names_are_italian_and_an_english_demo_gets_no_second_copy(
    runner: FlaskCliRunner, db: Session
) -> None:
    assert runner.invoke(args=["demo"]).exit_code == 0
    names = set(db.scalars(select(Rotation.name)))
    assert {"Demo principale BS", "Demo riserva BS", "Demo coordinamento"} <= names
    assert not any(word in name for name in names for word in ("primary", "backup", "from"))
    admin = db.scalars(select(User).where(User.email == "admin@ali.example")).one()
    assert admin.display_name == "Amministratrice Demo"
    # A database seeded by an earlier, English demo.
    for rotation in db.scalars(select(Rotation)):
        rotation.name = (
            rotation.name.replace("principale", "primary")
            .replace("riserva", "backup")
            .replace("coordinamento", "coordinators")
            .replace("(da mercoledì)", "(from Wednesday)")
        )
    db.commit()
    count = len(names)
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert db.scalar(select(func.count(Rotation.id))) == count
