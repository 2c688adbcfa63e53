"""Outbound SMS and calls: the only module that talks to Twilio's REST API."""

from __future__ import annotations

import io
import logging
import math
import re
import secrets
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from flask import current_app
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from core.clock import Clock
from core.config import Settings
from core.delivery import record_status
from core.models import OutboxMessage

log = logging.getLogger(__name__)

DEFAULT_CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
# Twilio's error for an SMS to a number that texted STOP: no SMS reaches it until START.
SMS_OPTED_OUT = 21610


class TelephonyError(Exception):
    """Sending failed; `code` is Twilio's error code when Twilio gave one."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def retryable(self) -> bool:
        """Worth trying again later: throttling, Twilio's own outages, no connection."""
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def opted_out(self) -> bool:
        """The number has opted out of SMS (STOP): calls still reach it."""
        return self.code == SMS_OPTED_OUT


RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")


@dataclass(frozen=True)
class RecordingAudio:
    """A recording's bytes and their media type, as the provider served them."""

    content: bytes
    content_type: str


def _recording_sid(sid: str) -> str:
    # The sid goes into a URL path: anything but Twilio's shape is refused before any request.
    if not RECORDING_SID.fullmatch(sid):
        raise TelephonyError("not a recording sid", status=404)
    return sid


class Telephony(Protocol):
    def send_sms(self, *, to: str, body: str, status_callback: str | None = None) -> str:
        """Send one SMS; returns the provider's message id."""
        ...

    def place_call(
        self,
        *,
        to: str,
        url: str,
        status_callback: str | None = None,
        status_events: Sequence[str] = DEFAULT_CALL_EVENTS,
        machine_detection: bool = True,
        amd_callback: str | None = None,
        timeout_seconds: int = 25,
    ) -> str:
        """Place one call that fetches its TwiML from `url`; returns the provider's call id."""
        ...

    def update_call(self, sid: str, *, status: str | None = None, url: str | None = None) -> None:
        """End a live call (`status` "completed", or "canceled" while it rings) or send it to
        new TwiML at `url`."""
        ...

    def fetch_recording(self, sid: str) -> RecordingAudio:
        """The audio of a call recording, fetched with the account's credentials."""
        ...

    def delete_recording(self, sid: str) -> None:
        """Delete a call recording at the provider (TelephonyError with status 404: gone)."""
        ...


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """Sends the real client's requests to another base URL (a local stand-in in tests)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if parts.hostname and (
            parts.hostname == "twilio.com" or parts.hostname.endswith(".twilio.com")
        ):
            url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


class TwilioTelephony:
    """The real twilio client."""

    def __init__(self, settings: Settings) -> None:
        http_client = (
            RedirectingHttpClient(settings.twilio_api_base)
            if settings.twilio_api_base
            else TwilioHttpClient(timeout=10)
        )
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_tokens[0], http_client=http_client
        )
        self.from_number = settings.twilio_from_number
        self.account_sid = settings.twilio_account_sid
        self.auth_token = settings.twilio_auth_tokens[0]
        self.api_base = settings.twilio_api_base or "https://api.twilio.com"

    def send_sms(self, *, to: str, body: str, status_callback: str | None = None) -> str:
        kwargs: dict[str, Any] = {"to": to, "from_": self.from_number, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except (TwilioException, requests.RequestException) as exc:
            raise _as_error(exc) from exc
        return str(message.sid)

    def place_call(
        self,
        *,
        to: str,
        url: str,
        status_callback: str | None = None,
        status_events: Sequence[str] = DEFAULT_CALL_EVENTS,
        machine_detection: bool = True,
        amd_callback: str | None = None,
        timeout_seconds: int = 25,
    ) -> str:
        kwargs: dict[str, Any] = {
            "to": to,
            "from_": self.from_number,
            "url": url,
            "method": "POST",
            "timeout": timeout_seconds,
        }
        if status_callback:
            kwargs["status_callback"] = status_callback
            kwargs["status_callback_method"] = "POST"
            kwargs["status_callback_event"] = list(status_events)
        if machine_detection:
            kwargs["machine_detection"] = "DetectMessageEnd"
            # twilio 9 sends bools as "True"; Twilio expects the string "true".
            kwargs["async_amd"] = "true"
            if amd_callback:
                kwargs["async_amd_status_callback"] = amd_callback
                kwargs["async_amd_status_callback_method"] = "POST"
        try:
            call = self.client.calls.create(**kwargs)
        except (TwilioException, requests.RequestException) as exc:
            raise _as_error(exc) from exc
        return str(call.sid)

    def update_call(self, sid: str, *, status: str | None = None, url: str | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if status:
            kwargs["status"] = status
        if url:
            kwargs["url"] = url
            kwargs["method"] = "POST"
        try:
            self.client.calls(sid).update(**kwargs)
        except (TwilioException, requests.RequestException) as exc:
            raise _as_error(exc) from exc

    def fetch_recording(self, sid: str) -> RecordingAudio:
        # The twilio client decodes bodies as text: audio is fetched with requests, with the
        # same credentials and base URL.
        url = (
            f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}"
            f"/Recordings/{_recording_sid(sid)}.mp3"
        )
        try:
            response = requests.get(url, auth=(self.account_sid, self.auth_token), timeout=20)
        except requests.RequestException as exc:
            raise _as_error(exc) from exc
        if response.status_code != 200:
            log.warning("twilio refused a recording: status=%s", response.status_code)
            raise TelephonyError("Twilio error", status=response.status_code)
        return RecordingAudio(
            response.content, response.headers.get("Content-Type", "audio/mpeg").split(";")[0]
        )

    def delete_recording(self, sid: str) -> None:
        try:
            self.client.recordings(_recording_sid(sid)).delete()
        except (TwilioException, requests.RequestException) as exc:
            raise _as_error(exc) from exc


def _as_error(exc: Exception) -> TelephonyError:
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    if isinstance(exc, requests.RequestException):
        return TelephonyError(f"Twilio unreachable: {type(exc).__name__}")
    log.warning("twilio refused a request: code=%s status=%s", code, status)
    return TelephonyError(
        f"Twilio error {code}" if code else "Twilio error",
        code=code if isinstance(code, int) else None,
        status=status if isinstance(status, int) else None,
    )


class SandboxTelephony:
    """Stores what would be sent in the outbox table; for development and demos."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, from_number: str) -> None:
        self.sessions = sessions
        self.clock = clock
        self.from_number = from_number or "+390000000000"

    def _store(self, **values: Any) -> str:
        prefix = "SM" if values["kind"] == "sms" else "CA"
        sid = prefix + secrets.token_hex(16)
        # Its own transaction, like a real provider: the message exists even if the caller's
        # transaction later rolls back.
        with self.sessions() as session, session.begin():
            message = OutboxMessage(
                sid=sid, from_=self.from_number, created_at=self.clock.now(), **values
            )
            session.add(message)
        return sid

    def send_sms(self, *, to: str, body: str, status_callback: str | None = None) -> str:
        return self._store(kind="sms", to=to, body=body, status_callback=status_callback)

    def place_call(
        self,
        *,
        to: str,
        url: str,
        status_callback: str | None = None,
        status_events: Sequence[str] = DEFAULT_CALL_EVENTS,
        machine_detection: bool = True,
        amd_callback: str | None = None,
        timeout_seconds: int = 25,
    ) -> str:
        return self._store(
            kind="call",
            to=to,
            url=url,
            status_callback=status_callback,
            options={
                "status_events": list(status_events),
                "machine_detection": machine_detection,
                "amd_callback": amd_callback,
                "timeout": timeout_seconds,
            },
        )

    def update_call(self, sid: str, *, status: str | None = None, url: str | None = None) -> None:
        """Ending a call: the sandbox page shows it over, as Twilio's callback would say."""
        log.info("sandbox: call %s updated (status=%s, redirected=%s)", sid, status, bool(url))
        if status:
            with self.sessions() as session, session.begin():
                record_status(session, sid=sid, status=status, now=self.clock.now())

    def fetch_recording(self, sid: str) -> RecordingAudio:
        """A second of a quiet tone: the sandbox keeps no audio, but the player must play."""
        _recording_sid(sid)
        return RecordingAudio(sandbox_wav(), "audio/wav")

    def delete_recording(self, sid: str) -> None:
        log.info("sandbox: recording %s deleted", _recording_sid(sid))


def sandbox_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short 440 Hz tone as 8-bit mono WAV."""
    frames = bytes(
        128 + round(20 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def build_telephony(settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> Telephony:
    if settings.telephony_backend == "twilio":
        return TwilioTelephony(settings)
    return SandboxTelephony(sessions, clock, settings.twilio_from_number)


def get_telephony() -> Telephony:
    telephony: Telephony = current_app.extensions["ali.telephony"]
    return telephony
