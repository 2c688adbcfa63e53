"""Benchmark: signed hand-offs through gunicorn, against a bare Flask endpoint doing one insert.

Run by `make bench` (not by the tests): `.venv/bin/python bench/intake.py [--n 2000]`.
For SQLite (a WAL file) and then PostgreSQL (the test suite's throwaway cluster), in one run:

* Ali (`wsgi:app`) under gunicorn, 2 workers, on a migrated database with a `bench` source;
* the baseline `bench/_bare.py` under the same gunicorn settings, on the same database, its
  own table: parse the JSON, insert the raw body, commit, answer 201.

Both get the same JSON bodies (a complete hand-off, ~400 bytes) from `--threads` client
threads with keep-alive sessions; Ali's are signed with a fresh timestamp each. After a
warm-up, the N requests are sent in `--rounds` alternating rounds (baseline, Ali, baseline, …)
so that drift on a shared machine hits both. It prints requests/s, p50 and p99 latency for
each and the ratio Ali/baseline of the rates per database (design §7 target: ≥ 0.5).
Exit status 1 if any request got another answer than 201.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# This file is named like the `intake` package: the project root, not bench/, goes on the path.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH)]

from sqlalchemy import func, select  # noqa: E402 -- after the path set-up above

from bench import _bare  # noqa: E402
from bench.common import (  # noqa: E402
    LoadResult,
    Request,
    drive,
    group_cpu,
    migrate,
    postgres_cluster,
    postgres_cpu,
    print_table,
    seed_rota,
)
from core.db import make_engine  # noqa: E402
from intake.signing import signed_headers  # noqa: E402
from routing.models import Case, Page  # noqa: E402
from tests.reliability.handoffs import HANDOFFS, sample_handoff  # noqa: E402
from tests.reliability.servers import Gunicorn, add_source, ali_environ  # noqa: E402
from tests.twilio_standin import TwilioStandIn  # noqa: E402

TARGET = 0.5
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
JSON = {"Content-Type": "application/json"}


def _body(index: int) -> bytes:
    return json.dumps(sample_handoff(index, prefix="bench")).encode("utf-8")


def serve(app: str, env: dict[str, str], log: Path, args: argparse.Namespace) -> Gunicorn:
    """One gunicorn with the benchmark's settings (the same for Ali and the baseline)."""
    return Gunicorn(
        app,
        env,
        log=log,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.worker_threads,
    )


def run(  # noqa: PLR0917 -- the benchmark's knobs, one caller
    label: str,
    url: str,
    args: argparse.Namespace,
    workdir: Path,
    database_cpu: Callable[[], float] | None,
    twilio_env: dict[str, str],
) -> tuple[LoadResult, ...]:
    """(baseline, Ali) measured on one database (with its server's CPU meter, if separate)."""
    migrate(url)
    engine = make_engine(url)
    _bare.metadata.create_all(engine)
    env = ali_environ(url, workdir / "instance") | twilio_env
    issued = add_source(env, "bench", rate_limit=1_000_000_000)
    if args.rota:
        seed_rota(engine)

    def ali_request(index: int) -> Request:
        body = _body(index)
        headers = JSON | signed_headers(issued.key_id, issued.secret, body, at=datetime.now(UTC))
        return HANDOFFS, body, headers

    def bare_request(index: int) -> Request:
        return "/bare", _body(index), JSON

    ali = serve("wsgi:app", env, workdir / f"{label}-ali.log", args)
    bare_env = env | {_bare.DATABASE_URL_VARIABLE: url}
    bare = serve("bench._bare:create_app()", bare_env, workdir / f"{label}-bare.log", args)
    measured = (LoadResult(), LoadResult())
    try:
        with ali, bare:
            warm = range(args.warmup)
            drive(bare.url, bare_request, warm, threads=args.threads)
            drive(ali.url, ali_request, warm, threads=args.threads)
            first = args.warmup
            size = -(-args.n // args.rounds)
            for start in range(first, first + args.n, size):
                indices = range(start, min(start + size, first + args.n))
                for result, server, build in (
                    (measured[0], bare, bare_request),
                    (measured[1], ali, ali_request),
                ):
                    cpu = {"server": group_cpu(server.pgid)}
                    if database_cpu is not None:
                        cpu["database"] = database_cpu
                    result.add(drive(server.url, build, indices, threads=args.threads, cpu=cpu))
        with engine.connect() as conn:
            cases = conn.scalar(select(func.count()).select_from(Case))
            rows = conn.scalar(select(func.count()).select_from(_bare.bare_handoffs))
            sent = conn.scalar(
                select(func.count()).select_from(Page).where(Page.provider_sid.is_not(None))
            )
    finally:
        engine.dispose()
    print(f"== {label}: {cases:,} cases, {rows:,} baseline rows, {sent:,} pages sent")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"))
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument(
        "--no-rota",
        dest="rota",
        action="store_false",
        help="nobody on call: measure the intake and its dispatch without any page to send",
    )
    args = parser.parse_args(argv)

    print(
        f"{args.n:,} signed hand-offs per endpoint, {args.threads} client threads, gunicorn "
        f"{args.workers} {args.worker_class} workers"
        + (f" x {args.worker_threads} threads" if args.worker_class == "gthread" else "")
    )
    results: list[tuple[str, tuple[LoadResult, ...]]] = []
    workdir = Path(tempfile.mkdtemp(prefix="ali-bench-intake-"))
    # Pages go to the Twilio stand-in over HTTP, as they would to Twilio (the sandbox outbox
    # would turn each SMS into a database write, which Twilio is not).
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    twilio = {
        "ALI_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "ALI_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "ALI_TWILIO_FROM_NUMBER": "+390212345678",
        "ALI_TWILIO_API_BASE": standin.base_url,
        "ALI_PAGE_CAP_PER_HOUR": "1000000",  # throughput, not the hourly page cap
    }
    try:
        sqlite_url = f"sqlite:///{workdir / 'intake.sqlite3'}"
        results.append(("SQLite", run("sqlite", sqlite_url, args, workdir, None, twilio)))
        if not args.sqlite_only:
            with postgres_cluster() as cluster:
                if cluster is not None:
                    url = cluster.create_database("ali_bench_intake")
                    pg = run("postgresql", url, args, workdir, postgres_cpu(cluster), twilio)
                    results.append(("PostgreSQL", pg))
    finally:
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rows: list[list[object]] = []
    failed = False
    for database, (bare, ali) in results:
        ratio = ali.rate / bare.rate if bare.rate else 0.0
        verdict = "ok" if ratio >= TARGET else f"BELOW TARGET {TARGET}"
        for name, result in (("bare insert", bare), ("Ali hand-off", ali)):
            errors = result.errors(201)
            failed |= errors > 0
            rows.append(
                [
                    f"{database} {name}",
                    result.requests,
                    result.rate,
                    result.p50,
                    result.p99,
                    result.cpu_ms_per_request("server"),
                    result.cpu_ms_per_request("database"),
                    result.cpu_ms_per_request("client"),
                    errors,
                    f"{ratio:.2f} {verdict}" if result is ali else "",
                ]
            )
            if errors:
                print(f"  {database} {name}: answers {dict(result.statuses)}")
    print()
    print_table(
        [
            "endpoint",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU ms/req: server",
            "PostgreSQL",
            "client",
            "errors",
            "Ali/bare req/s",
        ],
        rows,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
