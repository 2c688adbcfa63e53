"""Two worker processes on PostgreSQL claim the same due dispatches: each page is sent once.

Real processes (the worker's escalation job, each with its own app, engine and twilio client)
started together against one database and the Twilio stand-in; the clock is frozen at the
instant every second step is due, so both find the same work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import FrozenClock
from core.config import Settings
from routing.models import Page
from tests.alerting import Chain
from tests.conftest import ali_environ
from tests.intake.signed import HANDOFFS, Sender, encode
from tests.reliability.servers import ROOT
from tests.twilio_standin import TwilioStandIn

WORKER = """
import json, sys
from datetime import datetime
from core.app import create_app
from core.clock import FrozenClock
from core.config import load_settings
from core.scheduler import run_job
app = create_app(load_settings(), clock=FrozenClock(datetime.fromisoformat(sys.argv[1])))
jobs = {job.id: job for job in app.extensions["ali.jobs"].values()}
sys.stdin.readline()  # both processes are up: go
print(json.dumps(run_job(app, jobs["routing.escalate"])))
"""


def test_two_worker_processes_send_each_page_once(
    database_url: str,
    sender: Sender,
    chain: Chain,
    db: Session,
    settings: Settings,
    clock: FrozenClock,
    twilio: TwilioStandIn,
    tmp_path: Path,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the race is PostgreSQL's")
    cases = 20
    for n in range(cases):
        raw = encode({"external_id": f"NV-w{n}", "province": "BS", "urgency": "emergency"})
        headers = {"Content-Type": "application/json", **sender.headers(raw)}
        # Never closed: the after-answer sending does not run, as if the web node died.
        assert sender.client.post(HANDOFFS, data=raw, headers=headers).status_code == 201
    at = clock.now() + timedelta(minutes=3)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALI_")},
        # 80 pages to the primary in minutes: past the hourly cap, which is not tested here.
        **ali_environ(
            database_url,
            tmp_path,
            ALI_TWILIO_API_BASE=twilio.base_url,
            ALI_PAGE_CAP_PER_HOUR="1000",
        ),
        "PYTHONPATH": str(ROOT),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, at.isoformat()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-2000:]
    fired = [json.loads(out.strip().splitlines()[-1])["fired"] for out, _err in outputs]
    assert sum(fired) == cases  # each due step fired by exactly one of them
    sent = [page.provider_sid for page in db.scalars(select(Page)) if page.provider_sid]
    # Step 1 (primary: SMS and call) and step 2 (primary and backup: SMS and call) each.
    assert len(sent) == len(set(sent)) == cases * 6
    texts = Counter(m.to for m in twilio.messages)
    assert texts == {chain.primary.phone: cases * 2, chain.backup.phone: cases}
    assert len(twilio.calls) == cases * 3
