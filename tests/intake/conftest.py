"""Fixtures of the intake tests: a registered source and its signed client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from core.clock import FrozenClock
from intake.services import IssuedSecret
from tests.intake.signed import Sender, make_source


@pytest.fixture
def source(db: Session, clock: FrozenClock) -> IssuedSecret:
    return make_source(db, clock)


@pytest.fixture
def sender(client: FlaskClient, source: IssuedSecret, clock: FrozenClock) -> Sender:
    return Sender(client, source, clock)


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The app served over real HTTP by a threaded werkzeug server on a free port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()
