"""Every kind of request Ali sends to Twilio is valid by Twilio's own description of its API.

Prism (npm `@stoplight/prism-cli`, pinned by the Makefile) mocks API 2010 from the OpenAPI
document Twilio ships in npm `@twilio/cli-core`; the real TwilioTelephony is pointed at it
with ALI_TWILIO_API_BASE, and Ali runs its own flows (a signed hand-off, an SMS reply, an
answering machine, the hourly cap, the reminder and notice jobs, phone verification). Prism
answers 422 to a request its spec does not allow, 401 without credentials: every response
Ali got must be a 2xx. Prism keeps no state and sends no callbacks, so Twilio's side of the
flows is played with signed webhooks as elsewhere. One Prism per test session.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from core.clock import FrozenClock
from core.config import Settings, load_settings
from core.db import session_scope
from core.models import User
from core.telephony import TelephonyError, TwilioTelephony
from oncall.models import RotaShift
from oncall.notifications import send_shift_reminders, tell_sms_opt_outs
from oncall.verification import send_code
from routing.models import CaseEvent, Page, PageBundle
from tests.alerting import Chain
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, UserFactory, ali_environ
from tests.intake.signed import Sender
from tests.twilio_standin import TwilioWebhooks, flask_transport

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "node_modules" / ".bin" / "prism"
SPEC = ROOT / "node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json"
FORM = "application/x-www-form-urlencoded"
# Prism reads the whole of API 2010 at start: some 20 s on a busy 2-core machine.
START_TIMEOUT = 180.0
ACCOUNT = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
EMERGENCY = {"external_id": "NV-c", "province": "BS", "urgency": "emergency"}


def patched_spec(source: Path) -> dict[str, Any]:
    """Twilio's document, with each array property of a form body sent as repeated keys
    (`StatusCallbackEvent=a&StatusCallbackEvent=b`, as twilio's client and Twilio do):
    without the encoding Prism expects one comma-separated value and refuses them."""
    spec: dict[str, Any] = json.loads(source.read_text())
    for item in spec["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get(FORM)
            if body is None:
                continue
            properties = body.get("schema", {}).get("properties", {})
            arrays = [name for name, prop in properties.items() if prop.get("type") == "array"]
            if arrays:
                body["encoding"] = {name: {"style": "form", "explode": True} for name in arrays}
    return spec


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Prism:
    url: str
    lines: list[str]  # its log: each request and the rule it broke, for failure messages


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    """`prism mock` on a free port serving the patched spec; the test fails (never skips)
    when it is not installed or does not start."""
    if not PRISM.exists() or not SPEC.exists():
        pytest.fail(
            f"Prism or Twilio's API description is missing ({PRISM}, {SPEC}): make contract"
        )
    folder = tmp_path_factory.mktemp("prism")
    spec_path = folder / "twilio_api_v2010.json"
    spec_path.write_text(json.dumps(patched_spec(SPEC)))
    port = _free_port()
    # Dynamic answers: each created message or call gets its own sid, as from Twilio.
    process = subprocess.Popen(
        [str(PRISM), "mock", str(spec_path), "--dynamic", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started: queue.Queue[bool] = queue.Queue()

    def read() -> None:
        # Drained to the end, or Prism would block on a full pipe; the first
        # "listening" line (or the end of its output) says whether it started.
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if "Prism is listening" in line:
                started.put(True)
        started.put(False)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        try:
            listening = started.get(timeout=START_TIMEOUT)
        except queue.Empty:
            listening = False
        if not listening:
            pytest.fail("Prism did not start:\n" + "\n".join(lines[-30:]))
        yield Prism(f"http://127.0.0.1:{port}", lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def page_cap() -> int:
    return 30


@pytest.fixture
def settings(database_url: str, tmp_path: Path, prism: Prism, page_cap: int) -> Settings:
    """Ali's settings with the real twilio client sent to Prism instead of the stand-in."""
    return load_settings(
        ali_environ(
            database_url,
            tmp_path,
            ALI_TWILIO_API_BASE=prism.url,
            ALI_PAGE_CAP_PER_HOUR=str(page_cap),
        )
    )


@dataclass(frozen=True)
class Sent:
    """One request Ali's twilio client made, and Prism's answer."""

    method: str
    path: str
    form: dict[str, list[str]]
    status: int
    answer: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.form} -> {self.status} {self.answer[:600]}"


@pytest.fixture
def sent(app: Flask) -> list[Sent]:
    """Every request the app's twilio client sends, with Prism's status (a requests hook on
    the client's own session: what went over the wire, nothing stubbed)."""
    telephony = app.extensions["ali.telephony"]
    assert isinstance(telephony, TwilioTelephony)
    recorded: list[Sent] = []

    def record(response: requests.Response, *_args: object, **_kwargs: object) -> None:
        body = response.request.body or ""
        text = body.decode() if isinstance(body, bytes) else body
        recorded.append(
            Sent(
                method=response.request.method or "",
                path=urlsplit(response.request.url or "").path,
                form=parse_qs(text, keep_blank_values=True),
                status=response.status_code,
                answer=response.text,
            )
        )

    telephony.client.http_client.session.hooks["response"].append(record)
    return recorded


def assert_all_accepted(sent: list[Sent], prism: Prism) -> None:
    refused = [str(request) for request in sent if not 200 <= request.status < 300]
    assert not refused, "\n".join(
        ["Twilio's spec refuses:", *refused, "Prism's log:", *prism.lines[-20:]]
    )


def _hooks(client: FlaskClient) -> TwilioWebhooks[Any]:
    return TwilioWebhooks(AUTH_TOKEN, ACCOUNT_SID, flask_transport(client, PUBLIC_URL))


def _pages(db: Session) -> list[Page]:
    db.expire_all()
    return list(db.scalars(select(Page).order_by(Page.id)))


def _no_failed_pages(db: Session) -> None:
    kinds = set(db.scalars(select(CaseEvent.kind)))
    assert "page_failed" not in kinds


def test_an_alert_sms_and_an_alert_call_with_machine_detection_are_valid(
    sender: Sender, chain: Chain, db: Session, sent: list[Sent], prism: Prism
) -> None:
    sender.post(EMERGENCY)

    assert [(r.method, r.path) for r in sent] == [
        ("POST", f"{ACCOUNT}/Messages.json"),
        ("POST", f"{ACCOUNT}/Calls.json"),
    ]
    assert_all_accepted(sent, prism)
    call = sent[1].form
    assert call["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert call["MachineDetection"] == ["DetectMessageEnd"]
    assert call["AsyncAmd"] == ["true"]
    assert call["AsyncAmdStatusCallback"][0].endswith("/amd")
    assert all(page.provider_sid for page in _pages(db))
    _no_failed_pages(db)


def test_ending_the_ringing_alert_call_of_a_taken_case_is_valid(
    sender: Sender,
    chain: Chain,
    db: Session,
    client: FlaskClient,
    sent: list[Sent],
    prism: Prism,
) -> None:
    sender.post(EMERGENCY)
    call_sid = _pages(db)[1].provider_sid
    reply = _hooks(client).inbound_sms(
        f"{PUBLIC_URL}/twilio/sms", from_=chain.primary.phone or "", to="+390212345678", body="1"
    )
    assert reply.status_code == 200

    [end] = [r for r in sent if r.path == f"{ACCOUNT}/Calls/{call_sid}.json"]
    assert end.form == {"Status": ["completed"]}
    assert_all_accepted(sent, prism)


def test_redirecting_an_alert_call_a_machine_answered_is_valid(
    sender: Sender,
    chain: Chain,
    db: Session,
    client: FlaskClient,
    sent: list[Sent],
    prism: Prism,
) -> None:
    sender.post(EMERGENCY)
    call = _pages(db)[1]
    answer = _hooks(client).amd_result(
        f"{PUBLIC_URL}/twilio/alert/{call.id}/amd", call.provider_sid or "", "machine_end_beep"
    )
    assert answer.status_code == 204

    [redirect] = [r for r in sent if r.path == f"{ACCOUNT}/Calls/{call.provider_sid}.json"]
    assert redirect.form["Url"] == [f"{PUBLIC_URL}/twilio/alert/{call.id}/machine"]
    assert redirect.form["Method"] == ["POST"]
    assert_all_accepted(sent, prism)


@pytest.mark.parametrize("page_cap", [1])
def test_a_bundle_of_pages_past_the_hourly_cap_is_valid(
    sender: Sender, chain: Chain, db: Session, sent: list[Sent], prism: Prism
) -> None:
    sender.post(EMERGENCY)
    sender.post(EMERGENCY | {"external_id": "NV-c2"})  # its SMS is past the cap (calls never)

    [bundle] = db.scalars(select(PageBundle)).all()
    assert bundle.status == "sent"
    assert bundle.provider_sid
    bodies = [r.form["Body"][0] for r in sent if r.path == f"{ACCOUNT}/Messages.json"]
    assert len(bodies) == 2
    assert "BS-2026-0002" in bodies[1]
    assert_all_accepted(sent, prism)


def test_shift_reminders_and_notices_to_rota_managers_are_valid(
    app: Flask,
    chain: Chain,
    db: Session,
    clock: FrozenClock,
    make_user: UserFactory,
    sent: list[Sent],
    prism: Prism,
) -> None:
    now = clock.now()
    starting = make_user(name="Sara Subito", provinces=("BG",))
    db.add(
        RotaShift(
            province="BG",
            tier="primary",
            user_id=starting.id,
            start_at=now - timedelta(minutes=1),
            end_at=now + timedelta(hours=12),
            created_at=now,
        )
    )
    make_user(name="Rita Rota", roles=("rota_manager",), provinces=("BS",))
    stopped = db.get(User, chain.primary.id)
    assert stopped is not None
    stopped.sms_opted_out_at = now
    db.commit()

    with app.app_context(), session_scope(app) as session:
        telephony = app.extensions["ali.telephony"]
        reminders = send_shift_reminders(session, telephony, now)
        notices = tell_sms_opt_outs(session, telephony, now)

    assert reminders["sent"] >= 1
    assert notices["sent"] == 1
    assert len(sent) == reminders["sent"] + notices["sent"]
    assert_all_accepted(sent, prism)


def test_a_phone_verification_code_is_valid(
    app: Flask, make_user: UserFactory, clock: FrozenClock, sent: list[Sent], prism: Prism
) -> None:
    user = make_user(verified=False)
    with app.app_context(), session_scope(app) as session:
        me = session.get(User, user.id)
        assert me is not None
        send_code(
            session,
            app.extensions["ali.telephony"],
            user=me,
            secret_key="contract-test",
            now=clock.now(),
        )

    [code] = sent
    assert code.form["To"] == [user.phone]
    assert_all_accepted(sent, prism)


def test_prism_refuses_what_twilio_would_refuse(settings: Settings, prism: Prism) -> None:
    """The check is real: a request outside Twilio's spec is answered 422, as Ali sees it."""
    telephony = TwilioTelephony(settings)
    with pytest.raises(TelephonyError) as wrong_status:
        telephony.update_call("CA" + "0" * 32, status="hung-up")
    assert wrong_status.value.status == 422
    with pytest.raises(TwilioRestException) as wrong_method:
        telephony.client.calls.create(
            to="+393331234567", from_="+390212345678", url=PUBLIC_URL, method="PUT"
        )
    assert wrong_method.value.status == 422
