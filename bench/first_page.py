"""Benchmark: from a signed hand-off to the first request Twilio receives, under a burst.

Run by `make bench` (not by the tests): `.venv/bin/python bench/first_page.py [--n 300]`.
Ali runs under gunicorn (2 gthread workers x 4 threads) with the real twilio client pointed at
the in-repo Twilio stand-in (`ALI_TWILIO_API_BASE`), a primary on call in every province and no
scheduler: the first pages must go out right after each answer, not at a tick. `--threads`
clients send `--n` hand-offs at once. For each case it prints, p50 and p99:

* answer: the hand-off's round trip (what the Numero Verde waits for);
* first request: from sending the hand-off to the stand-in receiving the case's alert SMS;
* after answer: from the answer arriving to that SMS (the follow-up after the response).

The baseline, measured in the same run, is the stand-in's own round trip: one SMS sent with the
same twilio client straight from this process. Exit status 1 if a case got no SMS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH)]

import requests  # noqa: E402 -- after the path set-up above

from bench.common import migrate, percentile, postgres_cluster, print_table, seed_rota  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.db import make_engine  # noqa: E402
from core.telephony import TwilioTelephony  # noqa: E402
from intake.signing import signed_headers  # noqa: E402
from tests.reliability.handoffs import HANDOFFS, sample_handoff  # noqa: E402
from tests.reliability.servers import Gunicorn, add_source, ali_environ  # noqa: E402
from tests.twilio_standin import TwilioStandIn  # noqa: E402

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
FROM = "+390212345678"


def run(label: str, url: str, args: argparse.Namespace, workdir: Path) -> list[object]:
    migrate(url)
    engine = make_engine(url)
    seed_rota(engine)
    engine.dispose()
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
        env = ali_environ(
            url,
            workdir / f"instance-{label}",
            ALI_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            ALI_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            ALI_TWILIO_FROM_NUMBER=FROM,
            ALI_TWILIO_API_BASE=standin.base_url,
            # A burst to one primary per province is the point here, not the hourly page cap.
            ALI_PAGE_CAP_PER_HOUR="1000000",
        )
        issued = add_source(env, "bench", rate_limit=1_000_000_000)
        baseline = _baseline(env, args.n)
        ali = Gunicorn("wsgi:app", env, log=workdir / f"{label}.log", workers=2, threads=4)
        sent: dict[str, tuple[float, float]] = {}  # reference → (sent at, answered at)
        lock = threading.Lock()

        def post(index: int) -> None:
            body = json.dumps(sample_handoff(index, prefix=label) | {"urgency": "urgent"}).encode()
            headers = {"Content-Type": "application/json"} | signed_headers(
                issued.key_id, issued.secret, body, at=datetime.now(UTC)
            )
            start = time.time()
            response = requests.post(ali.url + HANDOFFS, data=body, headers=headers, timeout=60)
            answered = time.time()
            if response.status_code == 201:
                with lock:
                    sent[response.json()["case"]] = (start, answered)

        with ali:
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(post, range(args.n)))
            deadline = time.time() + 30
            while time.time() < deadline and len(_first_sms(standin)) < len(sent):
                time.sleep(0.05)
        first = _first_sms(standin)
    missing = [reference for reference in sent if reference not in first]
    answer = [(done - start) * 1000 for start, done in sent.values()]
    total = [(first[ref] - start) * 1000 for ref, (start, _done) in sent.items() if ref in first]
    after = [(first[ref] - done) * 1000 for ref, (_start, done) in sent.items() if ref in first]
    print(f"== {label}: {len(sent):,} cases, {len(first):,} alert SMS, {len(missing)} missing")
    return [
        label,
        len(sent),
        f"{percentile(answer, 0.5):.1f} / {percentile(answer, 0.99):.1f}",
        f"{percentile(total, 0.5):.1f} / {percentile(total, 0.99):.1f}",
        f"{percentile(after, 0.5):.1f} / {percentile(after, 0.99):.1f}",
        f"{percentile(baseline, 0.5):.1f} / {percentile(baseline, 0.99):.1f}",
        f"{percentile(total, 0.5) / max(percentile(baseline, 0.5), 1e-6):.1f}",
        len(missing),
    ]


def _first_sms(standin: TwilioStandIn) -> dict[str, float]:
    """The reference in each alert SMS the stand-in received → when it first received one."""
    found: dict[str, float] = {}
    for request in standin.requests:
        body = request.param("Body") or ""
        words = body.split()
        # "ALI BS-2026-0042 …": a case reference, not the baseline's text.
        reference = words[1] if words[:1] == ["ALI"] and len(words) > 1 else ""
        if request.path.endswith("/Messages.json") and reference.count("-") == 2:
            found.setdefault(reference, request.at)
    return found


def _baseline(env: dict[str, str], n: int) -> list[float]:
    """One SMS straight from this process through the same twilio client: ms each."""
    telephony = TwilioTelephony(load_settings(env))
    samples = []
    for index in range(min(n, 100)):
        start = time.time()
        telephony.send_sms(to=f"+39333800{index:04d}", body="ALI baseline")
        samples.append((time.time() - start) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="hand-offs in the burst")
    parser.add_argument("--threads", type=int, default=16, help="client threads")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ali-bench-first-page-"))
    rows: list[list[object]] = []
    try:
        rows.append(run("sqlite", f"sqlite:///{workdir / 'first.sqlite3'}", args, workdir))
        if not args.sqlite_only:
            with postgres_cluster() as cluster:
                if cluster is not None:
                    url = cluster.create_database("ali_bench_first_page")
                    rows.append(run("postgresql", url, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.n} urgent hand-offs from {args.threads} threads at once; ms p50 / p99")
    print_table(
        [
            "database",
            "cases",
            "answer",
            "hand-off → first SMS",
            "answer → first SMS",
            "baseline: one SMS",
            "ratio p50",
            "missing",
        ],
        rows,
    )
    return 1 if any(row[-1] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
