"""The sandbox phone: plays Twilio's part for the outbox, through Ali's real signed webhooks.

In the embedded mode nothing leaves the machine, so a developer answers for the operators on
`/sandbox`: reply to an SMS, pick up an alert call and press 1 or 2, let voicemail take it, or
let it ring out. Each of these is the request Twilio would send — the same form fields, to
the URL Ali gave with the message or call, signed with an auth token Ali accepts — posted
through the app's own WSGI stack, so it runs exactly the code a real reply runs (and core
needs no knowledge of the features that answer). The response is closed as a WSGI server
closes it: whatever Ali does after answering (the next pages) has happened on return.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree

from flask import Flask
from sqlalchemy.orm import Session

from core.config import Settings
from core.models import OutboxMessage
from core.twilio import twilio_signature

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
# The account the sandbox pretends to be; Ali reads no account id from Twilio's requests.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32
MACHINE = "machine_end_beep"
CALL_ACTIONS = ("press-1", "press-2", "voicemail", "no-answer")
# Statuses after which Twilio sends nothing more about a call: the sandbox offers no buttons.
CALL_OVER = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
# The messaging webhook of Ali's number, as set in Twilio's console (README: Connecting Twilio).
INBOUND_SMS_PATH = "/twilio/sms"
MAX_REPLY = 1600  # Twilio's own limit for a concatenated message
MAX_HISTORY = 20  # exchanges kept per outbox row


class SandboxError(Exception):
    """A simulated request could not be made or Ali refused it; says which and why."""


@dataclass(frozen=True)
class Outgoing:
    """What the sandbox needs of an outbox row, copied out so no transaction stays open
    while Ali answers (on SQLite an open transaction holds the write lock)."""

    id: int
    sid: str
    kind: str
    to: str
    from_: str
    url: str | None
    status_callback: str | None
    status_events: tuple[str, ...]
    machine_detection: bool
    amd_callback: str | None

    @classmethod
    def of(cls, message: OutboxMessage) -> Outgoing:
        options: dict[str, Any] = message.options or {}
        return cls(
            id=message.id,
            sid=message.sid,
            kind=message.kind,
            to=message.to,
            from_=message.from_,
            url=message.url,
            status_callback=message.status_callback,
            status_events=tuple(options.get("status_events") or ("completed",)),
            machine_detection=bool(options.get("machine_detection")),
            amd_callback=options.get("amd_callback"),
        )


@dataclass(frozen=True)
class Exchange:
    """One simulated answer: what the phone did and what Ali said or texted back."""

    action: str  # "reply" or one of CALL_ACTIONS
    sent: str  # the SMS text or the key pressed ("" when none)
    answer: str  # Ali's reply text, or the words the call said ("" when none)


class SandboxPhone:
    """Sends what Twilio would send to `app`, signed with the first configured auth token."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        if not settings.twilio_auth_tokens:
            raise SandboxError(
                "no Twilio auth token is configured, so Ali would refuse the simulated "
                "requests: set ALI_TWILIO_AUTH_TOKEN or leave it unset to get a dev token"
            )
        self.app = app
        self.token = settings.twilio_auth_tokens[0]
        self.public_url = settings.public_url.rstrip("/")

    # -- SMS

    def reply(self, message: Outgoing, body: str) -> Exchange:
        """The phone that got `message` texts `body` back to Ali's number."""
        if message.kind != "sms":
            raise SandboxError("only an SMS can be replied to")
        sid = "SM" + secrets.token_hex(16)
        params = {
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": message.to,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": message.from_,
        }
        answer = self._post(self.public_url + INBOUND_SMS_PATH, params)
        return Exchange("reply", body, " ".join(_texts(answer, "Message")))

    # -- calls

    def answer_call(self, call: Outgoing, action: str) -> Exchange:
        """What happens to an alert call: picked up and a key pressed, taken by voicemail,
        or never answered. Each is the sequence of requests Twilio sends for it."""
        if call.kind != "call" or not call.url:
            raise SandboxError("only a call placed with a TwiML URL can be answered")
        if action not in CALL_ACTIONS:
            raise SandboxError(f"unknown call action {action!r}")
        self._status(call, "ringing")
        if action == "no-answer":
            if not call.status_callback:
                raise SandboxError("this call asked for no status callback: nobody would know")
            self._status(call, "no-answer")
            return Exchange(action, "", "")
        self._status(call, "in-progress")
        params = self._call_params(call, "in-progress")
        machine = action == "voicemail"
        if machine and call.machine_detection and not call.amd_callback:
            params["AnsweredBy"] = MACHINE  # synchronous detection comes with the fetch
        twiml = self._post(call.url, params)
        heard = _texts(twiml, "Say")
        if machine:
            if call.machine_detection and call.amd_callback:
                self._post(
                    call.amd_callback,
                    {
                        "AccountSid": SANDBOX_ACCOUNT_SID,
                        "AnsweredBy": MACHINE,
                        "CallSid": call.sid,
                        "MachineDetectionDuration": "4200",
                    },
                )
            self._status(call, "completed", answered_by=MACHINE if call.machine_detection else None)
            return Exchange(action, "", " ".join(heard))
        digit = action.removeprefix("press-")
        gather = _gather_action(twiml, call.url)
        if gather is not None:
            answer = self._post(gather, params | {"Digits": digit, "FinishedOnKey": ""})
            heard = _texts(answer, "Say")
        self._status(call, "completed")
        return Exchange(action, digit, " ".join(heard))

    def _call_params(self, call: Outgoing, status: str) -> dict[str, str]:
        return {
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }

    def _status(
        self,
        call: Outgoing,
        status: str,
        *,
        answered_by: str | None = None,
    ) -> None:
        """A call progress callback, sent only when the call asked for that event (Twilio
        always reports the end: completed, busy, no-answer, failed, canceled)."""
        event = "answered" if status == "in-progress" else status
        wanted = event in call.status_events or status in CALL_OVER
        if not call.status_callback or not wanted:
            return
        params = self._call_params(call, status) | {"CallbackSource": "call-progress-events"}
        if answered_by:
            params["AnsweredBy"] = answered_by
        if status == "completed":
            params["CallDuration"] = "20"
        self._post(call.status_callback, params)

    # -- the request itself

    def _post(self, url: str, params: dict[str, str]) -> str:
        """POST `params` to Ali's `url`, signed; the body of Ali's answer."""
        if not url.startswith(self.public_url + "/"):
            # Only Ali's own URLs: the outbox row may predate a change of ALI_PUBLIC_URL.
            raise SandboxError(f"{url} is not under ALI_PUBLIC_URL ({self.public_url})")
        path = url[len(self.public_url) :]
        headers = {"X-Twilio-Signature": twilio_signature(self.token, url, params)}
        # In a context of its own, as a request from outside would be: inside the sandbox
        # page's request Flask would reuse that request's app context (its `g`, database
        # session and signed-in user) for the simulated one.
        status, body = contextvars.Context().run(self._request, path, params, headers)
        if status >= 400:
            log.warning("sandbox: Ali answered %s on %s", status, path)
            raise SandboxError(f"Ali answered HTTP {status} on {path}")
        return body

    def _request(
        self, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, str]:
        response = self.app.test_client().post(path, data=params, headers=headers)
        try:
            return response.status_code, response.get_data(as_text=True)
        finally:
            # As a WSGI server does: the work Ali does after its answer runs now.
            response.close()


def _parse(twiml: str) -> ElementTree.Element | None:
    if not twiml.strip():
        return None
    try:
        return ElementTree.fromstring(twiml)  # noqa: S314 -- Ali's own TwiML, from this process
    except ElementTree.ParseError:
        return None


def _texts(twiml: str, tag: str) -> list[str]:
    """The texts of every `tag` element (<Say>, <Message>) in document order."""
    root = _parse(twiml)
    if root is None:
        return []
    return [" ".join(element.itertext()).strip() for element in root.iter(tag)]


def _gather_action(twiml: str, base: str) -> str | None:
    """Where Twilio posts the keys of the first <Gather>, resolved like Twilio does."""
    root = _parse(twiml)
    gather = root.find(".//Gather") if root is not None else None
    if gather is None:
        return None
    return urljoin(base, gather.get("action") or base)


def local_link(body: str | None, public_url: str) -> str | None:
    """The path of the first link to Ali in an SMS text (an alert's case page), if any."""
    prefix = public_url.rstrip("/") + "/"
    for word in (body or "").split():
        if word.startswith(prefix):
            return "/" + word.removeprefix(prefix)
    return None


def record_exchange(session: Session, message_id: int, exchange: Exchange, now: datetime) -> None:
    """Keep the exchange on its outbox row, so the page shows what happened to each message."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        return
    options = dict(message.options or {})
    history = list(options.get("sandbox", []))[-(MAX_HISTORY - 1) :]
    history.append(
        {
            "action": exchange.action,
            "sent": exchange.sent,
            "answer": exchange.answer,
            "at": now.isoformat(),
        }
    )
    options["sandbox"] = history
    message.options = options  # a new dict: the JSON column tracks assignment, not mutation
