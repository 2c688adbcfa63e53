"""Benchmark: who is on call over 7 provinces x 5 years of rota, against one indexed SELECT.

Run by `make bench` (not by the tests): `.venv/bin/python bench/rota.py [--instants 2000]`.
Builds a SQLite database (and a PostgreSQL one when `initdb` is available, through the test
suite's throwaway cluster) holding, for each of 7 provinces, 5 years of daily primary shifts
both as rotations and as explicit shift rows (~12,800), a weekly backup rotation, a
coordinator rotation and ~1,800 overrides. It then times, for the same random instants in the
same run:

* `on_call_chain` (primary, backup and coordinators: what the router asks), each in a fresh
  session as a request would;
* the baseline: one indexed SELECT of the explicit shift holding the instant
  (`SELECT user_id FROM rota_shifts WHERE province=? AND tier='primary' AND start_at<=?
  AND end_at>? LIMIT 1`), in a fresh session too;
* resolving a month of a province (the month page's data), and the month page itself
  (GET /rota/<sigla>?month=YYYY-MM as an admin) when the rota pages are installed.

It prints p50/p99 of each and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time as timer
from contextlib import nullcontext
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import Engine, bindparam, func, insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.pg (the throwaway cluster) is not an installed package

from alembic import command  # noqa: E402 -- after the path set-up above

from core.cli import alembic_config  # noqa: E402
from core.db import UTCDateTime, make_engine  # noqa: E402
from core.models import User  # noqa: E402
from oncall.chain import on_call_chain, province_schedule  # noqa: E402
from oncall.editing import create_rotation  # noqa: E402
from oncall.models import Override, RotaShift  # noqa: E402
from oncall.schedule import ROME, Tier  # noqa: E402

PROVINCES = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
FIRST_DAY = date(2026, 1, 1)
YEARS = 5
LAST_DAY = date(FIRST_DAY.year + YEARS, 1, 1)
NOW = datetime(2025, 12, 1, tzinfo=UTC)
SEED = 20261025

BASELINE = (
    select(RotaShift.user_id)
    .where(
        RotaShift.province == bindparam("province"),
        RotaShift.tier == "primary",
        RotaShift.start_at <= bindparam("at", type_=UTCDateTime()),
        RotaShift.end_at > bindparam("at", type_=UTCDateTime()),
    )
    .limit(1)
)


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ROME).astimezone(UTC)


def build(engine: Engine, rng: random.Random) -> dict[str, int]:
    """Fill a migrated database; returns row counts."""
    with Session(engine) as session:
        operators: dict[str, list[User]] = {}
        for province in PROVINCES:
            operators[province] = [
                User(
                    email=f"op{i}.{province.lower()}@bench.example",
                    display_name=f"Operatore {i} {province}",
                    phone=f"+39333{PROVINCES.index(province)}{i:05d}",
                    phone_verified_at=NOW,
                    roles=["operator"],
                    provinces=[province],
                    created_at=NOW,
                )
                for i in range(6)
            ]
            session.add_all(operators[province])
        coordinators = [
            User(
                email=f"coord{i}@bench.example",
                display_name=f"Coordinatore {i}",
                phone=f"+39334000{i:04d}",
                phone_verified_at=NOW,
                roles=["coordinator"],
                provinces=[],
                created_at=NOW,
            )
            for i in range(3)
        ]
        session.add_all(coordinators)
        session.add(
            User(
                email="admin@bench.example",
                display_name="Admin",
                roles=["admin"],
                provinces=[],
                created_at=NOW,
            )
        )
        session.flush()

        for province, users in operators.items():
            ids = [u.id for u in users]
            common = {"actor": "bench", "now": NOW, "province": province, "served": PROVINCES}
            create_rotation(
                session,
                **common,  # type: ignore[arg-type]
                tier=Tier.PRIMARY,
                operator_ids=ids[:4],
                handover=time(8),
                period_days=1,
                start_date=FIRST_DAY,
            )
            # Half-way through, a new rotation takes over with an evening hand-over.
            create_rotation(
                session,
                **common,  # type: ignore[arg-type]
                tier=Tier.PRIMARY,
                operator_ids=ids[1:5],
                handover=time(20),
                period_days=1,
                start_date=date(FIRST_DAY.year + YEARS // 2, 7, 1),
            )
            create_rotation(
                session,
                **common,  # type: ignore[arg-type]
                tier=Tier.BACKUP,
                operator_ids=ids[4:],
                handover=time(9),
                period_days=7,
                start_date=FIRST_DAY,
            )
        create_rotation(
            session,
            actor="bench",
            now=NOW,
            province=None,
            tier=Tier.COORDINATOR,
            operator_ids=[c.id for c in coordinators],
            handover=time(8),
            period_days=7,
            start_date=FIRST_DAY,
            served=PROVINCES,
        )

        shift_rows: list[dict[str, object]] = []
        override_rows: list[dict[str, object]] = []
        days = (LAST_DAY - FIRST_DAY).days
        for province, users in operators.items():
            for index in range(days):
                day = FIRST_DAY + timedelta(days=index)
                shift_rows.append(
                    {
                        "province": province,
                        "tier": "primary",
                        "user_id": users[index % 4].id,
                        "start_at": local(day, time(8)),
                        "end_at": local(day + timedelta(days=1), time(8)),
                        "created_at": NOW,
                    }
                )
            # About one cover a week, from an hour to three days.
            for _ in range(days // 7):
                start = local(FIRST_DAY, time(0)) + timedelta(
                    minutes=rng.randrange(0, days * 24 * 60)
                )
                override_rows.append(
                    {
                        "province": province,
                        "tier": rng.choice(["primary", "primary", "backup"]),
                        "user_id": rng.choice(users).id,
                        "start_at": start,
                        "end_at": start + timedelta(hours=rng.randint(1, 72)),
                        "reason": "",
                        "created_at": NOW,
                    }
                )
        session.execute(insert(RotaShift), shift_rows)
        session.execute(insert(Override), override_rows)
        session.commit()
        return {
            "users": session.scalar(select(func.count(User.id))) or 0,
            "explicit shifts": len(shift_rows),
            "overrides": len(override_rows),
        }


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(
    engine: Engine, queries: list[tuple[str, datetime]], *, fresh: bool
) -> tuple[list[float], list[float], int]:
    """Milliseconds per lookup: (on_call_chain, baseline), interleaved so drift hits both.

    ``fresh``: each lookup opens its own session (and, with SQLite's NullPool, connection);
    otherwise both run in one open session, as in a request that already holds one (the
    router's case). The identity map is emptied between lookups so nothing is served from it.
    """
    chain_ms: list[float] = []
    base_ms: list[float] = []
    agree = 0
    shared = Session(engine)
    try:
        for province, at in queries:
            started = timer.perf_counter()
            with Session(engine) if fresh else nullcontext(shared) as session:
                chain = on_call_chain(session, province=province, at=at)
            chain_ms.append((timer.perf_counter() - started) * 1000)
            shared.expunge_all()
            started = timer.perf_counter()
            with Session(engine) if fresh else nullcontext(shared) as session:
                user_id = session.execute(BASELINE, {"province": province, "at": at}).scalar()
            base_ms.append((timer.perf_counter() - started) * 1000)
            # Overrides win over explicit shifts: the two agree except under an override.
            agree += chain.primary is not None and chain.primary.id == user_id
    finally:
        shared.close()
    return chain_ms, base_ms, agree


def time_month(engine: Engine, rng: random.Random, count: int) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        year = rng.randrange(FIRST_DAY.year, LAST_DAY.year)
        month = rng.randrange(1, 13)
        start = datetime(year, month, 1, tzinfo=ROME)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=ROME)
        province = rng.choice(PROVINCES)
        started = timer.perf_counter()
        with Session(engine) as session:
            for tier in (Tier.PRIMARY, Tier.BACKUP):
                province_schedule(session, province=province, tier=tier, start=start, end=end)
        samples.append((timer.perf_counter() - started) * 1000)
    return samples


def time_month_page(
    engine: Engine, database_url: str, rng: random.Random, count: int
) -> list[float] | None:
    """GET of the month page as an admin, when the rota pages provide `oncall.month`.

    Hook for the page work: the endpoint is looked up, not assumed; None when it is missing.
    """
    from core.app import create_app  # noqa: PLC0415 -- only this part needs the whole app
    from core.auth import hash_password  # noqa: PLC0415
    from core.config import load_settings  # noqa: PLC0415

    instance = Path(tempfile.mkdtemp(prefix="ali-bench-"))
    try:
        settings = load_settings(
            {
                "ALI_DATABASE_URL": database_url,
                "ALI_SECRET_KEY": "bench-" + "x" * 40,
                "ALI_PUBLIC_URL": "http://127.0.0.1",
                "ALI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "ALI_SCHEDULER": "off",
                "ALI_INSTANCE_PATH": str(instance),
                "ALI_SECURE_COOKIES": "false",
            }
        )
        app = create_app(settings, engine=engine)
        app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
        if "oncall.month" not in app.view_functions:
            return None
        password = "bench password 1234"  # noqa: S105 -- a throwaway database's admin
        with Session(engine) as session:
            admin = session.scalar(select(User).where(User.email == "admin@bench.example"))
            assert admin is not None
            admin.password_hash = hash_password(password)
            session.commit()
        client = app.test_client()
        login = client.post("/login", data={"email": "admin@bench.example", "password": password})
        if login.status_code != 302:
            print(f"  month page: login failed ({login.status_code}); not measured")
            return None
        samples: list[float] = []
        for index in range(count + 5):
            year = rng.randrange(FIRST_DAY.year, LAST_DAY.year)
            month = rng.randrange(1, 13)
            province = rng.choice(PROVINCES)
            started = timer.perf_counter()
            response = client.get(f"/rota/{province}?month={year:04d}-{month:02d}")
            elapsed = (timer.perf_counter() - started) * 1000
            if response.status_code != 200:
                print(f"  month page: HTTP {response.status_code}; not measured")
                return None
            if index >= 5:  # the first requests warm templates and caches
                samples.append(elapsed)
        return samples
    finally:
        shutil.rmtree(instance, ignore_errors=True)


def run(name: str, database_url: str, instants: int) -> None:
    rng = random.Random(SEED)
    command.upgrade(alembic_config(database_url), "head")
    engine = make_engine(database_url)
    try:
        started = timer.perf_counter()
        counts = build(engine, rng)
        built = timer.perf_counter() - started
        print(f"\n== {name}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        print(f"  built in {built:.1f} s")
        span = int((local(LAST_DAY, time(0)) - local(FIRST_DAY, time(0))).total_seconds())
        queries = [
            (
                rng.choice(PROVINCES),
                local(FIRST_DAY, time(0)) + timedelta(seconds=rng.randrange(0, span)),
            )
            for _ in range(instants)
        ]
        for fresh, label in ((False, "in an open session"), (True, "each in a fresh session")):
            measure(engine, queries[:100], fresh=fresh)  # warm-up: connections, caches
            chain_ms, base_ms, agree = measure(engine, queries, fresh=fresh)
            print(
                f"  {instants} random instants, {label} "
                f"(chain primary = the baseline's row for {agree} of them; overrides differ)"
            )
            report("on_call_chain (primary+backup+coordinators)", chain_ms, base_ms)
            report("baseline: one indexed SELECT", base_ms, base_ms)
        month_ms = time_month(engine, rng, 50)
        report("resolve a month, primary+backup", month_ms, base_ms)
        page_ms = time_month_page(engine, database_url, rng, 30)
        if page_ms is None:
            print("  month page: not measured (no oncall.month endpoint)")
        else:
            report("month page GET /rota/<sigla>?month=", page_ms, base_ms)
    finally:
        engine.dispose()


def report(label: str, samples: list[float], baseline: list[float]) -> None:
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    b50, b99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    print(
        f"  {label:<46} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms  "
        f"mean {statistics.fmean(samples):8.3f} ms  "
        f"ratio to baseline p50 {p50 / b50:6.1f}x  p99 {p99 / b99:6.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instants", type=int, default=2000)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ali-bench-rota-"))
    try:
        run("SQLite", f"sqlite:///{workdir / 'rota.sqlite3'}", args.instants)
        if args.sqlite_only:
            return 0
        from tests.pg import PostgresUnavailable, start_cluster  # noqa: PLC0415

        try:
            cluster = start_cluster()
        except PostgresUnavailable as exc:
            print(f"\n== PostgreSQL: skipped ({exc})")
            return 0
        try:
            run("PostgreSQL", cluster.create_database("ali_bench_rota"), args.instants)
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
