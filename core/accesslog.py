"""Paths as they may be logged: without the secrets and identifiers some paths carry.

A calendar feed's URL is its password (``/rota/feeds/operator/<token>.ics``), a case's page
names its reference, the API names a partner's ``external_id``, Twilio's callbacks and the
admin pages carry ids, and a query string can hold anything a person searched for. Access
logs are kept longer and read by more people than the database: they get the path's shape
only (``/cases/:ref``, ``/rota/feeds/operator/:token.ics``), never a query string.

The web server writes the access log, not Ali: the filter is put on werkzeug's logger (the
development server) and on gunicorn's ``gunicorn.access`` logger, which gunicorn creates in
the same process; the README gives the gunicorn ``--access-logformat`` to use as well, for
deployments that log elsewhere. Ali's own log lines use ``logged_path()``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping

from flask import request

# An opaque id or token: long, or mixing letters and digits the way generated values do.
_TOKEN = re.compile(r"^[A-Za-z0-9_~.=%-]{20,}$")
_NUMBER = re.compile(r"^\d+$")
_REFERENCE = re.compile(r"^[A-Za-z]{2,3}-\d{4}-\d+$")
# Everything after these prefixes is an identifier chosen by someone else (any characters).
_OPAQUE_TAILS = ("/api/v1/handoffs/",)
# A path inside a line of text (werkzeug's request line: 'GET /cases/BS-2026-0001 HTTP/1.1').
_PATH_IN_TEXT = re.compile(r"(?<![\w.:/])/[^\s\"']*")
# A whole URL (a Referer): the origin stays, the path is scrubbed.
_URL_IN_TEXT = re.compile(r"(https?://[^/\s\"']+)(/[^\s\"']*)")
QUERY = "?:query"


def scrub_path(path: str) -> str:
    """``path`` (with or without a query) with its identifiers and secrets replaced."""
    path, question, _query = path.partition("?")
    for prefix in _OPAQUE_TAILS:
        if path.startswith(prefix) and len(path) > len(prefix):
            return f"{prefix}:id" + (QUERY if question else "")
    segments = []
    for segment in path.split("/"):
        _stem, dot, extension = segment.rpartition(".")
        if dot and extension == "ics":
            segments.append(":token.ics")
        elif _NUMBER.match(segment):
            segments.append(":id")
        elif _REFERENCE.match(segment):
            segments.append(":ref")
        elif _TOKEN.match(segment):
            segments.append(":token")
        else:
            segments.append(segment)
    return "/".join(segments) + (QUERY if question else "")


def scrub_text(text: str) -> str:
    """Every path in a line of text (a request line, a Referer) scrubbed."""
    text = _URL_IN_TEXT.sub(lambda match: match.group(1) + scrub_path(match.group(2)), text)
    return _PATH_IN_TEXT.sub(lambda match: scrub_path(match.group(0)), text)


def logged_path() -> str:
    """The current request's path as Ali's own log lines show it."""
    return scrub_path(request.path)


# gunicorn's atoms that hold the URL: the request line, the path, the query, the Referer, and
# the same read from the WSGI environ ({raw_uri}e...). Other atoms are left alone.
_GUNICORN_URL_ATOMS = (
    "r",
    "u",
    "f",
    "{referer}i",
    "{raw_uri}e",
    "{path_info}e",
    "{request_uri}e",
)
_GUNICORN_QUERY_ATOMS = ("q", "{query_string}e")


class ScrubLoggedPaths(logging.Filter):
    """On werkzeug's and gunicorn's access loggers: the logged request's URL scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, MutableMapping):  # gunicorn: one mapping of atoms
            for key in _GUNICORN_URL_ATOMS:
                for name in {key, key.upper()}:
                    if isinstance(args.get(name), str):
                        args[name] = scrub_text(args[name])
            for key in _GUNICORN_QUERY_ATOMS:
                if args.get(key):
                    args[key] = ":query"
        elif isinstance(args, tuple):  # werkzeug: ('GET /path HTTP/1.1', code, size)
            record.args = tuple(scrub_text(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str) and not args:
            record.msg = scrub_text(record.msg)
        return True


ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def install() -> None:
    """Put the filter on the servers' access loggers, once per process."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubLoggedPaths) for f in logger.filters):
            logger.addFilter(ScrubLoggedPaths())
