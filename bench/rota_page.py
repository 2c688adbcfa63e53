"""Benchmark: render time of the month page of a busy province, against the home page.

Run by `make bench` (not by the tests): `.venv/bin/python bench/rota_page.py [--renders 50]`.
Builds a SQLite database (or uses ALI_BENCH_DATABASE_URL, e.g. a PostgreSQL one) with one
province, BS, in October 2026 (the month with the 25-hour day) made busy: a daily primary
rotation of 8 operators handing over at 08:00, a weekly backup rotation, a daily coordinator
rotation, an older primary rotation it replaced, 60 overrides of a few hours to two days in
the month and 20 explicit shifts, two operators without a verified phone. Then, in the same
run and through the same Flask test client, signed in as the province's rota manager:

* GET /rota/BS?month=2026-10 (the whole request: resolution of three tiers, holidays,
  template), `--renders` times after a warm-up;
* the month's data alone (`rota_page.build_month`), as many times;
* the baseline: GET / (the home page: same login, session, nav and base template).

It prints p50/p90/max in milliseconds and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time as timer
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from alembic import command
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from core.app import create_app
from core.auth import hash_password, use_password_hasher
from core.cli import alembic_config
from core.clock import FrozenClock
from core.config import load_settings
from core.db import get_session
from core.models import User
from oncall import editing, rota_page
from oncall.schedule import ROME

PROVINCE = "BS"
MONTH = date(2026, 10, 1)
NOW = datetime(2026, 10, 20, 9, tzinfo=UTC)
PASSWORD = "benchmark password 2026"  # noqa: S105 -- a throwaway database
SEED = 20261025


def seed(app: Flask) -> str:
    """The busy month; returns the rota manager's e-mail."""
    rng = random.Random(SEED)
    with app.app_context():
        session = get_session()
        password_hash = hash_password(PASSWORD)

        def user(n: int, roles: list[str], *, verified: bool = True) -> User:
            person = User(
                email=f"user{n}@bench.example",
                display_name=f"Operatrice Numero {n}",
                roles=roles,
                provinces=[PROVINCE],
                phone=f"+39333200{n:04d}",
                phone_verified_at=NOW if verified else None,
                languages=["it"],
                password_hash=password_hash,
                created_at=NOW,
            )
            session.add(person)
            return person

        manager = user(0, ["rota_manager", "operator"])
        operators = [user(n, ["operator"], verified=n not in (3, 7)) for n in range(1, 13)]
        coordinators = [user(n, ["coordinator"]) for n in range(20, 23)]
        session.flush()
        ids = [person.id for person in operators]
        common = {"actor": manager, "now": NOW, "served": (PROVINCE,)}
        editing.create_rotation(
            session,
            **common,
            province=PROVINCE,
            tier="primary",
            operator_ids=ids[4:8],
            handover=time(9, 0),
            period_days=7,
            start_date=date(2025, 1, 6),
            end_date=date(2026, 9, 1),
        )
        editing.create_rotation(
            session,
            **common,
            province=PROVINCE,
            tier="primary",
            operator_ids=ids[:8],
            handover=time(8, 0),
            period_days=1,
            start_date=date(2026, 9, 1),
        )
        editing.create_rotation(
            session,
            **common,
            province=PROVINCE,
            tier="backup",
            operator_ids=ids[8:],
            handover=time(9, 0),
            period_days=7,
            start_date=date(2026, 9, 7),
        )
        editing.create_rotation(
            session,
            **common,
            province=None,
            tier="coordinator",
            operator_ids=[person.id for person in coordinators],
            handover=time(8, 0),
            period_days=1,
            start_date=date(2026, 9, 1),
        )
        month_start = rota_page.local_midnight(MONTH)
        for _ in range(60):
            start = month_start + timedelta(hours=rng.randrange(0, 30 * 24))
            editing.add_override(
                session,
                **common,
                province=PROVINCE,
                tier=rng.choice(["primary", "primary", "backup"]),
                user_id=rng.choice(ids),
                start=start,
                end=start + timedelta(hours=rng.randrange(2, 49)),
                reason="cambio",
            )
        for _ in range(20):
            start = month_start + timedelta(hours=rng.randrange(0, 30 * 24))
            editing.add_shift(
                session,
                **common,
                province=PROVINCE,
                tier="primary",
                user_id=rng.choice(ids),
                start=start,
                end=start + timedelta(hours=rng.randrange(4, 25)),
            )
        session.commit()
        return manager.email


def sign_in(client: FlaskClient, email: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" type="hidden" value="'
    start = page.index(marker) + len(marker)
    token = page[start : page.index('"', start)]
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    if response.status_code != 302:
        raise SystemExit(f"login failed: {response.status_code}")


def timed(action: Callable[[], object], count: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(count):
        began = timer.perf_counter()
        action()
        samples.append((timer.perf_counter() - began) * 1000)
    return samples


def summary(name: str, samples: list[float], baseline: float | None = None) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    line = f"  {name:<34} p50 {p50:7.2f} ms   p90 {p90:7.2f} ms   max {ordered[-1]:7.2f} ms"
    if baseline:
        line += f"   ×{p50 / baseline:5.1f} baseline"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=50)
    args = parser.parse_args()
    use_password_hasher(PasswordHasher.from_parameters(CHEAPEST))
    with tempfile.TemporaryDirectory(prefix="ali-bench-") as tmp:
        url = os.environ.get("ALI_BENCH_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'b.sqlite3'}"
        settings = load_settings(
            {
                "ALI_DATABASE_URL": url,
                "ALI_SECRET_KEY": "bench-" + "x" * 40,
                "ALI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "ALI_INSTANCE_PATH": str(Path(tmp) / "instance"),
                "ALI_SCHEDULER": "off",
                "ALI_PROVINCES": PROVINCE,
            }
        )
        command.upgrade(alembic_config(url), "head")
        app = create_app(settings, clock=FrozenClock(NOW))
        email = seed(app)
        client = app.test_client()
        sign_in(client, email)

        page_url = f"/rota/{PROVINCE}?month={MONTH:%Y-%m}"
        response = client.get(page_url)
        if response.status_code != 200:
            raise SystemExit(f"{page_url} answered {response.status_code}")
        html = response.get_data(as_text=True)

        def build() -> None:
            with app.test_request_context():
                rota_page.build_month(
                    get_session(),
                    province=PROVINCE,
                    month=MONTH,
                    today=NOW.astimezone(ROME).date(),
                    locale="it",
                )

        home = timed(lambda: client.get("/"), args.renders)
        page = timed(lambda: client.get(page_url), args.renders)
        data = timed(build, args.renders)
        baseline = statistics.median(home)
        backend = url.split(":", 1)[0]
        pieces, gap_pieces = html.count('class="piece'), html.count('class="piece gap')
        print(f"month page of {PROVINCE} {MONTH:%Y-%m} on {backend}: {len(html) // 1024} KiB,")
        print(f"  {pieces} pieces shown ({gap_pieces} gaps), {args.renders} renders each")
        print(summary("baseline: GET / (home page)", home))
        print(summary("GET month page (whole request)", page, baseline))
        print(summary("month data only (build_month)", data, baseline))
        print(
            f"  template and request share of the page: "
            f"{1 - statistics.median(data) / statistics.median(page):.0%}"
        )


if __name__ == "__main__":
    main()
