"""Ali's processes for real: gunicorn (or `ali worker`) in its own process group, killable with -9.

Used by the reliability tests and by the benchmarks (`bench/common.py`); it imports no pytest.

* `ali_environ(database_url, instance)`: the ALI_* environment of a process (scheduler off,
  sandbox telephony unless Twilio variables are passed as overrides).
* `add_source(env, name, rate_limit=)`: `ali sources add NAME --json` run as an operator would;
  returns the key id and secret.
* `ProcessGroup(argv, env, log=)`: any command started in a new session, so `kill()` sends
  SIGKILL to the whole group (a gunicorn master AND its workers) and waits until none is left;
  `stop()` asks politely first. `Gunicorn(app, env, log=)` adds a port and waits for an HTTP
  health check before `start()` returns; `restart()` starts it again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import requests

from intake.services import IssuedSecret

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's bin: gunicorn and ali live next to python
# Fixed, so every process started for one database (web, worker, CLI) reads the same rows.
ENCRYPTION_KEY = "3QHvMVm4NpM_KusZsNLQqXHKqKQeq_65-B5cYMqXDds="
START_TIMEOUT = 60.0  # seconds for a process to answer its health check (2-core CI, cold imports)
STOP_TIMEOUT = 10.0


class ProcessFailed(RuntimeError):
    """A managed process did not start or stop in time; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ali_environ(database_url: str, instance: Path, **overrides: str) -> dict[str, str]:
    """The environment of an Ali process: the caller's, minus any ALI_* it had, plus these."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ALI_")}
    env.update(
        {
            "ALI_DATABASE_URL": database_url,
            "ALI_SECRET_KEY": "reliability-secret-key-" + "x" * 32,
            "ALI_PUBLIC_URL": "http://127.0.0.1",
            "ALI_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "ALI_SCHEDULER": "off",
            "ALI_INSTANCE_PATH": str(instance),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def add_source(env: Mapping[str, str], name: str, *, rate_limit: int) -> IssuedSecret:
    """Register a source through the CLI, as an operator would, and return its secret."""
    result = subprocess.run(
        [str(BIN / "ali"), "sources", "add", name, "--json", "--rate-limit", str(rate_limit)],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise ProcessFailed(f"ali sources add failed ({result.returncode}): {result.stderr}")
    issued = json.loads(result.stdout.strip().splitlines()[-1])
    return IssuedSecret(source=issued["source"], key_id=issued["key_id"], secret=issued["secret"])


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc (Linux)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces or parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class ProcessGroup:
    """A command in its own session and process group, with its output in a log file."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], *, log: Path, cwd: Path = ROOT
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.kills = 0
        self.start_seconds: list[float] = []  # how long each start took to be ready

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pgid(self) -> int:
        """The process group of the running command (its leader's pid)."""
        if self.process is None:
            raise ProcessFailed(f"{self.argv[0]} was not started")
        return self.process.pid

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        if self.running:
            raise ProcessFailed(f"{self.argv[0]} is already running")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        began = time.monotonic()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches every child
        )
        self.wait_ready(timeout)
        self.start_seconds.append(time.monotonic() - began)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Subclasses wait for a sign of life; a bare command is ready once started."""

    def kill(self) -> None:
        """SIGKILL the whole group at once (no clean-up handlers run) and wait for it to go."""
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None or _group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1
        self._wait_group_gone(pgid)
        self._close_log()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL for anything still there after `timeout`."""
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None:
            os.killpg(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        # Only while a member is left: once the group is empty its id may be reused.
        if self.process.poll() is None or _group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        self.process.wait()
        self._wait_group_gone(pgid)
        self._close_log()
        self.process = None

    def _wait_group_gone(self, pgid: int) -> None:
        # Orphaned workers die a moment after the master; the next start must not race them
        # for the port or the database.
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_members(pgid):
            if time.monotonic() > deadline:
                raise ProcessFailed(f"process group {pgid} still alive after SIGKILL")
            time.sleep(0.01)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class Gunicorn(ProcessGroup):
    """`gunicorn APP` on 127.0.0.1; `start()` returns when `health` answers 200."""

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        *,
        log: Path,
        workers: int = 2,
        worker_class: str = "gthread",
        threads: int = 4,
        port: int | None = None,
        health: str = "/healthz",
        cwd: Path = ROOT,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.health = health
        argv = [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            *extra_args,
            app,
        ]
        super().__init__(argv, env, log=log, cwd=cwd)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with requests.Session() as http:
            while True:
                if not self.running:
                    raise ProcessFailed(f"gunicorn exited at start:\n{self.log_tail()}")
                try:
                    if http.get(self.url + self.health, timeout=1).status_code == 200:
                        return
                except requests.RequestException:
                    pass  # not listening yet, or the worker is still importing the app
                if time.monotonic() > deadline:
                    self.stop()
                    raise ProcessFailed(
                        f"gunicorn not ready in {timeout:.0f} s:\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    def restart(self, timeout: float = START_TIMEOUT) -> Self:
        """Kill -9 (master and workers) and start again on the same port."""
        self.kill()
        return self.start(timeout)
