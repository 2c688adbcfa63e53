"""A local Twilio stand-in the real twilio client talks HTTP to, and senders of signed webhooks.

Two halves, both for tests:

* ``TwilioStandIn`` serves the few REST endpoints Ali uses (Messages and Calls of API
  2010-04-01) on 127.0.0.1, answers with Twilio-shaped JSON and Twilio-shaped errors, records
  every request, and can fail on purpose (``fail_next``, ``set_down``, ``set_dropping``).
* ``TwilioWebhooks`` posts requests signed exactly as Twilio signs them (``X-Twilio-Signature``
  over the public URL plus the sorted form parameters) through a ``Transport``: the Flask test
  client (``flask_transport``) or real HTTP (``http_transport``). ``TwilioStandIn.send_*`` fire
  the callbacks the app asked for when it created a message or a call.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

import phonenumbers
import requests
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.serving import (
    BaseWSGIServer,
    ThreadedWSGIServer,
    WSGIRequestHandler,
    make_server,
)
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request, Response

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
# Numbers phonenumbers accepts as valid, used when a test does not care which numbers talk.
DEFAULT_TWILIO_NUMBER = "+390301234567"
DEFAULT_PERSON_NUMBER = "+393331234567"

MESSAGE_STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "canceled",
        "queued",
        "sending",
        "sent",
        "failed",
        "delivered",
        "undelivered",
        "receiving",
        "received",
        "read",
    }
)
CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)
CALL_ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
ANSWERED_BY_VALUES = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)
# Which StatusCallbackEvent a call status belongs to: Twilio only calls back for the events the
# call was created with, and always for "completed" (which covers every final status).
_EVENT_OF_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    "completed": "completed",
    "busy": "completed",
    "failed": "completed",
    "no-answer": "completed",
    "canceled": "completed",
}

R = TypeVar("R")
# (full public URL Twilio would call, form parameters, extra headers) -> the app's response.
Transport = Callable[[str, dict[str, str], dict[str, str]], R]


# --------------------------------------------------------------------------- signing


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a POST of ``params`` to ``url``."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


def is_valid_signature(
    url: str, params: Mapping[str, str], signature: str, auth_token: str
) -> bool:
    """What twilio's own validator says about a signature (port and no-port URL both tried)."""
    valid: bool = RequestValidator(auth_token).validate(url, dict(params), signature)
    return valid


# --------------------------------------------------------------------------- transports


def flask_transport(client: FlaskClient, public_url: str) -> Transport[TestResponse]:
    """POST through the Flask test client: ``public_url`` is cut off, the path and query stay.

    The test client keeps its own ``http://localhost`` base on purpose: an app that validates
    signatures against ``request.url`` instead of its configured public URL fails, as it would
    behind a proxy.
    """
    prefix = public_url.rstrip("/")

    def transport(url: str, params: dict[str, str], headers: dict[str, str]) -> TestResponse:
        if url != prefix and not url.startswith((prefix + "/", prefix + "?")):
            raise ValueError(f"{url!r} is not under the public URL {public_url!r}")
        path = url[len(prefix) :] or "/"
        if path.startswith("?"):
            path = "/" + path
        response = client.post(path, data=params, headers=headers)
        response.close()  # as a WSGI server does: what Ali does after its answer runs now
        return response

    return transport


def http_transport(
    public_url: str | None = None,
    server_url: str | None = None,
    timeout: float = 10.0,
) -> Transport[requests.Response]:
    """POST over real HTTP; with both URLs given, ``public_url`` is rewritten to ``server_url``.

    The signature is always computed over the public URL, as Twilio does, even when the
    request actually goes to a local server behind it.
    """
    if (public_url is None) != (server_url is None):
        raise ValueError("give both public_url and server_url, or neither")

    def transport(url: str, params: dict[str, str], headers: dict[str, str]) -> requests.Response:
        target = url
        if public_url is not None and server_url is not None:
            prefix = public_url.rstrip("/")
            if not url.startswith(prefix):
                raise ValueError(f"{url!r} is not under the public URL {public_url!r}")
            target = server_url.rstrip("/") + url[len(prefix) :]
        return requests.post(
            target, data=params, headers=headers, timeout=timeout, allow_redirects=False
        )

    return transport


# --------------------------------------------------------------------------- webhooks


def _country(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_number(parsed) or ""


def new_sid(prefix: str) -> str:
    """A Twilio-looking SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


class TwilioWebhooks(Generic[R]):
    """Posts the requests Twilio makes to an app, signed with ``auth_token``."""

    def __init__(self, auth_token: str, account_sid: str, transport: Transport[R]) -> None:
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.transport = transport

    # -- raw

    def signed_post(self, url: str, params: Mapping[str, str]) -> R:
        """POST ``params`` to ``url`` with a correct signature."""
        return self.post(url, params, signature=sign(url, params, self.auth_token))

    def post(self, url: str, params: Mapping[str, str], signature: str | None = None) -> R:
        """POST with the given signature header, or with none when ``signature`` is None."""
        headers = {
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return self.transport(url, dict(params), headers)

    # -- parameter sets

    def _call_params(
        self, call_sid: str, status: str, from_: str, to: str, direction: str
    ) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid,
            "CallStatus": status,
            "Called": to,
            "Caller": from_,
            "Direction": direction,
            "From": from_,
            "FromCountry": _country(from_),
            "To": to,
            "ToCountry": _country(to),
        }

    def message_status(
        self,
        url: str,
        message_sid: str,
        status: str,
        error_code: int | None = None,
        *,
        from_: str = DEFAULT_TWILIO_NUMBER,
        to: str = DEFAULT_PERSON_NUMBER,
    ) -> R:
        """The status callback of an outbound message (``StatusCallback`` of the create)."""
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": from_,
            "MessageSid": message_sid,
            "MessageStatus": status,
            "SmsSid": message_sid,
            "SmsStatus": status,
            "To": to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self.signed_post(url, params)

    def call_status(
        self,
        url: str,
        call_sid: str,
        status: str,
        answered_by: str | None = None,
        duration: int | None = None,
        *,
        from_: str = DEFAULT_TWILIO_NUMBER,
        to: str = DEFAULT_PERSON_NUMBER,
        sequence_number: int = 0,
        direction: str = "outbound-api",
    ) -> R:
        """A call progress event (``StatusCallback`` of the create)."""
        if status not in CALL_STATUSES:
            raise ValueError(f"unknown call status {status!r}")
        params = self._call_params(call_sid, status, from_, to, direction)
        params["CallbackSource"] = "call-progress-events"
        params["SequenceNumber"] = str(sequence_number)
        params["Timestamp"] = format_datetime(datetime.now(UTC))
        if answered_by is not None:
            params["AnsweredBy"] = _answered_by(answered_by)
        if duration is not None:
            params["CallDuration"] = str(duration)
            params["Duration"] = str((duration + 59) // 60)  # billed minutes
        return self.signed_post(url, params)

    def call_answered(
        self,
        url: str,
        call_sid: str,
        *,
        from_: str = DEFAULT_TWILIO_NUMBER,
        to: str = DEFAULT_PERSON_NUMBER,
        answered_by: str | None = None,
        direction: str = "outbound-api",
    ) -> R:
        """The TwiML fetch of the call's ``Url`` when the callee picks up."""
        params = self._call_params(call_sid, "in-progress", from_, to, direction)
        if answered_by is not None:  # only with synchronous machine detection
            params["AnsweredBy"] = _answered_by(answered_by)
        return self.signed_post(url, params)

    def gather(
        self,
        url: str,
        call_sid: str,
        digits: str,
        *,
        from_: str = DEFAULT_TWILIO_NUMBER,
        to: str = DEFAULT_PERSON_NUMBER,
        finished_on_key: str = "",
        direction: str = "outbound-api",
    ) -> R:
        """The ``action`` request of a ``<Gather>`` after the callee pressed ``digits``."""
        params = self._call_params(call_sid, "in-progress", from_, to, direction)
        params["Digits"] = digits
        params["FinishedOnKey"] = finished_on_key
        params["msg"] = "Gather End"
        return self.signed_post(url, params)

    def amd_result(
        self, url: str, call_sid: str, answered_by: str, machine_detection_duration_ms: int = 2900
    ) -> R:
        """The ``AsyncAmdStatusCallback`` of asynchronous answering machine detection."""
        params = {
            "AccountSid": self.account_sid,
            "AnsweredBy": _answered_by(answered_by),
            "CallSid": call_sid,
            "MachineDetectionDuration": str(machine_detection_duration_ms),
        }
        return self.signed_post(url, params)

    def inbound_sms(
        self, url: str, from_: str, to: str, body: str, message_sid: str | None = None
    ) -> R:
        """An SMS someone sent to one of the account's numbers."""
        sid = message_sid or new_sid("SM")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": from_,
            "FromCountry": _country(from_),
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
            "ToCountry": _country(to),
        }
        return self.signed_post(url, params)

    def inbound_call(self, url: str, from_: str, to: str, call_sid: str | None = None) -> R:
        """The voice webhook of one of the account's numbers when someone calls it."""
        params = self._call_params(call_sid or new_sid("CA"), "ringing", from_, to, "inbound")
        return self.signed_post(url, params)

    def inbound_step(self, url: str, call_sid: str, from_: str, to: str, **extra: str) -> R:
        """A later request of an inbound call (a <Redirect>, a <Gather> action, a <Dial> or
        <Record> action): the call's parameters plus the verb's own (``extra``)."""
        params = self._call_params(call_sid, "in-progress", from_, to, "inbound") | extra
        return self.signed_post(url, params)

    def dial_action(
        self,
        url: str,
        call_sid: str,
        dial_status: str,
        *,
        from_: str,
        to: str,
        dial_call_sid: str | None = None,
        duration: int | None = None,
        call_status: str = "in-progress",
    ) -> R:
        """The ``action`` of a ``<Dial>`` when the dialled leg ends (``DialCallStatus``:
        completed, busy, no-answer, failed, canceled)."""
        params = self._call_params(call_sid, call_status, from_, to, "inbound")
        params["DialCallStatus"] = dial_status
        params["DialCallSid"] = dial_call_sid or new_sid("CA")
        if duration is not None:
            params["DialCallDuration"] = str(duration)
        return self.signed_post(url, params)

    def dialled_leg(
        self,
        url: str,
        parent_sid: str,
        child_sid: str,
        *,
        from_: str,
        to: str,
        digits: str | None = None,
    ) -> R:
        """A request of the dialled leg of a ``<Dial><Number url=...>``: the whisper's TwiML
        fetch when the callee picks up, or (``digits``) a ``<Gather>`` action on that leg."""
        params = self._call_params(child_sid, "in-progress", from_, to, "outbound-dial")
        params["ParentCallSid"] = parent_sid
        if digits is not None:
            params["Digits"] = digits
            params["FinishedOnKey"] = ""
        return self.signed_post(url, params)

    def record_action(
        self,
        url: str,
        call_sid: str,
        recording_sid: str,
        recording_url: str,
        duration: int,
        *,
        from_: str,
        to: str,
    ) -> R:
        """The ``action`` of a ``<Record>`` when the caller finished the message."""
        params = self._call_params(call_sid, "in-progress", from_, to, "inbound")
        params |= {
            "RecordingSid": recording_sid,
            "RecordingUrl": recording_url,
            "RecordingDuration": str(duration),
            "Digits": "#",
        }
        return self.signed_post(url, params)

    def recording_status(
        self,
        url: str,
        call_sid: str,
        recording_sid: str,
        recording_url: str,
        duration: int,
        status: str = "completed",
    ) -> R:
        """The ``recordingStatusCallback`` of a ``<Record>``."""
        params = {
            "AccountSid": self.account_sid,
            "CallSid": call_sid,
            "RecordingSid": recording_sid,
            "RecordingUrl": recording_url,
            "RecordingStatus": status,
            "RecordingDuration": str(duration),
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
            "RecordingStartTime": format_datetime(datetime.now(UTC)),
        }
        return self.signed_post(url, params)


def _answered_by(value: str) -> str:
    if value not in ANSWERED_BY_VALUES:
        raise ValueError(f"unknown AnsweredBy {value!r}")
    return value


def gather_action_url(twiml: str, document_url: str) -> str:
    """Where Twilio posts the digits of the first ``<Gather>`` in ``twiml``.

    A relative ``action`` is resolved against the URL the TwiML was fetched from; without an
    ``action`` Twilio posts back to that same URL.
    """
    # The TwiML comes from the app under test, not from strangers.
    root = ElementTree.fromstring(twiml)  # noqa: S314
    gather = root.find(".//Gather")
    if gather is None:
        raise ValueError("the TwiML has no <Gather>")
    return urljoin(document_url, gather.get("action") or document_url)


# --------------------------------------------------------------------------- REST stand-in


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received, whatever it answered."""

    method: str
    path: str
    form: dict[str, list[str]]
    authorized: bool
    at: float
    status: int = 0

    def param(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


def _first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _rfc2822(moment: datetime | None) -> str | None:
    return None if moment is None else format_datetime(moment)


@dataclass
class StoredMessage:
    """A message created through the API, with every form value it was created with."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str | None
    status: str
    status_callback: str | None
    messaging_service_sid: str | None
    form: dict[str, list[str]]
    created_at: datetime
    updated_at: datetime
    error_code: int | None = None
    status_callbacks_sent: list[str] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        return _first(self.form, name)

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body or "",
            "date_created": _rfc2822(self.created_at),
            "date_sent": None,
            "date_updated": _rfc2822(self.updated_at),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": uri,
        }


@dataclass
class StoredCall:
    """A call created through the API, with every form value (repeated keys kept as lists)."""

    sid: str
    account_sid: str
    to: str
    from_: str
    status: str
    url: str | None
    twiml: str | None
    status_callback: str | None
    status_callback_events: list[str]
    machine_detection: str | None
    async_amd: str | None
    async_amd_status_callback: str | None
    timeout: str | None
    form: dict[str, list[str]]
    created_at: datetime
    updated_at: datetime
    answered_by: str | None = None
    duration: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    updates: list[dict[str, list[str]]] = field(default_factory=list)
    sequence_number: int = 0
    status_callbacks_sent: list[str] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        return _first(self.form, name)

    @property
    def ended(self) -> bool:
        return self.status in CALL_ENDED_STATUSES

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"
        base = uri.removesuffix(".json")
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(self.created_at),
            "date_updated": _rfc2822(self.updated_at),
            "direction": "outbound-api",
            "duration": None if self.duration is None else str(self.duration),
            "end_time": _rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": _rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": base + "/Notifications.json",
                "recordings": base + "/Recordings.json",
                "events": base + "/Events.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": uri,
        }


@dataclass
class StoredRecording:
    """A call recording the stand-in holds (made by ``add_recording``), with its audio."""

    sid: str
    account_sid: str
    call_sid: str
    duration: int
    audio: bytes
    created_at: datetime
    deleted: bool = False

    @property
    def media_url(self) -> str:
        """The ``RecordingUrl`` Twilio gives in callbacks (no extension)."""
        return f"https://api.twilio.com/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{self.sid}"

    def to_json(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "call_sid": self.call_sid,
            "channels": 1,
            "date_created": _rfc2822(self.created_at),
            "date_updated": _rfc2822(self.created_at),
            "duration": str(self.duration),
            "sid": self.sid,
            "source": "RecordVerb",
            "status": "completed",
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{self.sid}.json",
        }


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int | None
    message: str
    problem_details: bool


class TwilioApiError(Exception):
    """An error answer of the stand-in, shaped like Twilio's."""

    def __init__(self, status: int, code: int | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


_DEFAULT_CODES = {401: 20003, 404: 20404, 405: 20004, 429: 20429, 500: 20500, 503: 20503}
_E164 = re.compile(r"\+[1-9]\d{1,14}")
_ACCOUNT = "/" + API_VERSION + "/Accounts/<account_sid>"
_URL_MAP = Map(
    [
        Rule(_ACCOUNT + "/Messages.json", methods=["POST"], endpoint="create_message"),
        Rule(_ACCOUNT + "/Messages/<sid>.json", methods=["GET"], endpoint="fetch_message"),
        Rule(_ACCOUNT + "/Calls.json", methods=["POST"], endpoint="create_call"),
        Rule(_ACCOUNT + "/Calls/<sid>.json", methods=["GET"], endpoint="fetch_call"),
        Rule(_ACCOUNT + "/Calls/<sid>.json", methods=["POST"], endpoint="update_call"),
        Rule(_ACCOUNT + "/Recordings/<name>", methods=["GET"], endpoint="fetch_recording"),
        Rule(_ACCOUNT + "/Recordings/<name>", methods=["DELETE"], endpoint="delete_recording"),
    ]
)


def _error_response(error: TwilioApiError, path: str, *, problem_details: bool) -> Response:
    more_info = f"https://www.twilio.com/docs/errors/{error.code or error.status}"
    body: dict[str, Any]
    if problem_details:  # RFC 9457: twilio 9 raises TwilioServiceException for these
        body = {
            "type": more_info,
            "title": HTTPStatus(error.status).phrase,
            "status": error.status,
            "code": error.code if error.code is not None else error.status,
            "detail": error.message,
            "instance": path,
        }
        mimetype = "application/problem+json"
    else:
        body = {
            "code": error.code,
            "message": error.message,
            "more_info": more_info,
            "status": error.status,
            **error.extra,
        }
        mimetype = "application/json"
    response = Response(_json_dumps(body), status=error.status, mimetype=mimetype)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _json_dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body)


def _is_phone_number(value: str) -> bool:
    if not _E164.fullmatch(value):
        return False
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(parsed))


def _is_absolute_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


class _QuietHandler(WSGIRequestHandler):
    # Set here so werkzeug does not switch the shared WSGIRequestHandler class to HTTP/1.1.
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Tests read ``TwilioStandIn.requests``, not an access log."""


class TwilioStandIn:
    """A Twilio REST API double on 127.0.0.1 for the real twilio client (see module docstring)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._messages: dict[str, StoredMessage] = {}
        self._calls: dict[str, StoredCall] = {}
        self._recordings: dict[str, StoredRecording] = {}
        self._failures: list[_Failure] = []
        self._down = False
        self._down_status = 503
        self._dropping = False
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the Twilio stand-in is already running")
        server = make_server(
            "127.0.0.1", 0, self._wsgi_app, threaded=True, request_handler=_QuietHandler
        )
        if not isinstance(server, ThreadedWSGIServer):
            raise TypeError("werkzeug did not make a threaded server")
        # Join request threads on close (werkzeug makes them daemons): no thread outlives stop().
        server.daemon_threads = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("start the Twilio stand-in first")
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- what happened

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[StoredMessage]:
        with self._lock:
            return list(self._messages.values())

    @property
    def calls(self) -> list[StoredCall]:
        with self._lock:
            return list(self._calls.values())

    @property
    def recordings(self) -> list[StoredRecording]:
        with self._lock:
            return list(self._recordings.values())

    def add_recording(
        self, call_sid: str, *, duration: int = 7, audio: bytes = b""
    ) -> StoredRecording:
        """A recording of ``call_sid``, as a ``<Record>`` leaves one at Twilio."""
        now = datetime.now(UTC)
        recording = StoredRecording(
            sid=new_sid("RE"),
            account_sid=self.account_sid,
            call_sid=call_sid,
            duration=duration,
            audio=audio or b"RIFF" + secrets.token_bytes(60),
            created_at=now,
        )
        with self._lock:
            self._recordings[recording.sid] = recording
        return recording

    def message(self, sid: str) -> StoredMessage:
        with self._lock:
            return self._messages[sid]

    def call(self, sid: str) -> StoredCall:
        with self._lock:
            return self._calls[sid]

    def reset(self) -> None:
        """Forget requests, messages, calls and pending failures; come back up."""
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._calls.clear()
            self._recordings.clear()
            self._failures.clear()
            self._down = False
            self._down_status = 503
            self._dropping = False

    # -- failures on purpose

    def fail_next(
        self,
        n: int,
        status: int,
        code: int | None = None,
        message: str | None = None,
        *,
        problem_details: bool = False,
    ) -> None:
        """The next ``n`` API requests fail with ``status`` and a Twilio-shaped body.

        ``code`` defaults to Twilio's code for the status (429 -> 20429, 500 -> 20500, ...);
        ``problem_details`` answers in the RFC 9457 shape instead of the classic one.
        """
        failure = _Failure(
            status=status,
            code=code if code is not None else _DEFAULT_CODES.get(status),
            message=message if message is not None else HTTPStatus(status).phrase,
            problem_details=problem_details,
        )
        with self._lock:
            self._failures.extend([failure] * n)

    def set_down(self, down: bool = True, *, status: int = 503) -> None:
        """While down, every API request is answered ``status`` (503, code 20503, unless
        told otherwise: 500 for Twilio's own errors, 429 for throttling)."""
        with self._lock:
            self._down = down
            self._down_status = status

    def set_dropping(self, dropping: bool = True) -> None:
        """While dropping, every API request is read and recorded (status 0), then its
        connection closed with no answer at all: a network cut, not an error from Twilio."""
        with self._lock:
            self._dropping = dropping

    # -- state changes a test drives

    def set_call_status(
        self,
        call_sid: str,
        status: str,
        *,
        answered_by: str | None = None,
        duration: int | None = None,
    ) -> StoredCall:
        """Move a call to ``status`` without telling the app (see ``send_call_status``)."""
        if status not in CALL_STATUSES:
            raise ValueError(f"unknown call status {status!r}")
        now = datetime.now(UTC)
        with self._lock:
            call = self._calls[call_sid]
            call.status = status
            call.updated_at = now
            if status == "in-progress" and call.start_time is None:
                call.start_time = now
            if answered_by is not None:
                call.answered_by = _answered_by(answered_by)
            if duration is not None:
                call.duration = duration
            if status in CALL_ENDED_STATUSES and call.end_time is None:
                call.end_time = now
                if call.duration is None:  # Twilio reports 0 for a call nobody answered
                    start = call.start_time
                    call.duration = 0 if start is None else round((now - start).total_seconds())
            return call

    # -- callbacks to the app

    def _webhooks(self, transport: Transport[R], auth_token: str | None) -> TwilioWebhooks[R]:
        return TwilioWebhooks(auth_token or self.auth_token, self.account_sid, transport)

    def send_message_status(
        self,
        message_sid: str,
        status: str,
        transport: Transport[R],
        auth_token: str | None = None,
        *,
        error_code: int | None = None,
    ) -> R:
        """Move the message to ``status`` and POST that to its ``StatusCallback``, signed."""
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        with self._lock:
            message = self._messages[message_sid]
            if message.status_callback is None:
                raise LookupError(f"message {message_sid} was created without a StatusCallback")
            message.status = status
            message.error_code = error_code
            message.updated_at = datetime.now(UTC)
            message.status_callbacks_sent.append(status)
            url = message.status_callback
            from_ = message.from_ or DEFAULT_TWILIO_NUMBER
        return self._webhooks(transport, auth_token).message_status(
            url, message_sid, status, error_code, from_=from_, to=message.to
        )

    def send_call_status(
        self,
        call_sid: str,
        status: str,
        transport: Transport[R],
        auth_token: str | None = None,
        *,
        answered_by: str | None = None,
        duration: int | None = None,
        force: bool = False,
    ) -> R:
        """Move the call to ``status`` and POST that to its ``StatusCallback``, signed.

        Like Twilio, refuses an event the call was not created to report (only "completed"
        when no ``StatusCallbackEvent`` was given), unless ``force``.
        """
        if status not in _EVENT_OF_STATUS:
            raise ValueError(f"{status!r} is not a status Twilio reports in a callback")
        with self._lock:
            call = self._calls[call_sid]
            url = call.status_callback
            events = call.status_callback_events or ["completed"]
        if url is None:
            raise LookupError(f"call {call_sid} was created without a StatusCallback")
        if not force and _EVENT_OF_STATUS[status] not in events:
            raise LookupError(
                f"call {call_sid} did not ask for {_EVENT_OF_STATUS[status]!r} events "
                f"(StatusCallbackEvent={events}); Twilio would not send {status!r}"
            )
        call = self.set_call_status(call_sid, status, answered_by=answered_by, duration=duration)
        with self._lock:
            call.sequence_number += 1
            sequence_number = call.sequence_number - 1
            call.status_callbacks_sent.append(status)
        return self._webhooks(transport, auth_token).call_status(
            url,
            call_sid,
            status,
            answered_by=call.answered_by if call.machine_detection else None,
            duration=call.duration if status in CALL_ENDED_STATUSES else None,
            from_=call.from_,
            to=call.to,
            sequence_number=sequence_number,
        )

    def send_call_answered(
        self,
        call_sid: str,
        transport: Transport[R],
        auth_token: str | None = None,
        *,
        answered_by: str | None = None,
    ) -> R:
        """The callee picks up: the call goes in-progress and Twilio fetches TwiML from ``Url``.

        ``answered_by`` is sent only for synchronous detection (``MachineDetection`` without
        ``AsyncAmd=true``); with async detection use ``send_amd_result``.
        """
        call = self.call(call_sid)
        if call.url is None:
            raise LookupError(f"call {call_sid} has inline Twiml, no Url to fetch")
        sync_amd = call.machine_detection is not None and call.async_amd != "true"
        call = self.set_call_status(
            call_sid, "in-progress", answered_by=answered_by if sync_amd else None
        )
        return self._webhooks(transport, auth_token).call_answered(
            call.url or "",
            call_sid,
            from_=call.from_,
            to=call.to,
            answered_by=answered_by if sync_amd else None,
        )

    def send_amd_result(
        self,
        call_sid: str,
        answered_by: str,
        transport: Transport[R],
        auth_token: str | None = None,
    ) -> R:
        """POST the asynchronous answering machine verdict to ``AsyncAmdStatusCallback``."""
        call = self.call(call_sid)
        if call.async_amd_status_callback is None:
            raise LookupError(f"call {call_sid} was created without an AsyncAmdStatusCallback")
        self.set_call_status(call_sid, call.status, answered_by=answered_by)
        return self._webhooks(transport, auth_token).amd_result(
            call.async_amd_status_callback, call_sid, answered_by
        )

    def send_gather(
        self,
        call_sid: str,
        digits: str,
        action_url: str,
        transport: Transport[R],
        auth_token: str | None = None,
    ) -> R:
        """The callee pressed ``digits``: POST them to the ``<Gather action>`` URL."""
        call = self.call(call_sid)
        return self._webhooks(transport, auth_token).gather(
            action_url, call_sid, digits, from_=call.from_, to=call.to
        )

    # -- the WSGI application

    def _wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        at = time.time()
        form = {key: request.form.getlist(key) for key in request.form}
        auth = request.authorization
        authorized = (
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest(auth.username or "", self.account_sid)
            and hmac.compare_digest(auth.password or "", self.auth_token)
        )
        problem_details = False
        with self._lock:
            dropping = self._dropping
        if dropping:
            with self._lock:
                self._requests.append(
                    RecordedRequest(
                        method=request.method,
                        path=request.path,
                        form=form,
                        authorized=authorized,
                        at=at,
                    )
                )
            # Closed before a byte of an answer: the client sees the connection go; the
            # server's own attempt to answer then meets the closed socket and gives up.
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            start_response("500 INTERNAL SERVER ERROR", [])
            return []
        try:
            with self._lock:
                failure = self._failures.pop(0) if self._failures else None
                down = self._down
                down_status = self._down_status
            if down:
                failure = _Failure(
                    down_status,
                    _DEFAULT_CODES.get(down_status),
                    HTTPStatus(down_status).phrase,
                    problem_details=False,
                )
            if failure is not None:
                problem_details = failure.problem_details
                raise TwilioApiError(failure.status, failure.code, failure.message)
            if not authorized:
                raise TwilioApiError(
                    401,
                    20003,
                    "Authenticate",
                    detail="Your AccountSid or AuthToken was incorrect.",
                )
            response = self._dispatch(request, form)
        except TwilioApiError as error:
            response = _error_response(error, request.path, problem_details=problem_details)
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    form=form,
                    authorized=authorized,
                    at=at,
                    status=response.status_code,
                )
            )
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _dispatch(self, request: Request, form: dict[str, list[str]]) -> Response:
        adapter = _URL_MAP.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed as error:
            raise TwilioApiError(405, 20004, "Method not allowed") from error
        except HTTPException as error:
            raise self._not_found(request.path) from error
        if args["account_sid"] != self.account_sid:
            # Authenticated, but not as the account in the path.
            raise self._not_found(request.path)
        if endpoint == "create_message":
            return _json(201, self._create_message(form).to_json())
        if endpoint == "create_call":
            return _json(201, self._create_call(form).to_json())
        if endpoint in {"fetch_recording", "delete_recording"}:
            return self._recording(endpoint, args["name"], request.path)
        with self._lock:
            found: StoredMessage | StoredCall | None = (
                self._messages.get(args["sid"])
                if endpoint == "fetch_message"
                else self._calls.get(args["sid"])
            )
        if found is None:
            raise self._not_found(request.path)
        if isinstance(found, StoredCall) and endpoint == "update_call":
            self._update_call(found, form)
        return _json(200, found.to_json())

    def _recording(self, endpoint: str, name: str, path: str) -> Response:
        """GET a recording's audio (no extension or .wav: WAV; .mp3) or its .json; DELETE
        its .json (204). A deleted recording is gone: 404, like Twilio."""
        sid, _dot, extension = name.partition(".")
        with self._lock:
            recording = self._recordings.get(sid)
            if recording is None or recording.deleted:
                raise self._not_found(path)
            if endpoint == "delete_recording":
                if extension != "json":
                    raise self._not_found(path)
                recording.deleted = True
                return Response(status=204)
        if extension == "json":
            return _json(200, recording.to_json())
        if extension in {"", "wav"}:
            return Response(recording.audio, status=200, mimetype="audio/x-wav")
        if extension == "mp3":
            return Response(recording.audio, status=200, mimetype="audio/mpeg")
        raise self._not_found(path)

    @staticmethod
    def _not_found(path: str) -> TwilioApiError:
        return TwilioApiError(404, 20404, f"The requested resource {path} was not found")

    def _create_message(self, form: dict[str, list[str]]) -> StoredMessage:
        to = _first(form, "To")
        from_ = _first(form, "From")
        service = _first(form, "MessagingServiceSid")
        callback = _first(form, "StatusCallback")
        if not to:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not _is_phone_number(to):
            raise TwilioApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ and not service:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if not _first(form, "Body") and not _first(form, "MediaUrl"):
            raise TwilioApiError(400, 21602, "Message body is required.")
        if callback is not None and not _is_absolute_url(callback):
            raise TwilioApiError(400, 21609, f"Invalid StatusCallback url: {callback}")
        now = datetime.now(UTC)
        message = StoredMessage(
            sid=new_sid("SM"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=_first(form, "Body"),
            status="accepted" if service else "queued",
            status_callback=callback,
            messaging_service_sid=service,
            form=form,
            created_at=now,
            updated_at=now,
        )
        with self._lock:
            self._messages[message.sid] = message
        return message

    def _create_call(self, form: dict[str, list[str]]) -> StoredCall:
        to = _first(form, "To")
        from_ = _first(form, "From")
        url = _first(form, "Url")
        twiml = _first(form, "Twiml")
        if not to:
            raise TwilioApiError(400, 21201, "No 'To' number is specified")
        if not to.startswith(("client:", "sip:")) and not _is_phone_number(to):
            raise TwilioApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_:
            raise TwilioApiError(400, 21213, "Caller phone number is required")
        if url is None and twiml is None and _first(form, "ApplicationSid") is None:
            raise TwilioApiError(400, 21205, "Url parameter is required.")
        for name in ("Url", "StatusCallback", "AsyncAmdStatusCallback", "FallbackUrl"):
            value = _first(form, name)
            if value is not None and not _is_absolute_url(value):
                raise TwilioApiError(400, 21205, f"{name} is not a valid URL: {value}")
        now = datetime.now(UTC)
        call = StoredCall(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            status="queued",
            url=url,
            twiml=twiml,
            status_callback=_first(form, "StatusCallback"),
            status_callback_events=list(form.get("StatusCallbackEvent", [])),
            machine_detection=_first(form, "MachineDetection"),
            async_amd=_first(form, "AsyncAmd"),
            async_amd_status_callback=_first(form, "AsyncAmdStatusCallback"),
            timeout=_first(form, "Timeout"),
            form=form,
            created_at=now,
            updated_at=now,
        )
        with self._lock:
            self._calls[call.sid] = call
        return call

    def _update_call(self, call: StoredCall, form: dict[str, list[str]]) -> None:
        status = _first(form, "Status")
        url = _first(form, "Url")
        twiml = _first(form, "Twiml")
        if status is not None and status not in {"canceled", "completed"}:
            raise TwilioApiError(400, 20001, f"Status must be canceled or completed, not {status}")
        if (url is not None or twiml is not None) and call.ended:
            raise TwilioApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        if url is not None and not _is_absolute_url(url):
            raise TwilioApiError(400, 21205, f"Url is not a valid URL: {url}")
        now = datetime.now(UTC)
        with self._lock:
            call.updates.append(form)
            call.updated_at = now
            if url is not None or twiml is not None:
                call.url, call.twiml = url, twiml
            # Twilio: canceled ends a queued or ringing call only; completed ends any live call.
            ends = (status == "canceled" and call.status in {"queued", "ringing"}) or (
                status == "completed" and not call.ended
            )
            if ends and status is not None:
                call.status = status
                call.end_time = now


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return Response(_json_dumps(body), status=status, mimetype="application/json")
