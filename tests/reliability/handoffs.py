"""A sender that never gives up: signed hand-offs over HTTP, retried with the same external_id.

What a well-behaved source (the Numero Verde) does: on a connection error, a timeout, a 5xx or
a 429 it sends the same hand-off again, re-signed with a fresh timestamp, until Ali answers
201 (created) or 200 (duplicate: an earlier attempt was stored but its answer was lost). Any
other answer is a refusal that retrying cannot fix; it is recorded and the hand-off given up.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from intake.services import IssuedSecret
from intake.signing import signed_headers

HANDOFFS = "/api/v1/handoffs"
SERVED = ("BG", "BS", "CR", "LO", "LC", "MN", "PV")
RETRY_AFTER_MAX = 0.5  # seconds between attempts at most (the backoff doubles from 20 ms)
IMPATIENT_READ_TIMEOUT = 0.001  # seconds: the request is sent, the answer not waited for


def sample_handoff(n: int, *, prefix: str = "NV") -> dict[str, Any]:
    """A plausible hand-off with no real personal data, spread over the served provinces."""
    return {
        "external_id": f"{prefix}-{n:05d}",
        "province": SERVED[n % len(SERVED)],
        "urgency": ("ordinary", "urgent", "emergency")[n % 3],
        "reporter_type": "citizen",
        "exploitation": ["labour"],
        "person": {"gender": "female", "age_band": "25-34", "languages": ["en"]},
        "needs": ["information"],
        "caller_phone": f"+39333{n:07d}",
        "summary": f"Segnalazione di prova numero {n}.",
    }


@dataclass(frozen=True)
class Delivery:
    """The answer that ended a hand-off's attempts (201, 200 duplicate, or a refusal)."""

    external_id: str
    status: int
    case: str | None
    duplicate: bool
    attempts: int


@dataclass
class SendReport:
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    undelivered: list[str] = field(default_factory=list)  # gave up at the deadline
    failures: list[str] = field(default_factory=list)  # the sender itself broke (a bug)
    outcomes: Counter[str] = field(default_factory=Counter)  # per attempt: "201", "timeout", ...

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())

    @property
    def retries(self) -> int:
        return self.attempts - len(self.deliveries) - len(self.undelivered)


def _final(status: int) -> bool:
    """An answer that ends the attempts: accepted, or refused for a reason retrying won't fix."""
    return status in {200, 201} or (400 <= status < 500 and status not in {408, 429})


class RetryingSender:
    """Sends hand-offs from a thread pool (a keep-alive session per thread), retrying each."""

    def __init__(
        self,
        base_url: str,
        issued: IssuedSecret,
        *,
        threads: int = 16,
        timeout: float = 10.0,
        deadline: float = 180.0,
        impatient_every: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url = base_url + HANDOFFS
        self.issued = issued
        self.threads = threads
        self.timeout = timeout
        self.deadline = deadline
        # Every n-th hand-off's first attempt stops waiting for the answer right after sending:
        # Ali stores it, the answer is lost, the retry must get the same case back (200).
        self.impatient_every = impatient_every
        self.clock = clock  # the signing clock: Ali under gunicorn reads the system clock
        self.report = SendReport()
        self._local = threading.local()
        self._lock = threading.Condition()
        self._acknowledged = 0
        self._give_up_at = 0.0
        self._sessions: list[requests.Session] = []
        self._cancelled = threading.Event()

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return self._acknowledged

    def wait_acknowledged(self, count: int, timeout: float) -> bool:
        """Block until `count` hand-offs are acknowledged (200/201); False on timeout or when
        the sender was cancelled or broke."""
        with self._lock:
            self._lock.wait_for(
                lambda: self._acknowledged >= count or self._cancelled.is_set(), timeout
            )
            return self._acknowledged >= count

    def send_all(self, bodies: Sequence[dict[str, Any]]) -> SendReport:
        self._give_up_at = time.monotonic() + self.deadline
        try:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="sender") as pool:
                list(pool.map(self._deliver, bodies, range(len(bodies))))  # into the report
        finally:
            for session in self._sessions:
                session.close()
        return self.report

    def cancel(self) -> None:
        """Give up every hand-off not yet acknowledged (a failed test ends its burst)."""
        with self._lock:
            self._cancelled.set()
            self._lock.notify_all()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def _deliver(self, body: dict[str, Any], index: int) -> None:
        impatient = self.impatient_every > 0 and index % self.impatient_every == 0
        try:
            self._deliver_until_answered(body, impatient=impatient)
        except Exception as exc:  # reported in the result; the whole burst ends
            with self._lock:
                self.report.failures.append(f"{body.get('external_id')}: {exc!r}")
            self.cancel()

    def _deliver_until_answered(self, body: dict[str, Any], *, impatient: bool) -> None:
        raw = json.dumps(body).encode("utf-8")
        external_id = str(body["external_id"])
        attempts = 0
        pause = 0.02
        while time.monotonic() < self._give_up_at and not self._cancelled.is_set():
            attempts += 1
            read_timeout = IMPATIENT_READ_TIMEOUT if impatient and attempts == 1 else self.timeout
            outcome, response = self._attempt(raw, read_timeout)
            with self._lock:
                self.report.outcomes[outcome] += 1
            if response is not None and _final(response.status_code):
                self._finish(external_id, response, attempts)
                return
            self._cancelled.wait(pause)  # the sender's backoff, not a wait for Ali's timers
            pause = min(RETRY_AFTER_MAX, pause * 2)
        with self._lock:
            self.report.undelivered.append(external_id)

    def _attempt(self, raw: bytes, read_timeout: float) -> tuple[str, requests.Response | None]:
        headers = {"Content-Type": "application/json"} | signed_headers(
            self.issued.key_id, self.issued.secret, raw, at=self.clock()
        )
        try:
            response = self._session().post(
                self.url, data=raw, headers=headers, timeout=(self.timeout, read_timeout)
            )
        except requests.Timeout:
            self._local.session = None
            return "timeout", None
        except requests.ConnectionError:
            # The server died mid-request or is not listening: start with a fresh session.
            self._local.session = None
            return "connection error", None
        except requests.RequestException as exc:
            # E.g. the answer's headers arrived but its body was cut off (ChunkedEncodingError):
            # the sender cannot know whether the hand-off was stored, so it sends it again.
            self._local.session = None
            return type(exc).__name__, None
        return str(response.status_code), response

    def _finish(self, external_id: str, response: requests.Response, attempts: int) -> None:
        ok = response.status_code in {200, 201}
        answer: dict[str, Any] = response.json() if ok else {}
        delivery = Delivery(
            external_id=external_id,
            status=response.status_code,
            case=answer.get("case"),
            duplicate=bool(answer.get("duplicate")),
            attempts=attempts,
        )
        with self._lock:
            self.report.deliveries[external_id] = delivery
            if ok:
                self._acknowledged += 1
                self._lock.notify_all()
