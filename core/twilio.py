"""Inbound Twilio requests: signature checking against the public URL Twilio called."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import RequestEntityTooLarge

from core.accesslog import logged_path
from core.config import get_settings

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def public_request_url() -> str:
    """The URL Twilio signed: ALI_PUBLIC_URL + path + query, never what a proxy shows us."""
    settings = get_settings()
    url = settings.public_url + request.script_root + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def signature_is_valid() -> bool:
    settings = get_settings()
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not settings.twilio_auth_tokens:
        return False
    url = public_request_url()
    params = request.form if request.method == "POST" else {}
    # More than one token is valid while an auth token is being rotated.
    return any(
        RequestValidator(token).validate(url, params, signature)
        for token in settings.twilio_auth_tokens
    )


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send with `params` posted to `url` (the sandbox
    page signs its simulated webhooks with it, so they pass the real check)."""
    signature: str = RequestValidator(token).compute_signature(url, dict(params))
    return signature


def twilio_signed(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse (403) any request not signed by Twilio with one of our auth tokens."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            valid = signature_is_valid()
        except RequestEntityTooLarge:
            raise  # 413 says what is wrong; Twilio never sends bodies this large
        except Exception:  # a malformed request must be a 403, never a 500
            log.exception("twilio signature check failed on %s", logged_path())
            valid = False
        if not valid:
            log.warning("rejected unsigned or forged Twilio request on %s", logged_path())
            abort(403)
        return view(*args, **kwargs)

    return wrapped


# --- TwiML answers ---------------------------------------------------------------------------
# Twilio's own builders escape every text they are given: spoken and texted words are safe.


def _xml(document: VoiceResponse | MessagingResponse) -> Response:
    return Response(str(document), mimetype="text/xml")


def message_reply(text: str | None) -> Response:
    """The answer to an inbound SMS: one reply message, or none."""
    document = MessagingResponse()
    if text:
        document.message(text)
    return _xml(document)


def say_and_hang_up(text: str, *, language: str) -> Response:
    document = VoiceResponse()
    document.say(text, language=language)
    document.hangup()
    return _xml(document)


def gather_one_digit(
    prompt: str, *, language: str, action: str, after: str, timeout_seconds: int = 6
) -> Response:
    """Say `prompt` while waiting for one key, posted to `action`; with no key, go to `after`."""
    document = VoiceResponse()
    gather = document.gather(num_digits=1, action=action, method="POST", timeout=timeout_seconds)
    gather.say(prompt, language=language)
    document.redirect(after, method="POST")
    return _xml(document)


# --- the partner line: menus, forwarding with a whisper, messages -----------------------------

# What is said and in which voice: ("testo", "it-IT"). A prompt may mix languages (the
# greeting's "For English, press 9"), each part in its own voice.
Spoken = tuple[str, str]


def _say_all(target: VoiceResponse | Any, spoken: Sequence[Spoken]) -> None:
    for text, language in spoken:
        target.say(text, language=language)


def gather_keys(
    prompts: Sequence[Spoken],
    *,
    action: str,
    after: str,
    num_digits: int | None = 1,
    finish_on_key: str | None = None,
    timeout_seconds: int = 6,
    before: Sequence[Spoken] = (),
) -> Response:
    """Say `before`, then `prompts` while waiting for keys posted to `action`; with no key,
    go to `after`. `num_digits` None: keys until `finish_on_key` or the timeout."""
    document = VoiceResponse()
    _say_all(document, before)
    options: dict[str, Any] = {"action": action, "method": "POST", "timeout": timeout_seconds}
    if num_digits is not None:
        options["num_digits"] = num_digits
    if finish_on_key is not None:
        options["finish_on_key"] = finish_on_key
    gather = document.gather(**options)
    _say_all(gather, prompts)
    document.redirect(after, method="POST")
    return _xml(document)


def dial_one(
    number: str,
    *,
    action: str,
    timeout_seconds: int,
    caller_id: str | None = None,
    whisper_url: str | None = None,
    before: Sequence[Spoken] = (),
) -> Response:
    """Ring one person; Twilio posts the outcome (DialCallStatus, DialCallDuration) to
    `action` when the dialled leg ends. With `whisper_url`, their leg first runs that TwiML
    when they pick up (the caller waits), and the call is bridged only if it ends without
    hanging up."""
    document = VoiceResponse()
    _say_all(document, before)
    options: dict[str, Any] = {"action": action, "method": "POST", "timeout": timeout_seconds}
    if caller_id:
        options["caller_id"] = caller_id
    dial = document.dial(**options)
    if whisper_url is None:
        dial.number(number)
    else:
        dial.number(number, url=whisper_url, method="POST")
    return _xml(document)


def record_message(
    prompt: Spoken,
    *,
    action: str,
    recording_status_callback: str,
    max_seconds: int,
    after: str,
) -> Response:
    """Ask for a message and record it (up to `max_seconds`, # or silence ends it). Twilio
    posts the recording to `action`, and to `recording_status_callback` once it is stored;
    with nothing recorded it skips `action` and goes on to `after`."""
    document = VoiceResponse()
    _say_all(document, [prompt])
    document.record(
        action=action,
        method="POST",
        max_length=max_seconds,
        timeout=5,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=recording_status_callback,
        recording_status_callback_method="POST",
    )
    document.redirect(after, method="POST")
    return _xml(document)


def hang_up(spoken: Sequence[Spoken] = ()) -> Response:
    document = VoiceResponse()
    _say_all(document, spoken)
    document.hangup()
    return _xml(document)


def bridge() -> Response:
    """An empty answer: on a whisper, the dialled person is connected to the caller."""
    return _xml(VoiceResponse())
