"""The intake benchmark's baseline: a bare Flask endpoint that stores one row per POST.

Served by gunicorn exactly as Ali is (`bench._bare:create_app()`, same workers, same database
and connection settings through `core.db.make_engine`), with its own table. It parses the JSON
body, inserts the raw body with its external_id in one transaction and answers 201: the least
any webhook receiver does, so Ali's rate divided by this one is the cost of everything else
(signature, rate limit, validation, routing, encryption, case, events, audit).
Not run by `make bench` (the leading underscore); `bench/intake.py` starts it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert

from core.db import make_engine

DATABASE_URL_VARIABLE = "BENCH_DATABASE_URL"

metadata = MetaData()
bare_handoffs = Table(
    "bench_bare_handoffs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(128), nullable=False, unique=True),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def create_app() -> Flask:
    engine = make_engine(os.environ[DATABASE_URL_VARIABLE])
    app = Flask(__name__)

    @app.post("/bare")
    def store() -> tuple[Response, int]:
        payload = request.get_data(as_text=True)
        body = request.get_json()
        with engine.begin() as conn:
            row_id = conn.execute(
                insert(bare_handoffs)
                .values(
                    external_id=str(body["external_id"]),
                    payload=payload,
                    received_at=datetime.now(UTC),
                )
                .returning(bare_handoffs.c.id)
            ).scalar_one()
        return jsonify(id=row_id), 201

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return app
