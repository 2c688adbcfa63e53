"""Secrets and identifiers in request paths never reach the access logs: werkzeug's
development server and gunicorn's access logger, for real, and Ali's own log lines."""

from __future__ import annotations

import contextlib
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config
from gunicorn.glogging import Logger as GunicornLogger
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from core.accesslog import scrub_path

TOKEN = "Zq8pR2mXvK4tLw9sN3bYcD7fH1jA"  # the shape of a feed token
PATHS = (
    f"/calendar/operator/{TOKEN}.ics",
    "/cases/BS-2026-0042?q=Maria+Rossi",
    "/api/v1/handoffs/NV-2026-000123",
    "/admin/users/17",
)
SECRETS = (TOKEN, "BS-2026-0042", "Maria", "NV-2026-000123", "/17")


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (f"/calendar/province/{TOKEN}.ics", "/calendar/province/:token.ics"),
        ("/cases/BS-2026-0042/note", "/cases/:ref/note"),
        ("/cases?q=Maria", "/cases?:query"),
        ("/api/v1/handoffs/a/b c", "/api/v1/handoffs/:id"),
        ("/twilio/pages/55/key", "/twilio/pages/:id/key"),
        ("/rota/BS/rotations/3", "/rota/BS/rotations/:id"),
        ("/static/app.css", "/static/app.css"),
        ("/login", "/login"),
    ],
)
def test_paths_are_logged_by_their_shape(path: str, logged: str) -> None:
    assert scrub_path(path) == logged


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=WSGIRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_werkzeugs_request_log_keeps_no_token_or_case_reference(
    served: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    for path in PATHS:
        # 404 for a token nobody issued, 302 to the login page: logged all the same.
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(served + path, timeout=10).close()  # noqa: S310 -- local
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(lines) >= len(PATHS), lines
    text = "\n".join(lines)
    assert "GET /calendar/operator/:token.ics HTTP/1.1" in text
    assert "GET /cases/:ref?:query HTTP/1.1" in text
    for secret in SECRETS:
        assert secret not in text


def test_gunicorns_access_log_keeps_no_token_or_case_reference(app: Flask, tmp_path: Path) -> None:
    # gunicorn's own Logger, as a worker sets it up with --access-logfile and the default
    # format, then fed a request the way a worker logs one.
    log_file = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(log_file))
    logger = GunicornLogger(config)
    path, _, query = PATHS[1].partition("?")
    for raw in (PATHS[0], PATHS[1]):
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": raw,
            "PATH_INFO": raw.partition("?")[0],
            "QUERY_STRING": raw.partition("?")[2],
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.5",
            "HTTP_REFERER": f"https://ali.example.org{path}?{query}",
        }
        response = SimpleNamespace(status="200 OK", sent=10, headers=[])
        request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
        logger.access(response, request, environ, timedelta(milliseconds=3))
    for name in ("gunicorn.access", "gunicorn.error"):
        gunicorn_logger = logging.getLogger(name)
        for handler in list(gunicorn_logger.handlers):
            handler.close()  # the next test's gunicorn Logger would leave the file open
            gunicorn_logger.removeHandler(handler)
    text = log_file.read_text()
    assert '"GET /calendar/operator/:token.ics HTTP/1.1" 200' in text
    assert '"GET /cases/:ref?:query HTTP/1.1" 200' in text
    for secret in SECRETS:
        assert secret not in text


def test_alis_own_log_lines_name_the_paths_shape(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # A forged Twilio callback is logged with its path, which carries the page's id.
    response = client.post("/twilio/alert/4242/key", data={"Digits": "1"})
    assert response.status_code == 403
    assert "rejected unsigned or forged Twilio request on /twilio/alert/:id/key" in caplog.text
    assert "4242" not in caplog.text
