"""The layout's rules, checked on the source: who may import twilio and apscheduler, and upward."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# intake → routing → oncall → core: a package imports only itself and what is below it.
RANK = {"core": 0, "oncall": 1, "routing": 2, "intake": 3}


def _imports() -> list[tuple[str, str]]:
    found = []
    for package in RANK:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [(path.relative_to(ROOT).as_posix(), a.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.append((path.relative_to(ROOT).as_posix(), node.module))
    return found


def test_only_telephony_and_the_signature_check_import_twilio() -> None:
    twilio = {(path, name) for path, name in _imports() if name.split(".")[0] == "twilio"}
    assert {path for path, _ in twilio} <= {"core/telephony.py", "core/twilio.py"}
    assert {path for path, name in twilio if name.startswith("twilio.rest")} <= {
        "core/telephony.py"
    }


def test_only_the_scheduler_module_imports_apscheduler() -> None:
    users = {path for path, name in _imports() if name.split(".")[0] == "apscheduler"}
    assert users <= {"core/scheduler.py"}


def test_no_package_imports_upward_or_imports_wsgi() -> None:
    upward = [
        (path, name)
        for path, name in _imports()
        if name == "wsgi" or RANK.get(name.split(".")[0], -1) > RANK[path.split("/")[0]]
    ]
    assert upward == []
