"""Outbound SMS and calls: the only module that talks to Twilio's REST API."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
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


def build_telephony(settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> Telephony:
    if settings.telephony_backend == "twilio":
        return TwilioTelephony(settings)
    return SandboxTelephony(sessions, clock, settings.twilio_from_number)


def get_telephony() -> Telephony:
    telephony: Telephony = current_app.extensions["ali.telephony"]
    return telephony
