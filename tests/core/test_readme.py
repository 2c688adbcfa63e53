"""The README names only commands, make targets and variables that exist, and documents them all."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskCliRunner

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_ali_variable_read_is_documented_and_every_documented_one_is_read() -> None:
    read = set(re.findall(r"ALI_[A-Z_]+", (ROOT / "core" / "config.py").read_text()))
    documented = set(re.findall(r"ALI_[A-Z_]+", README))
    test_only = {"ALI_TEST_DATABASES"}
    assert read - documented == set()
    assert documented - read - test_only == set()


def test_every_make_target_named_exists() -> None:
    targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = set(re.findall(r"`make ([a-z]+)", README))
    assert named
    assert named - targets == set()


def test_every_ali_command_named_exists(runner: FlaskCliRunner) -> None:
    commands = set(re.findall(r"`(?:[\w/.]*/)?ali ([a-z-]+(?: [a-z-]+)?)", README))
    assert {"run", "worker", "db upgrade", "users create"} <= commands
    # `ali --version` is an option of the command itself, checked in tests/core/test_newcomer.py.
    for command in sorted(c for c in commands if not c.startswith("-")):
        result = runner.invoke(args=[*command.split(), "--help"])
        assert result.exit_code == 0, f"ali {command}: {result.output}"
