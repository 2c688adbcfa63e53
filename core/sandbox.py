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


# --- calls and texts TO Ali's number ----------------------------------------------------------
#
# The sandbox also plays a partner calling or texting the project's number: it posts what
# Twilio would (the Voice and Messaging webhooks set in the console, README: Connecting
# Twilio) and then follows Ali's TwiML as Twilio does — keys for a <Gather>, the rung
# operator's leg for a <Dial> (their whisper and key), a message for a <Record>. Core knows
# no feature: it reads only TwiML and the webhook paths of the console settings.

INBOUND_CALL_PATH = "/twilio/voice"
INBOUND_CALL_STATUS_PATH = "/twilio/voice/status"
INCOMING_CALL = "incall"  # the outbox kind of a simulated call to Ali's number
# What the simulated caller or the rung operator can do, by the state of the call.
CALLER_ACTIONS = frozenset({"keys", "no-key", "hang-up", "message"})
OPERATOR_ACTIONS = ("press-1", "press-2", "voicemail", "no-answer")
CONNECTED_ACTIONS = frozenset({"end"})
MAX_REDIRECTS = 10
SIMULATED_MESSAGE_SECONDS = 5


def _gather_state(root: ElementTree.Element, base: str) -> dict[str, Any]:
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    return {
        "kind": "gather",
        "action": urljoin(base, (gather.get("action") if gather is not None else None) or base),
        "after": urljoin(base, redirect.text or "") if redirect is not None else None,
    }


def call_state(twiml: str, base: str) -> dict[str, Any]:
    """Where a call stands after Ali's `twiml` (fetched from `base`): waiting for keys, ringing
    someone, recording, following a redirect, or over."""
    root = _parse(twiml)
    if root is None:
        return {"kind": "over"}
    if root.find("Gather") is not None:
        return _gather_state(root, base)
    number = root.find("Dial/Number")
    if number is not None:
        dial = root.find("Dial")
        action = dial.get("action") if dial is not None else None
        return {
            "kind": "dial",
            "action": urljoin(base, action or base),
            "whisper": urljoin(base, number.get("url") or "") if number.get("url") else None,
            "to": (number.text or "").strip(),
        }
    record = root.find("Record")
    if record is not None:
        return {
            "kind": "record",
            "action": urljoin(base, record.get("action") or base),
            "callback": urljoin(base, record.get("recordingStatusCallback") or "")
            if record.get("recordingStatusCallback")
            else None,
        }
    redirect = root.find("Redirect")
    if redirect is not None and root.find("Hangup") is None:
        return {"kind": "redirect", "url": urljoin(base, redirect.text or "")}
    return {"kind": "over"}


class IncomingCall:
    """A simulated call to Ali's number, step by step; `state` and `heard` are kept on its
    outbox row between the sandbox page's requests."""

    def __init__(self, phone: SandboxPhone, *, sid: str, caller: str, number: str) -> None:
        self.phone = phone
        self.sid = sid
        self.caller = caller
        self.number = number
        self.heard: list[str] = []

    def _params(self, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": "in-progress",
            "Called": self.number,
            "Caller": self.caller,
            "Direction": "inbound",
            "From": self.caller,
            "To": self.number,
            **extra,
        }

    def _follow(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        """Post to Ali, then follow its redirects as Twilio would; the state it stops in."""
        for _hop in range(MAX_REDIRECTS):
            twiml = self.phone._post(url, params)
            self.heard += [text for text in _texts(twiml, "Say") if text]
            state = call_state(twiml, url)
            if state["kind"] != "redirect":
                return state
            url = state["url"]
            params = self._params()
        raise SandboxError("Ali redirected the call too many times")

    def start(self) -> dict[str, Any]:
        params = self._params(CallStatus="ringing")
        return self._follow(self.phone.public_url + INBOUND_CALL_PATH, params)

    def caller_acts(self, state: dict[str, Any], action: str, keys: str = "") -> dict[str, Any]:
        """The caller presses keys or none, leaves a message, or hangs up."""
        if action == "hang-up":
            self.phone._post(
                self.phone.public_url + INBOUND_CALL_STATUS_PATH,
                self._params(CallStatus="completed", CallDuration="30"),
            )
            return {"kind": "over"}
        if state["kind"] == "gather" and action == "keys":
            return self._follow(state["action"], self._params(Digits=keys, FinishedOnKey=""))
        if state["kind"] == "gather" and action == "no-key":
            if not state.get("after"):
                return {"kind": "over"}
            return self._follow(state["after"], self._params())
        if state["kind"] == "record" and action == "message":
            recording = "RE" + secrets.token_hex(16)
            url = f"https://api.twilio.com/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}/Recordings/{recording}"
            seconds = str(SIMULATED_MESSAGE_SECONDS)
            after = self._follow(
                state["action"],
                self._params(
                    RecordingSid=recording, RecordingUrl=url, RecordingDuration=seconds, Digits="#"
                ),
            )
            if state.get("callback"):
                self.phone._post(
                    state["callback"],
                    {
                        "AccountSid": SANDBOX_ACCOUNT_SID,
                        "CallSid": self.sid,
                        "RecordingSid": recording,
                        "RecordingUrl": url,
                        "RecordingStatus": "completed",
                        "RecordingDuration": seconds,
                    },
                )
            return after
        raise SandboxError(f"the caller cannot {action} now")

    def operator_acts(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        """The rung operator's phone: picks up and presses 1 or 2 on the whisper, lets
        voicemail take it (hears the whisper, presses nothing), or does not answer."""
        if state["kind"] != "dial" or action not in OPERATOR_ACTIONS:
            raise SandboxError(f"the operator cannot {action} now")
        if action == "no-answer":
            return self._dial_over(state, "no-answer")
        whisper = state.get("whisper")
        if not whisper:
            return self._dial_over(state, "completed")
        leg = "CA" + secrets.token_hex(16)
        leg_params = self._params(
            CallSid=leg, ParentCallSid=self.sid, Direction="outbound-dial", To=state["to"]
        )
        twiml = self.phone._post(whisper, leg_params)
        self.heard += [f"({state['to']}) {text}" for text in _texts(twiml, "Say") if text]
        leg_state = call_state(twiml, whisper)
        if action == "voicemail" or leg_state["kind"] != "gather":
            if leg_state.get("after"):
                self.phone._post(leg_state["after"], leg_params)
            return self._dial_over(state, "completed")
        answer = self.phone._post(
            leg_state["action"], leg_params | {"Digits": action.removeprefix("press-")}
        )
        self.heard += [f"({state['to']}) {text}" for text in _texts(answer, "Say") if text]
        root = _parse(answer)
        if root is not None and len(root) == 0:
            # An empty answer on the whisper: the operator is connected to the caller.
            return {"kind": "connected", "action": state["action"], "to": state["to"]}
        return self._dial_over(state, "completed")

    def end_connected(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["kind"] != "connected":
            raise SandboxError("the call is not connected")
        return self._dial_over(state, "completed", duration="60")

    def _dial_over(self, state: dict[str, Any], status: str, duration: str = "0") -> dict[str, Any]:
        params = self._params(
            DialCallStatus=status,
            DialCallSid="CA" + secrets.token_hex(16),
            DialCallDuration=duration,
        )
        return self._follow(state["action"], params)


def incoming_sms(phone: SandboxPhone, *, sender: str, number: str, body: str) -> Exchange:
    """Someone texts Ali's number: the Messaging webhook, signed; Ali's reply, if any."""
    sid = "SM" + secrets.token_hex(16)
    params = {
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": sender,
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": number,
    }
    answer = phone._post(phone.public_url + INBOUND_SMS_PATH, params)
    return Exchange("incoming-sms", body, " ".join(_texts(answer, "Message")))
