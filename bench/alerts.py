"""Benchmark: alerts — first page after a burst, escalation lateness, worker memory.

Run by `make bench` (not by the tests): `.venv/bin/python bench/alerts.py [--quick]`.
On SQLite (a WAL file) and then PostgreSQL (the test suite's throwaway cluster), with Ali under
gunicorn (2 gthread workers x 4 threads), the real twilio client pointed at the in-repo Twilio
stand-in, a primary on call in every province, and — for (b) and (c) — a real `ali worker`
process (APScheduler, every job, the escalation tick every 2 s):

(a) first page: a burst of `--burst` (200) emergency hand-offs from 16 client threads at once;
    for each case, from its answer (201: hand-off accepted) to the first request the stand-in
    receives for it (the alert SMS), p50 / p99 (target p99 < 200 ms); also from the moment the
    hand-off was sent. Baseline: the same burst against a bare Flask endpoint doing one insert
    (`bench/_bare.py`) under the same gunicorn and database: its round trip.
(b) escalation lateness: `--dispatches` (1,000) open dispatches whose next step falls due over
    `--spread` seconds (180: one emergency wait, every dispatch open at once); the worker fires
    them: lateness = when the stand-in receives the step's SMS − the dispatch's due_at,
    p50 / p99 / max (target p99 < 1 s). Baseline: the bare SELECT of due rows (the claim's
    query without its lock) over those 1,000 rows.
(c) worker memory: `--handoffs` (10,000) hand-offs through gunicorn while `ali worker` runs;
    the RSS of the worker process and of the largest gunicorn worker at the half and at the end
    (target < 150 MB and flat over the second half). Baseline: each process's RSS before the
    first hand-off.

`--quick` runs (a) with 200, (b) with 1,000 over 60 s and (c) with 2,000 hand-offs. Exit status 1
when a case got no SMS or a dispatch did not fire; the targets are printed, not enforced.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH)]

import requests  # noqa: E402 -- after the path set-up above
from sqlalchemy import Engine, insert, select  # noqa: E402

from bench import _bare  # noqa: E402
from bench.common import migrate, percentile, postgres_cluster, print_table, seed_rota  # noqa: E402
from core.db import make_engine  # noqa: E402
from intake.signing import signed_headers  # noqa: E402
from routing.models import Case, Dispatch, DispatchState, Page  # noqa: E402
from routing.policies import DEFAULT_POLICIES  # noqa: E402
from tests.reliability.handoffs import HANDOFFS, SERVED, sample_handoff  # noqa: E402
from tests.reliability.servers import (  # noqa: E402
    BIN,
    Gunicorn,
    ProcessGroup,
    add_source,
    ali_environ,
)
from tests.twilio_standin import TwilioStandIn  # noqa: E402

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
FROM = "+390212345678"
JSON = {"Content-Type": "application/json"}
FIRST_PAGE_TARGET_MS = 200.0
LATENESS_TARGET_S = 1.0
RSS_TARGET_MB = 150.0


@dataclass
class Figures:
    """One database's results, printed in the tables at the end."""

    label: str
    first: list[object] = field(default_factory=list)
    lateness: list[object] = field(default_factory=list)
    memory: list[object] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def ms(samples: list[float]) -> str:
    return f"{percentile(samples, 0.5):.1f} / {percentile(samples, 0.99):.1f}"


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Worker(ProcessGroup):
    """`ali worker`: ready once its first heartbeat is in the database."""

    def __init__(self, env: dict[str, str], *, log: Path, engine: Engine) -> None:
        # `python -m` from the project root, not the `ali` script: the shared venv's script
        # imports the checkout it was installed from, which may not be this one.
        super().__init__([str(BIN / "python"), "-m", "core.cli", "worker"], env, log=log)
        self.engine = engine

    def wait_ready(self, timeout: float) -> None:
        from core.models import WorkerHeartbeat  # noqa: PLC0415 -- only here

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                if conn.scalar(select(WorkerHeartbeat.name).limit(1)) is not None:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"ali worker did not beat in {timeout:.0f} s:\n{self.log_tail()}")


class Sender:
    """Signed hand-offs to Ali, each remembered with when it was sent and answered."""

    def __init__(self, url: str, env: dict[str, str], label: str) -> None:
        self.url = url
        self.issued = add_source(env, f"bench-{label}", rate_limit=1_000_000_000)
        self.cases: dict[str, tuple[float, float]] = {}  # reference → (sent, answered)
        self.failed = 0
        self.lock = threading.Lock()
        self.local = threading.local()

    def post(self, body: dict[str, object]) -> None:
        session: requests.Session | None = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        raw = json.dumps(body).encode()
        headers = JSON | signed_headers(
            self.issued.key_id, self.issued.secret, raw, at=datetime.now(UTC)
        )
        sent = time.time()
        response = session.post(self.url + HANDOFFS, data=raw, headers=headers, timeout=60)
        answered = time.time()
        with self.lock:
            if response.status_code == 201:
                self.cases[response.json()["case"]] = (sent, answered)
            else:
                self.failed += 1

    def burst(self, bodies: list[dict[str, object]], threads: int) -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(self.post, bodies))


def sms_times(standin: TwilioStandIn) -> dict[str, list[float]]:
    """For each case reference, when the stand-in received each alert SMS naming it."""
    found: dict[str, list[float]] = {}
    for request in standin.requests:
        if not request.path.endswith("/Messages.json"):
            continue
        words = (request.param("Body") or "").split()
        if words[:1] == ["ALI"] and len(words) > 1 and words[1].count("-") == 2:
            found.setdefault(words[1], []).append(request.at)
    return found


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def environment(url: str, workdir: Path, label: str, standin: TwilioStandIn) -> dict[str, str]:
    return ali_environ(
        url,
        workdir / f"instance-{label}",
        ALI_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        ALI_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        ALI_TWILIO_FROM_NUMBER=FROM,
        ALI_TWILIO_API_BASE=standin.base_url,
    )


def ali_server(env: dict[str, str], log: Path) -> Gunicorn:
    return Gunicorn("wsgi:app", env, log=log, workers=2, threads=4)


# --- (a) hand-off accepted → first request at the stand-in ------------------------------------


def first_page(
    figures: Figures, url: str, workdir: Path, args: argparse.Namespace, standin: TwilioStandIn
) -> None:
    label = figures.label
    env = environment(url, workdir, label, standin)
    engine = make_engine(url)
    _bare.metadata.create_all(engine)
    engine.dispose()
    bodies = [
        sample_handoff(i, prefix=f"{label}-a") | {"urgency": "emergency"} for i in range(args.burst)
    ]
    bare = Gunicorn(
        "bench._bare:create_app()",
        env | {_bare.DATABASE_URL_VARIABLE: url},
        log=workdir / f"{label}-bare.log",
        workers=2,
        threads=4,
    )
    baseline: list[float] = []
    with bare, requests.Session() as http:
        lock = threading.Lock()

        def insert(body: dict[str, object]) -> None:
            started = time.time()
            response = http.post(bare.url + "/bare", data=json.dumps(body), headers=JSON)
            with lock:
                if response.status_code == 201:
                    baseline.append((time.time() - started) * 1000)

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(insert, [b | {"external_id": f"warm-{i}"} for i, b in enumerate(bodies)]))
            baseline.clear()
            list(pool.map(insert, bodies))
    standin.reset()
    with ali_server(env, workdir / f"{label}-a.log") as ali:
        sender = Sender(ali.url, env, f"{label}-a")
        # A few hand-offs first: each gunicorn worker has imported, connected and warmed up.
        sender.burst([sample_handoff(i, prefix=f"{label}-w") for i in range(20)], args.threads)
        sender.cases.clear()
        standin.reset()
        sender.burst(bodies, args.threads)
        wait_until(lambda: len(sms_times(standin)) >= len(sender.cases), 30)
    first = {ref: min(times) for ref, times in sms_times(standin).items()}
    missing = [ref for ref in sender.cases if ref not in first]
    after_answer = [
        (first[r] - done) * 1000 for r, (_s, done) in sender.cases.items() if r in first
    ]
    after_sent = [(first[r] - sent) * 1000 for r, (sent, _d) in sender.cases.items() if r in first]
    if missing or sender.failed:
        figures.failures.append(f"(a) {len(missing)} cases without SMS, {sender.failed} refused")
    p99 = percentile(after_answer, 0.99)
    figures.first = [
        label,
        len(sender.cases),
        ms(after_answer),
        ms(after_sent),
        ms(baseline),
        f"{p99 / max(percentile(baseline, 0.99), 1e-6):.2f}",
        "yes" if p99 < FIRST_PAGE_TARGET_MS else "NO",
    ]


# --- (b) escalation lateness ------------------------------------------------------------------


def lateness(
    figures: Figures, url: str, workdir: Path, args: argparse.Namespace, standin: TwilioStandIn
) -> None:
    label = figures.label
    env = environment(url, workdir, label, standin)
    engine = make_engine(url)
    # Open dispatches whose first step went out earlier; the second falls due one dispatch
    # after another over the spread, from a moment the worker will be running at. Inserted in
    # bulk: a thousand hand-offs through HTTP would take minutes here and measure nothing new.
    start = datetime.now(UTC) + timedelta(seconds=args.worker_start)
    due = open_dispatches(engine, args.dispatches, start, timedelta(seconds=args.spread))
    baseline = bare_select(engine, start + timedelta(seconds=args.spread / 2))
    standin.reset()
    with Worker(env, log=workdir / f"{label}-worker-b.log", engine=engine):
        wait_until(
            lambda: len(sms_times(standin)) >= len(due), args.worker_start + args.spread + 60
        )
        fired = {ref: min(times) for ref, times in sms_times(standin).items()}
    engine.dispose()
    late = [fired[ref] - at.timestamp() for ref, at in due.items() if ref in fired]
    missing = len(due) - len(late)
    if missing:
        figures.failures.append(f"(b) {missing} dispatches did not fire their step")
    p99 = percentile(late, 0.99)
    figures.lateness = [
        label,
        len(due),
        f"{percentile(late, 0.5):.2f} / {p99:.2f} / {max(late, default=0):.2f}",
        ms(baseline),
        f"{p99 * 1000 / max(percentile(baseline, 0.99), 1e-6):,.0f}",
        "yes" if p99 < LATENESS_TARGET_S else "NO",
    ]


def open_dispatches(
    engine: Engine, count: int, start: datetime, spread: timedelta
) -> dict[str, datetime]:
    """`count` emergency cases in the served provinces, each with an open dispatch whose first
    step has fired and whose second falls due at start + i * spread / count."""
    now = datetime.now(UTC)
    policy = DEFAULT_POLICIES["emergency"]
    due: dict[str, datetime] = {}
    cases: list[dict[str, object]] = []
    for n in range(count):
        reference = f"{SERVED[n % len(SERVED)]}-2099-{n + 1:04d}"
        due[reference] = start + n * spread / count
        cases.append(
            {
                "reference": reference,
                "channel": "webhook",
                "status": "dispatched",
                "province": reference[:2],
                "province_source": "explicit",
                "urgency": "emergency",
                "exploitation": [],
                "person_languages": [],
                "needs": [],
                "contact_safe": "unknown",
                "received_at": now,
                "created_at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Case), cases)
        rows = conn.execute(select(Case.reference, Case.id)).all()
        ids: dict[str, int] = {row.reference: row.id for row in rows}
        conn.execute(
            insert(Dispatch),
            [
                {
                    "case_id": ids[reference],
                    "reference": reference,
                    "province": reference[:2],
                    "urgency": "emergency",
                    "policy": policy,
                    "steps_fired": 1,
                    "state": "open",
                    "due_at": at,
                    "created_at": now,
                }
                for reference, at in due.items()
            ],
        )
    return due


def bare_select(engine: Engine, now: datetime, runs: int = 200) -> list[float]:
    """The baseline of (b): the due rows' SELECT alone, in ms per run."""
    query = (
        select(Dispatch.id)
        .where(Dispatch.state == DispatchState.OPEN, Dispatch.due_at <= now)
        .order_by(Dispatch.due_at, Dispatch.id)
        .limit(100)
    )
    samples = []
    with engine.connect() as conn:
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute(query).all()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


# --- (c) worker memory ------------------------------------------------------------------------


def memory(
    figures: Figures, url: str, workdir: Path, args: argparse.Namespace, standin: TwilioStandIn
) -> None:
    label = figures.label
    env = environment(url, workdir, label, standin)
    engine = make_engine(url)
    half = args.handoffs // 2
    samples: dict[str, tuple[float, float]] = {}  # moment → (worker MB, largest web worker MB)
    with (
        ali_server(env, workdir / f"{label}-c.log") as ali,
        Worker(env, log=workdir / f"{label}-worker-c.log", engine=engine) as worker,
    ):
        sender = Sender(ali.url, env, f"{label}-c")
        sender.burst([sample_handoff(i, prefix=f"{label}-cw") for i in range(20)], args.threads)

        def measure(moment: str) -> None:
            web = max((rss_mb(pid) for pid in children(ali.pgid)), default=0.0)
            samples[moment] = (rss_mb(worker.pgid), web)

        measure("start")
        for first, last in ((0, half), (half, args.handoffs)):
            sender.burst(
                [sample_handoff(i, prefix=f"{label}-c") for i in range(first, last)], args.threads
            )
            standin.reset()  # the stand-in's memory is not Ali's; keep the test process small
            time.sleep(3)  # a tick or two of the worker after the burst
            measure(f"{last:,}")
    with engine.connect() as conn:
        pages_sent = len(conn.execute(select(Page.id).where(Page.provider_sid.is_not(None))).all())
    engine.dispose()
    if sender.failed:
        figures.failures.append(f"(c) {sender.failed} hand-offs refused")
    start, mid, end = samples["start"], samples[f"{half:,}"], samples[f"{args.handoffs:,}"]
    figures.memory = [
        label,
        len(sender.cases),
        pages_sent,
        f"{start[0]:.0f} / {mid[0]:.0f} / {end[0]:.0f}",
        f"{start[1]:.0f} / {mid[1]:.0f} / {end[1]:.0f}",
        f"{end[0] / max(start[0], 1e-6):.2f} / {end[1] / max(start[1], 1e-6):.2f}",
        "yes" if max(end) < RSS_TARGET_MB and max(end[i] - mid[i] for i in (0, 1)) < 10 else "NO",
    ]


def run(
    label: str, database: Callable[[str], str], workdir: Path, args: argparse.Namespace
) -> Figures:
    """The three parts on one kind of database, each on a fresh one: what one part leaves
    open (dispatches, pages) must not escalate under the next one's measure."""
    figures = Figures(label)
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
        for part in (first_page, lateness, memory):
            if part.__name__ not in args.parts:
                continue
            started = time.monotonic()
            url = database(part.__name__)
            migrate(url)
            engine = make_engine(url)
            seed_rota(engine)
            engine.dispose()
            standin.reset()
            part(figures, url, workdir, args, standin)
            print(f"== {label}: {part.__name__} in {time.monotonic() - started:.0f} s", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (c)")
    parser.add_argument("--burst", type=int, default=200, help="(a) hand-offs at once")
    parser.add_argument("--threads", type=int, default=16, help="client threads")
    parser.add_argument("--dispatches", type=int, default=1000, help="(b) open dispatches")
    parser.add_argument(
        "--spread", type=float, default=180.0, help="(b) seconds they fall due in (3 min: a step)"
    )
    parser.add_argument("--worker-start", type=float, default=8.0, help=argparse.SUPPRESS)
    parser.add_argument("--handoffs", type=int, default=10_000, help="(c) hand-offs")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgresql-only", action="store_true")
    parser.add_argument(
        "--parts", default="first_page,lateness,memory", help="which parts, comma-separated"
    )
    args = parser.parse_args(argv)
    args.parts = set(args.parts.split(","))
    if args.quick:
        args.handoffs = min(args.handoffs, 2000)
        args.spread = min(args.spread, 60.0)
    workdir = Path(tempfile.mkdtemp(prefix="ali-bench-alerts-"))
    results: list[Figures] = []
    try:
        if not args.postgresql_only:
            results.append(
                run("sqlite", lambda part: f"sqlite:///{workdir / part}.sqlite3", workdir, args)
            )
        if not args.sqlite_only:
            with postgres_cluster() as cluster:
                if cluster is not None:
                    results.append(
                        run(
                            "postgresql",
                            lambda part: cluster.create_database(f"ali_bench_{part}"),
                            workdir,
                            args,
                        )
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n(a) {args.burst} emergency hand-offs from {args.threads} threads; ms p50 / p99")
    print_table(
        [
            "database",
            "cases",
            "accepted → 1st request",
            "sent → 1st request",
            "baseline: bare insert",
            "ratio p99",
            f"p99 < {FIRST_PAGE_TARGET_MS:.0f} ms",
        ],
        [f.first for f in results if f.first],
    )
    print(
        f"\n(b) {args.dispatches} open dispatches falling due over {args.spread:.0f} s, "
        "`ali worker` ticking every 2 s"
    )
    print_table(
        [
            "database",
            "dispatches",
            "lateness s p50 / p99 / max",
            "baseline: due SELECT ms",
            "ratio p99",
            f"p99 < {LATENESS_TARGET_S:.0f} s",
        ],
        [f.lateness for f in results if f.lateness],
    )
    half = args.handoffs // 2
    print(f"\n(c) RSS in MB at start / after {half:,} / after {args.handoffs:,} hand-offs")
    print_table(
        [
            "database",
            "cases",
            "pages sent",
            "ali worker",
            "largest web worker",
            "ratio end/start",
            f"< {RSS_TARGET_MB:.0f} MB, flat",
        ],
        [f.memory for f in results if f.memory],
    )
    failures = [f"{f.label} {problem}" for f in results for problem in f.failures]
    for problem in failures:
        print(f"FAILED: {problem}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
