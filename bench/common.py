"""Shared pieces of the benchmarks: databases, gunicorn, an HTTP load driver, percentiles, tables.

A helper module, not a benchmark: `make bench` skips it. A benchmark script puts the project
root first on sys.path (`bench/` itself must not be there: `bench/intake.py` would shadow the
`intake` package) and imports `bench.common`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.cli import alembic_config
from core.models import User
from oncall.models import RotaShift
from tests.pg import Cluster, PostgresUnavailable, start_cluster
from tests.reliability.handoffs import SERVED

ROOT = Path(__file__).resolve().parent.parent

# One request of a load: (path, body, headers), built just before it is sent.
Request = tuple[str, bytes, dict[str, str]]


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def migrate(url: str) -> None:
    """Ali's schema, from the Alembic migrations."""
    command.upgrade(alembic_config(url), "head")


@contextmanager
def postgres_cluster() -> Iterator[Cluster | None]:
    """The test suite's throwaway cluster (loopback, durability off), or None if unavailable."""
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL: skipped ({exc})")
        yield None
        return
    try:
        yield cluster
    finally:
        cluster.stop()


# Where the CPU time of a load goes: a name ("server", "database", "client") and a meter
# returning the CPU seconds used so far by those processes.
CpuMeters = dict[str, Callable[[], float]]


@dataclass
class LoadResult:
    """What one load run measured: wall time, per-request latencies, answers, CPU used."""

    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    def cpu_ms_per_request(self, meter: str) -> float | None:
        if meter not in self.cpu_seconds or not self.requests:
            return None
        return 1000 * self.cpu_seconds[meter] / self.requests

    def errors(self, expected: int) -> int:
        return sum(n for status, n in self.statuses.items() if status != str(expected))

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        self.statuses += other.statuses
        for meter, seconds in other.cpu_seconds.items():
            self.cpu_seconds[meter] = self.cpu_seconds.get(meter, 0.0) + seconds


def drive(
    base_url: str,
    build: Callable[[int], Request],
    indices: Sequence[int],
    *,
    threads: int,
    cpu: CpuMeters | None = None,
    timeout: float = 30.0,
) -> LoadResult:
    """POST one request per index from `threads` client threads, each with a keep-alive
    session; latency is measured around the HTTP exchange only (not the body's signing).
    The `cpu` meters are read before and after; the client's own CPU is always measured."""
    meters: CpuMeters = {**(cpu or {}), "client": time.process_time}
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()
    result = LoadResult(requests=len(indices))

    def send(index: int) -> tuple[float, str]:
        session: requests.Session | None = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            with lock:
                sessions.append(session)
        path, body, headers = build(index)
        started = time.perf_counter()
        try:
            response = session.post(base_url + path, data=body, headers=headers, timeout=timeout)
            status = str(response.status_code)
        except requests.RequestException as exc:
            status = type(exc).__name__
        return (time.perf_counter() - started) * 1000, status

    before = {name: meter() for name, meter in meters.items()}
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            for latency, status in pool.map(send, indices):
                result.latencies_ms.append(latency)
                result.statuses[status] += 1
    finally:
        for session in sessions:
            session.close()
    result.seconds = time.perf_counter() - started
    for name, meter in meters.items():
        result.cpu_seconds[name] = meter() - before[name]
    return result


def _cpu_seconds(select: Callable[[int, int, int], bool]) -> float:
    """User + system CPU time of the live processes chosen by `select(pid, ppid, pgrp)`
    (Linux /proc; a process that exits during a run takes its time with it)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ... utime stime": comm may hold spaces or parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if select(int(entry.name), int(fields[1]), int(fields[2])):
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def group_cpu(pgid: int) -> Callable[[], float]:
    """A meter of a process group's CPU seconds (a gunicorn master and its workers)."""
    return lambda: _cpu_seconds(lambda _pid, _ppid, pgrp: pgrp == pgid)


def postgres_cpu(cluster: Cluster) -> Callable[[], float]:
    """A meter of a cluster's CPU seconds: the postmaster and its children (the backends)."""
    postmaster = int((cluster.base / "data" / "postmaster.pid").read_text().split()[0])
    return lambda: _cpu_seconds(lambda pid, ppid, _pgrp: postmaster in {pid, ppid})


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first, *rest = row
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def seed_rota(engine: Engine) -> None:
    """A primary on call in every served province for the whole run, as in real life: each
    hand-off then opens a dispatch and pages its primary (SMS and call, to the sandbox
    outbox) after its answer, in the same gunicorn worker."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        for n, province in enumerate(SERVED):
            user = User(
                email=f"bench-{province.lower()}@ali.example",
                display_name=f"Bench {province}",
                phone=f"+39333900{n:04d}",
                phone_verified_at=now,
                roles=["operator"],
                provinces=[province],
                created_at=now,
            )
            session.add(user)
            session.flush()
            session.add(
                RotaShift(
                    province=province,
                    tier="primary",
                    user_id=user.id,
                    start_at=now - timedelta(days=1),
                    end_at=now + timedelta(days=1),
                    created_at=now,
                )
            )
