"""The Twilio stand-in answers the real twilio client as Twilio would, and signs like Twilio."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from flask import Flask, request
from flask.testing import FlaskClient
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import ThreadedWSGIServer, make_server

from tests.twilio_standin import (
    DEFAULT_PERSON_NUMBER,
    DEFAULT_TWILIO_NUMBER,
    TwilioStandIn,
    TwilioWebhooks,
    flask_transport,
    gather_action_url,
    http_transport,
    is_valid_signature,
    sign,
)

ACCOUNT_SID = "AC" + "3f1c" * 8
OTHER_ACCOUNT_SID = "AC" + "9a0b" * 8
AUTH_TOKEN = "5e0c" * 8
OLD_AUTH_TOKEN = "77aa" * 8
PUBLIC_URL = "https://ali.example.org"
TWILIO_NUMBER = DEFAULT_TWILIO_NUMBER  # +39 030 ... (Brescia landline)
OPERATOR_NUMBER = DEFAULT_PERSON_NUMBER  # +39 333 ... (mobile)

_TWILIO_HOST = re.compile(r"^https://(?:[a-z0-9-]+\.)*twilio\.com(?=/|$)")


class StandInHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """Sends what the twilio client addresses to https://*.twilio.com to ``base_url`` instead."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        return super().request(
            method,
            _TWILIO_HOST.sub(self.base_url, url, count=1),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running


def _client(
    standin: TwilioStandIn,
    username: str = ACCOUNT_SID,
    password: str = AUTH_TOKEN,
    account_sid: str | None = None,
) -> Iterator[Client]:
    http_client = StandInHttpClient(standin.base_url)
    yield Client(username, password, account_sid=account_sid, http_client=http_client)
    if http_client.session is not None:
        http_client.session.close()


@pytest.fixture
def twilio_client(standin: TwilioStandIn) -> Iterator[Client]:
    yield from _client(standin)


@dataclass
class WebhookReceiver:
    """A tiny app that accepts only requests signed for PUBLIC_URL, like Ali's webhooks must."""

    app: Flask
    received: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    tokens: tuple[str, ...] = (AUTH_TOKEN,)


@pytest.fixture
def receiver() -> WebhookReceiver:
    app = Flask(__name__)
    receiver = WebhookReceiver(app)

    @app.post("/twilio/<path:name>")
    def receive(name: str) -> tuple[str, int, dict[str, str]]:
        query = request.query_string.decode()
        url = PUBLIC_URL + request.path + (f"?{query}" if query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not any(
            RequestValidator(token).validate(url, request.form, signature)
            for token in receiver.tokens
        ):
            return "forged", 403, {}
        receiver.received.append((name, request.form.to_dict(flat=False)))
        twiml = '<Response><Gather action="gather?case=7" numDigits="1"/></Response>'
        return twiml, 200, {"Content-Type": "text/xml"}

    return receiver


@pytest.fixture
def app_client(receiver: WebhookReceiver) -> FlaskClient:
    return receiver.app.test_client()


@pytest.fixture
def live_receiver_url(receiver: WebhookReceiver) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, receiver.app, threaded=True)
    assert isinstance(server, ThreadedWSGIServer)
    server.daemon_threads = False  # join request threads on close
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def _new_call(twilio_client: Client, **extra: object) -> str:
    call = twilio_client.calls.create(
        to=OPERATOR_NUMBER,
        from_=TWILIO_NUMBER,
        url=f"{PUBLIC_URL}/twilio/voice/page?page=42",
        status_callback=f"{PUBLIC_URL}/twilio/voice/status",
        **extra,
    )
    sid: str = call.sid
    return sid


# --------------------------------------------------------------------------- REST API


def test_created_message_is_answered_like_twilio_and_recorded(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    message = twilio_client.messages.create(
        to=OPERATOR_NUMBER,
        from_=TWILIO_NUMBER,
        body="Nuovo caso BS-17: rispondi 1 per prenderlo",
        status_callback=f"{PUBLIC_URL}/twilio/sms/status",
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.account_sid == ACCOUNT_SID
    assert message.to == OPERATOR_NUMBER
    assert message.from_ == TWILIO_NUMBER
    assert message.date_created is not None
    [stored] = standin.messages
    assert stored.sid == message.sid
    assert stored.body == "Nuovo caso BS-17: rispondi 1 per prenderlo"
    assert stored.status_callback == f"{PUBLIC_URL}/twilio/sms/status"
    [recorded] = standin.requests
    assert recorded.method == "POST"
    assert recorded.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert recorded.authorized
    assert recorded.status == 201
    assert standin.message(message.sid) is stored


def test_created_call_keeps_repeated_status_callback_events_and_amd_parameters(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    call = twilio_client.calls.create(
        to=OPERATOR_NUMBER,
        from_=TWILIO_NUMBER,
        url=f"{PUBLIC_URL}/twilio/voice/page?page=42",
        status_callback=f"{PUBLIC_URL}/twilio/voice/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=f"{PUBLIC_URL}/twilio/voice/amd",
        timeout=25,
    )

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.status == "queued"
    [stored] = standin.calls
    assert stored.sid == call.sid
    assert stored.url == f"{PUBLIC_URL}/twilio/voice/page?page=42"
    assert stored.status_callback_events == ["initiated", "ringing", "answered", "completed"]
    assert stored.form["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    assert stored.machine_detection == "DetectMessageEnd"
    assert stored.async_amd == "true"
    assert stored.async_amd_status_callback == f"{PUBLIC_URL}/twilio/voice/amd"
    assert stored.timeout == "25"


def test_boolean_async_amd_reaches_twilio_as_capitalised_true(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    # Why Ali must pass the string "true": twilio 9 sends str(True).
    _new_call(twilio_client, machine_detection="DetectMessageEnd", async_amd=True)

    assert standin.calls[0].async_amd == "True"


def test_inline_twiml_call_is_accepted_without_url(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    twilio_client.calls.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, twiml="<Response/>")

    assert standin.calls[0].twiml == "<Response/>"
    assert standin.calls[0].url is None


@pytest.mark.parametrize("to", ["+39123", "3331234567", "+39 333 123 4567", "not a number"])
def test_implausible_to_number_raises_21211(twilio_client: Client, to: str) -> None:
    with pytest.raises(TwilioException) as raised:
        twilio_client.messages.create(to=to, from_=TWILIO_NUMBER, body="x")

    assert isinstance(raised.value, TwilioRestException)
    assert raised.value.status == 400
    assert raised.value.code == 21211
    assert f"The 'To' number {to} is not a valid phone number." in raised.value.msg


def test_implausible_to_number_of_a_call_raises_21211(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls.create(
            to="+39123", from_=TWILIO_NUMBER, url=f"{PUBLIC_URL}/twilio/voice"
        )

    assert raised.value.code == 21211


def test_message_without_to_raises_21604(standin: TwilioStandIn, twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.messages.create(to="", from_=TWILIO_NUMBER, body="x")

    assert (raised.value.status, raised.value.code) == (400, 21604)
    assert standin.messages == []
    assert standin.requests[0].status == 400


def test_call_without_to_raises_21201_as_twilio_does(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls.create(to="", from_=TWILIO_NUMBER, url=f"{PUBLIC_URL}/twilio/voice")

    assert raised.value.code == 21201


def test_relative_status_callback_is_refused(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.messages.create(
            to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x", status_callback="/twilio/status"
        )

    assert raised.value.code == 21609


def test_wrong_auth_token_raises_20003_and_is_recorded_unauthorized(
    standin: TwilioStandIn,
) -> None:
    for client in _client(standin, password=OLD_AUTH_TOKEN):
        with pytest.raises(TwilioRestException) as raised:
            client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")

    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert standin.messages == []
    assert not standin.requests[0].authorized


def test_other_account_in_path_is_not_found(standin: TwilioStandIn) -> None:
    for client in _client(standin, account_sid=OTHER_ACCOUNT_SID):
        with pytest.raises(TwilioRestException) as raised:
            client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")

    assert (raised.value.status, raised.value.code) == (404, 20404)
    assert standin.requests[0].authorized


def test_injected_429_fails_the_next_requests_then_twilio_recovers(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    standin.fail_next(2, 429)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as raised:
            twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")
        assert (raised.value.status, raised.value.code) == (429, 20429)
    message = twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")

    assert [m.sid for m in standin.messages] == [message.sid]
    assert [r.status for r in standin.requests] == [429, 429, 201]


def test_injected_500_with_custom_code_and_message(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    standin.fail_next(1, 500, code=20500, message="An internal server error has occurred")

    with pytest.raises(TwilioRestException) as raised:
        _new_call(twilio_client)

    assert (raised.value.status, raised.value.code) == (500, 20500)
    assert "An internal server error has occurred" in raised.value.msg
    assert standin.calls == []


def test_problem_details_error_raises_service_exception_not_rest_exception(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    standin.fail_next(1, 429, problem_details=True)

    with pytest.raises(TwilioException) as raised:
        twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")

    assert isinstance(raised.value, TwilioServiceException)
    assert not isinstance(raised.value, TwilioRestException)
    assert (raised.value.status, raised.value.code) == (429, 20429)


def test_twilio_down_answers_503_until_it_is_back(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    standin.set_down(True)
    for _ in range(3):
        with pytest.raises(TwilioRestException) as raised:
            _new_call(twilio_client)
        assert (raised.value.status, raised.value.code) == (503, 20503)

    standin.set_down(False)
    sid = _new_call(twilio_client)

    assert [c.sid for c in standin.calls] == [sid]


def test_twilio_down_with_500_answers_20500_until_it_is_back(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    standin.set_down(True, status=500)
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")
    assert (raised.value.status, raised.value.code) == (500, 20500)

    standin.set_down(False)
    message = twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")

    assert [m.sid for m in standin.messages] == [message.sid]


def test_dropping_closes_the_connection_with_no_answer(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    standin.set_dropping()
    with pytest.raises(requests.ConnectionError):
        twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")
    assert standin.messages == []
    assert [r.status for r in standin.requests] == [0]  # it arrived, nothing was answered

    standin.set_dropping(False)
    twilio_client.messages.create(to=OPERATOR_NUMBER, from_=TWILIO_NUMBER, body="x")

    assert len(standin.messages) == 1


def test_fetch_and_update_call(standin: TwilioStandIn, twilio_client: Client) -> None:
    sid = _new_call(twilio_client)
    standin.set_call_status(sid, "in-progress")

    assert twilio_client.calls(sid).fetch().status == "in-progress"
    redirected = twilio_client.calls(sid).update(url=f"{PUBLIC_URL}/twilio/voice/next")
    assert redirected.status == "in-progress"
    assert standin.call(sid).url == f"{PUBLIC_URL}/twilio/voice/next"
    hung_up = twilio_client.calls(sid).update(status="completed")

    assert hung_up.status == "completed"
    assert twilio_client.calls(sid).fetch().status == "completed"
    assert [u.get("Status") for u in standin.call(sid).updates] == [None, ["completed"]]


def test_cancel_ends_a_queued_call_but_not_a_live_one(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    queued = _new_call(twilio_client)
    live = _new_call(twilio_client)
    standin.set_call_status(live, "in-progress")

    assert twilio_client.calls(queued).update(status="canceled").status == "canceled"
    assert twilio_client.calls(live).update(status="canceled").status == "in-progress"


def test_redirecting_an_ended_call_raises_21220(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    sid = _new_call(twilio_client)
    standin.set_call_status(sid, "completed", duration=31)

    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls(sid).update(twiml="<Response/>")

    assert raised.value.code == 21220
    assert twilio_client.calls(sid).fetch().duration == "31"


def test_unknown_call_raises_20404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls("CA" + "0" * 32).fetch()

    assert (raised.value.status, raised.value.code) == (404, 20404)


def test_reset_forgets_everything_and_comes_back_up(
    standin: TwilioStandIn, twilio_client: Client
) -> None:
    _new_call(twilio_client)
    standin.fail_next(5, 500)
    standin.set_down(True)

    standin.reset()
    _new_call(twilio_client)

    assert len(standin.calls) == 1
    assert len(standin.requests) == 1


def test_stopped_stand_in_frees_its_port() -> None:
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    port = int(standin.base_url.rsplit(":", 1)[1])
    standin.stop()

    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(RuntimeError):
        _ = standin.base_url


# --------------------------------------------------------------------------- signatures


def test_signature_matches_twilios_published_vector() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }

    signature = sign(url, params, "12345")

    assert signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert RequestValidator("12345").validate(url, params, signature)
    assert is_valid_signature(url, params, signature, "12345")
    assert not is_valid_signature(url, {**params, "Digits": "1"}, signature, "12345")


# --------------------------------------------------------------------------- webhooks


def test_stand_in_fires_signed_message_status_to_the_recorded_callback(
    standin: TwilioStandIn,
    twilio_client: Client,
    receiver: WebhookReceiver,
    app_client: FlaskClient,
) -> None:
    message = twilio_client.messages.create(
        to=OPERATOR_NUMBER,
        from_=TWILIO_NUMBER,
        body="x",
        status_callback=f"{PUBLIC_URL}/twilio/sms/status?page=42",
    )

    response = standin.send_message_status(
        message.sid, "undelivered", flask_transport(app_client, PUBLIC_URL), error_code=30003
    )

    assert response.status_code == 200
    [(name, form)] = receiver.received
    assert name == "sms/status"
    assert form["MessageSid"] == [message.sid]
    assert form["MessageStatus"] == ["undelivered"]
    assert form["ErrorCode"] == ["30003"]
    assert form["AccountSid"] == [ACCOUNT_SID]
    assert form["To"] == [OPERATOR_NUMBER]
    assert standin.message(message.sid).status == "undelivered"


def test_call_status_is_sent_only_for_requested_events(
    standin: TwilioStandIn,
    twilio_client: Client,
    receiver: WebhookReceiver,
    app_client: FlaskClient,
) -> None:
    sid = _new_call(twilio_client)  # no StatusCallbackEvent: Twilio reports only "completed"
    transport = flask_transport(app_client, PUBLIC_URL)

    with pytest.raises(LookupError, match="'ringing'"):
        standin.send_call_status(sid, "ringing", transport)
    response = standin.send_call_status(sid, "no-answer", transport)

    assert response.status_code == 200
    [(name, form)] = receiver.received
    assert name == "voice/status"
    assert form["CallStatus"] == ["no-answer"]
    assert form["CallSid"] == [sid]
    assert form["SequenceNumber"] == ["0"]
    assert form["CallDuration"] == ["0"]
    assert standin.call(sid).status == "no-answer"


def test_answered_call_fetches_twiml_then_gather_posts_digits(
    standin: TwilioStandIn,
    twilio_client: Client,
    receiver: WebhookReceiver,
    app_client: FlaskClient,
) -> None:
    sid = _new_call(
        twilio_client,
        status_callback_event=["answered", "completed"],
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=f"{PUBLIC_URL}/twilio/voice/amd",
    )
    transport = flask_transport(app_client, PUBLIC_URL)

    twiml = standin.send_call_answered(sid, transport).text
    amd = standin.send_amd_result(sid, "human", transport)
    action = gather_action_url(twiml, f"{PUBLIC_URL}/twilio/voice/page?page=42")
    gathered = standin.send_gather(sid, "1", action, transport)

    assert action == f"{PUBLIC_URL}/twilio/voice/gather?case=7"
    assert (amd.status_code, gathered.status_code) == (200, 200)
    names = [name for name, _ in receiver.received]
    assert names == ["voice/page", "voice/amd", "voice/gather"]
    answered, amd_form, gather_form = (form for _, form in receiver.received)
    assert answered["CallStatus"] == ["in-progress"]
    assert "AnsweredBy" not in answered  # async detection reports separately
    assert amd_form["AnsweredBy"] == ["human"]
    assert gather_form["Digits"] == ["1"]
    assert standin.call(sid).answered_by == "human"


def test_forged_and_unsigned_requests_are_told_apart_by_the_app(
    receiver: WebhookReceiver, app_client: FlaskClient
) -> None:
    hooks = TwilioWebhooks(AUTH_TOKEN, ACCOUNT_SID, flask_transport(app_client, PUBLIC_URL))
    url = f"{PUBLIC_URL}/twilio/sms/inbound"
    params = {"From": OPERATOR_NUMBER, "To": TWILIO_NUMBER, "Body": "1"}

    assert hooks.post(url, params).status_code == 403
    assert hooks.post(url, params, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=").status_code == 403
    signed_elsewhere = sign("http://localhost/twilio/sms/inbound", params, AUTH_TOKEN)
    assert hooks.post(url, params, signature=signed_elsewhere).status_code == 403
    assert hooks.inbound_sms(url, OPERATOR_NUMBER, TWILIO_NUMBER, "1").status_code == 200
    assert receiver.received[0][1]["Body"] == ["1"]


def test_webhooks_signed_with_a_rotated_out_token_are_refused_until_it_is_accepted_again(
    receiver: WebhookReceiver, app_client: FlaskClient
) -> None:
    old = TwilioWebhooks(OLD_AUTH_TOKEN, ACCOUNT_SID, flask_transport(app_client, PUBLIC_URL))
    url = f"{PUBLIC_URL}/twilio/voice/inbound"

    assert old.inbound_call(url, OPERATOR_NUMBER, TWILIO_NUMBER).status_code == 403
    receiver.tokens = (AUTH_TOKEN, OLD_AUTH_TOKEN)
    assert old.inbound_call(url, OPERATOR_NUMBER, TWILIO_NUMBER).status_code == 200
    [(_, form)] = receiver.received
    assert form["Direction"] == ["inbound"]
    assert form["CallStatus"] == ["ringing"]


def test_flask_transport_refuses_urls_outside_the_public_url(app_client: FlaskClient) -> None:
    hooks = TwilioWebhooks(AUTH_TOKEN, ACCOUNT_SID, flask_transport(app_client, PUBLIC_URL))

    with pytest.raises(ValueError, match="not under the public URL"):
        hooks.inbound_sms("https://elsewhere.example.org/x", OPERATOR_NUMBER, TWILIO_NUMBER, "1")


def test_http_transport_signs_the_public_url_and_posts_to_the_live_server(
    receiver: WebhookReceiver, live_receiver_url: str
) -> None:
    transport = http_transport(public_url=PUBLIC_URL, server_url=live_receiver_url)
    hooks = TwilioWebhooks(AUTH_TOKEN, ACCOUNT_SID, transport)

    response = hooks.call_status(
        f"{PUBLIC_URL}/twilio/voice/status?page=9",
        "CA" + "1" * 32,
        "completed",
        answered_by="machine_end_beep",
        duration=42,
    )

    assert isinstance(response, requests.Response)
    assert response.status_code == 200
    [(name, form)] = receiver.received
    assert name == "voice/status"
    assert form["AnsweredBy"] == ["machine_end_beep"]
    assert form["CallDuration"] == ["42"]
